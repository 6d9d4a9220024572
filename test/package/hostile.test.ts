// Hostile packages, each made by hand with GNU tar/ar: openPackage lists the problem,
// verifyPackage and unpackPackage refuse it with the coded error and leave nothing behind.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../../src/errors.js';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { verifyPackage } from '../../src/package/verify.js';
import { makeDebByHand, makeIpkByHand, makeIpkMembers, packMembers } from '../helpers/packages.js';
import { tempDir } from '../helpers/subhost.js';

const CONTROL = { Package: 'evil', Version: '1.0', Architecture: 'all' };
const GNU = ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0'];

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return e instanceof OverlayBootError ? e.code : `not an OverlayBootError: ${String(e)}`;
  }
  return 'resolved';
}

interface Case {
  name: string;
  code: string;
  /** Text the problem names (the member path). */
  member: string;
  /** Makes data.tar.gz at `out`; `src` is a scratch directory. */
  make(out: string, src: string): void;
  /** The problem is not raised with these options. */
  allow?: { allowDevices?: boolean; allowSetid?: boolean };
}

const CASES: Case[] = [
  {
    name: 'absolute member path', code: 'PKG_UNSAFE_PATH', member: '/etc/evil',
    make: (out, src) => {
      writeFileSync(path.join(src, 'f'), 'x');
      execFileSync('tar', [...GNU, '-P', '-czf', out, '-C', src, '--transform=s,^\\./f$,/etc/evil,', './f']);
    },
  },
  {
    name: '.. component', code: 'PKG_UNSAFE_PATH', member: '../../evil',
    make: (out, src) => {
      writeFileSync(path.join(src, 'f'), 'x');
      execFileSync('tar', [...GNU, '-P', '-czf', out, '-C', src, '--transform=s,^\\./f$,./a/../../../evil,', './f']);
    },
  },
  {
    name: 'path through a symlink made earlier in the archive', code: 'PKG_UNSAFE_PATH', member: './a/passwd',
    make: (out, src) => {
      mkdirSync(path.join(src, 'one'));
      symlinkSync('/etc', path.join(src, 'one', 'a'));
      mkdirSync(path.join(src, 'two', 'a'), { recursive: true });
      writeFileSync(path.join(src, 'two', 'a', 'passwd'), 'root::0:0::/:/bin/sh\n');
      execFileSync('tar', [...GNU, '-czf', out, '-C', path.join(src, 'one'), './a', '-C', path.join(src, 'two'), './a/passwd']);
    },
  },
  {
    name: 'path through a regular file', code: 'PKG_UNSAFE_PATH', member: './a/b',
    make: (out, src) => {
      mkdirSync(path.join(src, 'one'));
      writeFileSync(path.join(src, 'one', 'a'), 'x');
      mkdirSync(path.join(src, 'two', 'a'), { recursive: true });
      writeFileSync(path.join(src, 'two', 'a', 'b'), 'y');
      execFileSync('tar', [...GNU, '-czf', out, '-C', path.join(src, 'one'), './a', '-C', path.join(src, 'two'), './a/b']);
    },
  },
  {
    name: 'hard link to a file outside the package', code: 'PKG_UNSAFE_LINK', member: './g',
    make: (out, src) => {
      writeFileSync(path.join(src, 'f'), 'x');
      linkSync(path.join(src, 'f'), path.join(src, 'g'));
      execFileSync('tar', [...GNU, '-P', '-czf', out, '-C', src, '--transform=s,^\\./f$,/etc/shadow,hRS', './f', './g']);
    },
  },
  {
    name: 'hard link to a later member', code: 'PKG_UNSAFE_LINK', member: './g',
    make: (out, src) => {
      writeFileSync(path.join(src, 'f'), 'x');
      linkSync(path.join(src, 'f'), path.join(src, 'g'));
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '--transform=s,^\\./f$,./z,hRS', './f', './g']);
    },
  },
  {
    name: 'character device', code: 'PKG_DEVICE', member: './dev/evil', allow: { allowDevices: true },
    make: (out, src) => {
      mkdirSync(path.join(src, 'dev'));
      execFileSync('mknod', [path.join(src, 'dev', 'evil'), 'c', '1', '3']);
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '.']);
    },
  },
  {
    name: 'block device', code: 'PKG_DEVICE', member: './evil',
    make: (out, src) => {
      execFileSync('mknod', [path.join(src, 'evil'), 'b', '7', '0']);
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '.']);
    },
  },
  {
    name: 'setuid file', code: 'PKG_SETID', member: './su', allow: { allowSetid: true },
    make: (out, src) => {
      writeFileSync(path.join(src, 'su'), '#!/bin/sh\n');
      chmodSync(path.join(src, 'su'), 0o4755);
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '.']);
    },
  },
  {
    name: 'setgid file', code: 'PKG_SETID', member: './sg',
    make: (out, src) => {
      writeFileSync(path.join(src, 'sg'), '#!/bin/sh\n');
      chmodSync(path.join(src, 'sg'), 0o2755);
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '.']);
    },
  },
  {
    name: 'duplicate data member', code: 'PKG_MEMBER_DUPLICATE', member: './f',
    make: (out, src) => {
      writeFileSync(path.join(src, 'f'), 'x');
      execFileSync('tar', [...GNU, '--hard-dereference', '-czf', out, '-C', src, './f', './f']);
    },
  },
];

