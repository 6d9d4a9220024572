/**
 * Keys and signatures: PEM public keys (RSA, ECDSA P-256, Ed25519) and signify/usign
 * Ed25519 keys, verified and made with node:crypto only.
 *
 * Formats (signify(1), usign):
 * - public key: `untrusted comment: ...` line, then base64 of `Ed` + keynum (8) + key (32);
 * - secret key: base64 of `Ed` `BK` + kdf rounds (4, big-endian) + salt (16) +
 *   checksum (8, sha512 of the secret) + keynum (8) + secret (64: seed then public key);
 * - signature: base64 of `Ed` + keynum (8) + Ed25519 signature (64).
 */
import {
  createHash, createPrivateKey, createPublicKey, createSign, createVerify, sign as cryptoSign,
  verify as cryptoVerify, type KeyObject,
} from 'node:crypto';
import { closeSync, createReadStream, fstatSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';

/** A public key the caller trusts. */
export interface TrustedKey {
  /** signify: the keynum in hex; PEM: the first 16 hex digits of the SPKI DER's sha256. */
  id: string;
  kind: 'rsa' | 'ecdsa-p256' | 'ed25519' | 'signify';
  /** Where the key was read from (a file name), for messages. */
  source?: string;
  key: KeyObject;
  /** signify only: the 8-byte key number signatures name their key by. */
  keyNum?: Buffer;
}

/** The outcome of a signature check: which trusted key verified it, or why none did. */
export type VerifyResult =
  | { ok: true; key: TrustedKey }
  | { ok: false; reason: 'unknown-key' | 'bad-signature' | 'malformed'; detail: string };

/** Key files larger than this are not keys. */
const MAX_KEY_FILE = 64 * 1024;
/** RSA keys shorter than this are refused. */
const MIN_RSA_BITS = 2048;
/** Default cap on a message read whole for Ed25519 (see verifyDetachedFile). */
export const DEFAULT_MAX_WHOLE_MESSAGE = 256 * 1024 * 1024;

const COMMENT = 'untrusted comment:';
const SIGNIFY_ALG = Buffer.from('Ed');
const SIGNIFY_KDF = Buffer.from('BK');

function badKey(source: string | undefined, message: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_BAD_KEY', message, { file: source, cause });
}

/**
 * The base64 payload of a signify-style file (comment line, base64 line), or undefined
 * when the text is not in that shape. Base64 is checked strictly: Buffer.from is lenient.
 */
function signifyPayload(text: string): Buffer | undefined {
  const lines = text.split('\n');
  if (!lines[0]?.startsWith(COMMENT)) return undefined;
  const b64 = (lines[1] ?? '').trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64) || b64.length % 4 !== 0) return undefined;
  return Buffer.from(b64, 'base64');
}

function b64url(b: Buffer): string {
  return b.toString('base64url');
}

function ed25519Public(raw: Buffer): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(raw) }, format: 'jwk' });
}

function spkiId(key: KeyObject): string {
  return createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

function asText(text: Buffer | string): string {
  return typeof text === 'string' ? text : text.toString('latin1');
}

/**
 * Reads a public key: a PEM public key (SPKI `PUBLIC KEY`, or PKCS#1 `RSA PUBLIC KEY`)
 * of type RSA (at least 2048 bits), EC on P-256, or Ed25519; or a signify/usign public
 * key. A private key, another curve or anything else is PKG_BAD_KEY naming `source`.
 */
export function parsePublicKey(text: Buffer | string, source?: string): TrustedKey {
  const s = asText(text);
  const payload = signifyPayload(s);
  if (payload) {
    if (payload.length !== 42 || !payload.subarray(0, 2).equals(SIGNIFY_ALG)) {
      throw badKey(source, `not a signify public key (expected 42 bytes starting "Ed", found ${payload.length} bytes)`);
    }
    const keyNum = Buffer.from(payload.subarray(2, 10));
    return { id: keyNum.toString('hex'), kind: 'signify', source, key: ed25519Public(payload.subarray(10)), keyNum };
  }
  if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(s)) {
    throw badKey(source, 'a private key where a public key is expected (trust the public key only)');
  }
  if (!/-----BEGIN (RSA )?PUBLIC KEY-----/.test(s)) {
    throw badKey(source, 'not a PEM public key nor a signify/usign public key');
  }
  let key: KeyObject;
  try {
    key = createPublicKey(s);
  } catch (e) {
    throw badKey(source, `unreadable PEM public key: ${(e as Error).message}`, e);
  }
  return { id: spkiId(key), kind: pemKind(key, source), source, key };
}

