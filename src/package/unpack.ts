/**
 * unpackPackage: the data tree written into a directory, safely. Everything
 * goes into a fresh sibling staging directory in the same pass that checks the
 * package; only when every check (and, with keys, the signature) passed is it
 * renamed into place. On any failure nothing is left behind.
 */
import { execFile } from 'node:child_process';
import { chmodSync, closeSync, constants, fchmodSync, fchownSync, lchownSync, linkSync, mkdirSync, openSync, symlinkSync, writeSync } from 'node:fs';
import { chmod, mkdtemp, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { OverlayBootError } from '../errors.js';
import type { TrustedKey } from './keys.js';
import { readAndTrust } from './open.js';
import type { DataSink } from './read.js';
import type { DataFile, PackageReadOptions } from './types.js';
import { firstFailure } from './verify.js';

/** Options of unpackPackage. */
export interface UnpackOptions extends PackageReadOptions {
  /** With keys, the package must verify before the tree is put in place. */
  keys?: TrustedKey[];
  /** Default: true when keys are given, else false. */
  requireSignature?: boolean;
  /**
   * Where each entry is written instead of its own path (the lifecycle's merged-/usr
   * rule: `lib/x` under `usr/lib/x` when LOWER's `lib` links there). Called in archive
   * order after the entry passed every check; the path it returns must not pass through
   * a symlink the package made (it throws, e.g. PKG_UNSAFE_PATH, to refuse).
   */
  relocate?: (file: DataFile) => DataFile;
}

export interface UnpackResult {
  /** Entries written (files, directories, links, nodes). */
  files: number;
  /** Bytes of regular file data written. */
  bytes: number;
}

const WRITE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function writeAll(fd: number, chunk: Buffer): void {
  for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off);
}

/**
 * Writes entries under `root`; directory modes are applied last, deepest first.
 * Synchronous calls: the decompressor keeps working in the thread pool meanwhile, and
 * a thread hop per call cost more than the call itself (bench/package.js: 2x).
 */
class TreeWriter implements DataSink {
  files = 0;
  bytes = 0;
  private readonly dirModes: [string, number][] = [];
  private readonly asRoot = process.getuid?.() === 0;
  /** Directories known to exist, so parents are made once, not once per entry. */
  private readonly dirs = new Set<string>();

  constructor(private readonly root: string, private readonly relocate?: (file: DataFile) => DataFile) {
    this.dirs.add(root);
  }

  private parent(p: string): void {
    const dir = path.dirname(p);
    if (this.dirs.has(dir)) return;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    for (let d = dir; !this.dirs.has(d); d = path.dirname(d)) this.dirs.add(d);
  }

  async entry(given: DataFile, body: AsyncIterable<Buffer>): Promise<void> {
    const f = this.relocate ? this.relocate(given) : given;
    const p = path.join(this.root, f.path);
    this.parent(p);
    switch (f.type) {
      case 'dir':
        if (!this.dirs.has(p)) mkdirSync(p, { mode: 0o700 });
        this.dirs.add(p);
        this.dirModes.push([p, f.mode]);
        break;
      case 'file': {
        const fd = openSync(p, WRITE_FLAGS, 0o600);
        try {
          for await (const chunk of body) {
            writeAll(fd, chunk);
            this.bytes += chunk.length;
          }
          if (this.asRoot) fchownSync(fd, f.uid, f.gid);
          fchmodSync(fd, f.mode);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'symlink':
        symlinkSync(f.linkTarget ?? '', p);
        break;
      case 'hardlink':
        linkSync(path.join(this.root, f.linkTarget ?? ''), p);
        break;
      default: {
        // node has no mknod; only reached when the caller allowed devices (fifos are always fine).
        const args = f.type === 'fifo' ? [p, 'p'] : [p, f.type === 'char' ? 'c' : 'b', String(f.device?.major ?? 0), String(f.device?.minor ?? 0)];
        await promisify(execFile)('mknod', ['-m', (f.mode & 0o777).toString(8), ...args]);
        chmodSync(p, f.mode);
      }
    }
    if (this.asRoot && f.type !== 'file' && f.type !== 'hardlink') lchownSync(p, f.uid, f.gid);
    this.files += 1;
  }

  finish(): void {
    for (const [p, mode] of this.dirModes.reverse()) chmodSync(p, mode);
  }
}

async function checkDest(dest: string): Promise<boolean> {
  const st = await stat(dest).catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw new OverlayBootError('PKG_UNREADABLE', 'cannot examine the destination', { file: dest, cause: e });
  });
  if (st === undefined) return false;
  if (!st.isDirectory() || (await readdir(dest)).length > 0) {
    throw new OverlayBootError('USAGE', 'the destination exists and is not an empty directory', { file: dest });
  }
  return true;
}

/**
 * Unpacks the data of `file` into `destDir` (which must not exist, or be an
 * empty directory). Modes and numeric owners are kept (owners when running as
 * root), symlinks are made as symlinks and never followed. A problem entry,
 * a corrupt member, the size cap, or (with keys) a failed verification throws
 * its PKG_ error and leaves nothing behind. OCI bundles unpack their rootfs.
 */
export async function unpackPackage(file: string, destDir: string, opts: UnpackOptions = {}): Promise<UnpackResult> {
  const dest = path.resolve(destDir);
  const existed = await checkDest(dest);
  const staging = await mkdtemp(path.join(path.dirname(dest), `.${path.basename(dest)}.unpack-`));
  try {
    const writer = new TreeWriter(staging, opts.relocate);
    const { raw, trust } = await readAndTrust(file, opts, writer);
    const failure = firstFailure(raw, trust, file, opts.requireSignature ?? opts.keys !== undefined);
    if (failure) throw failure;
    writer.finish();
    await chmod(staging, 0o755);
    if (existed) await rmdir(dest);
    await rename(staging, dest);
    return { files: writer.files, bytes: writer.bytes };
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    throw e;
  }
}
