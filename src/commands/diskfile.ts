import { appendFileSync, readFileSync, realpathSync, statSync } from 'node:fs';
import path from 'node:path';
import { MOUNTS_ENV } from '../config/bang.js';
import { OverlayBootError } from '../errors.js';
import { readPartitionTable, type Partition } from '../host/partitions.js';

/**
 * overlay-diskfile as a library function: the helper behind `!` values such as
 * `LOWER=!overlay-diskfile mnt/ disk.img 2`, which mounts a disk image (or one
 * partition of it) on a directory of BASE when the subhost boots and prints the
 * path to use.
 */

/** The tool name in ACTION for which a mount is made; any other ACTION mounts nothing. */
export const MOUNTING_ACTION = 'overlay-boot';
/** The ACTION of a dry run: the image and partition are checked, nothing is mounted. */
export const CHECKING_ACTION = 'overlay-check';

const MOUNT_TIMEOUT_MS = 60_000;

export interface DiskfileOptions {
  /** The raw disk image to mount. Without it nothing is mounted, only the path printed. */
  diskfile?: string;
  /** 1-based partition index in the image's MBR or GPT. Without it the whole image is mounted. */
  index?: number;
  /**
   * Name of the tool running the command (the `ACTION` environment variable).
   * Only `overlay-boot` mounts; `overlay-check` checks the image and partition without
   * mounting; anything else does nothing. Default: `process.env.ACTION`.
   */
  action?: string;
  /** Directory relative MOUNT/PATH and DISKFILE are taken from (BASE, for `!` values). Default: `process.cwd()`. */
  cwd?: string;
  /**
   * File to append the mount point to (one path a line) before mounting, so the boot
   * that ran this `!` command knows the mount is its own. Default:
   * `process.env.OVERLAY_BOOT_MOUNTS`; none: nothing is reported.
   */
  reportTo?: string;
}

export interface DiskfileResult {
  /** MOUNT/PATH made absolute against `cwd`: what the `!` value becomes. */
  path: string;
  /** MOUNT made absolute against `cwd`. */
  mountPoint: string;
  /** Whether this call mounted the image (false: other ACTION, no DISKFILE, or MOUNT already a mount point). */
  mounted: boolean;
  /** Byte offset of the partition used, when a partition was looked up. */
  offset?: number;
  /** Byte size of the partition used, when a partition was looked up. */
  size?: number;
}

/**
 * Splits the first argument into MOUNT and PATH. A leading run of `/` and `./` belongs
 * to MOUNT. If the rest holds `//`, MOUNT ends there (`/srv/disks/a//rootfs`: MOUNT
 * `/srv/disks/a`, PATH `rootfs`); otherwise MOUNT ends at the first `/` (`mnt/rootfs`:
 * MOUNT `mnt`, PATH `rootfs`; `mnt/`: MOUNT `mnt`, PATH empty; `mnt`: MOUNT `mnt`).
 */
export function splitMountPath(arg: string): { mount: string; path: string } {
  const lead = /^(?:\/|\.\/)*/.exec(arg)![0].length;
  const rest = arg.slice(lead);
  let mount: string;
  let sub: string;
  const dbl = rest.indexOf('//');
  const slash = rest.indexOf('/');
  if (dbl > 0) {
    mount = arg.slice(0, lead + dbl);
    sub = rest.slice(dbl).replace(/^\/+/, '');
  } else if (slash > 0) {
    mount = arg.slice(0, lead + slash);
    sub = rest.slice(slash + 1);
  } else {
    mount = arg;
    sub = '';
  }
  if (rest === '' || rest.startsWith('/')) {
    throw new OverlayBootError('USAGE', `MOUNT/PATH \`${arg}\` names no mount point directory`, {
      expected: 'a directory name, as in mnt/ or mnt/rootfs', found: arg,
    });
  }
  return { mount, path: sub };
}

/**
 * Name the mount point in the boot's report file before mounting: a mount that then
 * fails is not one (the boot checks), but a mount never goes unreported.
 */
function reportMount(mountPoint: string, file: string | undefined): void {
  if (file === undefined || file === '') return;
  if (mountPoint.includes('\n')) {
    throw new OverlayBootError('DISK_MOUNT_FAILED', `cannot report mount point ${JSON.stringify(mountPoint)}: it holds a newline`, {
      expected: 'a path without newlines', found: mountPoint,
    });
  }
  try {
    appendFileSync(file, `${mountPoint}\n`);
  } catch (cause) {
    throw new OverlayBootError('DISK_MOUNT_FAILED', `cannot report mount point ${mountPoint} to ${file} (${MOUNTS_ENV}): ${(cause as Error).message}`, {
      found: file, cause,
    });
  }
}