function pemKind(key: KeyObject, source: string | undefined): 'rsa' | 'ecdsa-p256' | 'ed25519' {
  const d = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case 'rsa':
      if ((d.modulusLength ?? 0) < MIN_RSA_BITS) throw badKey(source, `RSA key of ${d.modulusLength} bits; at least ${MIN_RSA_BITS} are needed`);
      return 'rsa';
    case 'ec':
      if (d.namedCurve !== 'prime256v1') throw badKey(source, `EC key on curve ${d.namedCurve}; only P-256 (prime256v1) is supported`);
      return 'ecdsa-p256';
    case 'ed25519':
      return 'ed25519';
    default:
      throw badKey(source, `unsupported key type ${key.asymmetricKeyType}; use RSA, EC P-256 or Ed25519`);
  }
}

/**
 * Reads every regular file of `dir` (symlinks followed) as a public key. Anything else
 * (directories, sockets, unreadable or oversized files, files that are no key) is
 * skipped with a warning naming it; a missing directory gives no keys and a warning.
 * Files are read in name order so the result does not depend on the directory's order.
 */
export function loadTrustedKeys(dir: string): { keys: TrustedKey[]; warnings: string[] } {
  const keys: TrustedKey[] = [];
  const warnings: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT') return { keys, warnings: [`${dir}: no such directory of trusted keys`] };
    throw new OverlayBootError('PKG_BAD_KEY', `the directory of trusted keys cannot be read: ${err.message}`, { file: dir, cause: e });
  }
  for (const name of names) {
    const file = path.join(dir, name);
    try {
      const st = statSync(file);
      if (!st.isFile()) { warnings.push(`${file}: skipped: not a regular file`); continue; }
      if (st.size > MAX_KEY_FILE) { warnings.push(`${file}: skipped: larger than ${MAX_KEY_FILE} bytes, not a key`); continue; }
      keys.push(parsePublicKey(readFileSync(file), file));
    } catch (e) {
      warnings.push(`${file}: skipped: ${(e as Error).message}`);
    }
  }
  return { keys, warnings };
}

/** A signify signature as given, or raw signature bytes. */
type ParsedSignature =
  | { signify: true; keyNum: Buffer; sig: Buffer }
  | { signify: false; sig: Buffer }
  | { malformed: string };

function parseSignature(signature: Buffer): ParsedSignature {
  if (!signature.subarray(0, COMMENT.length).equals(Buffer.from(COMMENT))) return { signify: false, sig: signature };
  const payload = signifyPayload(signature.toString('latin1'));
  if (!payload || payload.length !== 74 || !payload.subarray(0, 2).equals(SIGNIFY_ALG)) {
    return { malformed: 'a signify signature must be a comment line and base64 of "Ed" + 8-byte keynum + 64-byte signature' };
  }
  return { signify: true, keyNum: payload.subarray(2, 10), sig: payload.subarray(10) };
}

/** Is `sig` shaped like an ECDSA DER signature: SEQUENCE { INTEGER r, INTEGER s }, short form? */
function isDerEcdsa(sig: Buffer): boolean {
  if (sig.length < 8 || sig[0] !== 0x30 || sig[1] !== sig.length - 2) return false;
  let i = 2;
  for (let n = 0; n < 2; n++) {
    if (sig[i] !== 0x02) return false;
    const len = sig[i + 1] ?? 0;
    if (len < 1 || len > 33) return false;
    i += 2 + len;
  }
  return i === sig.length;
}

/** Does a raw signature of this shape fit this key? */
function shapeFits(key: TrustedKey, sig: Buffer): boolean {
  switch (key.kind) {
    case 'rsa': return sig.length * 8 === key.key.asymmetricKeyDetails?.modulusLength;
    case 'ecdsa-p256': return isDerEcdsa(sig);
    case 'ed25519': return sig.length === 64;
    default: return false;
  }
}

/**
 * The plan of a check, decided before any byte of the message is read: the keys to try,
 * or the final answer when none can be tried.
 */
type Plan =
  | { done: VerifyResult }
  | { signify: true; key: TrustedKey; sig: Buffer }
  | { signify: false; candidates: TrustedKey[]; sig: Buffer };

