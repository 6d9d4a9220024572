// The end-to-end case: LOWER on partition 2 of a disk image, through
// `LOWER=!overlay-diskfile mnt/ disk.img 2`, booted, and unmounted when it ends.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { makeSubhost, tempDir, uniqueName } from '../helpers/subhost.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-diskfile.js', import.meta.url));

t.test('a subhost boots with LOWER on partition 2 of a disk image', async (t) => {
  const name = uniqueName('i');
  const before = snapshotHost({ names: [name] });
  const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length;
  const sh = makeSubhost(t, name, ['START=none', 'LOWER=!overlay-diskfile mnt/ disk.img 2']);
  t.teardown(async () => {
    try { await stopByName(name, { timeoutSeconds: 2 }); } catch { /* stopped */ }
    spawnSync('umount', ['-l', path.join(sh.base, 'mnt')]);
  });
  mkdirSync(path.join(sh.base, 'mnt'));
  const src = makeBusyboxRoot(path.join(tempDir(t, 'ovb-img-'), 'root'));
  writeFileSync(path.join(src, 'etc/from-the-image'), 'partition 2\n');
  const img = path.join(sh.base, 'disk.img');
  execFileSync('truncate', ['-s', '40M', img]);
  execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], { input: 'label: dos\nstart=2048, size=4096\nstart=6144, size=73728\n' });
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', `offset=${6144 * 512}`, '-d', src, img, `${(73728 * 512) / 1024}k`]);
  // overlay-diskfile on PATH, as an installed system has it.
  const binDir = tempDir(t, 'ovb-bin-');
  symlinkSync(BIN, path.join(binDir, 'overlay-diskfile'));
  const env = { ...process.env, PATH: `${binDir}:${process.env.PATH}` };

  const r = await boot(sh.conf, { env });
  const mnt = path.join(sh.base, 'mnt');
  t.ok(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), 'the image is mounted on BASE/mnt');
  const inside = execFileSync('nsenter', ['-t', String(r.pid1), '-m', '-p', '-r', '-w', 'cat', '/etc/from-the-image'], { encoding: 'utf8' });
  t.equal(inside, 'partition 2\n', 'the subhost runs on the root from partition 2');
  const sh1 = execFileSync('nsenter', ['-t', String(r.pid1), '-m', '-p', '-r', '-w', 'readlink', '/bin/sh'], { encoding: 'utf8' });
  t.equal(sh1.trim(), 'busybox');

  await stopByName(name, { timeoutSeconds: 3 });
  t.ok(await waitFor(() => !readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `), 3000), 'the image is unmounted when the subhost ends');
  t.equal(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').length, mountsBefore, 'mount table as before');
  t.same(snapshotHost({ names: [name] }), before);
  t.notOk(spawnSync('losetup', ['-j', img], { encoding: 'utf8' }).stdout.trim(), 'no loop device left on the image');
  t.ok(existsSync(img));
});