/** Undo the octal escapes of /proc/self/mountinfo (`\040` for a space). */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Whether something is mounted on `dir` (compared by real path) in our mount namespace. */
export function isMountPoint(dir: string): boolean {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    return false;
  }
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
    .some((l) => l !== '' && unescapeMountinfo(l.split(' ')[4] ?? '') === real);
}

/** The size of a disk image, or DISK_UNREADABLE. */
function imageBytes(image: string): number {
  try {
    const st = statSync(image);
    if (!st.isFile()) throw new Error('not a regular file');
    return st.size;
  } catch (cause) {
    throw new OverlayBootError('DISK_UNREADABLE', `cannot read disk image ${image}: ${(cause as Error).message}`, { found: image, cause });
  }
}

/** The partition `index` of `image`, checked to lie inside the image. */
export async function findPartition(image: string, index: number): Promise<Partition> {
  const table = await readPartitionTable(image);
  const part = table.partitions.find((p) => p.index === index);
  if (!part) {
    const have = table.partitions.map((p) => p.index).join(', ') || 'none';
    throw new OverlayBootError('DISK_NO_PARTITION', `disk image ${image} has no partition ${index} (its ${table.label} table has: ${have})`, {
      expected: `partition ${index}`, found: have,
    });
  }
  const imageSize = imageBytes(image);
  if (imageSize > 0 && part.start + part.size > imageSize) {
    throw new OverlayBootError('DISK_BAD_TABLE', `partition ${index} of disk image ${image} ends at byte ${part.start + part.size}, beyond the end of the image (${imageSize} bytes)`, {
      found: `${part.start + part.size} > ${imageSize}`,
    });
  }
  return part;
}

/**
 * Mount `diskfile` (whole, or partition `index`) on MOUNT through a loop device when
 * the action is `overlay-boot` and MOUNT is not yet a mount point; return the absolute
 * MOUNT/PATH in every case. The loop device is set up by mount(8) with autoclear, so it
 * goes away with the unmount, and a failed mount leaves neither mount nor loop device.
 */
export async function diskfileMount(arg: string, options: DiskfileOptions = {}): Promise<DiskfileResult> {
  const cwd = options.cwd ?? process.cwd();
  const action = options.action ?? process.env.ACTION;
  const split = splitMountPath(arg);
  const result: DiskfileResult = { path: path.resolve(cwd, arg), mountPoint: path.resolve(cwd, split.mount), mounted: false };
  if (options.index !== undefined && (!Number.isInteger(options.index) || options.index < 1)) {
    throw new OverlayBootError('USAGE', `INDEX must be a partition number from 1 on, not ${options.index}`, { found: String(options.index) });
  }
  if (options.diskfile === undefined || (action !== MOUNTING_ACTION && action !== CHECKING_ACTION)) return result;

  const image = path.resolve(cwd, options.diskfile);
  let part: Partition | undefined;
  if (options.index !== undefined) {
    part = await findPartition(image, options.index);
    result.offset = part.start;
    result.size = part.size;
  } else {
    imageBytes(image);
  }
  if (action !== MOUNTING_ACTION || isMountPoint(result.mountPoint)) return result;

  const what = part ? `partition ${part.index} of disk image ${image}` : `disk image ${image}`;
  let st;
  try {
    st = statSync(result.mountPoint);
  } catch {
    st = undefined;
  }
  if (!st?.isDirectory()) {
    throw new OverlayBootError('DISK_MOUNT_FAILED', `cannot mount ${what}: mount point ${result.mountPoint} is not a directory`, {
      expected: 'an existing directory', found: st ? 'not a directory' : 'nothing',
    });
  }
  reportMount(result.mountPoint, options.reportTo ?? process.env[MOUNTS_ENV]);
  const opts = part ? `loop,offset=${part.start},sizelimit=${part.size}` : 'loop';
  // Both paths are absolute, so neither can be taken for an option.
  const { execa } = await import('execa');
  const run = await execa('mount', ['-o', opts, image, result.mountPoint], {
    reject: false, stdin: 'ignore', timeout: MOUNT_TIMEOUT_MS, env: { LC_ALL: 'C' },
  });
  if (run.failed) {
    const why = String(run.stderr ?? '').trim().split('\n')[0] || run.shortMessage;
    throw new OverlayBootError('DISK_MOUNT_FAILED', `cannot mount ${what} on ${result.mountPoint}: ${why}`, { found: why });
  }
  result.mounted = true;
  return result;
}