function plan(signature: Buffer, keys: TrustedKey[]): Plan {
  const parsed = parseSignature(signature);
  if ('malformed' in parsed) return { done: { ok: false, reason: 'malformed', detail: parsed.malformed } };
  if (parsed.signify) {
    const id = parsed.keyNum.toString('hex');
    const key = keys.find((k) => k.kind === 'signify' && k.keyNum?.equals(parsed.keyNum));
    if (!key) return { done: { ok: false, reason: 'unknown-key', detail: `signed by signify key ${id}, which is not trusted` } };
    return { signify: true, key, sig: parsed.sig };
  }
  const sig = parsed.sig;
  const shapes = [sig.length === 64 && 'Ed25519', isDerEcdsa(sig) && 'ECDSA', sig.length >= MIN_RSA_BITS / 8 && 'RSA'].filter(Boolean);
  if (!shapes.length) {
    return { done: { ok: false, reason: 'malformed', detail: `${sig.length} bytes are neither an RSA, an ECDSA (DER) nor an Ed25519 signature` } };
  }
  const candidates = keys.filter((k) => shapeFits(k, sig));
  if (!candidates.length) {
    return { done: { ok: false, reason: 'unknown-key', detail: `a raw ${shapes.join(' or ')} signature, and no trusted key of that kind and size` } };
  }
  return { signify: false, candidates, sig };
}

function verifyOne(key: TrustedKey, data: Buffer, sig: Buffer): boolean {
  try {
    return key.kind === 'rsa' || key.kind === 'ecdsa-p256'
      ? cryptoVerify('sha256', data, key.key, sig)
      : cryptoVerify(null, data, key.key, sig);
  } catch {
    return false;
  }
}

function badSignature(keys: TrustedKey[]): VerifyResult {
  return { ok: false, reason: 'bad-signature', detail: `the signature does not verify with ${keys.length === 1 ? 'key' : 'any of the keys'} ${keys.map((k) => k.id).join(', ')}` };
}

/**
 * Checks `signature` over `data` against trusted keys. The signature is either a signify
 * signature file (text starting `untrusted comment:`) or raw bytes. The rule:
 * - signify: the signature's keynum picks the signify key; none with that keynum →
 *   `unknown-key`; it does not verify → `bad-signature`; not 74 bytes of `Ed`... → `malformed`.
 * - raw: the bytes' shape says which kinds of key could have made it (64 bytes: Ed25519;
 *   DER SEQUENCE of two INTEGERs: ECDSA; as long as an RSA modulus: RSA). Every trusted
 *   PEM key whose kind (and RSA size) fits is tried; one verifies → ok; none fits →
 *   `unknown-key`; some fit but none verifies → `bad-signature`; no shape at all →
 *   `malformed`. signify keys are not tried on raw bytes (signify always writes its format).
 */
export function verifySignature(data: Buffer, signature: Buffer, keys: TrustedKey[]): VerifyResult {
  const p = plan(signature, keys);
  if ('done' in p) return p.done;
  if (p.signify) return verifyOne(p.key, data, p.sig) ? { ok: true, key: p.key } : badSignature([p.key]);
  const key = p.candidates.find((k) => verifyOne(k, data, p.sig));
  return key ? { ok: true, key } : badSignature(p.candidates);
}

/** Reads a whole file, refusing one larger than `max` bytes (checked before and while reading). */
function readCapped(file: string, max: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    if (size > max) {
      throw new OverlayBootError('PKG_TOO_LARGE', `an Ed25519 signature needs the whole file in memory, and it is larger than ${max} bytes`, { file, found: String(size) });
    }
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/** Options of verifyDetachedFile and signFile. */
export interface WholeFileOptions {
  /** Cap on a file read whole for Ed25519/signify; default 256 MiB (DEFAULT_MAX_WHOLE_MESSAGE). */
  maxWholeMessage?: number;
}

/**
 * verifySignature over the whole content of `file` (a detached `FILE.sig`). RSA and
 * ECDSA candidates are checked streaming (crypto.createVerify, constant memory).
 * Ed25519 (PEM or signify) has no streaming form in node:crypto (it hashes the message
 * twice), so when such a key must be tried the file is read whole, up to
 * `maxWholeMessage` bytes; a larger file throws PKG_TOO_LARGE.
 */
export async function verifyDetachedFile(file: string, signature: Buffer, keys: TrustedKey[], opts: WholeFileOptions = {}): Promise<VerifyResult> {
  const p = plan(signature, keys);
  if ('done' in p) return p.done;
  const max = opts.maxWholeMessage ?? DEFAULT_MAX_WHOLE_MESSAGE;
  if (p.signify) return verifyOne(p.key, readCapped(file, max), p.sig) ? { ok: true, key: p.key } : badSignature([p.key]);
  const streamed = p.candidates.filter((k) => k.kind !== 'ed25519');
  const verifiers = streamed.map(() => createVerify('sha256'));
  if (verifiers.length) {
    for await (const chunk of createReadStream(file)) for (const v of verifiers) v.update(chunk as Buffer);
  }
  for (const [i, key] of streamed.entries()) {
    try {
      if (verifiers[i]!.verify(key.key, p.sig)) return { ok: true, key };
    } catch { /* a malformed signature for this key: try the next */ }
  }
  const whole = p.candidates.filter((k) => k.kind === 'ed25519');
  if (whole.length) {
    const data = readCapped(file, max);
    const key = whole.find((k) => verifyOne(k, data, p.sig));
    if (key) return { ok: true, key };
  }
  return badSignature(p.candidates);
}

/** A secret key ready to sign with. */
type SigningKey =
  | { kind: 'signify'; keyNum: Buffer; key: KeyObject }
  | { kind: 'rsa' | 'ecdsa-p256' | 'ed25519'; key: KeyObject };

function parseSigningKey(privateKey: Buffer | string, source?: string): SigningKey {
  const s = asText(privateKey);
  const payload = signifyPayload(s);
  if (payload) return signifySecret(payload, source);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(s)) throw badKey(source, 'not a PEM private key nor a signify secret key');
  if (/-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: 4,ENCRYPTED/.test(s)) {
    throw badKey(source, 'the PEM private key is encrypted; give an unencrypted key');
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(s);
  } catch (e) {
    throw badKey(source, `unreadable PEM private key: ${(e as Error).message}`, e);
  }
  return { kind: pemKind(createPublicKey(key), source), key };
}

