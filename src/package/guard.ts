/**
 * The rules every data entry must pass before it may be written: no absolute
 * path, no `..`, no path through a symlink or a non-directory (including ones
 * made earlier in the same archive), hard links only to earlier regular files,
 * no duplicates, no device nodes or setuid/setgid files unless allowed, no
 * member above the size cap.
 */
import type { ErrorCode } from '../errors.js';
import { OverlayBootError } from '../errors.js';
import type { DataFile } from './types.js';
import type { TarEntry } from './tar.js';

/** One rule a data entry breaks. */
export interface Problem {
  code: ErrorCode;
  /** The entry's path as stored. */
  member: string;
  message: string;
}

/** The string form used in PackageInfo.problems: `PATH: what is wrong [CODE]`. */
export function problemText(p: Problem): string {
  return `${p.member}: ${p.message} [${p.code}]`;
}

export function problemError(p: Problem, file: string): OverlayBootError {
  return new OverlayBootError(p.code, p.message, { file, member: p.member });
}

export interface GuardOptions {
  allowDevices?: boolean;
  allowSetid?: boolean;
  maxMemberSize: number;
}

/**
 * `raw` normalised to a relative path without `./`, `.` components or
 * trailing `/`; '' for the root itself. Returns a Problem for absolute paths
 * and `..` components.
 */
export function normalizeMemberPath(raw: string): string | Omit<Problem, 'member'> {
  if (raw.startsWith('/')) return { code: 'PKG_UNSAFE_PATH', message: 'absolute path' };
  if (raw.includes('\0')) return { code: 'PKG_UNSAFE_PATH', message: 'NUL byte in path' };
  const parts = raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) return { code: 'PKG_UNSAFE_PATH', message: 'path contains ..' };
  return parts.join('/');
}

/** Checks data entries in archive order, remembering what came before. */
export class DataGuard {
  private readonly seen = new Map<string, DataFile['type']>();

  constructor(private readonly opts: GuardOptions) {}

  /**
   * The DataFile for `e` (path normalised, `''` for the archive root) and the
   * rules it breaks. An entry with problems is not remembered as written.
   */
  check(e: TarEntry, path: string = e.path): { file: DataFile; problems: Problem[] } {
    const problems: Problem[] = [];
    const add = (code: ErrorCode, message: string) => problems.push({ code, member: e.path, message });
    const norm = normalizeMemberPath(path);
    const rel = typeof norm === 'string' ? norm : path;
    if (typeof norm !== 'string') add(norm.code, norm.message);
    const file: DataFile = { path: rel, type: e.type, mode: e.mode, uid: e.uid, gid: e.gid, size: e.type === 'file' ? e.size : 0 };
    if (e.linkpath !== undefined) file.linkTarget = e.linkpath;
    if (e.device) file.device = e.device;
    if (typeof norm === 'string') {
      const parts = rel.split('/');
      for (let i = 1; i < parts.length; i += 1) {
        const prefix = parts.slice(0, i).join('/');
        const t = this.seen.get(prefix);
        if (t === 'symlink') add('PKG_UNSAFE_PATH', `path passes through the symlink ${prefix}`);
        else if (t !== undefined && t !== 'dir') add('PKG_UNSAFE_PATH', `path passes through the non-directory ${prefix}`);
      }
      if (this.seen.has(rel) || (rel === '' && e.type !== 'dir')) {
        add('PKG_MEMBER_DUPLICATE', rel === '' ? 'the archive root is not a directory' : 'path appears twice in the data');
      }
    }
    if (e.type === 'hardlink') {
      const target = normalizeMemberPath(e.linkpath ?? '');
      if (typeof target !== 'string') add('PKG_UNSAFE_LINK', `hard link target ${e.linkpath}: ${target.message}`);
      else {
        file.linkTarget = target;
        if (this.seen.get(target) !== 'file') add('PKG_UNSAFE_LINK', `hard link target ${target} is not an earlier regular file of the package`);
      }
    }
    if ((e.type === 'char' || e.type === 'block') && !this.opts.allowDevices) add('PKG_DEVICE', `${e.type === 'char' ? 'character' : 'block'} device node`);
    if (e.type === 'file' && (e.mode & 0o6000) !== 0 && !this.opts.allowSetid) add('PKG_SETID', `setuid/setgid file (mode ${e.mode.toString(8)})`);
    if (e.size > this.opts.maxMemberSize) add('PKG_TOO_LARGE', `${e.size} bytes, above the member cap of ${this.opts.maxMemberSize}`);
    if (problems.length === 0 || problems.every((p) => p.code === 'PKG_DEVICE' || p.code === 'PKG_SETID')) {
      if (typeof norm === 'string' && !this.seen.has(rel)) this.seen.set(rel, e.type === 'hardlink' ? 'file' : e.type);
    }
    return { file, problems };
  }
}