for (const c of CASES) {
  t.test(c.name, async (t) => {
    const work = tempDir(t);
    const src = path.join(work, 'src');
    mkdirSync(src);
    const file = makeIpkByHand({ work, control: CONTROL, data: {}, dataTar: (out) => c.make(out, src) });
    const info = await openPackage(file);
    t.equal(info.problems.length, 1, 'one problem');
    t.match(info.problems[0], `${c.member}: `);
    t.match(info.problems[0], `[${c.code}]`);
    t.equal(await codeOf(verifyPackage(file, { keys: [], requireSignature: false })), c.code, 'verify refuses');
    const dest = path.join(work, 'out', 'root');
    mkdirSync(path.dirname(dest));
    t.equal(await codeOf(unpackPackage(file, dest)), c.code, 'unpack refuses');
    t.same(readdirSync(path.dirname(dest)), [], 'nothing left behind');
    if (c.allow) {
      const ok = await openPackage(file, c.allow);
      t.same(ok.problems, [], 'allowed by option');
      await unpackPackage(file, dest, c.allow);
      t.ok(existsSync(path.join(dest, c.member)), 'unpacked when allowed');
    }
  });
}

t.test('the symlink case writes nothing through the link even when unpacking fails', async (t) => {
  const work = tempDir(t);
  const src = path.join(work, 'src');
  const target = path.join(work, 'target');
  mkdirSync(src);
  mkdirSync(target);
  const file = makeIpkByHand({
    work, control: CONTROL, data: {}, dataTar: (out) => {
      mkdirSync(path.join(src, 'one'));
      symlinkSync(target, path.join(src, 'one', 'a'));
      mkdirSync(path.join(src, 'two', 'a'), { recursive: true });
      writeFileSync(path.join(src, 'two', 'a', 'x'), 'owned');
      execFileSync('tar', [...GNU, '-czf', out, '-C', path.join(src, 'one'), './a', '-C', path.join(src, 'two'), './a/x']);
    },
  });
  t.equal(await codeOf(unpackPackage(file, path.join(work, 'dest'))), 'PKG_UNSAFE_PATH');
  t.same(readdirSync(target), []);
  t.notOk(existsSync(path.join(work, 'dest')));
});

t.test('decompression bomb: the cap is enforced while streaming', async (t) => {
  const work = tempDir(t);
  const src = path.join(work, 'src');
  mkdirSync(src);
  const file = makeIpkByHand({
    work, control: CONTROL, data: {}, dataTar: (out) => {
      execFileSync('dd', ['if=/dev/zero', `of=${path.join(src, 'zeros')}`, 'bs=1M', 'count=64'], { stdio: 'ignore' });
      execFileSync('tar', [...GNU, '-czf', out, '-C', src, '.']);
    },
  });
  const opts = { maxUnpackedSize: 8 * 1024 * 1024, maxMemberSize: 1024 * 1024 * 1024 };
  t.equal(await codeOf(openPackage(file, opts)), 'PKG_TOO_LARGE');
  t.equal(await codeOf(unpackPackage(file, path.join(work, 'dest'), opts)), 'PKG_TOO_LARGE');
  t.notOk(existsSync(path.join(work, 'dest')));
  t.same(readdirSync(work).filter((n) => n.includes('unpack')), [], 'no staging directory left');
  // a member above maxMemberSize is a problem, refused by verify
  const info = await openPackage(file, { maxMemberSize: 1024 * 1024 });
  t.match(info.problems.join('\n'), /zeros: .*member cap.*\[PKG_TOO_LARGE\]/);
  t.equal(await codeOf(verifyPackage(file, { keys: [], requireSignature: false, maxMemberSize: 1024 * 1024 })), 'PKG_TOO_LARGE');
});

