/**
 * Packages encrypted the way `openssl enc -aes-256-cbc -pbkdf2 -salt` does
 * (Perenio's .bin): `Salted__`, an 8-byte salt, then AES-256-CBC with key and
 * IV from PBKDF2-HMAC-SHA256 (10000 iterations). Decrypted, streaming, into a
 * scratch file in a private temporary directory that is always removed.
 */
import { createDecipheriv, pbkdf2 } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { OverlayBootError } from '../errors.js';
import { readHead, ENCRYPTED_MAGIC } from './read.js';

const PBKDF2_ITERATIONS = 10000;

/** True when the file starts as `openssl enc -salt` output does. */
export function isEncrypted(head: Buffer): boolean {
  return head.length >= 16 && head.toString('latin1', 0, 8) === ENCRYPTED_MAGIC;
}

async function decryptTo(file: string, secret: string, out: string): Promise<void> {
  const head = await readHead(file, 16);
  const salt = head.subarray(8, 16);
  const km = await promisify(pbkdf2)(secret, salt, PBKDF2_ITERATIONS, 48, 'sha256');
  const decipher = createDecipheriv('aes-256-cbc', km.subarray(0, 32), km.subarray(32, 48));
  try {
    await pipeline(createReadStream(file, { start: 16 }), decipher, createWriteStream(out, { mode: 0o600 }));
  } catch (cause) {
    if (cause instanceof Error && 'code' in cause && String(cause.code).startsWith('ERR_OSSL')) {
      throw new OverlayBootError('PKG_DECRYPT', 'cannot decrypt: wrong secret or damaged file', { file, cause });
    }
    throw new OverlayBootError('PKG_UNREADABLE', 'cannot decrypt into the scratch file', { file, cause });
  }
}

/**
 * Calls `fn` with a path holding the package's plain bytes: the file itself,
 * or (for an encrypted package) a decrypted scratch copy removed afterwards.
 * PKG_FORMAT from the decrypted bytes becomes PKG_DECRYPT (a wrong secret
 * whose padding happened to check out).
 */
export async function withPlainFile<T>(file: string, secret: string | undefined, fn: (plain: string, encrypted: boolean) => Promise<T>): Promise<T> {
  const head = await readHead(file, 16);
  if (!isEncrypted(head)) return fn(file, false);
  if (secret === undefined) throw new OverlayBootError('PKG_DECRYPT', 'the package is encrypted and no secret was given', { file });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ovb-pkg-'));
  try {
    const plain = path.join(dir, 'package');
    await decryptTo(file, secret, plain);
    try {
      return await fn(plain, true);
    } catch (e) {
      if (e instanceof OverlayBootError && e.code === 'PKG_FORMAT') {
        throw new OverlayBootError('PKG_DECRYPT', 'the decrypted bytes are not a package: wrong secret?', { file, cause: e });
      }
      throw e;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
