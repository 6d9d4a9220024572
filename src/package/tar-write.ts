/**
 * A reproducible tar writer in GNU format, byte for byte what
 * `tar --format=gnu --numeric-owner --owner=0 --group=0 --mtime=@N --sort=name` writes
 * (OpenWrt's ipkg-build uses GNU tar in that form), streaming each member's body.
 *
 * Why not node-tar's packer: it takes uid, gid and user name from the builder's files
 * unless `portable` is set, and `portable` rewrites modes (it forces owner rw and drops
 * group/other write) and drops directory mtimes; it also stores atime/ctime in the
 * header's prefix area when not portable. A package's modes are its content, and the
 * bytes must not depend on who builds it, so the headers are written here.
 */
import { createHash } from 'node:crypto';
import type { Readable, Writable } from 'node:stream';

/** One entry of a tar archive to write. */
export interface TarEntry {
  /** The path as stored, e.g. `./usr/bin/x` (directories end with `/`). */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink';
  /** Permission bits with setuid/setgid/sticky. */
  mode: number;
  /** Body length in bytes (files only; 0 otherwise). */
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** Symlink target, or the path of the entry a hard link repeats. */
  linkTarget?: string;
  /** The body: bytes, or a stream opened when the entry is written. */
  body?: Buffer | (() => Readable);
  /** Compute the sha256 of the body while writing (returned by writeTar). */
  sha256?: boolean;
}

const BLOCK = 512;
/** GNU tar's default record: 20 blocks. The archive is padded to a whole record. */
const RECORD = 20 * BLOCK;
const TYPE_FLAG = { file: '0', hardlink: '1', symlink: '2', dir: '5' } as const;

function octal(value: number, width: number): string {
  // width - 1 digits, then NUL; larger values would need GNU's base-256 form
  const s = value.toString(8);
  if (s.length > width - 1) throw new Error(`value ${value} does not fit a ${width}-byte tar field`);
  return s.padStart(width - 1, '0') + '\0';
}

/** One 512-byte header; `name` and `link` are cut to their first 100 bytes, as GNU tar does. */
function header(name: Buffer, type: string, mode: number, size: number, mtime: number, link: Buffer): Buffer {
  const h = Buffer.alloc(BLOCK);
  name.copy(h, 0, 0, 100);
  h.write(octal(mode, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(mtime, 12), 136, 'latin1');
  h.write(type, 156, 'latin1');
  link.copy(h, 157, 0, 100);
  h.write('ustar  \0', 257, 'latin1');
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return h;
}

/** GNU's `././@LongLink` entry carrying a name (type L) or link target (type K) over 100 bytes. */
function longLink(kind: 'L' | 'K', value: string): Buffer[] {
  const data = Buffer.from(value + '\0', 'utf8');
  return [header(Buffer.from('././@LongLink'), kind, 0o644, data.length, 0, Buffer.alloc(0)), padded(data)];
}

function padded(data: Buffer): Buffer {
  const rest = data.length % BLOCK;
  return rest === 0 ? data : Buffer.concat([data, Buffer.alloc(BLOCK - rest)]);
}

/** The header blocks of one entry (long name and link entries first when needed). */
export function tarHeader(e: TarEntry): Buffer {
  const parts: Buffer[] = [];
  const name = Buffer.from(e.path, 'utf8');
  const link = Buffer.from(e.linkTarget ?? '', 'utf8');
  if (link.length > 100) parts.push(...longLink('K', e.linkTarget!));
  if (name.length > 100) parts.push(...longLink('L', e.path));
  const size = e.type === 'file' ? e.size : 0;
  parts.push(header(name, TYPE_FLAG[e.type], e.mode & 0o7777, size, e.mtime, link));
  return Buffer.concat(parts);
}

/** Writes `chunk`, waiting for the stream to drain when it asks. */
export async function writeChunk(out: Writable, chunk: Buffer): Promise<void> {
  if (out.write(chunk)) return;
  await new Promise<void>((resolve, reject) => {
    const done = (err?: Error) => { out.off('drain', done); out.off('error', done); if (err) reject(err); else resolve(); };
    out.on('drain', done);
    out.on('error', done);
  });
}

/**
 * Streams a body of exactly `size` bytes into `out`, hashing it when asked. A body
 * shorter or longer than announced throws (the header already went out with the size).
 */
export async function copyBody(out: Writable, body: TarEntry['body'], size: number, what: string, hash?: ReturnType<typeof createHash>): Promise<void> {
  let n = 0;
  const chunks: AsyncIterable<Buffer> | Buffer[] = body === undefined ? [] : Buffer.isBuffer(body) ? [body] : body();
  for await (const chunk of chunks) {
    n += chunk.length;
    if (n > size) throw new Error(`${what} grew beyond ${size} bytes while being written`);
    hash?.update(chunk);
    await writeChunk(out, chunk);
  }
  if (n !== size) throw new Error(`${what} has ${n} bytes, ${size} were announced`);
}

/**
 * Writes a tar archive of `entries` (in the order given) to `out`, and ends it with
 * two zero blocks padded to a 10 KiB record as GNU tar does; does not end `out`.
 * Returns the sha256 (hex) of each entry that asked for it, by path.
 */
export async function writeTar(out: Writable, entries: Iterable<TarEntry> | AsyncIterable<TarEntry>): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  let written = 0;
  for await (const e of entries) {
    const h = tarHeader(e);
    await writeChunk(out, h);
    written += h.length;
    if (e.type === 'file') {
      const hash = e.sha256 ? createHash('sha256') : undefined;
      await copyBody(out, e.body, e.size, e.path, hash);
      const pad = (BLOCK - (e.size % BLOCK)) % BLOCK;
      if (pad) await writeChunk(out, Buffer.alloc(pad));
      written += e.size + pad;
      if (hash) sums.set(e.path, hash.digest('hex'));
    }
  }
  const end = 2 * BLOCK;
  await writeChunk(out, Buffer.alloc(end + ((RECORD - ((written + end) % RECORD)) % RECORD)));
  return sums;
}
