// Trust: checksums + signature.sig made by hand (sha256sum, openssl, signify-openbsd) and
// detached FILE.sig, each failure named by its code and the member at fault.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../../src/errors.js';
import { parsePublicKey, type TrustedKey } from '../../src/package/keys.js';
import { openPackage } from '../../src/package/open.js';
import { verifyPackage } from '../../src/package/verify.js';
import { makeDebByHand, makeIpkByHand, makeIpkMembers, packMembers, signMembersByHand } from '../helpers/packages.js';
import { keyTemp, opensslKey, signifyKey, toolSign, PEM_KINDS, type KeyPair } from '../helpers/keys.js';

const CONTROL = { Package: 'signed', Version: '2.0-1', Architecture: 'all' };
const DATA = { 'etc/signed.conf': 'a=1\n', 'usr/bin/s': { content: '#!/bin/sh\n', mode: 0o755 } };

const trusted = (k: KeyPair): TrustedKey => parsePublicKey(readFileSync(k.public), k.public);

async function failure(p: Promise<unknown>): Promise<OverlayBootError | string> {
  try {
    await p;
  } catch (e) {
    return e instanceof OverlayBootError ? e : `not an OverlayBootError: ${String(e)}`;
  }
  return 'resolved';
}

t.test('signed by hand with every key kind, in both containers', async (t) => {
  const dir = keyTemp(t);
  const keys: KeyPair[] = [...PEM_KINDS.map((k) => opensslKey(dir, k)), signifyKey(dir)];
  for (const key of keys) {
    for (const container of ['tar', 'ar'] as const) {
      const work = path.join(dir, `${key.kind}-${container}`);
      const file = makeIpkByHand({ work, control: CONTROL, data: DATA, container, signKey: key });
      const info = await verifyPackage(file, { keys: keys.map(trusted) });
      t.match(info.signature, { signed: true, kind: 'embedded', verified: true, keyId: trusted(key).id }, `${key.kind} ${container}`);
      t.same(info.problems, []);
      const open = await openPackage(file);
      t.match(open.signature, { signed: true, kind: 'embedded', verified: false }, 'without keys: signed, not verified');
      const other = opensslKey(dir, 'ed25519', `other-${key.kind}-${container}`);
      const e = await failure(verifyPackage(file, { keys: [trusted(other)] }));
      t.match(e, { code: key.kind === 'ed25519' ? 'PKG_BAD_SIGNATURE' : 'PKG_UNKNOWN_KEY' }, 'an untrusted signer is refused');
    }
  }
});

t.test('each broken part of an embedded signature is named', async (t) => {
  const dir = keyTemp(t);
  const key = opensslKey(dir, 'rsa');
  const keys = [trusted(key)];
  const variant = (name: string, change: (members: string) => void) => {
    const work = path.join(dir, name);
    const members = makeIpkMembers({ work, control: CONTROL, data: DATA });
    signMembersByHand(members, key);
    change(members);
    return packMembers(members, path.join(work, 'p.ipk'), 'tar', ['checksums', 'signature.sig']);
  };
  let e = await failure(verifyPackage(variant('swap', (m) => {
    // data replaced after signing
    writeFileSync(path.join(m, 'd'), 'other');
    execFileSync('tar', ['-czf', 'data.tar.gz', 'd'], { cwd: m });
  }), { keys }));
  t.match(e, { code: 'PKG_CHECKSUM', member: 'data.tar.gz' });
  e = await failure(verifyPackage(variant('extra', (m) => {
    signMembersByHand(m, key, ['./control.tar.gz', './data.tar.gz', './debian-binary']);
  }), { keys }));
  t.match(e, { code: 'PKG_CHECKSUMS_MEMBERS', member: 'debian-binary' });
  e = await failure(verifyPackage(variant('missing', (m) => signMembersByHand(m, key, ['control.tar.gz'])), { keys }));
  t.match(e, { code: 'PKG_CHECKSUMS_MEMBERS', member: 'data.tar.gz' });
  e = await failure(verifyPackage(variant('badsig', (m) => {
    const sig = readFileSync(path.join(m, 'signature.sig'));
    sig[10] = (sig[10] ?? 0) ^ 0xff;
    writeFileSync(path.join(m, 'signature.sig'), sig);
  }), { keys }));
  t.match(e, { code: 'PKG_BAD_SIGNATURE' });
  e = await failure(verifyPackage(variant('edited', (m) => {
    writeFileSync(path.join(m, 'checksums'), readFileSync(path.join(m, 'checksums'), 'utf8') + '\n');
  }), { keys }));
  t.match(e, { code: 'PKG_BAD_SIGNATURE' }, 'checksums edited after signing');
  // names without ./ are accepted
  const plain = await verifyPackage(variant('plain', (m) => signMembersByHand(m, key, ['control.tar.gz', 'data.tar.gz'])), { keys });
  t.equal(plain.signature.verified, true);
  // info shows a checksum mismatch as a problem
  const info = await openPackage(path.join(dir, 'swap', 'p.ipk'));
  t.match(info.problems[0], /data.tar.gz: .*\[PKG_CHECKSUM\]/);
});

t.test('unsigned: PKG_UNSIGNED unless a signature is not required', async (t) => {
  const dir = keyTemp(t);
  const file = makeIpkByHand({ work: dir, control: CONTROL, data: DATA });
  t.match(await failure(verifyPackage(file, { keys: [] })), { code: 'PKG_UNSIGNED' });
  const info = await verifyPackage(file, { keys: [], requireSignature: false });
  t.equal(info.signature.signed, false);
});

t.test('detached FILE.sig over a deb, by openssl and by signify', async (t) => {
  const dir = keyTemp(t);
  for (const key of [opensslKey(dir, 'ecdsa-p256'), opensslKey(dir, 'ed25519'), signifyKey(dir)]) {
    const deb = makeDebByHand({ work: path.join(dir, key.kind), control: CONTROL, data: DATA, compression: 'xz' });
    t.match(await failure(verifyPackage(deb, { keys: [trusted(key)] })), { code: 'PKG_UNSIGNED' });
    toolSign(key, deb);
    const info = await verifyPackage(deb, { keys: [trusted(key)] });
    t.match(info.signature, { signed: true, kind: 'detached', verified: true }, key.kind);
    // the signature given by path instead of beside the file
    const moved = path.join(dir, `${key.kind}.signature`);
    copyFileSync(`${deb}.sig`, moved);
    t.equal((await verifyPackage(deb, { keys: [trusted(key)], detachedSignature: moved })).signature.verified, true);
    // another package put in its place, the old signature beside it
    makeDebByHand({ work: path.join(dir, `${key.kind}-2`), control: CONTROL, data: { ...DATA, 'etc/evil': 'x' }, compression: 'xz', out: deb });
    t.match(await failure(verifyPackage(deb, { keys: [trusted(key)] })), { code: 'PKG_BAD_SIGNATURE' }, `${key.kind}: swapped deb refused`);
  }
});
