// OCI bundle tars (the DSM packager's form): made by umoci, and by plain tar of a busybox root.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { describeTree } from '../helpers/packages.js';
import { tempDir } from '../helpers/subhost.js';

/** A bundle NAME/ made by umoci from an image holding busybox, with a version label. */
function umociBundle(work: string, name: string): string {
  const img = path.join(work, 'img');
  const layer = path.join(work, 'layer');
  mkdirSync(path.join(layer, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(layer, 'bin', 'busybox'));
  symlinkSync('busybox', path.join(layer, 'bin', 'sh'));
  const umoci = (...args: string[]) => execFileSync('umoci', args, { cwd: work, stdio: 'pipe' });
  umoci('init', '--layout', img);
  umoci('new', '--image', `${img}:latest`);
  umoci('insert', '--image', `${img}:latest`, layer, '/');
  umoci('config', '--image', `${img}:latest`, '--config.cmd', '/bin/sh', '--config.label', 'org.opencontainers.image.version=1.2.3');
  umoci('unpack', '--image', `${img}:latest`, path.join(work, name));
  return path.join(work, name);
}

t.test('a umoci bundle, as tar and as tar.gz', async (t) => {
  const work = tempDir(t);
  const bundle = umociBundle(work, 'boxapp');
  for (const [flag, ext] of [['-cf', 'tar'], ['-czf', 'tar.gz']] as const) {
    const file = path.join(work, `boxapp.${ext}`);
    execFileSync('tar', ['--numeric-owner', flag, file, 'boxapp'], { cwd: work });
    const info = await openPackage(file);
    t.equal(info.format, 'oci', ext);
    t.equal(info.container, undefined);
    t.match(info.control, { package: 'boxapp', version: '1.2.3', architecture: 'amd64' });
    t.match(info.oci?.config, { process: { args: ['/bin/sh'] } });
    t.same(info.files.map((f) => f.path).sort(), ['bin', 'bin/busybox', 'bin/sh']);
    t.same(info.problems, []);
    const dest = path.join(work, `out-${ext}`);
    await unpackPackage(file, dest);
    t.same(describeTree(dest), describeTree(path.join(bundle, 'rootfs')), 'the rootfs, re-rooted');
  }
});

t.test('a plain tar of a busybox root with a hand-written config.json', async (t) => {
  const work = tempDir(t);
  const root = path.join(work, 'bb', 'rootfs');
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  writeFileSync(path.join(work, 'bb', 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { args: ['/bin/busybox', 'sh'], cwd: '/' }, root: { path: 'rootfs' } }));
  const file = path.join(work, 'bb.tar');
  execFileSync('tar', ['-cf', file, 'bb'], { cwd: work });
  const info = await openPackage(file);
  t.match(info.control, { package: 'bb', version: '0', architecture: 'all' });
});

t.test('broken bundles', async (t) => {
  const work = tempDir(t);
  const make = (name: string, build: (dir: string) => void, args: string[]) => {
    const dir = path.join(work, name);
    mkdirSync(dir);
    build(dir);
    const file = path.join(work, `${name}.tar`);
    execFileSync('tar', ['-cf', file, ...args], { cwd: dir });
    return file;
  };
  const base = (dir: string, config = '{}') => {
    mkdirSync(path.join(dir, 'app', 'rootfs', 'etc'), { recursive: true });
    writeFileSync(path.join(dir, 'app', 'config.json'), config);
  };
  await t.rejects(openPackage(make('noconf', (d) => mkdirSync(path.join(d, 'app', 'rootfs'), { recursive: true }), ['app'])), { code: 'PKG_MEMBER_MISSING', member: 'config.json' });
  await t.rejects(openPackage(make('badjson', (d) => base(d, '{nope'), ['app'])), { code: 'PKG_BAD_CONTROL' });
  await t.rejects(openPackage(make('two', (d) => { base(d); mkdirSync(path.join(d, 'other')); }, ['app', 'other'])), { code: 'PKG_FORMAT' });
  await t.rejects(openPackage(make('badver', (d) => base(d, JSON.stringify({ annotations: { 'org.opencontainers.image.version': 'x y' } })), ['app'])), { code: 'PKG_BAD_CONTROL' });
  const through = make('through', (d) => {
    base(d);
    symlinkSync('/etc', path.join(d, 'app', 'rootfs', 'link'));
    mkdirSync(path.join(d, 'x', 'app', 'rootfs', 'link'), { recursive: true });
    writeFileSync(path.join(d, 'x', 'app', 'rootfs', 'link', 'passwd'), 'x');
  }, ['app', '-C', 'x', 'app/rootfs/link/passwd']);
  const info = await openPackage(through);
  t.match(info.problems, [/app\/rootfs\/link\/passwd: path passes through the symlink link \[PKG_UNSAFE_PATH\]/]);
});

t.test('a tar that is neither an ipk nor a bundle is PKG_FORMAT', async (t) => {
  const work = tempDir(t);
  mkdirSync(path.join(work, 'src', 'docs'), { recursive: true });
  writeFileSync(path.join(work, 'src', 'docs', 'a.txt'), 'a');
  const file = path.join(work, 'docs.tar.gz');
  execFileSync('tar', ['-czf', file, '-C', path.join(work, 'src'), 'docs']);
  await t.rejects(openPackage(file), { code: 'PKG_FORMAT' });
});
