import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildPackage } from '../../src/package/build.js';
import { signPackage } from '../../src/package/sign.js';
import { keyTemp, opensslKey, PEM_KINDS, signifyKey, toolVerify, type KeyPair } from '../helpers/keys.js';
import { makeDebByHand, makeIpkByHand, writeTree } from '../helpers/packages.js';

function pkgDir(root: string): string {
  return writeTree(root, {
    'CONTROL/control': 'Package: signme\nVersion: 2.0\nArchitecture: all\n',
    'usr/share/signme/data': 'payload\n'.repeat(2000),
  });
}

/** The members of an ipk, extracted with tar or ar, in stored order. */
function extract(pkg: string, container: 'tar' | 'ar', into: string): string[] {
  mkdirSync(into, { recursive: true });
  if (container === 'tar') {
    execFileSync('tar', ['-xzf', pkg, '-C', into]);
    return execFileSync('tar', ['-tzf', pkg]).toString().split('\n').filter(Boolean).map((n) => n.replace(/^\.\//, ''));
  }
  execFileSync('ar', ['x', pkg], { cwd: into });
  return execFileSync('ar', ['t', pkg]).toString().split('\n').filter(Boolean);
}

t.test('embedded signature in both containers, checked with sha256sum and the signing tools', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const dir = pkgDir(path.join(work, 'pkg'));
  const keys: KeyPair[] = [...PEM_KINDS.map((k) => opensslKey(work, k)), signifyKey(work)];
  for (const container of ['tar', 'ar'] as const) {
    for (const key of keys) {
      await t.test(`${container} ${key.kind}`, async (t) => {
        const file = path.join(work, `${container}-${key.kind}.ipk`);
        await buildPackage(dir, { output: file, container, env: {} });
        const r = await signPackage(file, key.secret);
        t.equal(r.kind, 'embedded');
        t.equal(r.written, file);
        const into = path.join(work, `x-${container}-${key.kind}`);
        t.same(extract(file, container, into), ['debian-binary', 'control.tar.gz', 'data.tar.gz', 'checksums', 'signature.sig']);
        t.match(readFileSync(path.join(into, 'checksums'), 'utf8'), /^[0-9a-f]{64} {2}\.\/control\.tar\.gz\n[0-9a-f]{64} {2}\.\/data\.tar\.gz\n$/);
        t.match(execFileSync('sha256sum', ['-c', 'checksums'], { cwd: into }).toString(), /data\.tar\.gz: OK/);
        t.ok(toolVerify(key, path.join(into, 'checksums'), path.join(into, 'signature.sig')), 'the tool accepts the signature');
        t.same(readdirSync(work).filter((n) => n.endsWith('.tmp')), [], 'no temporary file left');
      });
    }
  }
});

t.test('re-signing replaces the old signature; --sign at build gives the same bytes', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const dir = pkgDir(path.join(work, 'pkg'));
  const a = opensslKey(work, 'ed25519', 'a');
  const b = opensslKey(work, 'rsa', 'b');
  const file = path.join(work, 'p.ipk');
  await buildPackage(dir, { output: file, env: {} });
  await signPackage(file, a.secret);
  await signPackage(file, b.secret);
  const into = path.join(work, 'x');
  t.same(extract(file, 'tar', into), ['debian-binary', 'control.tar.gz', 'data.tar.gz', 'checksums', 'signature.sig'], 'one signature');
  t.ok(toolVerify(b, path.join(into, 'checksums'), path.join(into, 'signature.sig')), 'by the second key');
  // Ed25519 and RSA PKCS#1 v1.5 are deterministic, so building signed equals building then signing
  const once = path.join(work, 'once.ipk');
  await buildPackage(dir, { output: once, signKey: b.secret, env: {} });
  t.ok(readFileSync(once).equals(readFileSync(file)), 'build --sign = build + sign + sign again');
});

t.test('a package signed by hand (ipkg-build + openssl) is re-signed', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const old = opensslKey(work, 'ecdsa-p256', 'old');
  const key = signifyKey(work);
  for (const container of ['tar', 'ar'] as const) {
    const w = path.join(work, container);
    mkdirSync(w);
    const file = makeIpkByHand({ work: w, control: { Package: 'hand', Version: '1', Architecture: 'all' }, data: { 'etc/x': 'x\n' }, container, signKey: old.secret });
    await signPackage(file, key.secret);
    const into = path.join(w, 'x');
    const names = extract(file, container, into);
    t.same(names.slice(-2), ['checksums', 'signature.sig'], `${container}: signature last`);
    t.equal(names.length, 5);
    t.ok(toolVerify(key, path.join(into, 'checksums'), path.join(into, 'signature.sig')));
  }
});

