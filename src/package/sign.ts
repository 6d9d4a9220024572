/**
 * Signing packages. An ipk (either container) gets `checksums` (sha256 of
 * `control.tar.gz` and `data.tar.gz` as stored) and `signature.sig` (a signature over
 * the bytes of `checksums`) as members after `data.tar.gz`; anything else (.deb, OCI
 * bundle, encrypted package) gets a detached `FILE.sig` over the whole file.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { chmodSync, closeSync, createReadStream, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Parser, type ReadEntry } from 'tar';
import { isOverlayBootError, OverlayBootError } from '../errors.js';
import { arMemberStream, isAr, readArMembers } from './ar.js';
import { checkSigningKey, signData, signFile, type WholeFileOptions } from './keys.js';
import { writePackageContainer, writeStreamed, type OuterMember } from './outer-write.js';
import type { PackageContainer } from './types.js';

/** What signPackage did. */
export interface SignResult {
  /** `embedded`: checksums + signature.sig inside the ipk; `detached`: FILE.sig beside it. */
  kind: 'embedded' | 'detached';
  /** The file written: the package itself, or FILE.sig. */
  written: string;
  /** The checksums text (embedded only). */
  checksums?: string;
}

const IPK_MEMBERS = ['debian-binary', 'control.tar.gz', 'data.tar.gz'];
const SIGNATURE_MEMBERS = ['checksums', 'signature.sig'];
const MAX_KEY_FILE = 64 * 1024;

/** A member of the package being re-signed. */
interface SourceMember {
  name: string;
  size: number;
  mtime?: number;
  /** A regular file (tar entries may be anything). */
  isFile: boolean;
  stream: () => Readable;
  /** Lets the reader go on past a member not copied. */
  skip: () => void;
}

/** Thrown inside the tar pass when the first member shows the file is not an ipk. */
class NotIpk extends Error {}

function readKeyFile(keyFile: string): Buffer {
  try {
    if (statSync(keyFile).size > MAX_KEY_FILE) throw new Error(`larger than ${MAX_KEY_FILE} bytes`);
    return readFileSync(keyFile);
  } catch (e) {
    throw new OverlayBootError('PKG_BAD_KEY', `cannot read the key: ${(e as Error).message}`, { file: keyFile, cause: e });
  }
}

