import t from 'tap';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  loadTrustedKeys, parsePublicKey, signData, signFile, verifyDetachedFile, verifySignature, type TrustedKey,
} from '../../src/package/keys.js';
import { keyTemp, opensslKey, PEM_KINDS, signifyKey, toolSign, toolVerify, type KeyPair } from '../helpers/keys.js';

const ALL_KINDS = [...PEM_KINDS, 'signify'] as const;

function makeKey(dir: string, kind: (typeof ALL_KINDS)[number], name?: string): KeyPair {
  return kind === 'signify' ? signifyKey(dir, name) : opensslKey(dir, kind, name);
}

function trusted(k: KeyPair): TrustedKey {
  return parsePublicKey(readFileSync(k.public), k.public);
}

t.test('signatures made by openssl and signify-openbsd verify; tampering and strangers do not', async (t) => {
  const dir = keyTemp(t);
  const msg = path.join(dir, 'message');
  writeFileSync(msg, 'checksums of a package\n'.repeat(1000));
  for (const kind of ALL_KINDS) {
    await t.test(kind, async (t) => {
      const k = makeKey(dir, kind);
      const stranger = makeKey(dir, kind, `${kind}-other`);
      const key = trusted(k);
      t.equal(key.kind, kind);
      const sig = readFileSync(toolSign(k, msg, path.join(dir, `${kind}.sig`)));
      const data = readFileSync(msg);
      const r = verifySignature(data, sig, [trusted(stranger), key]);
      t.ok(r.ok, JSON.stringify(r));
      if (r.ok) t.equal(r.key.id, key.id, 'names the key that verified');
      const rf = await verifyDetachedFile(msg, sig, [key]);
      t.ok(rf.ok, 'detached over the file');
      const tampered = Buffer.from(data);
      tampered[10]! ^= 1;
      t.match(verifySignature(tampered, sig, [key]), { ok: false, reason: 'bad-signature' });
      // a raw signature fits every key of its kind, so a stranger of that kind means a bad
      // signature; a signify signature names its key, so a stranger means an unknown key
      t.match(verifySignature(data, sig, [trusted(stranger)]), { ok: false, reason: kind === 'signify' ? 'unknown-key' : 'bad-signature' });
      t.match(verifySignature(data, sig, []), { ok: false, reason: 'unknown-key' });
    });
  }
});

t.test('a raw signature with no trusted key of its kind is unknown-key; shapeless bytes are malformed', async (t) => {
  const dir = keyTemp(t);
  const msg = path.join(dir, 'm');
  writeFileSync(msg, 'x');
  const ed = opensslKey(dir, 'ed25519');
  const rsa = trusted(opensslKey(dir, 'rsa'));
  const sig = readFileSync(toolSign(ed, msg));
  const r = verifySignature(readFileSync(msg), sig, [rsa]);
  t.match(r, { ok: false, reason: 'unknown-key', detail: /Ed25519/ });
  t.match(verifySignature(Buffer.from('x'), Buffer.from([1, 2, 3]), [rsa]), { ok: false, reason: 'malformed' });
  t.match(verifySignature(Buffer.from('x'), Buffer.from('untrusted comment: x\nAAAA\n'), [rsa]), { ok: false, reason: 'malformed' });
  t.match(await verifyDetachedFile(msg, Buffer.from([1, 2, 3]), [rsa]), { ok: false, reason: 'malformed' });
});

t.test('our signatures verify with openssl and signify-openbsd', async (t) => {
  const dir = keyTemp(t);
  const msg = path.join(dir, 'message');
  writeFileSync(msg, 'some bytes to sign\n'.repeat(5000));
  for (const kind of ALL_KINDS) {
    const k = makeKey(dir, kind);
    const sig = path.join(dir, `${kind}.ours.sig`);
    writeFileSync(sig, signData(readFileSync(msg), readFileSync(k.secret), k.secret));
    t.ok(toolVerify(k, msg, sig), `${kind}: signData accepted by the tool`);
    const sig2 = path.join(dir, `${kind}.file.sig`);
    writeFileSync(sig2, await signFile(msg, readFileSync(k.secret), k.secret));
    t.ok(toolVerify(k, msg, sig2), `${kind}: signFile accepted by the tool`);
    t.ok(verifySignature(readFileSync(msg), readFileSync(sig2), [trusted(k)]).ok, `${kind}: and by us`);
  }
});

