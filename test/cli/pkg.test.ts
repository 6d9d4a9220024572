import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/pkg.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { capture } from '../helpers/cli.js';
import { keyTemp, opensslKey, PEM_KINDS, signifyKey, type KeyPair } from '../helpers/keys.js';
import { describeTree, encryptByHand, makeDebByHand, writeTree } from '../helpers/packages.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-pkg.js', import.meta.url));

const TREE = {
  'CONTROL/control': 'Package: roundtrip\nVersion: 1:2.5~rc1-1\nArchitecture: all\nMaintainer: A <a@example.org>\nDescription: round trip\n',
  'CONTROL/postinst': { content: '#!/bin/sh\nexit 0\n', mode: 0o755 },
  'CONTROL/conffiles': '/etc/rt.conf\n',
  'etc/rt.conf': 'a=1\n',
  'usr/bin/rt': { content: '#!/bin/sh\necho rt\n', mode: 0o755 },
  'usr/share/rt/big': { content: Buffer.alloc(300000, 7), mode: 0o644 },
  'usr/share/rt/link': { symlink: 'big' },
  'var/lib/rt': { dir: true, mode: 0o700 },
};

interface Env { work: string; config: string; keys: string; io: () => ReturnType<typeof capture> }

/** A work directory with a config file whose [trust] keys is an empty keys directory. */
function setup(t: Parameters<typeof keyTemp>[0], ini = ''): Env {
  const work = keyTemp(t, 'ovb-clipkg-');
  const keys = path.join(work, 'keys');
  mkdirSync(keys);
  const config = path.join(work, 'pkg.ini');
  writeFileSync(config, `[trust]\nkeys = ${keys}\n${ini}`);
  return { work, config, keys, io: () => capture({ OVERLAY_PKG_CONFIG: config }) };
}

