/**
 * Writing a package's outer container (OpenWrt's gzip'd tar or Debian's ar) to a file,
 * streaming, with a fixed gzip header, and removing the file when anything fails.
 * Shared by build (fresh members) and sign (members copied from the old package).
 */
import { createWriteStream, rmSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { writeAr, type ArEntry } from './ar-write.js';
import type { PackageContainer } from './types.js';
import { writeTar } from './tar-write.js';

/** zlib's best level: the gzip header then has no name, mtime 0, XFL 2, OS 3 (Unix). */
export const GZIP_LEVEL = 9;

/**
 * Creates `file` (it must not exist), lets `produce` write into it (through gzip when
 * asked), and waits until the bytes are in the file. On any failure the file is removed
 * and the error rethrown.
 */
export async function writeStreamed<T>(file: string, gzip: boolean, produce: (out: Writable) => Promise<T>): Promise<T> {
  const fileOut = createWriteStream(file, { flags: 'wx', mode: 0o644 });
  const gz = gzip ? createGzip({ level: GZIP_LEVEL }) : undefined;
  const head: Writable = gz ?? fileOut;
  const done = gz ? pipeline(gz, fileOut) : finished(fileOut);
  // a failure is seen by produce (its writes fail) or by the await below; mark it handled
  done.catch(() => undefined);
  try {
    const result = await produce(head);
    head.end();
    await done;
    return result;
  } catch (e) {
    head.destroy();
    fileOut.destroy();
    await done.catch(() => undefined);
    rmSync(file, { force: true });
    throw e;
  }
}

/** A member of the outer container: name without `./`; `mtime` (tar only) overrides the archive's. */
export type OuterMember = ArEntry & { mtime?: number };

/**
 * Writes the outer container of an ipk with `members` in order: for `tar`, a gzip'd
 * GNU tar of `./NAME` files (mode 0644, owner 0, mtime `mtime`); for `ar`, dpkg's ar.
 * Returns the sha256 of the members that asked for it, by name without `./`.
 */
export async function writePackageContainer(file: string, container: PackageContainer, members: Iterable<OuterMember> | AsyncIterable<OuterMember>, mtime: number): Promise<Map<string, string>> {
  if (container === 'ar') return writeStreamed(file, false, (out) => writeAr(out, members));
  const sums = await writeStreamed(file, true, (out) => writeTar(out, asTarEntries(members, mtime)));
  return new Map([...sums].map(([k, v]) => [k.slice(2), v]));
}

async function* asTarEntries(members: Iterable<OuterMember> | AsyncIterable<OuterMember>, mtime: number) {
  for await (const m of members) {
    yield { path: `./${m.name}`, type: 'file' as const, mode: 0o644, size: m.size, mtime: m.mtime ?? mtime, body: m.body, sha256: m.sha256 };
  }
}