t.test('key ids: SPKI fingerprint for PEM, keynum for signify', async (t) => {
  const dir = keyTemp(t);
  const ec = opensslKey(dir, 'ecdsa-p256');
  const der = execFileSync('openssl', ['pkey', '-pubin', '-in', ec.public, '-outform', 'DER']);
  t.equal(trusted(ec).id, createHash('sha256').update(der).digest('hex').slice(0, 16));
  const s = signifyKey(dir);
  const raw = Buffer.from(readFileSync(s.public, 'utf8').split('\n')[1]!, 'base64');
  t.equal(trusted(s).id, raw.subarray(2, 10).toString('hex'));
});

t.test('what is not a usable public key is PKG_BAD_KEY naming the source', async (t) => {
  const dir = keyTemp(t);
  const rsa = opensslKey(dir, 'rsa');
  t.throws(() => parsePublicKey(readFileSync(rsa.secret), rsa.secret), { code: 'PKG_BAD_KEY', file: rsa.secret, message: /private key/ });
  t.throws(() => parsePublicKey('hello\n', 'junk.pem'), { code: 'PKG_BAD_KEY', file: 'junk.pem' });
  t.throws(() => parsePublicKey('untrusted comment: x\nRWQAAAA=\n', 'short.pub'), { code: 'PKG_BAD_KEY', message: /42 bytes/ });
  const p384 = path.join(dir, 'p384.key');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', p384]);
  const p384pub = execFileSync('openssl', ['pkey', '-in', p384, '-pubout']);
  t.throws(() => parsePublicKey(p384pub, 'p384.pem'), { code: 'PKG_BAD_KEY', message: /P-256/ });
  const small = path.join(dir, 'small.key');
  execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024', '-out', small]);
  t.throws(() => parsePublicKey(execFileSync('openssl', ['pkey', '-in', small, '-pubout'])), { code: 'PKG_BAD_KEY', message: /2048/ });
  const pkcs1 = execFileSync('openssl', ['rsa', '-in', rsa.secret, '-RSAPublicKey_out'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.equal(parsePublicKey(pkcs1).id, trusted(rsa).id, 'a PKCS#1 RSA PUBLIC KEY is the same key');
});

t.test('secret keys we cannot use are PKG_BAD_KEY', async (t) => {
  const dir = keyTemp(t);
  const s = signifyKey(dir);
  const [comment, b64] = readFileSync(s.secret, 'utf8').split('\n');
  const raw = Buffer.from(b64!, 'base64');
  const withRounds = Buffer.from(raw);
  withRounds.writeUInt32BE(42, 4);
  t.throws(() => signData(Buffer.from('x'), `${comment}\n${withRounds.toString('base64')}\n`, 'pw.sec'),
    { code: 'PKG_BAD_KEY', file: 'pw.sec', message: /passphrase.*-n/ });
  const corrupt = Buffer.from(raw);
  corrupt[50]! ^= 1;
  t.throws(() => signData(Buffer.from('x'), `${comment}\n${corrupt.toString('base64')}\n`), { code: 'PKG_BAD_KEY', message: /checksum/ });
  const enc = path.join(dir, 'enc.key');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ED25519', '-aes-256-cbc', '-pass', 'pass:secret', '-out', enc]);
  t.throws(() => signData(Buffer.from('x'), readFileSync(enc), enc), { code: 'PKG_BAD_KEY', message: /encrypted/ });
  t.throws(() => signData(Buffer.from('x'), readFileSync(s.public), s.public), { code: 'PKG_BAD_KEY' });
});

t.test('loadTrustedKeys reads every regular file by content and warns about the rest', async (t) => {
  const dir = keyTemp(t);
  const keys = path.join(dir, 'keys');
  mkdirSync(keys);
  const gen = keyTemp(t);
  const a = opensslKey(gen, 'ed25519');
  const b = signifyKey(gen);
  writeFileSync(path.join(keys, 'vendor-a'), readFileSync(a.public));
  writeFileSync(path.join(keys, 'b.pub'), readFileSync(b.public));
  symlinkSync(a.public, path.join(keys, 'link.pem'));
  mkdirSync(path.join(keys, 'subdir'));
  writeFileSync(path.join(keys, 'README'), 'not a key\n');
  const r = loadTrustedKeys(keys);
  t.same(r.keys.map((k) => [path.basename(k.source!), k.kind]), [['b.pub', 'signify'], ['link.pem', 'ed25519'], ['vendor-a', 'ed25519']]);
  t.equal(r.warnings.length, 2);
  t.match(r.warnings.join('\n'), /README: skipped: not a PEM/);
  t.match(r.warnings.join('\n'), /subdir: skipped: not a regular file/);
  const missing = loadTrustedKeys(path.join(dir, 'nope'));
  t.same(missing.keys, []);
  t.match(missing.warnings, [/no such directory/]);
});
