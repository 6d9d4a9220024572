import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, linkSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildPackage, buildRemovalPackage } from '../../src/package/build.js';
import { keyTemp } from '../helpers/keys.js';
import { openPackage } from '../../src/package/open.js';
import { makeIpkByHand, writeTree } from '../helpers/packages.js';

const LONG = `${'long-directory-name-'.repeat(4)}/${'f'.repeat(110)}`;
// a multi-byte character across the 100-byte cut of the name field
const LONG_UTF8 = `${'u'.repeat(99)}ü-${'v'.repeat(10)}`;

/** A package directory in opkg-build's layout with every kind of entry. */
export function sampleTree(root: string, opts: { version?: string } = {}): string {
  writeTree(root, {
    'CONTROL/control': `Package: sample\nVersion: ${opts.version ?? '1.2-3'}\nArchitecture: all\nMaintainer: Someone <a@example.org>\nDescription: a sample\n more text\n`,
    'CONTROL/postinst': { content: '#!/bin/sh\necho configured\n', mode: 0o644 },
    'CONTROL/prerm': { content: '#!/bin/sh\n', mode: 0o700 },
    'CONTROL/conffiles': '/etc/sample.conf\n',
    'etc/sample.conf': 'key=value\n',
    'usr/bin/sample': { content: '#!/bin/sh\necho sample\n', mode: 0o4755 },
    'usr/share/doc/sample/README': 'read me\n'.repeat(100),
    'usr/lib/empty': { dir: true, mode: 0o750 },
    'usr/bin/link': { symlink: 'sample' },
    [LONG]: 'deep\n',
    [`usr/share/${LONG_UTF8}`]: 'ü\n',
    'usr/bin/long-link': { symlink: `../share/${LONG_UTF8}` },
  });
  linkSync(path.join(root, 'usr/bin/sample'), path.join(root, 'usr/bin/sample-hard'));
  chmodSync(root, 0o755);
  return root;
}

function member(pkg: string, name: string): Buffer {
  return execFileSync('tar', ['-xzOf', pkg, `./${name}`], { maxBuffer: 1 << 30 });
}

t.test('the data tar is byte for byte what GNU tar writes in ipkg-build form; control as expected', async (t) => {
  const work = keyTemp(t, 'ovb-build-');
  const dir = sampleTree(path.join(work, 'pkg'));
  const r = await buildPackage(dir, { outDir: work, env: {} });
  t.equal(path.basename(r.file), 'sample_1.2-3_all.ipk');
  const dataOnly = path.join(work, 'data-only');
  cpSync(dir, dataOnly, { recursive: true, preserveTimestamps: false, verbatimSymlinks: true });
  execFileSync('rm', ['-rf', path.join(dataOnly, 'CONTROL')]);
  const gnu = execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '--sort=name',
    '--hard-dereference', '-cf', '-', '-C', dataOnly, '.'], { maxBuffer: 1 << 30 });
  const ours = gunzipSync(member(r.file, 'data.tar.gz'));
  // cpSync does not keep the hard link: compare the listing around it, and the bytes on a tree without it
  t.match(execFileSync('tar', ['-tvf', '-'], { input: ours }).toString(), /hrwsr-xr-x 0\/0 +0 1970-01-01 00:00 \.\/usr\/bin\/sample-hard link to \.\/usr\/bin\/sample/);
  execFileSync('rm', [path.join(dir, 'usr/bin/sample-hard'), path.join(dataOnly, 'usr/bin/sample-hard')]);
  const again = await buildPackage(dir, { output: path.join(work, 'nolink.ipk'), env: {} });
  const gnu2 = execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@0', '--sort=name', '-cf', '-', '-C', dataOnly, '.'], { maxBuffer: 1 << 30 });
  t.ok(gunzipSync(member(again.file, 'data.tar.gz')).equals(gnu2), 'identical to GNU tar');
  const dated = await buildPackage(dir, { output: path.join(work, 'dated.ipk'), env: { SOURCE_DATE_EPOCH: '1700000000' } });
  const gnu3 = execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@1700000000', '--sort=name', '-cf', '-', '-C', dataOnly, '.'], { maxBuffer: 1 << 30 });
  t.ok(gunzipSync(member(dated.file, 'data.tar.gz')).equals(gnu3), 'identical to GNU tar --mtime=@SOURCE_DATE_EPOCH');
  t.not(gnu.length, 0);

  const control = member(r.file, 'control.tar.gz');
  const listing = execFileSync('tar', ['-tvzf', '-'], { input: control }).toString();
  t.match(listing, /-rwxr-xr-x 0\/0 .* \.\/postinst/, 'scripts are executable whatever their mode on disk');
  t.match(listing, /-rwxr-xr-x 0\/0 .* \.\/prerm/);
  t.match(listing, /-rw-r--r-- 0\/0 .* \.\/conffiles/);
  const ctl = execFileSync('tar', ['-xzOf', '-', './control'], { input: control }).toString();
  const size = ['etc/sample.conf', 'usr/bin/sample', 'usr/share/doc/sample/README', LONG, `usr/share/${LONG_UTF8}`].reduce((n, f) => n + readFileSync(path.join(work, 'pkg', f)).length, 0);
  t.equal(r.installedSize, size, 'Installed-Size counts a hard-linked file once');
  t.equal(ctl, `Package: sample\nVersion: 1.2-3\nArchitecture: all\nMaintainer: Someone <a@example.org>\nDescription: a sample\n more text\nInstalled-Size: ${size}\n`);
  t.equal(r.control.fields['Installed-Size'], String(size));
  t.same(execFileSync('tar', ['-tzf', r.file]).toString().split('\n').filter(Boolean), ['./debian-binary', './control.tar.gz', './data.tar.gz']);
  t.equal(member(r.file, 'debian-binary').toString(), '2.0\n');
  const gz = readFileSync(r.file);
  t.same([...gz.subarray(0, 10)], [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3], 'gzip header: no name, mtime 0, fixed flags');
});

