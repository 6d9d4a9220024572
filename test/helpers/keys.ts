/**
 * Keys and signatures made by other tools (openssl, signify-openbsd), so our verifier is
 * checked against signatures we did not make and our signatures against their verifiers.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Test } from 'tap';

export type PemKind = 'rsa' | 'ecdsa-p256' | 'ed25519';
export const PEM_KINDS: PemKind[] = ['rsa', 'ecdsa-p256', 'ed25519'];

/** A private/public key file pair. */
export interface KeyPair { kind: PemKind | 'signify'; secret: string; public: string }

/** A temporary directory removed at teardown. */
export function keyTemp(t: Test, prefix = 'ovb-keys-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(cmd: string, args: string[], input?: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

function must(cmd: string, args: string[]): void {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')}: ${r.out}`);
}

const GENPKEY: Record<PemKind, string[]> = {
  rsa: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
  'ecdsa-p256': ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
  ed25519: ['-algorithm', 'ED25519'],
};

/** A PEM key pair made by `openssl genpkey` / `openssl pkey -pubout` in `dir`. */
export function opensslKey(dir: string, kind: PemKind, name: string = kind): KeyPair {
  const secret = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pem`);
  must('openssl', ['genpkey', ...GENPKEY[kind], '-out', secret]);
  must('openssl', ['pkey', '-in', secret, '-pubout', '-out', pub]);
  return { kind, secret, public: pub };
}

/** A signify key pair made by `signify-openbsd -G -n` in `dir`. */
export function signifyKey(dir: string, name = 'signify'): KeyPair {
  const secret = path.join(dir, `${name}.sec`);
  const pub = path.join(dir, `${name}.pub`);
  must('signify-openbsd', ['-G', '-n', '-c', `${name} key`, '-p', pub, '-s', secret]);
  return { kind: 'signify', secret, public: pub };
}

/** Signs `file` with the tool matching the key; returns the signature file's path. */
export function toolSign(key: KeyPair, file: string, sig = `${file}.sig`): string {
  if (key.kind === 'signify') must('signify-openbsd', ['-S', '-s', key.secret, '-m', file, '-x', sig]);
  else if (key.kind === 'ed25519') must('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', key.secret, '-in', file, '-out', sig]);
  else must('openssl', ['dgst', '-sha256', '-sign', key.secret, '-out', sig, file]);
  return sig;
}

/** Whether the tool matching the key accepts signature file `sig` over `file`. */
export function toolVerify(key: KeyPair, file: string, sig: string): boolean {
  if (key.kind === 'signify') return run('signify-openbsd', ['-V', '-q', '-p', key.public, '-m', file, '-x', sig]).ok;
  if (key.kind === 'ed25519') return run('openssl', ['pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', key.public, '-in', file, '-sigfile', sig]).ok;
  return run('openssl', ['dgst', '-sha256', '-verify', key.public, '-signature', sig, file]).ok;
}
