// What a process inside a subhost can see of the host: as little as the namespaces allow.
import t from 'tap';
import { chmodSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { OverlayBootError } from '../../src/errors.js';
import { snapshotHost } from '../helpers/host.js';
import { writeScript } from '../helpers/rootfs.js';
import { forEachMode, insideSubhost, ownMountPoints, ownsCgroup } from '../helpers/mode.js';
import { makeSubhost, stopAtTeardown, uniqueName } from '../helpers/subhost.js';

/** A shell command inside, entered as overlay-go enters (the user namespace too, when it has one). */
const inside = (pid1: number, script: string) => insideSubhost(pid1, ['/bin/sh', '-c', script]);

forEachMode(t, 'inside a subhost the host is out of sight', async (t, mode) => {
  const name = uniqueName('v');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=='], { mode });
  stopAtTeardown(t, name);
  const r = await boot(sh.conf);

  const mounts = inside(r.pid1, 'cat /proc/self/mountinfo');
  const cgroupOwned = ownsCgroup(r.plan);
  t.same(ownMountPoints(mounts, mode), ['/', '/dev', '/dev/pts', '/proc', '/run', '/sys', ...(cgroupOwned ? ['/sys/fs/cgroup'] : [])],
    'no host mount is listed inside, only its own');
  // overlayfs shows its upperdir/workdir options: documented in SECURITY.md, not hidden.
  t.notMatch(mounts, cgroupOwned ? /\/run\/netns|\/sys\/fs\/cgroup\// : /\/run\/netns|\/sys\/fs\/cgroup/, 'no trace of the host\'s namespace or cgroup mounts');
  t.equal(inside(r.pid1, 'readlink /proc/1/root').trim(), '/', '/proc/1/root is the subhost\'s root');
  t.match(inside(r.pid1, 'ls -a /proc/1/root/'), /^\.reaper$/m, 'and holds its reaper');

  const pids = inside(r.pid1, 'ls /proc').split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number);
  t.ok(pids.length < 10, `only the subhost's processes are visible (${pids.join(' ')})`);
  t.ok(pids.includes(1), 'its own pid 1');
  const hostPids = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).length;
  t.ok(hostPids > pids.length + 20, 'the host has many more');
  t.notMatch(inside(r.pid1, 'cat /proc/[0-9]*/comm 2>/dev/null'), /\bnode\b|\bsystemd\b|\binit\b|\bsshd\b/, 'no host daemon is visible');

  const links = inside(r.pid1, 'ls /sys/class/net').split(/\s+/).filter(Boolean).sort();
  t.same(links, ['eth0', 'lo'], 'only its own interfaces');
  t.notMatch(inside(r.pid1, 'cat /proc/net/dev'), new RegExp(`\\b${name}0\\b`), 'not even the host end of its cable');
  t.equal(inside(r.pid1, 'hostname').trim(), name);
  const hostUts = readFileSync('/proc/sys/kernel/hostname', 'utf8').trim();
  t.not(hostUts, name, 'the host keeps its own hostname');
  // A delegated cgroup is the root of the subhost's cgroup namespace.
  t.equal(inside(r.pid1, 'cat /proc/1/cgroup | grep "^0::"').trim(), cgroupOwned ? '0::/' : `0::/${name}`, 'its processes are in its cgroup');
  t.equal(readFileSync(`/proc/${r.pid1}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::')), `0::/${name}`, 'which is its cgroup on the host');
});

t.test('a config, its directory, or a hook writable by others is refused at boot', async (t) => {
  const name = uniqueName('u');
  const before = snapshotHost({ names: [name] });
  const sh = makeSubhost(t, name, ['START=none', 'PREMOUNT=hooks/pre.sh']);
  const hook = writeScript(path.join(sh.base, 'hooks/pre.sh'), 'exit 0\n');
  stopAtTeardown(t, name);

  chmodSync(sh.conf, 0o666);
  await t.rejects(boot(sh.conf), { code: 'CONFIG_UNSAFE' }, 'a world-writable config');
  chmodSync(sh.conf, 0o644);

  chmodSync(sh.dir, 0o777);
  await t.rejects(boot(sh.conf), { code: 'CONFIG_UNSAFE' }, 'a world-writable directory above it');
  chmodSync(sh.dir, 0o755);

  chmodSync(hook, 0o777);
  let err: unknown;
  try { await boot(sh.conf); } catch (e) { err = e; }
  t.ok(err instanceof OverlayBootError && err.code === 'CONFIG_UNSAFE', 'a world-writable PREMOUNT hook');
  t.equal((err as OverlayBootError).variable, 'PREMOUNT', 'names the variable');
  t.equal((err as OverlayBootError).line, 5, 'and the line');
  chmodSync(hook, 0o755);
  t.same(snapshotHost({ names: [name] }), before, 'nothing was changed by the refused boots');

  const r = await boot(sh.conf);
  t.ok(r.pid1 > 0, 'once fixed, it boots');
});