function readHead(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    throw new OverlayBootError('PKG_UNREADABLE', `cannot open the package file: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const head = Buffer.alloc(8);
    return head.subarray(0, readSync(fd, head, 0, 8, 0));
  } finally {
    closeSync(fd);
  }
}

async function* hashing(stream: Readable, hash: Hash): AsyncGenerator<Buffer> {
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    yield chunk as Buffer;
  }
}

/**
 * The members of the new package: the old ones (control and data hashed on the way),
 * old checksums/signature.sig dropped, then the new checksums and signature.sig.
 */
async function* signedMembers(file: string, source: AsyncIterable<SourceMember>, key: Buffer, keySource: string, out: { checksums?: string }): AsyncGenerator<OuterMember> {
  const sums: [string, Hash][] = [];
  const seen = new Set<string>();
  let mtime: number | undefined;
  for await (const m of source) {
    const name = m.name.replace(/^\.\//, '');
    if (seen.size === 0 && name !== 'debian-binary') throw new NotIpk();
    if (seen.has(name)) throw new OverlayBootError('PKG_MEMBER_DUPLICATE', `member ${name} appears twice`, { file, member: name });
    if (!m.isFile) throw new OverlayBootError('PKG_FORMAT', `member ${m.name} is not a regular file`, { file, member: m.name });
    seen.add(name);
    mtime = m.mtime;
    if (SIGNATURE_MEMBERS.includes(name)) { m.skip(); continue; }
    if (!IPK_MEMBERS.includes(name)) throw new OverlayBootError('PKG_FORMAT', `unexpected member ${name} in an ipk`, { file, member: name });
    if (name === 'debian-binary') { yield { name, size: m.size, mtime, body: m.stream }; continue; }
    const hash = createHash('sha256');
    sums.push([name, hash]);
    yield { name, size: m.size, mtime, body: () => Readable.from(hashing(m.stream(), hash)) };
  }
  for (const name of IPK_MEMBERS) {
    if (!seen.has(name)) throw new OverlayBootError('PKG_MEMBER_MISSING', `member ${name} is missing`, { file, member: name });
  }
  // each body has been written (and so hashed) before the generator is asked for more
  const checksums = Buffer.from(sums.map(([name, h]) => `${h.digest('hex')}  ./${name}\n`).join(''));
  out.checksums = checksums.toString();
  const sig = signData(checksums, key, keySource);
  yield { name: 'checksums', size: checksums.length, mtime, body: checksums };
  yield { name: 'signature.sig', size: sig.length, mtime, body: sig };
}

async function* arSource(file: string): AsyncGenerator<SourceMember> {
  for await (const m of readArMembers(file)) {
    yield { name: m.name, size: m.size, isFile: true, stream: () => arMemberStream(file, m), skip: () => undefined };
  }
}

function corruptTar(file: string, cause: unknown): OverlayBootError {
  return new OverlayBootError('PKG_CORRUPT', `the outer tar cannot be read: ${(cause as Error).message}`, { file, cause });
}

/**
 * The members of a gzip'd tar, one at a time, read with node-tar. The parser hands out
 * the next entry only once the previous one is consumed, so memory stays bounded.
 */
async function* tarSource(file: string): AsyncGenerator<SourceMember> {
  const parser = new Parser({ strict: true });
  const queue: ReadEntry[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  let current: ReadEntry | undefined;
  const poke = () => { const w = wake; wake = undefined; w?.(); };
  const fail = (e: unknown) => {
    failure ??= e;
    // the entry being copied will get no more bytes: end its reader with the error
    current?.emit('error', corruptTar(file, failure));
    poke();
  };
  parser.on('entry', (e: ReadEntry) => { queue.push(e); poke(); });
  parser.on('end', () => { ended = true; poke(); });
  parser.on('error', fail);
  const input = createReadStream(file);
  input.on('error', fail);
  input.pipe(parser);
  try {
    for (;;) {
      if (failure) throw corruptTar(file, failure);
      const e = queue.shift();
      current = e;
      if (e) {
        let used = false;
        yield {
          name: e.path, size: e.size ?? 0, isFile: e.type === 'File' || e.type === 'OldFile', mtime: e.mtime ? Math.floor(e.mtime.getTime() / 1000) : 0,
          stream: () => { used = true; return e as unknown as Readable; }, skip: () => e.resume(),
        };
        if (!used) e.resume();
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => { wake = resolve; });
    }
  } finally {
    input.destroy();
  }
}

/**
 * The reader's rule (read.ts): an ar archive is an ipk when its members are exactly
 * debian-binary, control.tar.gz, data.tar.gz in that order, optionally followed by
 * checksums and signature.sig, and it is signed or its names carry GNU ar's `/`.
 */
async function isIpkAr(file: string): Promise<boolean> {
  const members = [];
  for await (const m of readArMembers(file)) members.push(m);
  const order = [...IPK_MEMBERS, ...SIGNATURE_MEMBERS];
  const shape = members.length >= 3 && members.every((m, i) => m.name === order[i]);
  return shape && (members.length > 3 || members.every((m) => m.gnuName));
}

/** A temporary name beside `file`, on the same filesystem so that rename replaces atomically. */
function besideTemp(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
}

async function rewriteSigned(file: string, container: PackageContainer, key: Buffer, keySource: string): Promise<SignResult> {
  const tmp = besideTemp(file);
  const out: { checksums?: string } = {};
  const source = container === 'ar' ? arSource(file) : tarSource(file);
  try {
    await writePackageContainer(tmp, container, signedMembers(file, source, key, keySource, out), 0);
    chmodSync(tmp, statSync(file).mode & 0o7777);
    renameSync(tmp, file);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  return { kind: 'embedded', written: file, checksums: out.checksums };
}

async function writeDetached(file: string, key: Buffer, keySource: string, opts: WholeFileOptions): Promise<SignResult> {
  const sigFile = `${file}.sig`;
  const sig = await signFile(file, key, keySource, opts);
  const tmp = besideTemp(sigFile);
  await writeStreamed(tmp, false, async (out) => { out.write(sig); });
  renameSync(tmp, sigFile);
  return { kind: 'detached', written: sigFile };
}

/**
 * Signs the package `file` with the private key in `keyFile` (PEM or signify secret
 * key; see signData). An ipk, OpenWrt (gzip'd tar) or Debian (ar) form, is rewritten
 * through a temporary file beside it and renamed over it, holding `checksums` and
 * `signature.sig` after `data.tar.gz` (old ones replaced); members are streamed, never
 * held whole. A `.deb` (an ar that is not an ipk by the reader's rule, see isIpkAr), an
 * OCI bundle or any other file gets a detached `FILE.sig` instead.
 * On failure nothing is left behind and the package is unchanged.
 */
export async function signPackage(file: string, keyFile: string, opts: WholeFileOptions = {}): Promise<SignResult> {
  const key = readKeyFile(keyFile);
  checkSigningKey(key, keyFile);
  const head = readHead(file);
  try {
    if (isAr(head)) {
      if (await isIpkAr(file)) return await rewriteSigned(file, 'ar', key, keyFile);
    } else if (head[0] === 0x1f && head[1] === 0x8b) {
      try {
        return await rewriteSigned(file, 'tar', key, keyFile);
      } catch (e) {
        if (!(e instanceof NotIpk)) throw e;
      }
    }
    return await writeDetached(file, key, keyFile, opts);
  } catch (e) {
    if (isOverlayBootError(e)) throw e;
    throw new OverlayBootError('PKG_UNREADABLE', `cannot sign the package: ${(e as Error).message}`, { file, cause: e });
  }
}
