/**
 * Where an install or update gets its package file from. One function,
 * {@link resolveSource}, turns what the user gave (a path, a `file://` URL, later an
 * `http(s)://` URL, downloaded by download.ts) into a local file; the operations use nothing
 * else, so the downloader replaces this function alone.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { isEncrypted } from '../package/encrypted.js';
import type { TrustedKey } from '../package/keys.js';
import { readHead } from '../package/read.js';
import type { PackageInfo } from '../package/types.js';
import { verifyPackage } from '../package/verify.js';
import { fetchPackage } from './download.js';
import { ensureDir, removeDirIfEmpty } from './durable.js';
import { stateLayout } from './layout.js';

/** A package file ready to be read. */
export interface ResolvedSource {
  /** The local file. */
  file: string;
  /** The source as given (recorded in the DU's record). */
  source: string;
  /** Removes what resolving made (a downloaded file); nothing for a local file. */
  cleanup(): Promise<void>;
}

/** Options of {@link resolveSource}. */
export interface ResolveSourceOptions {
  /** The configuration: `[download]` limits, and the state directory whose `download/` holds downloads. */
  config: PkgConfig;
  /** Basic auth for http(s) (never logged, never in an error). */
  username?: string;
  password?: string;
  /** Download progress, for events. */
  onProgress?: (done: number, total?: number) => void;
}

/**
 * The local file of `source`: a path (relative to the working directory) or a `file://`
 * URL is used in place; an `http(s)://` URL is downloaded (download.ts: caps, timeout,
 * resume) into `STATE/download/`, on the state directory's filesystem, and removed again
 * by `cleanup()`.
 */
export async function resolveSource(source: string, opts: ResolveSourceOptions): Promise<ResolvedSource> {
  const { config } = opts;
  const scratchDir = path.join(stateLayout(config.paths.state).dir, 'download');
  const remote = /^https?:/i.test(source);
  if (remote) ensureDir(scratchDir);
  let fetched;
  try {
    fetched = await fetchPackage(source, {
      scratchDir, username: opts.username, password: opts.password, onProgress: opts.onProgress,
      maxSize: config.download.maxSize, timeoutMs: config.download.timeoutMs, retries: config.download.retries,
    });
  } catch (e) {
    if (remote) removeDirIfEmpty(scratchDir);
    throw e;
  }
  return {
    file: fetched.path,
    source,
    cleanup: async () => {
      await fetched.cleanup();
      if (fetched.downloaded) removeDirIfEmpty(scratchDir);
    },
  };
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

/** A package file verified for an install or update. */
export interface VerifiedSource {
  info: PackageInfo;
  /** The secret it was decrypted with, if it was encrypted. */
  secret?: string;
  /** SHA-256 of its bytes as given: its byte identity. */
  sha256: string;
  size: number;
}

/**
 * Verifies `file` under the configuration's trust policy (decrypting it with `given`
 * or the device key) and measures it: what install and update both need before the lock.
 */
export async function verifySource(file: string, config: PkgConfig, keys: TrustedKey[], given?: string): Promise<VerifiedSource> {
  const secret = await packageSecret(file, config, given);
  const info = await verifyPackage(file, { keys, requireSignature: config.trust.requireSignature, secret, maxUnpackedSize: config.limits.maxUnpackedSize });
  return { info, secret, sha256: await fileSha256(file), size: statSync(file).size };
}
