/**
 * Writes `ar` archives byte for byte as binutils' `ar -crD` (deterministic mode), which
 * opkg-build uses for the Debian form of an ipk: `!<arch>\n`, then per member a 60-byte
 * header (GNU name `NAME/`, mtime 0, uid/gid 0, mode 644, size) and the body padded with
 * `\n` to even length. Bodies are streamed. The `/` after the name is what tells an ipk in
 * ar form from a .deb (dpkg-deb writes none; see the reader's rule in read.ts).
 */
import { createHash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { AR_MAGIC } from './ar.js';
import { copyBody, writeChunk, type TarEntry } from './tar-write.js';

/** One member to write. */
export interface ArEntry {
  /** At most 15 bytes, no `/`. */
  name: string;
  size: number;
  body: NonNullable<TarEntry['body']>;
  /** Compute the sha256 of the body while writing (returned by writeAr). */
  sha256?: boolean;
}

/** The 60-byte header of a member. */
export function arHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 15 || name.includes('/') || name === '') throw new Error(`bad ar member name ${JSON.stringify(name)}`);
  const field = (v: string, w: number) => v.padEnd(w, ' ');
  const h = field(`${name}/`, 16) + field('0', 12) + field('0', 6) + field('0', 6) + field('644', 8) + field(String(size), 10) + '`\n';
  return Buffer.from(h, 'latin1');
}

/**
 * Writes an ar archive of `members` (in the order given) to `out`; does not end `out`.
 * Returns the sha256 (hex) of each member that asked for it, by name.
 */
export async function writeAr(out: Writable, members: Iterable<ArEntry> | AsyncIterable<ArEntry>): Promise<Map<string, string>> {
  const sums = new Map<string, string>();
  await writeChunk(out, Buffer.from(AR_MAGIC, 'latin1'));
  for await (const m of members) {
    await writeChunk(out, arHeader(m.name, m.size));
    const hash = m.sha256 ? createHash('sha256') : undefined;
    await copyBody(out, m.body, m.size, m.name, hash);
    if (m.size % 2) await writeChunk(out, Buffer.from('\n'));
    if (hash) sums.set(m.name, hash.digest('hex'));
  }
  return sums;
}
