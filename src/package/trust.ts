/**
 * The trust checks over what one pass read: the embedded `checksums` (exactly
 * control.tar.gz and data.tar.gz, each matching the member as stored) and
 * `signature.sig` over the bytes of `checksums`; or a detached `FILE.sig` over
 * the whole file. Signature checking itself is keys.ts (node:crypto only).
 */
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { OverlayBootError, type ErrorCode } from '../errors.js';
import { verifyDetachedFile, verifySignature, type TrustedKey, type VerifyResult } from './keys.js';
import type { RawPackage } from './read.js';
import type { SignatureStatus } from './types.js';

const SIGNED_MEMBERS = ['control.tar.gz', 'data.tar.gz'];
const MAX_SIG_FILE = 64 * 1024;

/** The outcome: the public status, and the coded errors behind it. */
export interface TrustResult {
  status: SignatureStatus;
  /** A checksum failure: the package is not intact. */
  integrity?: OverlayBootError;
  /** Why the signature is not verified (unsigned, bad, unknown key). */
  signatureError?: OverlayBootError;
}

/** Parses `checksums` and compares each line with the members as stored. */
export function checkChecksums(raw: RawPackage, file: string): OverlayBootError | undefined {
  const sums = new Map<string, string>();
  const lines = (raw.checksums ?? Buffer.alloc(0)).toString('utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    if (line.trim() === '') continue;
    const m = /^([0-9a-fA-F]{64}) [ *]?(.+)$/.exec(line.trimEnd());
    if (!m) return new OverlayBootError('PKG_CHECKSUMS_MEMBERS', `checksums line ${i + 1} is not "<sha256>  <member>"`, { file, member: 'checksums', line: i + 1 });
    const name = m[2]!.replace(/^(\.\/)+/, '');
    if (!SIGNED_MEMBERS.includes(name)) return new OverlayBootError('PKG_CHECKSUMS_MEMBERS', `checksums lists ${name}, which it must not`, { file, member: name, line: i + 1 });
    if (sums.has(name)) return new OverlayBootError('PKG_CHECKSUMS_MEMBERS', `checksums lists ${name} twice`, { file, member: name, line: i + 1 });
    sums.set(name, m[1]!.toLowerCase());
  }
  for (const name of SIGNED_MEMBERS) {
    const want = sums.get(name);
    if (want === undefined) return new OverlayBootError('PKG_CHECKSUMS_MEMBERS', `checksums does not list ${name}`, { file, member: name });
    const got = raw.members.find((m) => m.name === name);
    if (got === undefined) return new OverlayBootError('PKG_MEMBER_MISSING', `checksums lists ${name} but the package has no such member`, { file, member: name });
    if (got.sha256 !== want) return new OverlayBootError('PKG_CHECKSUM', `${name} does not match its checksum`, { file, member: name, expected: want, found: got.sha256 });
  }
  return undefined;
}

const REASON_CODE: Record<Exclude<VerifyResult, { ok: true }>['reason'], ErrorCode> = {
  'unknown-key': 'PKG_UNKNOWN_KEY',
  'bad-signature': 'PKG_BAD_SIGNATURE',
  malformed: 'PKG_BAD_SIGNATURE',
};

function fromResult(r: VerifyResult, kind: 'embedded' | 'detached', file: string, member: string): TrustResult {
  if (r.ok) return { status: { signed: true, kind, verified: true, keyId: r.key.id } };
  const code = REASON_CODE[r.reason];
  const err = new OverlayBootError(code, `${member}: ${r.detail}`, { file, member });
  return { status: { signed: true, kind, verified: false, reason: `${code}: ${r.detail}` }, signatureError: err };
}

async function readSig(file: string, path: string): Promise<Buffer> {
  const st = await stat(path).catch((cause: unknown) => {
    throw new OverlayBootError('PKG_UNREADABLE', 'cannot read the detached signature', { file: path, cause });
  });
  if (st.size > MAX_SIG_FILE) throw new OverlayBootError('PKG_BAD_SIGNATURE', `the detached signature is larger than ${MAX_SIG_FILE} bytes`, { file, member: path });
  return readFile(path);
}

/**
 * Evaluates trust for a package read from `file`. Without `keys` a signature
 * is reported as present but not verified. `detachedSignature` defaults to
 * `FILE.sig` when that exists.
 */
export async function evaluateTrust(raw: RawPackage, file: string, keys: TrustedKey[] | undefined, detachedSignature?: string): Promise<TrustResult> {
  const integrity = raw.checksums !== undefined ? checkChecksums(raw, file) : undefined;
  const unsigned = (reason: string): TrustResult => ({
    status: { signed: false, verified: false, reason: `PKG_UNSIGNED: ${reason}` },
    integrity,
    signatureError: new OverlayBootError('PKG_UNSIGNED', reason, { file }),
  });
  let embedded: TrustResult | undefined;
  if (raw.signature !== undefined || raw.checksums !== undefined) {
    if (raw.checksums === undefined) {
      embedded = { ...unsigned('signature.sig without checksums'), integrity: new OverlayBootError('PKG_MEMBER_MISSING', 'signature.sig without checksums', { file, member: 'checksums' }) };
    } else if (raw.signature === undefined) {
      embedded = unsigned('checksums without signature.sig');
    } else if (keys === undefined) {
      embedded = { status: { signed: true, kind: 'embedded', verified: false, reason: 'no trusted keys given' } };
    } else {
      embedded = fromResult(verifySignature(raw.checksums, raw.signature, keys), 'embedded', file, 'signature.sig');
    }
    embedded.integrity = integrity;
    if (embedded.status.verified) return embedded;
  }
  const sigPath = detachedSignature ?? (existsSync(`${file}.sig`) ? `${file}.sig` : undefined);
  if (sigPath !== undefined) {
    const sig = await readSig(file, sigPath);
    const detached: TrustResult = keys === undefined
      ? { status: { signed: true, kind: 'detached', verified: false, reason: 'no trusted keys given' } }
      : fromResult(await verifyDetachedFile(file, sig, keys), 'detached', file, sigPath);
    if (detached.status.verified || embedded === undefined) return { ...detached, integrity };
  }
  return embedded ?? unsigned('the package has no signature');
}
