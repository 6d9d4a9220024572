/**
 * verifyPackage: intact, signed by a trusted key, and every data entry safe,
 * or the coded error of the first check that failed.
 */
import type { OverlayBootError } from '../errors.js';
import type { TrustedKey } from './keys.js';
import { problemError } from './guard.js';
import type { RawPackage } from './read.js';
import { readAndTrust, toInfo } from './open.js';
import type { TrustResult } from './trust.js';
import type { PackageInfo, PackageReadOptions } from './types.js';

/** Options of verifyPackage: the trusted keys are required. */
export interface VerifyOptions extends PackageReadOptions {
  keys: TrustedKey[];
  /** An unsigned package fails with PKG_UNSIGNED (default true). */
  requireSignature?: boolean;
}

/** The first failed check in the order intact → signed → safe, or undefined. */
export function firstFailure(raw: RawPackage, trust: TrustResult, file: string, requireSignature: boolean): OverlayBootError | undefined {
  if (trust.integrity) return trust.integrity;
  // Not required: an unsigned package or an unknown signer passes, a signature that does not verify does not.
  if (trust.signatureError && (requireSignature || trust.signatureError.code === 'PKG_BAD_SIGNATURE')) return trust.signatureError;
  const p = raw.problems[0];
  return p ? problemError(p, file) : undefined;
}

/**
 * Checks that `file` is intact (checksums match the members as stored),
 * signed by one of `keys` (embedded signature.sig or detached FILE.sig) and
 * that every data entry is safe. Throws PKG_CHECKSUMS_MEMBERS, PKG_CHECKSUM,
 * PKG_UNSIGNED, PKG_BAD_SIGNATURE, PKG_UNKNOWN_KEY or the unsafe entry's code;
 * resolves to the PackageInfo when all pass.
 */
export async function verifyPackage(file: string, opts: VerifyOptions): Promise<PackageInfo> {
  const { raw, trust, encrypted } = await readAndTrust(file, opts);
  const failure = firstFailure(raw, trust, file, opts.requireSignature ?? true);
  if (failure) throw failure;
  return toInfo(file, raw, trust, encrypted);
}
