/**
 * Staging a DU's layer: the package's data unpacked into a fresh layer directory (safely,
 * verifying the package again in the same pass), as dpkg would lay it over the EE's
 * LOWER, plus opkg's database of the package in the layer.
 *
 * **LOWER symlinks** (merged /usr): when a member's parent directory is, in LOWER, a
 * symlink to a directory (`lib -> usr/lib`), the member is created under the link's
 * target (resolved inside LOWER, never on the host through an absolute link), as dpkg
 * does. A real directory `lib` in the layer would hide LOWER's link, and with it all of
 * /usr/lib, from the DU.
 *
 * **opkg's database**: `usr/lib/opkg/info/PKG.control`, `.list` (the paths written),
 * `.conffiles`, and the maintainer scripts (mode 0755), so tools inside the DU see it.
 */
import { closeSync, constants, fchmodSync, lstatSync, mkdirSync, openSync, readlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { isBangValue } from '../config/bang.js';
import { OverlayBootError } from '../errors.js';
import type { TrustedKey } from '../package/keys.js';
import type { DataFile, PackageInfo } from '../package/types.js';
import { unpackPackage, type UnpackResult } from '../package/unpack.js';
import type { Template } from './templates.js';

/** Symlinks followed while resolving one path inside LOWER, as the kernel's limit. */
const MAX_LINK_HOPS = 40;

/** Where opkg keeps its database, relative to the root. */
export const OPKG_INFO_DIR = 'usr/lib/opkg/info';

/**
 * The absolute LOWER of a DU made from `template` with BASE `base`: `/` when the template
 * sets none; undefined for a `!` value, which only runs when the DU boots (then no
 * LOWER symlink is followed while staging).
 */
export function templateLower(template: Template, base: string): string | undefined {
  const a = template.assignments.find((x) => x.variable === 'LOWER');
  if (a === undefined) return '/';
  if (isBangValue(a.value)) return undefined;
  return path.resolve(base, a.value);
}

/** `rel`'s components with `.` dropped and `..` applied, never above the root. */
function components(rel: string): string[] {
  const out: string[] = [];
  for (const c of rel.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') out.pop();
    else out.push(c);
  }
  return out;
}

/**
 * Resolves `rel` inside `lower` as the DU will see it: every symlink LOWER has on the way
 * is followed, an absolute target taken from LOWER's root. Components LOWER does not
 * have are kept as they are. Returns the resolved path, relative, without a leading `/`.
 */
export function resolveInLower(lower: string, rel: string): string {
  let rest = components(rel);
  let done: string[] = [];
  for (let hops = 0; rest.length > 0;) {
    const [next, ...after] = rest as [string, ...string[]];
    const st = lstatSync(path.join(lower, ...done, next), { throwIfNoEntry: false });
    if (st?.isSymbolicLink() && hops < MAX_LINK_HOPS) {
      hops += 1;
      const target = readlinkSync(path.join(lower, ...done, next));
      rest = [...components(target.startsWith('/') ? target : [...done, target].join('/')), ...after];
      done = [];
      continue;
    }
    done.push(next);
    rest = after;
    if (!st?.isDirectory()) return [...done, ...rest].join('/');
  }
  return done.join('/');
}

/**
 * The unpacker's `relocate` for LOWER `lower`: a member's parent directory (a
 * directory member itself too) resolved with {@link resolveInLower}. Refuses
 * (PKG_UNSAFE_PATH) a relocated path that would pass through a symlink the package made.
 */
export function lowerRelocator(lower: string): (file: DataFile) => DataFile {
  const links = new Set<string>();
  const place = (p: string, whole: boolean): string => {
    if (whole) return resolveInLower(lower, p);
    const dir = path.posix.dirname(p);
    return dir === '.' ? p : path.posix.join(resolveInLower(lower, dir), path.posix.basename(p));
  };
  return (f) => {
    const to = place(f.path, f.type === 'dir');
    const parts = to.split('/');
    // A directory member is refused too when it lands on a link: it would be made through it.
    for (let i = 1; i < parts.length + (f.type === 'dir' ? 1 : 0); i += 1) {
      const prefix = parts.slice(0, i).join('/');
      if (links.has(prefix)) {
        throw new OverlayBootError('PKG_UNSAFE_PATH', `${f.path} lands at ${to}, which passes through the package's symlink ${prefix}`, { member: f.path });
      }
    }
    if (f.type === 'symlink') links.add(to);
    const out: DataFile = { ...f, path: to };
    if (f.type === 'hardlink' && f.linkTarget !== undefined) out.linkTarget = place(f.linkTarget, false);
    return out;
  };
}

/** Options of {@link stageLayer}. */
export interface StageOptions {
  /** The package as verified (its control, scripts, conffiles, files). */
  info: PackageInfo;
  /** The trusted keys: the package is verified again while it is unpacked. */
  keys: TrustedKey[];
  requireSignature: boolean;
  /** The decryption secret of an encrypted package. */
  secret?: string;
  maxUnpackedSize?: number;
  /** The EE's LOWER (absolute), or undefined to follow no LOWER symlink. */
  lower?: string;
}

/**
 * Unpacks the package into `layer` (which must not exist; nothing is left of it when
 * this throws) and writes opkg's database of it there.
 */
export async function stageLayer(file: string, layer: string, opts: StageOptions): Promise<UnpackResult> {
  const relocate = opts.lower === undefined ? (f: DataFile) => f : lowerRelocator(opts.lower);
  const written: DataFile[] = [];
  const result = await unpackPackage(file, layer, {
    keys: opts.keys, requireSignature: opts.requireSignature, secret: opts.secret, maxUnpackedSize: opts.maxUnpackedSize,
    relocate: (f) => {
      const r = relocate(f);
      written.push(r);
      return r;
    },
  });
  const infoDir = opts.lower === undefined ? OPKG_INFO_DIR : resolveInLower(opts.lower, OPKG_INFO_DIR);
  writeOpkgInfo(layer, infoDir, opts.info, written);
  return result;
}

/** The control stanza as text again (continuation lines are kept verbatim by the parser). */
export function controlStanza(info: PackageInfo): string {
  return Object.entries(info.control.fields).map(([k, v]) => `${k}: ${v}\n`).join('');
}

/**
 * Writes opkg's database files of the package into `layer`/`infoDir`. The directories
 * are made one by one, refusing one that is a symlink (the package may have shipped
 * `usr/lib/opkg` as a link to a host directory).
 */
export function writeOpkgInfo(layer: string, infoDir: string, info: PackageInfo, written: DataFile[]): void {
  const dir = safeMkdirs(layer, infoDir);
  const pkg = info.control.package;
  const files: Record<string, { text: string; mode: number }> = {
    control: { text: controlStanza(info), mode: 0o644 },
    list: { text: written.filter((f) => f.type !== 'dir').map((f) => `/${f.path}\n`).join(''), mode: 0o644 },
  };
  if (info.conffiles.length > 0) files.conffiles = { text: info.conffiles.map((c) => `${c}\n`).join(''), mode: 0o644 };
  for (const [name, text] of Object.entries(info.scripts)) files[name] = { text, mode: 0o755 };
  for (const [ext, { text, mode }] of Object.entries(files)) writeNew(path.join(dir, `${pkg}.${ext}`), text, mode);
}

/** Makes `rel` below `root` component by component, refusing a symlink on the way; returns the absolute path. */
function safeMkdirs(root: string, rel: string): string {
  let dir = root;
  for (const c of components(rel)) {
    dir = path.join(dir, c);
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (st === undefined) mkdirSync(dir, { mode: 0o755 });
    else if (!st.isDirectory()) {
      throw new OverlayBootError('PKG_UNSAFE_PATH', `${path.relative(root, dir)} in the layer is not a directory: opkg's database cannot go there`, { file: dir });
    }
  }
  return dir;
}

/** Writes a new file (O_EXCL|O_NOFOLLOW: never through a link, never over the package's own file). */
function writeNew(file: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new OverlayBootError('PKG_UNSAFE_PATH', `cannot write opkg's database file: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const bytes = Buffer.from(text, 'utf8');
    for (let off = 0; off < bytes.length;) off += writeSync(fd, bytes, off, bytes.length - off);
    fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}
