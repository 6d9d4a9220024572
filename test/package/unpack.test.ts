// Round trips: a package made by hand from a tree, opened, verified and unpacked, gives the tree back.
import t from 'tap';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../../src/errors.js';
import { parsePublicKey } from '../../src/package/keys.js';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { verifyPackage } from '../../src/package/verify.js';
import { describeTree, makeIpkByHand, type TreeEntry } from '../helpers/packages.js';
import { keyTemp, opensslKey } from '../helpers/keys.js';
import { tempDir } from '../helpers/subhost.js';

const TREE: Record<string, TreeEntry> = {
  'usr/bin/tool': { content: '#!/bin/sh\necho tool\n', mode: 0o755 },
  'usr/share/doc/tool/README': 'read me\n',
  'usr/share/doc/tool/empty': '',
  'usr/lib/tool/libtool.so.1': { content: Buffer.alloc(70000, 7), mode: 0o644 },
  'usr/lib/tool/libtool.so': { symlink: 'libtool.so.1' },
  'usr/lib/tool/abs': { symlink: '/etc/tool.conf' },
  'usr/lib/tool/hard': { hardlink: 'usr/share/doc/tool/README' },
  'etc/tool.conf': { content: 'secret=1\n', mode: 0o600 },
  'var/spool/tool': { dir: true, mode: 0o1777 },
  'srv/ro': { dir: true, mode: 0o555 },
};

t.test('ipk (tar and ar form) → open → verify → unpack gives back the tree', async (t) => {
  const keyDir = keyTemp(t);
  const key = opensslKey(keyDir, 'ed25519');
  const keys = [parsePublicKey(readFileSync(key.public), key.public)];
  for (const container of ['tar', 'ar'] as const) {
    const work = tempDir(t);
    const file = makeIpkByHand({ work, control: { Package: 'tool', Version: '3.1-2', Architecture: 'all' }, data: TREE, container, signKey: key });
    const info = await openPackage(file);
    t.same(info.problems, []);
    await verifyPackage(file, { keys });
    const dest = path.join(work, 'dest');
    const r = await unpackPackage(file, dest, { keys });
    const want = describeTree(path.join(work, 'data'));
    t.same(describeTree(dest), want, `${container}: paths, types, modes, owners, contents and link targets`);
    t.equal(r.files, Object.keys(want).length);
    t.equal(r.bytes, info.installedSize);
    t.same(readdirSync(work).filter((n) => n.includes('unpack')), [], 'no staging directory left');
  }
});

t.test('the destination: an empty directory is fine, a non-empty one is refused', async (t) => {
  const work = tempDir(t);
  const file = makeIpkByHand({ work, control: { Package: 'tool', Version: '1', Architecture: 'all' }, data: { a: 'a\n' } });
  const empty = path.join(work, 'empty');
  mkdirSync(empty);
  await unpackPackage(file, empty);
  t.equal(readFileSync(path.join(empty, 'a'), 'utf8'), 'a\n');
  const full = path.join(work, 'full');
  mkdirSync(full);
  writeFileSync(path.join(full, 'x'), 'x');
  await t.rejects(unpackPackage(file, full), { code: 'USAGE' });
  t.same(readdirSync(full), ['x']);
});

t.test('with keys, an unverified package is not put in place', async (t) => {
  const work = tempDir(t);
  const keyDir = keyTemp(t);
  const key = opensslKey(keyDir, 'rsa');
  const file = makeIpkByHand({ work, control: { Package: 'tool', Version: '1', Architecture: 'all' }, data: { a: 'a\n' } });
  const dest = path.join(work, 'dest');
  const e = await unpackPackage(file, dest, { keys: [parsePublicKey(readFileSync(key.public))] }).catch((x: unknown) => x);
  t.ok(e instanceof OverlayBootError && e.code === 'PKG_UNSIGNED');
  t.same(readdirSync(work).filter((n) => n.startsWith('dest') || n.includes('unpack')), []);
});