function signifySecret(payload: Buffer, source?: string): SigningKey {
  if (payload.length !== 104 || !payload.subarray(0, 2).equals(SIGNIFY_ALG) || !payload.subarray(2, 4).equals(SIGNIFY_KDF)) {
    throw badKey(source, `not a signify secret key (expected 104 bytes starting "EdBK", found ${payload.length} bytes)`);
  }
  // bcrypt_pbkdf is not in node:crypto; a passphrase-protected key cannot be opened here.
  if (payload.readUInt32BE(4) !== 0) {
    throw badKey(source, 'the signify secret key is protected by a passphrase; make one without: signify -G -n');
  }
  const checksum = payload.subarray(24, 32);
  const keyNum = Buffer.from(payload.subarray(32, 40));
  const secret = payload.subarray(40, 104);
  if (!createHash('sha512').update(secret).digest().subarray(0, 8).equals(checksum)) {
    throw badKey(source, 'the signify secret key fails its checksum (corrupt)');
  }
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(secret.subarray(0, 32)), x: b64url(secret.subarray(32)) }, format: 'jwk',
  });
  return { kind: 'signify', keyNum, key };
}

function signifySignatureText(keyNum: Buffer, sig: Buffer): Buffer {
  const body = Buffer.concat([SIGNIFY_ALG, keyNum, sig]).toString('base64');
  return Buffer.from(`${COMMENT} signed by overlay-pkg with signify key ${keyNum.toString('hex')}\n${body}\n`);
}

/** Throws PKG_BAD_KEY unless `privateKey` is a key signData can sign with. */
export function checkSigningKey(privateKey: Buffer | string, source?: string): void {
  parseSigningKey(privateKey, source);
}

/**
 * Signs `data`. A PEM private key gives raw signature bytes: RSA PKCS#1 v1.5 over SHA-256
 * (as `openssl dgst -sha256 -sign`), ECDSA P-256 over SHA-256 in DER, Ed25519 as
 * `openssl pkeyutl -sign -rawin`. A signify secret key gives a signify signature file's
 * text. Only unencrypted keys: an encrypted PEM, or a signify key made without `-n`
 * (its bcrypt_pbkdf is not in node:crypto), is PKG_BAD_KEY.
 */
export function signData(data: Buffer, privateKey: Buffer | string, source?: string): Buffer {
  const k = parseSigningKey(privateKey, source);
  if (k.kind === 'signify') return signifySignatureText(k.keyNum, cryptoSign(null, data, k.key));
  return cryptoSign(k.kind === 'ed25519' ? null : 'sha256', data, k.key);
}

/**
 * signData over the whole content of `file`, for a detached `FILE.sig`: RSA and ECDSA
 * streamed, Ed25519 and signify read whole up to `maxWholeMessage` bytes (PKG_TOO_LARGE beyond).
 */
export async function signFile(file: string, privateKey: Buffer | string, source?: string, opts: WholeFileOptions = {}): Promise<Buffer> {
  const k = parseSigningKey(privateKey, source);
  if (k.kind === 'rsa' || k.kind === 'ecdsa-p256') {
    const signer = createSign('sha256');
    for await (const chunk of createReadStream(file)) signer.update(chunk as Buffer);
    return signer.sign(k.key);
  }
  const data = readCapped(file, opts.maxWholeMessage ?? DEFAULT_MAX_WHOLE_MESSAGE);
  const sig = cryptoSign(null, data, k.key);
  return k.kind === 'signify' ? signifySignatureText(k.keyNum, sig) : sig;
}
