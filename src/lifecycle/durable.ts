/**
 * Durable writes for the state directory: what these functions return from has reached
 * the disk, so a power loss right after leaves the old content or the new, never a torn
 * or empty file. Synchronous on purpose: the records are small, and a crash between an
 * `await` and its fsync is exactly what must not matter.
 */
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';

function ioError(file: string, what: string, e: unknown): OverlayBootError {
  return new OverlayBootError('PKG_STATE_IO', `cannot ${what}: ${(e as Error).message}`, { file, cause: e });
}

/** fsync a directory, so that a rename or a new entry in it survives a power loss. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    fsyncSync(fd);
  } catch (e) {
    throw ioError(dir, 'sync the directory', e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** Creates `dir` (mode 0700, parents too) when absent, and syncs its parent when it made it. */
export function ensureDir(dir: string): void {
  try {
    const made = mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (made !== undefined) fsyncDir(path.dirname(dir));
  } catch (e) {
    if (e instanceof OverlayBootError) throw e;
    throw ioError(dir, 'create the directory', e);
  }
}

function writeAll(fd: number, data: Buffer): void {
  let off = 0;
  while (off < data.length) off += writeSync(fd, data, off, data.length - off);
}

/**
 * Replaces `file` with `data` atomically: a temporary file in the same directory
 * (`.NAME.PID.tmp`), written and fsynced, renamed over `file`, then the directory
 * fsynced. Readers see the old content or the new; a crash leaves at most the
 * temporary file, which {@link isTempName} recognises for clean-up.
 */
export function writeFileAtomic(file: string, data: string | Buffer, mode = 0o600): void {
  const dir = path.dirname(file);
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fd: number | undefined;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, mode);
    writeAll(fd, bytes);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try { unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    throw ioError(file, 'write', e);
  }
  fsyncDir(dir);
}

/** Whether a directory entry is a temporary file left by {@link writeFileAtomic}. */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/**
 * Removes the temporary files a crash left in `dir` (see {@link isTempName}). Call it only
 * holding the lock: then no writer is using one. Returns the names removed.
 */
export function sweepTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError(dir, 'list', e);
  }
  const removed = names.filter(isTempName);
  for (const name of removed) {
    try {
      unlinkSync(path.join(dir, name));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(path.join(dir, name), 'remove', e);
    }
  }
  return removed;
}

/**
 * Appends `line` (a newline is added) to `file` with O_APPEND, creating it (and syncing
 * its directory) when absent, and fsyncs it. One write(2) per line, so lines written
 * by concurrent processes never interleave within a line; a last line torn by a crash
 * (no newline) is ended first, so it costs only itself.
 */
export function appendLineDurable(file: string, line: string, mode = 0o600): void {
  let fd: number | undefined;
  let created = false;
  try {
    try {
      fd = openSync(file, constants.O_RDWR | constants.O_APPEND | constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      fd = openSync(file, constants.O_RDWR | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, mode);
      created = true;
    }
    // A line torn by a crash has no newline: start on a line of our own, or this
    // entry would be glued to the torn one and lost with it.
    const size = fstatSync(fd).size;
    const last = Buffer.alloc(1);
    const torn = size > 0 && readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 0x0a;
    const bytes = Buffer.from(`${torn ? '\n' : ''}${line}\n`, 'utf8');
    if (writeSync(fd, bytes) !== bytes.length) throw new Error('short write');
    fsyncSync(fd);
  } catch (e) {
    throw ioError(file, 'append to', e);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  if (created) fsyncDir(path.dirname(file));
}

/** Removes `dir` when it is empty (syncing its parent); leaves it otherwise. */
export function removeDirIfEmpty(dir: string): void {
  try {
    rmdirSync(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOENT') return;
    throw ioError(dir, 'remove', e);
  }
  fsyncDir(path.dirname(dir));
}
