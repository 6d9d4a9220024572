/**
 * Where an install or update gets its package file from. One function,
 * {@link resolveSource}, turns what the user gave (a path, a `file://` URL, later an
 * `http(s)://` URL through download.ts) into a local file; the operations use nothing
 * else, so the downloader replaces this function alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { isEncrypted } from '../package/encrypted.js';
import { readHead } from '../package/read.js';

/** A package file ready to be read. */
export interface ResolvedSource {
  /** The local file. */
  file: string;
  /** The source as given (recorded in the DU's record). */
  source: string;
  /** Removes what resolving made (a downloaded file); nothing for a local file. */
  cleanup(): Promise<void>;
}

/**
 * The local file of `source`: a path (relative to the working directory) or a `file://`
 * URL. Other URLs are PKG_UNSUPPORTED_SOURCE (fault 9013) until the downloader lands.
 */
export async function resolveSource(source: string): Promise<ResolvedSource> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(source)?.[1]?.toLowerCase();
  let file: string;
  if (scheme === undefined) file = path.resolve(source);
  else if (scheme === 'file') {
    try {
      file = fileURLToPath(source);
    } catch (e) {
      throw new OverlayBootError('PKG_UNSUPPORTED_SOURCE', `not a local file URL: ${(e as Error).message}`, { found: source, cause: e });
    }
  } else {
    throw new OverlayBootError('PKG_UNSUPPORTED_SOURCE', `${scheme}: URLs are not supported here; give a file or a file:// URL`, {
      found: source, expected: 'a path or a file:// URL',
    });
  }
  return { file, source, cleanup: async () => {} };
}

/** SHA-256 (hex) of a file's bytes: a package's byte identity (duplicate installs). */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  } catch (e) {
    throw new OverlayBootError('PKG_UNREADABLE', `cannot read the package: ${(e as Error).message}`, { file, cause: e });
  }
  return hash.digest('hex');
}

/**
 * The secret an encrypted package is decrypted with: `given` (--key), else the device key
 * file of `[trust] device_key`, read only when the file is encrypted. PKG_DECRYPT when
 * that file cannot be read.
 */
export async function packageSecret(file: string, config: PkgConfig, given?: string): Promise<string | undefined> {
  if (given !== undefined) return given;
  const deviceKey = config.trust.deviceKey;
  if (deviceKey === undefined || !isEncrypted(await readHead(file, 16))) return undefined;
  try {
    return readFileSync(deviceKey, 'utf8').trim();
  } catch (e) {
    throw new OverlayBootError('PKG_DECRYPT', `cannot read the device key: ${(e as Error).message}`, { file: deviceKey, variable: 'trust.device_key', cause: e });
  }
}
