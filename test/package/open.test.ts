// openPackage on packages made by hand, in every container and compression a user meets.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { openPackage } from '../../src/package/open.js';
import { makeDebByHand, makeIpkByHand, type TreeEntry } from '../helpers/packages.js';
import { tempDir } from '../helpers/subhost.js';

const DATA: Record<string, TreeEntry> = {
  'usr/bin/hello': { content: '#!/bin/sh\necho hi\n', mode: 0o755 },
  'etc/hello.conf': 'greeting=hi\n',
  'usr/lib/hello/link': { symlink: '../../bin/hello' },
  'usr/share/hello/hard': { hardlink: 'etc/hello.conf' },
  'var/lib/hello': { dir: true, mode: 0o750 },
};
const CONTROL = { Package: 'hello', Version: '1:2.10-3~rc1', Architecture: 'all', Maintainer: 'A <a@example.com>', Description: 'greets\n more text' };
const SCRIPTS = { postinst: '#!/bin/sh\necho configured\n', prerm: '#!/bin/sh\nexit 0\n' };

function byPath(files: { path: string }[]) {
  return Object.fromEntries(files.map((f) => [f.path, f]));
}

t.test('ipk in OpenWrt form (gzip tar made as ipkg-build does)', async (t) => {
  const work = tempDir(t);
  const file = makeIpkByHand({ work, control: CONTROL, data: DATA, scripts: SCRIPTS, conffiles: ['/etc/hello.conf'] });
  const info = await openPackage(file);
  t.equal(info.format, 'ipk');
  t.equal(info.container, 'tar');
  t.equal(info.encrypted, false);
  t.equal(info.control.package, 'hello');
  t.equal(info.control.version, '1:2.10-3~rc1');
  t.equal(info.control.fields.Description, 'greets\n more text');
  t.same(info.scripts, SCRIPTS);
  t.same(info.conffiles, ['/etc/hello.conf']);
  t.same(info.members.map((m) => m.name), ['debian-binary', 'data.tar.gz', 'control.tar.gz']);
  const sha = execFileSync('sha256sum', ['data.tar.gz'], { cwd: path.join(work, 'members'), encoding: 'utf8' }).split(' ')[0];
  t.equal(info.members[1]!.sha256, sha, 'member sha256 is of the bytes as stored');
  const f = byPath(info.files);
  t.match(f['usr/bin/hello'], { type: 'file', mode: 0o755, uid: 0, gid: 0, size: 18 });
  t.match(f['usr/lib/hello/link'], { type: 'symlink', linkTarget: '../../bin/hello' });
  t.match(f['var/lib/hello'], { type: 'dir', mode: 0o750 });
  // tar stores the second name of a file as a hard link to the first it met
  const hard = info.files.filter((x) => x.type === 'hardlink');
  t.equal(hard.length, 1);
  t.ok(['etc/hello.conf', 'usr/share/hello/hard'].includes(hard[0]!.linkTarget!));
  t.equal(info.installedSize, 18 + 12);
  t.same(info.problems, []);
  t.same(info.signature, { signed: false, verified: false, reason: 'PKG_UNSIGNED: the package has no signature' });
});

t.test('ipk in Debian form (ar) and debs of every compression', async (t) => {
  const work = tempDir(t);
  const ar = await openPackage(makeIpkByHand({ work: path.join(work, 'ar'), control: CONTROL, data: DATA, container: 'ar' }));
  t.equal(ar.format, 'ipk');
  t.equal(ar.container, 'ar');
  t.same(ar.members.map((m) => m.name), ['debian-binary', 'control.tar.gz', 'data.tar.gz']);
  for (const compression of ['gzip', 'xz', 'zstd'] as const) {
    const deb = makeDebByHand({ work: path.join(work, compression), control: CONTROL, data: DATA, scripts: SCRIPTS, conffiles: ['/etc/hello.conf'], compression });
    const info = await openPackage(deb);
    t.equal(info.format, 'deb', `dpkg-deb -Z${compression} is a deb`);
    t.equal(info.container, undefined);
    const ext = { gzip: '.gz', xz: '.xz', zstd: '.zst' }[compression];
    t.same(info.members.map((m) => m.name), ['debian-binary', `control.tar${ext}`, `data.tar${ext}`]);
    t.equal(info.control.version, '1:2.10-3~rc1');
    t.same(info.scripts, SCRIPTS);
    t.same(info.conffiles, ['/etc/hello.conf']);
    // dpkg-deb's own listing of the data agrees with ours
    const listing = execFileSync('dpkg-deb', ['--fsys-tarfile', deb]);
    const names = execFileSync('tar', ['-t'], { input: listing, encoding: 'utf8' }).split('\n').filter(Boolean)
      .map((n) => n.replace(/^\.\/?/, '').replace(/\/$/, '')).filter(Boolean).sort();
    t.same(info.files.map((f) => f.path).sort(), names, `${compression}: same paths as dpkg-deb`);
    t.same(info.problems, []);
  }
});