async function run(env: Env, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = env.io();
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

function trust(env: Env, key: KeyPair): void {
  copyFileSync(key.public, path.join(env.keys, path.basename(key.public)));
}

/** The tree below `root` without opkg-build's CONTROL directory. */
function dataTree(root: string): ReturnType<typeof describeTree> {
  return Object.fromEntries(Object.entries(describeTree(root)).filter(([p]) => p !== 'CONTROL' && !p.startsWith('CONTROL/')));
}

t.test('build -> info -> sign -> verify -> unpack gives back the tree', async (t) => {
  const env = setup(t);
  const dir = writeTree(path.join(env.work, 'src'), TREE);
  for (const container of ['tar', 'ar'] as const) {
    await t.test(container, async (t) => {
      const file = path.join(env.work, `rt-${container}.ipk`);
      const b = await run(env, ['build', dir, '-o', file, ...(container === 'ar' ? ['--ar'] : []), '--json']);
      t.equal(b.code, 0, b.err);
      t.match(JSON.parse(b.out), { file, signed: false, control: { package: 'roundtrip', version: '1:2.5~rc1-1' } });

      const i = await run(env, ['--json', 'info', file]);
      t.equal(i.code, 0, i.err);
      const info = JSON.parse(i.out);
      t.match(info, { format: 'ipk', container, signature: { signed: false }, problems: [] });
      t.equal(info.control.fields['Installed-Size'], String(4 + 18 + 300000));
      t.same(info.members.map((m: { name: string }) => m.name), ['debian-binary', 'control.tar.gz', 'data.tar.gz']);
      t.same(info.scripts, ['postinst']);
      t.same(info.conffiles, ['/etc/rt.conf']);
      t.match(info.summary, { size: 300022, byType: { file: 3, symlink: 1 } });

      const text = await run(env, ['info', file]);
      t.match(text.out, /^format: ipk \(\w+\)$/m);
      t.match(text.out, /^signature: not signed$/m);
      t.match(text.out, /^problems: none$/m);

      const key = signifyKey(env.work, `k-${container}`);
      const s = await run(env, ['sign', file, '--key', key.secret]);
      t.equal(s.code, 0, s.err);
      const unknown = await run(env, ['verify', file]);
      t.equal(unknown.code, 1, 'not yet trusted');
      t.match(unknown.err, /\[PKG_UNKNOWN_KEY\]/);
      trust(env, key);
      const v = await run(env, ['verify', file]);
      t.equal(v.code, 0, v.err);
      t.match(v.out, /OK: intact, signed \(embedded\) by trusted key [0-9a-f]{16}/);

      const dest = path.join(env.work, `unpacked-${container}`);
      mkdirSync(dest);
      await unpackPackage(file, dest, {});
      t.same(dataTree(dest), dataTree(dir), 'the same tree');
    });
  }
});

t.test('every key kind signs and verifies through the CLI; a stranger key is PKG_UNKNOWN_KEY', async (t) => {
  const env = setup(t);
  const dir = writeTree(path.join(env.work, 'src'), TREE);
  const strangers = setup(t);
  for (const kind of [...PEM_KINDS, 'signify'] as const) {
    const key = kind === 'signify' ? signifyKey(env.work, 'sk') : opensslKey(env.work, kind);
    trust(env, key);
    const file = path.join(env.work, `${kind}.ipk`);
    t.equal((await run(env, ['build', dir, '-o', file, '--sign', key.secret])).code, 0);
    const v = await run(env, ['verify', file, '--json']);
    t.equal(v.code, 0, `${kind}: ${v.err}`);
    t.match(JSON.parse(v.out), { ok: true, signature: { signed: true, verified: true, kind: 'embedded' } });
    const stranger = kind === 'signify' ? signifyKey(strangers.work, 'other') : opensslKey(strangers.work, kind, 'other');
    trust(strangers, stranger);
    const u = await run(env, ['verify', file, '--keys', strangers.keys]);
    t.equal(u.code, 1);
    // a raw signature fits any key of its kind: with only a stranger of that kind it does not verify
    t.match(u.err, kind === 'signify' ? /\[PKG_UNKNOWN_KEY\]/ : /\[PKG_(BAD_SIGNATURE|UNKNOWN_KEY)\]/, kind);
    execFileSync('rm', [path.join(strangers.keys, path.basename(stranger.public))]);
  }
});

t.test('a .deb and an OCI bundle signed with a detached FILE.sig verify', async (t) => {
  const env = setup(t);
  const key = opensslKey(env.work, 'ecdsa-p256');
  trust(env, key);
  const deb = makeDebByHand({ work: env.work, control: { Package: 'd', Version: '1', Architecture: 'all', Maintainer: 'm <m@example.org>', Description: 'd' }, data: { 'usr/x': 'x' }, compression: 'xz' });
  const bundle = writeTree(path.join(env.work, 'bundle'), {
    'app/config.json': JSON.stringify({ ociVersion: '1.0.2', process: { args: ['/bin/app'], cwd: '/' }, root: { path: 'rootfs' } }),
    'app/rootfs/bin/app': { content: '#!/bin/sh\n', mode: 0o755 },
  });
  const oci = path.join(env.work, 'app.tar');
  execFileSync('tar', ['-cf', oci, '-C', bundle, 'app']);
  for (const [file, format] of [[deb, 'deb'], [oci, 'oci']] as const) {
    t.equal((await run(env, ['verify', file])).code, 1, `${format}: unsigned`);
    const s = await run(env, ['sign', file, '--key', key.secret, '--json']);
    t.match(JSON.parse(s.out), { kind: 'detached', written: `${file}.sig` });
    const i = await run(env, ['info', file, '--json']);
    t.equal(i.code, 0, i.err);
    t.match(JSON.parse(i.out), { format, signature: { signed: true, kind: 'detached', verified: true }, problems: [] });
    const v = await run(env, ['verify', file, '--json']);
    t.equal(v.code, 0, v.err);
    t.match(JSON.parse(v.out), { ok: true, format, signature: { verified: true } });
  }
});

t.test('a member changed after signing is PKG_CHECKSUM naming it', async (t) => {
  const env = setup(t);
  const key = opensslKey(env.work, 'ed25519');
  trust(env, key);
  const dir = writeTree(path.join(env.work, 'src'), TREE);
  const file = path.join(env.work, 'p.ipk');
  t.equal((await run(env, ['build', dir, '-o', file, '--ar', '--sign', key.secret])).code, 0);
  const other = writeTree(path.join(env.work, 'other'), { ...TREE, 'etc/rt.conf': 'a=2\n' });
  const otherFile = path.join(env.work, 'o.ipk');
  t.equal((await run(env, ['build', other, '-o', otherFile, '--ar'])).code, 0);
  const m = path.join(env.work, 'm');
  mkdirSync(m);
  execFileSync('ar', ['x', file], { cwd: m });
  execFileSync('sh', ['-c', `ar p ${otherFile} data.tar.gz > data.tar.gz`], { cwd: m });
  const tampered = path.join(env.work, 'tampered.ipk');
  execFileSync('ar', ['-crD', tampered, 'debian-binary', 'control.tar.gz', 'data.tar.gz', 'checksums', 'signature.sig'], { cwd: m });
  const v = await run(env, ['verify', tampered]);
  t.equal(v.code, 1);
  t.match(v.err, /member data\.tar\.gz: .*\[PKG_CHECKSUM\]/);
  const i = await run(env, ['info', tampered, '--json']);
  t.equal(i.code, 1, 'info exits 1 with problems');
  t.match(JSON.parse(i.out).problems, [/data\.tar\.gz.*PKG_CHECKSUM/]);
});

t.test('unsigned: PKG_UNSIGNED when a signature is required, accepted when not', async (t) => {
  const env = setup(t);
  const dir = writeTree(path.join(env.work, 'src'), TREE);
  const file = path.join(env.work, 'u.ipk');
  t.equal((await run(env, ['build', dir, '-o', file])).code, 0);
  const v = await run(env, ['verify', file]);
  t.equal(v.code, 1);
  t.match(v.err, /\[PKG_UNSIGNED\]/);
  const j = await run(env, ['verify', '--json', file]);
  t.equal(j.code, 1);
  t.match(JSON.parse(j.out), { ok: false, error: { code: 'PKG_UNSIGNED', file } });
  const lax = setup(t, 'require_signature = false\n');
  const ok = await run(lax, ['verify', file]);
  t.equal(ok.code, 0, ok.err);
  t.match(ok.out, /not signed \(a signature is not required\)/);
  // --config after the command wins over the environment
  const io = env.io();
  t.equal(await main(['verify', file, '--config', lax.config], io), 0, io.err);
});

t.test('data that is not safe fails verify and is a problem in info', async (t) => {
  const env = setup(t, 'require_signature = false\n');
  const dir = writeTree(path.join(env.work, 'src'), { ...TREE, 'usr/bin/su-like': { content: 'x', mode: 0o4755 } });
  chmodSync(path.join(dir, 'usr/bin/su-like'), 0o4755);
  const file = path.join(env.work, 's.ipk');
  t.equal((await run(env, ['build', dir, '-o', file])).code, 0);
  const i = await run(env, ['info', file, '--json']);
  t.equal(i.code, 1);
  t.match(JSON.parse(i.out).problems, [/su-like/]);
  const v = await run(env, ['verify', file]);
  t.equal(v.code, 1);
  t.match(v.err, /su-like.*\[PKG_SETID\]/);
});

t.test('encrypted packages: --key, or the device key named in the configuration', async (t) => {
  const env = setup(t);
  const dir = writeTree(path.join(env.work, 'src'), TREE);
  const file = path.join(env.work, 'e.ipk');
  t.equal((await run(env, ['build', dir, '-o', file])).code, 0);
  const bin = encryptByHand(file, 's3cret', path.join(env.work, 'e.bin'));
  const none = await run(env, ['info', bin]);
  t.equal(none.code, 1);
  t.match(none.err, /\[PKG_DECRYPT\]/);
  const withKey = await run(env, ['info', bin, '--key', 's3cret', '--json']);
  t.equal(withKey.code, 0, withKey.err);
  t.match(JSON.parse(withKey.out), { format: 'ipk', encrypted: true });
  const deviceKey = path.join(env.work, 'device.key');
  writeFileSync(deviceKey, 's3cret\n');
  const dk = setup(t, `device_key = ${deviceKey}\n`);
  const viaConfig = await run(dk, ['info', bin]);
  t.equal(viaConfig.code, 0, viaConfig.err);
  t.match(viaConfig.out, /format: ipk \(tar\), encrypted/);
});

t.test('removal packages through the CLI', async (t) => {
  const env = setup(t);
  const out = path.join(env.work, 'rm.ipk');
  const b = await run(env, ['build', '--remove', 'webapp', '-o', out]);
  t.equal(b.code, 0, b.err);
  t.equal(b.out, `${out}\n`);
  const i = await run(env, ['info', out, '--json']);
  t.match(JSON.parse(i.out), { control: { package: 'webapp-remove', fields: { Tags: 'remove' } }, files: [] });
});

t.test('build takes SOURCE_DATE_EPOCH from the environment it is given', async (t) => {
  const env = setup(t);
  const file = path.join(env.work, 'dated.ipk');
  const io = capture({ OVERLAY_PKG_CONFIG: env.config, SOURCE_DATE_EPOCH: '1700000000' });
  t.equal(await main(['build', writeTree(path.join(env.work, 'src'), TREE), '-o', file], io), 0, io.err);
  t.match(execFileSync('tar', ['-tvzf', file]).toString(), /2023-11-14 \d\d:\d\d \.\/debian-binary/);
});

t.test('configuration warnings and errors', async (t) => {
  const env = setup(t, 'colour = blue\n');
  const file = path.join(env.work, 'x.ipk');
  const b = await run(env, ['build', writeTree(path.join(env.work, 'src'), TREE), '-o', file]);
  t.equal(b.code, 0);
  t.match(b.err, new RegExp(`warning: ${env.config}:3: unknown key colour in \\[trust\\]`));
  const bad = path.join(env.work, 'bad.ini');
  writeFileSync(bad, '[limits]\nmax_unpacked_size = lots\n');
  const e = await run(env, ['--config', bad, 'info', file]);
  t.equal(e.code, 1);
  t.match(e.err, `overlay-pkg: ${bad}:2: limits.max_unpacked_size: `);
  t.match(e.err, /\[PKG_CONFIG_INVALID\]/);
  const missing = await run(env, ['info', file, '--config', path.join(env.work, 'nope.ini')]);
  t.equal(missing.code, 1);
  t.match(missing.err, /PKG_CONFIG_INVALID/);
});

t.test('usage errors exit 2', async (t) => {
  const env = setup(t);
  for (const argv of [[], ['frobnicate'], ['info'], ['info', 'a', 'b'], ['info', 'a', '--ar'], ['verify', 'a', '--sign', 'k'],
    ['sign', 'a'], ['build'], ['build', 'a', 'b'], ['build', '--remove', 'x', 'dir'], ['--bogus', 'info', 'a']]) {
    const r = await run(env, argv);
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.err, /usage: overlay-pkg/);
  }
  const h = await run(env, ['--help']);
  t.equal(h.code, 0);
  t.match(h.out, /usage: overlay-pkg/);
  const missing = await run(env, ['info', path.join(env.work, 'absent.ipk')]);
  t.equal(missing.code, 1);
  t.match(missing.err, /\[PKG_UNREADABLE\]/);
});

