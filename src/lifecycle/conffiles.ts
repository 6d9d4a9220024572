/**
 * conffiles on update (LIFECYCLE.md): a listed file the user changed is kept and the
 * package's new version is written beside it as `FILE-opkg`, as opkg does.
 *
 * In a DU the user's changes are in its UPPER, which the overlay puts above every layer,
 * so the user's copy wins by itself; what is left to do is to make the new version
 * visible: `FILE-opkg` in the new layer. "Changed" means UPPER holds the file (a regular
 * file or a link) and it differs from the old layer's copy (or the old layer has none).
 * A conffile the user deleted (a whiteout in UPPER) stays deleted, as with dpkg, and gets
 * no `-opkg`.
 *
 * UPPER and the layers hold what the DU and the package made: no path component is
 * followed through a symlink, and `FILE-opkg` is created with O_NOFOLLOW. The DU's
 * subhost is stopped while this runs, so nothing changes UPPER under it.
 */
import { closeSync, constants, fstatSync, lstatSync, openSync, readFileSync, readlinkSync, unlinkSync, writeSync, fchownSync, fchmodSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';

/** What {@link keepChangedConffiles} needs. */
export interface ConffileDirs {
  /** The new package's conffiles (absolute paths inside the DU, as listed). */
  conffiles: readonly string[];
  /** The DU's UPPER. */
  upper: string;
  /** The layer being replaced. */
  oldLayer: string;
  /** The layer being installed (FILE-opkg is written here). */
  newLayer: string;
}

/** Conffiles larger than this are compared and copied all the same, but refused beyond it: they are not config. */
const MAX_CONFFILE = 64 * 1024 * 1024;

type Entry = { kind: 'file'; bytes: Buffer; mode: number; uid: number; gid: number } | { kind: 'link'; target: string } | { kind: 'whiteout' | 'other' };

/** `rel` below `root`, each directory component a real directory (never a link); undefined when absent. */
function lookup(root: string, rel: string): Entry | undefined {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.length === 0 || parts.includes('..')) return undefined;
  for (let i = 1; i < parts.length; i += 1) {
    const st = lstatSync(path.join(root, ...parts.slice(0, i)), { throwIfNoEntry: false });
    if (!st?.isDirectory()) return undefined;
  }
  const file = path.join(root, ...parts);
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st === undefined) return undefined;
  if (st.isSymbolicLink()) return { kind: 'link', target: readlinkSync(file) };
  // overlayfs marks a deleted lower file with a 0/0 character device in UPPER.
  if (st.isCharacterDevice() && st.rdev === 0) return { kind: 'whiteout' };
  if (!st.isFile()) return { kind: 'other' };
  const fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  try {
    const fst = fstatSync(fd);
    if (!fst.isFile() || fst.size > MAX_CONFFILE) return { kind: 'other' };
    return { kind: 'file', bytes: readFileSync(fd), mode: fst.mode & 0o7777, uid: fst.uid, gid: fst.gid };
  } finally {
    closeSync(fd);
  }
}

function same(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  // Owner and mode count: a chmod is a change of the user's too (and keeps a removal undoable by the old layer).
  if (a.kind === 'file' && b.kind === 'file') return a.bytes.equals(b.bytes) && a.mode === b.mode && a.uid === b.uid && a.gid === b.gid;
  if (a.kind === 'link' && b.kind === 'link') return a.target === b.target;
  return a.kind === b.kind;
}

/** Writes `entry`'s bytes as a new file `file` (a file or link already there is replaced; never followed). */
function writeCopy(file: string, entry: Entry & { kind: 'file' }): void {
  const st = lstatSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw new OverlayBootError('PKG_UNSAFE_PATH', `${file} is a directory: the new conffile cannot be written beside the user's`, { file });
  if (st) unlinkSync(file);
  const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    for (let off = 0; off < entry.bytes.length;) off += writeSync(fd, entry.bytes, off, entry.bytes.length - off);
    fchownSync(fd, entry.uid, entry.gid);
    fchmodSync(fd, entry.mode);
  } finally {
    closeSync(fd);
  }
}

/** What {@link keepChangedConffiles} did, conffiles named as listed (e.g. `/etc/app.conf`). */
export interface ConffileOutcome {
  /** Changed by the user: kept, the new version written as `FILE-opkg`. */
  kept: string[];
  /** Copied up into UPPER but unchanged: that copy removed, so that the new version shows. */
  refreshed: string[];
}

/**
 * For each conffile the user changed, writes the new layer's version as `FILE-opkg` in
 * the new layer. A copy in UPPER identical to the old layer's (overlayfs copies a file up
 * when it is opened for writing or its metadata changes) is removed: it is not the user's
 * change and would hide the new version, which dpkg would have installed.
 */
export function keepChangedConffiles(dirs: ConffileDirs): ConffileOutcome {
  const out: ConffileOutcome = { kept: [], refreshed: [] };
  for (const conffile of dirs.conffiles) {
    const rel = conffile.replace(/^\/+/, '');
    const mine = lookup(dirs.upper, rel);
    if (mine === undefined || mine.kind === 'whiteout' || mine.kind === 'other') continue;
    const theirs = lookup(dirs.newLayer, rel);
    if (same(mine, lookup(dirs.oldLayer, rel))) {
      if (theirs !== undefined && !same(mine, theirs)) {
        unlinkSync(path.join(dirs.upper, rel));
        out.refreshed.push(conffile);
      }
      continue;
    }
    if (theirs?.kind !== 'file') continue;
    writeCopy(path.join(dirs.newLayer, `${rel}-opkg`), theirs);
    out.kept.push(conffile);
  }
  return out;
}