t.test('a .deb and an OCI bundle get a detached FILE.sig', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const key = opensslKey(work, 'rsa');
  const sk = signifyKey(work);
  const deb = makeDebByHand({ work, control: { Package: 'd', Version: '1', Architecture: 'all', Maintainer: 'm <m@x>', Description: 'd' }, data: { 'usr/x': 'x' }, compression: 'gzip' });
  const before = readFileSync(deb);
  const r = await signPackage(deb, key.secret);
  t.same(r, { kind: 'detached', written: `${deb}.sig` });
  t.ok(readFileSync(deb).equals(before), 'the .deb is unchanged');
  t.ok(toolVerify(key, deb, `${deb}.sig`));
  const oci = path.join(work, 'bundle');
  writeTree(oci, { 'app/config.json': '{"ociVersion":"1.0.2","process":{"args":["/bin/sh"]},"root":{"path":"rootfs"}}', 'app/rootfs/bin/sh': 'x' });
  const tarFile = path.join(work, 'app.tar');
  execFileSync('tar', ['-cf', tarFile, '-C', oci, 'app']);
  const gz = path.join(work, 'app.tar.gz');
  execFileSync('sh', ['-c', `gzip -c < ${tarFile} > ${gz}`]);
  for (const f of [tarFile, gz]) {
    t.match(await signPackage(f, sk.secret), { kind: 'detached' }, path.basename(f));
    t.ok(toolVerify(sk, f, `${f}.sig`), 'signify-openbsd accepts it');
  }
});

t.test('failures leave the package as it was and nothing beside it', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const dir = pkgDir(path.join(work, 'pkg'));
  const out = path.join(work, 'out');
  mkdirSync(out);
  const file = path.join(out, 'p.ipk');
  await buildPackage(dir, { output: file, env: {} });
  const bytes = readFileSync(file);
  const bad = path.join(work, 'bad.key');
  writeFileSync(bad, 'not a key\n');
  await t.rejects(signPackage(file, bad), { code: 'PKG_BAD_KEY', file: bad });
  await t.rejects(signPackage(file, path.join(work, 'absent.key')), { code: 'PKG_BAD_KEY' });
  const pub = opensslKey(work, 'ed25519');
  await t.rejects(signPackage(file, pub.public), { code: 'PKG_BAD_KEY' }, 'a public key cannot sign');
  t.ok(readFileSync(file).equals(bytes), 'unchanged');
  truncateSync(file, bytes.length - 100);
  await t.rejects(signPackage(file, pub.secret), { code: 'PKG_CORRUPT' }, 'a truncated package');
  t.equal(readFileSync(file).length, bytes.length - 100, 'still as it was');
  t.same(readdirSync(out), ['p.ipk'], 'no temporary file');
  await t.rejects(signPackage(path.join(work, 'none.ipk'), pub.secret), { code: 'PKG_UNREADABLE' });
});

t.test('an ipk with members it must not have is refused, unchanged', async (t) => {
  const work = keyTemp(t, 'ovb-sign-');
  const key = opensslKey(work, 'ed25519');
  const members = path.join(work, 'm');
  mkdirSync(members);
  const built = await buildPackage(pkgDir(path.join(work, 'pkg')), { output: path.join(work, 'p.ipk'), env: {} });
  execFileSync('tar', ['-xzf', built.file, '-C', members]);
  writeFileSync(path.join(members, 'extra'), 'x');
  const cases: [string, string[], string, string][] = [
    ['duplicate', ['./debian-binary', './control.tar.gz', './data.tar.gz', './data.tar.gz'], 'PKG_MEMBER_DUPLICATE', 'data.tar.gz'],
    ['unexpected', ['./debian-binary', './control.tar.gz', './data.tar.gz', './extra'], 'PKG_FORMAT', 'extra'],
    ['missing', ['./debian-binary', './control.tar.gz'], 'PKG_MEMBER_MISSING', 'data.tar.gz'],
    ['directory', ['./debian-binary', './control.tar.gz', './data.tar.gz', '.'], 'PKG_FORMAT', './'],
  ];
  const out = path.join(work, 'out');
  mkdirSync(out);
  for (const [name, list, code, member] of cases) {
    const file = path.join(out, `${name}.ipk`);
    execFileSync('tar', ['--format=gnu', '--no-recursion', '-czf', file, ...list], { cwd: members });
    const before = readFileSync(file);
    await t.rejects(signPackage(file, key.secret), { code, member }, name);
    t.ok(readFileSync(file).equals(before), `${name}: unchanged`);
  }
  t.same(readdirSync(out).sort(), cases.map(([n]) => `${n}.ipk`).sort(), 'no temporary file');
});