t.test('reproducible: same input, same bytes, whoever builds it and whenever', async (t) => {
  const work = keyTemp(t, 'ovb-build-');
  const a = sampleTree(path.join(work, 'a'));
  const b = path.join(work, 'b');
  cpSync(a, b, { recursive: true, verbatimSymlinks: true });
  // cpSync does not keep hard links
  execFileSync('rm', [path.join(b, 'usr/bin/sample-hard')]);
  linkSync(path.join(b, 'usr/bin/sample'), path.join(b, 'usr/bin/sample-hard'));
  utimesSync(path.join(b, 'etc/sample.conf'), 12345, 67890);
  execFileSync('chown', ['-R', '1234:5678', b]);
  chmodSync(path.join(b, 'usr/bin/sample'), 0o4755); // chown cleared the setuid bit
  for (const container of ['tar', 'ar'] as const) {
    const x = await buildPackage(a, { output: path.join(work, `x-${container}.ipk`), container, env: {} });
    const y = await buildPackage(b, { output: path.join(work, `y-${container}.ipk`), container, env: {} });
    t.ok(readFileSync(x.file).equals(readFileSync(y.file)), `${container}: identical bytes`);
    const z = await buildPackage(a, { output: path.join(work, `z-${container}.ipk`), container, env: { SOURCE_DATE_EPOCH: '1700000000' } });
    t.notOk(readFileSync(x.file).equals(readFileSync(z.file)), `${container}: SOURCE_DATE_EPOCH changes the mtimes`);
  }
  const z = path.join(work, 'z-tar.ipk');
  t.match(execFileSync('tar', ['-tvzf', z]).toString(), /2023-11-14 .*\.\/data\.tar\.gz/);
  t.same(execFileSync('ar', ['t', path.join(work, 'x-ar.ipk')]).toString().split('\n').filter(Boolean), ['debian-binary', 'control.tar.gz', 'data.tar.gz']);
  t.match(execFileSync('ar', ['tv', path.join(work, 'x-ar.ipk')]).toString(), /rw-r--r-- 0\/0 +4 .*debian-binary/);
  // the ar form is what binutils' ar -crD (opkg-build's way) makes of the tar form's members
  const members = path.join(work, 'members');
  mkdirSync(members);
  execFileSync('tar', ['-xzf', path.join(work, 'x-tar.ipk'), '-C', members]);
  execFileSync('ar', ['-crD', path.join(work, 'by-ar.ipk'), 'debian-binary', 'control.tar.gz', 'data.tar.gz'], { cwd: members });
  t.ok(readFileSync(path.join(work, 'by-ar.ipk')).equals(readFileSync(path.join(work, 'x-ar.ipk'))), 'identical to ar -crD');
});

