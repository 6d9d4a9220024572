// '!' mounts are attributed exactly: two configs of one directory (as the watcher's
// conf.d) whose '!' values mount disk images, read and booted at the same moment, each
// claim and later unmount only their own image (OVERLAY_BOOT_MOUNTS), never the other's.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import { readConfig } from '../../src/config/read.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { stopAtTeardown, tempDir, uniqueName } from '../helpers/subhost.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-diskfile.js', import.meta.url));
const mounted = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir} `);

/**
 * Two configs in one directory. Each '!' command mounts its image, then waits (at most
 * 20 s) until the other's image is mounted too, so each mount is made while the other
 * read is still running: the window in which a mount-table diff claimed both.
 */
function twoConfigs(t: Test, names: [string, string]) {
  const dir = tempDir(t, 'ovb-confd-');
  const root = makeBusyboxRoot(path.join(tempDir(t, 'ovb-img-'), 'root'));
  const binDir = tempDir(t, 'ovb-bin-');
  symlinkSync(BIN, path.join(binDir, 'overlay-diskfile'));
  const env = { ...process.env, PATH: `${binDir}:${process.env.PATH}`, OVERLAY_BOOT_MOUNTS: path.join(dir, 'inherited') };
  const subhosts = names.map((name, i) => {
    const other = names[1 - i]!;
    const base = path.join(dir, name);
    for (const d of ['root', 'work', 'live', 'mnt']) mkdirSync(path.join(base, d), { recursive: true, mode: 0o755 });
    writeFileSync(path.join(root, 'etc/which'), `${name}\n`);
    const img = path.join(base, 'disk.img');
    execFileSync('truncate', ['-s', '24M', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-d', root, img]);
    const wait = `i=0; while [ "$ACTION" = overlay-boot ] && ! grep -q " ${path.join(dir, other, 'mnt')} " /proc/self/mountinfo && [ $i -lt 200 ]; do sleep 0.1; i=$((i+1)); done`;
    const conf = path.join(dir, `${name}.conf`);
    writeFileSync(conf, [`BASE=${name}`, `NAME=${name}`, `LOG=${path.join(dir, `${name}.log`)}`, 'START=none',
      `LOWER=!p=$(overlay-diskfile mnt/ disk.img) && ${wait}; echo "$p"`].join('\n') + '\n');
    t.teardown(() => { spawnSync('umount', ['-l', path.join(base, 'mnt')]); });
    return { name, conf, mnt: path.join(base, 'mnt') };
  });
  return { subhosts: subhosts as [typeof subhosts[0], typeof subhosts[0]], env, dir };
}

t.test('two configs read at the same moment each claim exactly their own mount', async (t) => {
  const names: [string, string] = [uniqueName('d'), uniqueName('d')];
  const { subhosts: [a, b], env, dir } = twoConfigs(t, names);
  const claims = new Map<string, string[]>();
  const read = (s: typeof a) => readConfig(s.conf, { env, onMounts: (m) => claims.set(s.name, m) });
  const [ca, cb] = await Promise.all([read(a), read(b)]);
  t.equal(ca.lower, a.mnt);
  t.equal(cb.lower, b.mnt);
  t.ok(mounted(a.mnt) && mounted(b.mnt), 'both images are mounted');
  t.same(claims.get(a.name), [a.mnt], `${a.name} claims only its own image`);
  t.same(claims.get(b.name), [b.mnt], `${b.name} claims only its own image`);
  t.notOk(existsSync(path.join(dir, 'inherited')), 'an inherited OVERLAY_BOOT_MOUNTS is not handed on');
});

t.test('booted at the same moment, stopping one leaves the other\'s image mounted', async (t) => {
  const names: [string, string] = [uniqueName('d'), uniqueName('d')];
  const before = snapshotHost({ names });
  const { subhosts: [a, b], env } = twoConfigs(t, names);
  for (const n of names) stopAtTeardown(t, n);
  const [ra, rb] = await Promise.all([boot(a.conf, { env }), boot(b.conf, { env })]);
  t.same(ra.plan.steps.find((s) => s.id === 'bang-mounts')?.undo.map((o) => o.args[0]), [a.mnt], `${a.name} undoes only its own mount`);
  t.same(rb.plan.steps.find((s) => s.id === 'bang-mounts')?.undo.map((o) => o.args[0]), [b.mnt], `${b.name} undoes only its own mount`);
  await stopByName(a.name, { timeoutSeconds: 2 });
  t.ok(await waitFor(() => !mounted(a.mnt), 5000), `${a.name}'s image is unmounted with it`);
  t.ok(mounted(b.mnt), `${b.name}'s image is still mounted`);
  const inside = execFileSync('nsenter', ['-t', String(rb.pid1), '-m', '-r', 'cat', '/etc/which'], { encoding: 'utf8' });
  t.equal(inside, `${b.name}\n`, `${b.name} still runs on its own image`);
  await stopByName(b.name, { timeoutSeconds: 2 });
  t.ok(await waitFor(() => !mounted(b.mnt), 5000), `${b.name}'s image is unmounted with it`);
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names })) === JSON.stringify(before), 5000));
  t.same(snapshotHost({ names }), before, 'host as before');
});