t.test('duplicate outer members, in both containers', async (t) => {
  const work = tempDir(t);
  const members = makeIpkMembers({ work, control: CONTROL, data: { f: 'x' } });
  const tarFile = path.join(work, 'dup.ipk');
  execFileSync('tar', [...GNU, '-czf', tarFile, './debian-binary', './data.tar.gz', './data.tar.gz', './control.tar.gz'], { cwd: members });
  t.equal(await codeOf(openPackage(tarFile)), 'PKG_MEMBER_DUPLICATE');
  const arFile = path.join(work, 'dup-ar.ipk');
  execFileSync('ar', ['qc', arFile, 'debian-binary', 'control.tar.gz', 'data.tar.gz', 'data.tar.gz'], { cwd: members });
  t.equal(await codeOf(openPackage(arFile)), 'PKG_MEMBER_DUPLICATE');
  // and a member missing
  const missing = path.join(work, 'missing.ipk');
  execFileSync('tar', [...GNU, '-czf', missing, './debian-binary', './control.tar.gz'], { cwd: members });
  t.equal(await codeOf(openPackage(missing)), 'PKG_MEMBER_MISSING');
});

t.test('corrupt or truncated at every layer is a coded error', async (t) => {
  const work = tempDir(t);
  const members = makeIpkMembers({ work, control: CONTROL, data: { f: 'x'.repeat(100000), 'g/h': 'y' } });
  const ipk = packMembers(members, path.join(work, 'ok.ipk'), 'tar');
  const arIpk = packMembers(members, path.join(work, 'ok-ar.ipk'), 'ar');
  const cut = (src: string, n: number, name: string) => {
    const out = path.join(work, name);
    execFileSync('head', ['-c', String(n), src], { stdio: ['ignore', 'pipe', 'ignore'] });
    writeFileSync(out, execFileSync('head', ['-c', String(n), src]));
    return out;
  };
  const size = (f: string) => Number(execFileSync('stat', ['-c', '%s', f], { encoding: 'utf8' }));
  for (const frac of [0.1, 0.5, 0.9]) {
    t.equal(await codeOf(openPackage(cut(ipk, Math.floor(size(ipk) * frac), `t${frac}`))), 'PKG_CORRUPT', `tar form cut at ${frac}`);
    t.equal(await codeOf(openPackage(cut(arIpk, Math.floor(size(arIpk) * frac), `a${frac}`))), 'PKG_CORRUPT', `ar form cut at ${frac}`);
  }
  // a data.tar.gz whose gzip stream is damaged, inside an intact container
  const bad = path.join(work, 'bad');
  mkdirSync(bad);
  for (const m of ['debian-binary', 'control.tar.gz', 'data.tar.gz']) execFileSync('cp', [path.join(members, m), bad]);
  const d = path.join(bad, 'data.tar.gz');
  writeFileSync(d, execFileSync('head', ['-c', String(size(d) - 20), d]));
  t.equal(await codeOf(openPackage(packMembers(bad, path.join(work, 'bad.ipk'), 'ar'))), 'PKG_CORRUPT', 'truncated data.tar.gz');
  t.equal(await codeOf(openPackage(path.join(work, 'nonexistent'))), 'PKG_UNREADABLE');
  writeFileSync(path.join(work, 'text'), 'hello world, not a package\n'.repeat(30));
  t.equal(await codeOf(openPackage(path.join(work, 'text'))), 'PKG_FORMAT');
});

t.test('corrupt xz and zstd members of a deb are PKG_CORRUPT naming the member', async (t) => {
  const work = tempDir(t);
  for (const [compression, ext] of [['xz', 'xz'], ['zstd', 'zst'], ['gzip', 'gz']] as const) {
    const dir = path.join(work, compression);
    const deb = makeDebByHand({ work: dir, control: CONTROL, data: { f: 'z'.repeat(200000), g: 'y' }, compression });
    const x = path.join(dir, 'x');
    mkdirSync(x);
    execFileSync('ar', ['x', deb], { cwd: x });
    const member = `data.tar.${ext}`;
    const whole = execFileSync('cat', [path.join(x, member)]);
    for (const [what, bytes] of [['truncated', whole.subarray(0, Math.floor(whole.length / 2))], ['garbage', Buffer.concat([whole.subarray(0, 12), Buffer.alloc(whole.length - 12, 0x55)])]] as const) {
      writeFileSync(path.join(x, member), bytes);
      const out = path.join(dir, `${what}.deb`);
      execFileSync('ar', ['rc', out, 'debian-binary', `control.tar.${ext}`, member], { cwd: x });
      const e = await openPackage(out).then(() => undefined, (err: unknown) => err);
      t.match(e, { code: 'PKG_CORRUPT', member }, `${compression} ${what}`);
      t.equal(await codeOf(unpackPackage(out, path.join(dir, `dest-${what}`))), 'PKG_CORRUPT');
      t.notOk(existsSync(path.join(dir, `dest-${what}`)));
    }
  }
});