t.test('a bad directory is PKG_BUILD_FAILED naming the file; nothing is left behind', async (t) => {
  const work = keyTemp(t, 'ovb-build-');
  const out = path.join(work, 'out');
  mkdirSync(out);
  const cases: [string, (dir: string) => void, RegExp | string, Record<string, unknown>][] = [
    ['no CONTROL', (d) => writeTree(d, { 'usr/x': 'x' }), 'CONTROL', {}],
    ['no control', (d) => writeTree(d, { 'CONTROL/postinst': 'x' }), 'CONTROL/control', {}],
    ['missing Version', (d) => writeTree(d, { 'CONTROL/control': 'Package: p\nArchitecture: all\n' }), 'CONTROL/control', { variable: 'Version' }],
    ['bad name', (d) => writeTree(d, { 'CONTROL/control': 'Package: Bad_Name\nVersion: 1\nArchitecture: all\n' }), 'CONTROL/control', { variable: 'Package', line: 1 }],
    ['bad version', (d) => writeTree(d, { 'CONTROL/control': 'Package: p\nVersion: a:b\nArchitecture: all\n' }), 'CONTROL/control', { variable: 'Version', line: 2 }],
    ['conffile not in data', (d) => writeTree(d, { 'CONTROL/control': 'Package: p\nVersion: 1\nArchitecture: all\n', 'CONTROL/conffiles': '/etc/none\n' }), 'CONTROL/conffiles', {}],
    ['fifo in data', (d) => { writeTree(d, { 'CONTROL/control': 'Package: p\nVersion: 1\nArchitecture: all\n' }); execFileSync('mkfifo', [path.join(d, 'pipe')]); }, 'pipe', {}],
    ['subdirectory in CONTROL', (d) => writeTree(d, { 'CONTROL/control': 'Package: p\nVersion: 1\nArchitecture: all\n', 'CONTROL/sub/x': 'x' }), 'CONTROL/sub', {}],
  ];
  for (const [name, make, file, extra] of cases) {
    const dir = path.join(work, name.replace(/ /g, '-'));
    make(dir);
    await t.rejects(buildPackage(dir, { outDir: out }), { code: 'PKG_BUILD_FAILED', file: path.join(dir, file as string), ...extra }, name);
    t.same(readdirSync(out), [], `${name}: nothing left`);
  }
  await t.rejects(buildPackage(path.join(work, 'absent'), { outDir: out }), { code: 'PKG_BUILD_FAILED', file: path.join(work, 'absent') });
  const ok = sampleTree(path.join(work, 'ok'));
  await t.rejects(buildPackage(ok, { outDir: out, env: { SOURCE_DATE_EPOCH: 'yesterday' } }), { code: 'PKG_BUILD_FAILED', file: 'SOURCE_DATE_EPOCH' });
  chmodSync(path.join(ok, 'etc/sample.conf'), 0o000);
  // root reads anything; as another user an unreadable file fails the build
  if (process.getuid?.() !== 0) await t.rejects(buildPackage(ok, { outDir: out }), { code: 'PKG_BUILD_FAILED' });
  t.same(readdirSync(out), []);
});

t.test('a removal package: NAME-remove, Tags: remove, no data', async (t) => {
  const work = keyTemp(t, 'ovb-build-');
  const r = await buildRemovalPackage('webapp', { outDir: work, env: {} });
  t.equal(path.basename(r.file), 'webapp-remove_1_all.ipk');
  t.same(readdirSync(work), ['webapp-remove_1_all.ipk'], 'no scratch directory left');
  t.match(r.control.fields, { Package: 'webapp-remove', Tags: 'remove', Depends: 'webapp', Architecture: 'all', 'Installed-Size': '0' });
  t.match(r.control.fields.Description, /webapp/);
  t.same(execFileSync('tar', ['-tzf', '-'], { input: member(r.file, 'data.tar.gz') }).toString(), './\n');
  const o = await buildRemovalPackage('webapp', { output: path.join(work, 'sub', 'rm.ipk'), container: 'ar', env: {} });
  t.equal(o.file, path.join(work, 'sub', 'rm.ipk'));
  await t.rejects(buildRemovalPackage('Bad Name', { outDir: work }), { code: 'PKG_BUILD_FAILED', variable: 'NAME' });
  writeFileSync(path.join(work, 'marker'), '');
});

t.test('what we build reads the same as the package ipkg-build makes by hand from the same tree', async (t) => {
  const work = keyTemp(t, 'ovb-build-');
  for (const container of ['tar', 'ar'] as const) {
    const w = path.join(work, container);
    mkdirSync(w);
    const hand = makeIpkByHand({
      work: w, container,
      control: { Package: 'same', Version: '3.1-2', Architecture: 'all', Description: 'the same' },
      scripts: { postinst: '#!/bin/sh\nexit 0\n', prerm: '#!/bin/sh\n' },
      conffiles: ['/etc/same.conf'],
      data: { 'etc/same.conf': 'x=1\n', 'usr/bin/same': { content: '#!/bin/sh\n', mode: 0o755 }, 'usr/lib/same': { symlink: '../bin/same' }, 'var/empty': { dir: true, mode: 0o700 } },
    });
    const dir = path.join(w, 'ours');
    execFileSync('cp', ['-a', path.join(w, 'data'), dir]);
    execFileSync('cp', ['-a', path.join(w, 'CONTROL'), path.join(dir, 'CONTROL')]);
    const ours = await buildPackage(dir, { output: path.join(w, 'ours.ipk'), container, env: {} });
    const [a, b] = [await openPackage(hand), await openPackage(ours.file)];
    const byPath = (x: { path: string }, y: { path: string }) => (x.path < y.path ? -1 : 1);
    t.same([...b.files].sort(byPath), [...a.files].sort(byPath), `${container}: same data entries`);
    t.same(b.scripts, a.scripts);
    t.same(b.conffiles, a.conffiles);
    t.same({ ...b.control.fields, 'Installed-Size': undefined }, { ...a.control.fields, 'Installed-Size': undefined });
    t.equal(b.control.fields['Installed-Size'], String(a.installedSize), 'Installed-Size is the data size the reader counts');
    t.match(b, { format: 'ipk', container, problems: [] });
    t.equal(a.format, 'ipk');
  }
});