t.test('bin/overlay-pkg.js runs as a process (after npm run build)', async (t) => {
  const env = setup(t);
  const file = path.join(env.work, 'bin.ipk');
  execFileSync('npm', ['run', '-s', 'build:ts'], { cwd: fileURLToPath(new URL('../..', import.meta.url)), stdio: 'ignore' });
  const b = spawnSync(process.execPath, [BIN, 'build', writeTree(path.join(env.work, 'src'), TREE), '-o', file], { encoding: 'utf8', env: { ...process.env, OVERLAY_PKG_CONFIG: env.config } });
  t.equal(b.status, 0, b.stderr);
  const i = spawnSync(process.execPath, [BIN, 'info', '--json', file], { encoding: 'utf8', env: { ...process.env, OVERLAY_PKG_CONFIG: env.config } });
  t.equal(i.status, 0, i.stderr);
  t.match(JSON.parse(i.stdout), { format: 'ipk', container: 'tar' });
  const v = spawnSync(process.execPath, [BIN, 'verify', file], { encoding: 'utf8', env: { ...process.env, OVERLAY_PKG_CONFIG: env.config } });
  t.equal(v.status, 1);
  t.match(v.stderr, /PKG_UNSIGNED/);
  const u = spawnSync(process.execPath, [BIN, 'nope'], { encoding: 'utf8' });
  t.equal(u.status, 2);
});
