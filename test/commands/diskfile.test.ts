import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diskfileMount, isMountPoint, splitMountPath } from '../../src/commands/diskfile.js';
import { main } from '../../src/cli/diskfile.js';
import { capture } from '../helpers/cli.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-diskfile.js', import.meta.url));

/** Mount points under `dir`, from the kernel's mount table. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => l.split(' ')[4]!).filter((m) => m === dir || m.startsWith(dir + '/')).sort();
}

/** Loop devices backed by `img`. */
function loopsOf(img: string): string[] {
  return execFileSync('losetup', ['-n', '-O', 'NAME', '-j', img], { encoding: 'utf8' }).split('\n').map((s) => s.trim()).filter(Boolean);
}

/**
 * A BASE-like directory under /tmp with a mount point `mnt`. Its teardown, run even
 * when the test fails, unmounts whatever is mounted under it, detaches every loop
 * device backed by one of its files and removes it.
 */
function workDir(t: Test): string {
  const dir = realpathSync(mkdtempSync('/tmp/ovb-disk-'));
  mkdirSync(path.join(dir, 'mnt'));
  t.teardown(() => {
    for (const m of mountsUnder(dir).reverse()) spawnSync('umount', [m], { stdio: 'ignore' });
    for (const m of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', m], { stdio: 'ignore' });
    for (const f of existsSync(dir) ? execFileSync('find', [dir, '-maxdepth', '1', '-name', '*.img'], { encoding: 'utf8' }).split('\n').filter(Boolean) : []) {
      for (const loop of loopsOf(f)) spawnSync('losetup', ['-d', loop], { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

/** A directory with one file `marker` holding `text`, for mkfs.ext4 -d. */
function contentDir(dir: string, text: string): string {
  const src = mkdtempSync(path.join(dir, 'src-'));
  writeFileSync(path.join(src, 'marker'), text);
  mkdirSync(path.join(src, 'rootfs'));
  writeFileSync(path.join(src, 'rootfs', 'hello'), `${text} in rootfs\n`);
  return src;
}

/** `mkfs.ext4` on `sectors` 512-byte sectors of `img` from sector `start`, filled from `src`. */
function mkfsAt(img: string, start: number, sectors: number, src: string): void {
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', `offset=${start * 512}`, '-d', src, img, `${(sectors * 512) / 1024}k`]);
}

/** A 24 MiB image: partition 1 left unformatted, partition 2 ext4 with a marker file. */
function partitionedImage(dir: string, name: string, label: 'dos' | 'gpt', marker: string): string {
  const img = path.join(dir, name);
  execFileSync('truncate', ['-s', '24M', img]);
  execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], {
    input: `label: ${label}\nstart=2048, size=4096\nstart=6144, size=16384\n`,
  });
  mkfsAt(img, 6144, 16384, contentDir(dir, marker));
  return img;
}

/** Run the CLI main() in `cwd`, as overlay-boot runs a '!' command. */
async function runIn(cwd: string, argv: string[], action?: string) {
  const io = capture({ ...process.env, ACTION: action, CONFIG: path.join(cwd, 'x.conf') });
  const old = process.cwd();
  process.chdir(cwd);
  try {
    const code = await main(argv, io);
    return { code, out: io.out, err: io.err };
  } finally {
    process.chdir(old);
  }
}

t.test('MOUNT/PATH is split at the first /, or at //', async (t) => {
  t.same(splitMountPath('mnt/'), { mount: 'mnt', path: '' });
  t.same(splitMountPath('mnt'), { mount: 'mnt', path: '' });
  t.same(splitMountPath('mnt/rootfs'), { mount: 'mnt', path: 'rootfs' });
  t.same(splitMountPath('mnt/a/b/'), { mount: 'mnt', path: 'a/b/' });
  t.same(splitMountPath('./mnt/rootfs'), { mount: './mnt', path: 'rootfs' });
  t.same(splitMountPath('/mnt/rootfs'), { mount: '/mnt', path: 'rootfs' });
  t.same(splitMountPath('/srv/disks/a//rootfs/x'), { mount: '/srv/disks/a', path: 'rootfs/x' });
  t.same(splitMountPath('disks/a//'), { mount: 'disks/a', path: '' });
  for (const bad of ['', '/', './', '/./']) {
    t.throws(() => splitMountPath(bad), { code: 'USAGE' }, `\`${bad}\` is refused`);
  }
});

t.test('a whole filesystem image is mounted on MOUNT; MOUNT/PATH printed; a second run mounts nothing', async (t) => {
  const dir = workDir(t);
  const img = path.join(dir, 'plain.img');
  execFileSync('truncate', ['-s', '8M', img]);
  execFileSync('mkfs.ext4', ['-q', '-F', '-d', contentDir(dir, 'whole'), img]);

  const r = await diskfileMount('mnt/rootfs', { diskfile: 'plain.img', action: 'overlay-boot', cwd: dir });
  t.same(r, { path: path.join(dir, 'mnt/rootfs'), mountPoint: path.join(dir, 'mnt'), mounted: true });
  t.ok(isMountPoint(path.join(dir, 'mnt')), 'mnt is a mount point');
  t.equal(readFileSync(path.join(dir, 'mnt/marker'), 'utf8'), 'whole');
  t.equal(readFileSync(path.join(r.path, 'hello'), 'utf8'), 'whole in rootfs\n');
  t.equal(loopsOf(img).length, 1, 'one loop device');

  const again = await diskfileMount('mnt/upper', { diskfile: 'plain.img', action: 'overlay-boot', cwd: dir });
  t.same(again, { path: path.join(dir, 'mnt/upper'), mountPoint: path.join(dir, 'mnt'), mounted: false }, 'already mounted: nothing more');
  t.same(mountsUnder(dir), [path.join(dir, 'mnt')], 'mounted once');

  execFileSync('umount', [path.join(dir, 'mnt')]);
  t.same(loopsOf(img), [], 'the loop device went with the unmount (autoclear)');
});

for (const label of ['dos', 'gpt'] as const) {
  t.test(`partition 2 of a ${label} image is mounted at its byte offset`, async (t) => {
    const dir = workDir(t);
    const img = partitionedImage(dir, `${label}.img`, label, `${label} p2`);
    const sf = JSON.parse(execFileSync('sfdisk', ['--json', img], { encoding: 'utf8' })).partitiontable.partitions[1];

    const r = await diskfileMount('mnt/', { diskfile: `${label}.img`, index: 2, action: 'overlay-boot', cwd: dir });
    t.same(r, { path: path.join(dir, 'mnt'), mountPoint: path.join(dir, 'mnt'), mounted: true, offset: sf.start * 512, size: sf.size * 512 });
    t.equal(readFileSync(path.join(dir, 'mnt/marker'), 'utf8'), `${label} p2`, 'the file put in partition 2 is there');
    const loop = loopsOf(img);
    t.equal(loop.length, 1, 'one loop device');
    const info = JSON.parse(execFileSync('losetup', ['--json', '-O', 'NAME,OFFSET,SIZELIMIT,AUTOCLEAR', loop[0]!], { encoding: 'utf8' })).loopdevices[0];
    t.equal(Number(info.offset), sf.start * 512, 'loop offset');
    t.equal(Number(info.sizelimit), sf.size * 512, 'loop sizelimit');

    // UPPER and WORK on the same image: the later '!' commands find MOUNT mounted.
    const upper = await diskfileMount('mnt/upper', { diskfile: `${label}.img`, index: 2, action: 'overlay-boot', cwd: dir });
    t.equal(upper.mounted, false);
    t.equal(upper.path, path.join(dir, 'mnt/upper'));
    t.same(mountsUnder(dir), [path.join(dir, 'mnt')]);
  });
}

t.test('a logical partition (index 5) of an MBR image is mounted', async (t) => {
  const dir = workDir(t);
  const img = path.join(dir, 'logical.img');
  execFileSync('truncate', ['-s', '24M', img]);
  execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], {
    input: 'label: dos\nstart=2048, size=4096\ntype=5\nsize=16384\n',
  });
  const p5 = JSON.parse(execFileSync('sfdisk', ['--json', img], { encoding: 'utf8' })).partitiontable.partitions
    .find((p: { node: string }) => p.node.endsWith('img5'));
  mkfsAt(img, p5.start, p5.size, contentDir(dir, 'logical'));
  const r = await diskfileMount('mnt/', { diskfile: img, index: 5, action: 'overlay-boot', cwd: dir });
  t.equal(r.offset, p5.start * 512);
  t.equal(readFileSync(path.join(dir, 'mnt/marker'), 'utf8'), 'logical');
});

t.test('other ACTIONs mount nothing; overlay-check still checks the image', async (t) => {
  const dir = workDir(t);
  const img = partitionedImage(dir, 'disk.img', 'dos', 'x');
  const before = mountsUnder(dir);

  const check = await diskfileMount('mnt/', { diskfile: 'disk.img', index: 2, action: 'overlay-check', cwd: dir });
  t.equal(check.mounted, false);
  t.equal(check.offset, 6144 * 512, 'partition found');
  t.same(mountsUnder(dir), before, 'nothing mounted');
  t.same(loopsOf(img), [], 'no loop device');
  await t.rejects(diskfileMount('mnt/', { diskfile: 'disk.img', index: 3, action: 'overlay-check', cwd: dir }), { code: 'DISK_NO_PARTITION' },
    'a missing partition is reported by a check');

  for (const action of ['overlay-stop', 'overlay-go', undefined]) {
    const r = await diskfileMount('mnt/rootfs', { diskfile: 'no-such.img', index: 9, action, cwd: dir });
    t.same(r, { path: path.join(dir, 'mnt/rootfs'), mountPoint: path.join(dir, 'mnt'), mounted: false }, `ACTION=${action}: only the path`);
  }
  const r = await diskfileMount('mnt/', { action: 'overlay-boot', cwd: dir });
  t.equal(r.mounted, false, 'without DISKFILE nothing is mounted');

  const cli = await runIn(dir, ['mnt/', 'disk.img', '2'], 'overlay-check');
  t.same(cli, { code: 0, out: `${dir}/mnt\n`, err: '' });
  t.same(mountsUnder(dir), before, 'still nothing mounted');
  t.same(loopsOf(img), []);
});

t.test('errors exit 1, name the image and index, and leave nothing mounted', async (t) => {
  const dir = workDir(t);
  const img = partitionedImage(dir, 'disk.img', 'gpt', 'x');
  writeFileSync(path.join(dir, 'garbage.img'), Buffer.alloc(1 << 20, 'not a disk '));
  const before = mountsUnder(dir);
  const cases: [string[], RegExp][] = [
    [['mnt/', 'disk.img', '7'], new RegExp(`disk image ${dir}/disk\\.img has no partition 7 \\(its gpt table has: 1, 2\\) \\[DISK_NO_PARTITION\\]`)],
    [['mnt/', 'garbage.img', '1'], new RegExp(`${dir}/garbage\\.img: no partition table .*\\[DISK_BAD_TABLE\\]`)],
    [['mnt/', 'garbage.img'], new RegExp(`cannot mount disk image ${dir}/garbage\\.img on ${dir}/mnt: .*\\[DISK_MOUNT_FAILED\\]`)],
    [['mnt/', 'disk.img', '1'], new RegExp(`cannot mount partition 1 of disk image ${dir}/disk\\.img on ${dir}/mnt: .*\\[DISK_MOUNT_FAILED\\]`)],
    [['mnt/', 'missing.img', '2'], new RegExp(`cannot read disk image ${dir}/missing\\.img: .*\\[DISK_UNREADABLE\\]`)],
    [['missing/', 'disk.img', '2'], new RegExp(`cannot mount partition 2 of disk image ${dir}/disk\\.img: mount point ${dir}/missing is not a directory \\[DISK_MOUNT_FAILED\\]`)],
  ];
  for (const [argv, msg] of cases) {
    const r = await runIn(dir, argv, 'overlay-boot');
    t.equal(r.code, 1, `${argv.join(' ')}: exit 1`);
    t.equal(r.out, '', 'prints no path');
    t.match(r.err, msg, 'says why');
    t.same(mountsUnder(dir), before, 'nothing mounted');
    t.same(loopsOf(img), [], 'no loop device left');
    t.same(loopsOf(path.join(dir, 'garbage.img')), [], 'no loop device left for the garbage image');
  }
  for (const argv of [[], ['mnt/', 'disk.img', 'two'], ['mnt/', 'disk.img', '0'], ['a', 'b', '1', 'c'], ['/', 'disk.img'], ['--bogus']]) {
    const r = await runIn(dir, argv, 'overlay-boot');
    t.equal(r.code, 2, `${JSON.stringify(argv)}: usage, exit 2`);
    t.match(r.err, /overlay-diskfile/);
  }
  const h = await runIn(dir, ['--help']);
  t.equal(h.code, 0);
  t.match(h.out, /^usage: overlay-diskfile MOUNT\/PATH \[DISKFILE \[INDEX\]\]/);
});

t.test('the installed command, run as overlay-boot runs a \'!\' value, prints the path and mounts', async (t) => {
  const dir = workDir(t);
  partitionedImage(dir, 'disk.img', 'dos', 'from bin');
  const sh = (action: string, cmd: string) => spawnSync('/bin/sh', ['-c', cmd], {
    cwd: dir, encoding: 'utf8', env: { ...process.env, ACTION: action, CONFIG: path.join(dir, 'x.conf') },
  });
  const check = sh('overlay-check', `${BIN} mnt/ disk.img 2`);
  t.same([check.status, check.stdout, check.stderr], [0, `${dir}/mnt\n`, ''], 'check: path printed');
  t.same(mountsUnder(dir), [], 'check: nothing mounted');

  const boot = sh('overlay-boot', `${BIN} mnt/rootfs disk.img 2`);
  t.same([boot.status, boot.stdout, boot.stderr], [0, `${dir}/mnt/rootfs\n`, ''], 'boot: path printed');
  t.same(mountsUnder(dir), [`${dir}/mnt`], 'boot: mounted');
  t.equal(readFileSync(`${dir}/mnt/rootfs/hello`, 'utf8'), 'from bin in rootfs\n');

  const bad = sh('overlay-boot', `${BIN} other/ disk.img 9`);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /^overlay-diskfile: disk image .*disk\.img has no partition 9/);
});
