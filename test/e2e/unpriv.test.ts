// PRIVILEGED=no (issue 16): the subhost in a user namespace of its own, LOWER idmapped.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { stop } from '../../src/commands/stop.js';
import { enterArgv } from '../../src/commands/enter.js';
import { list } from '../../src/commands/list.js';
import { share, unshare } from '../../src/commands/share.js';
import { formatPlan } from '../../src/plan/format.js';
import { slotFile } from '../../src/subhost/idmap.js';
import { findNative } from '../../src/subhost/native.js';
import { processId } from '../../src/subhost/process.js';
import { DEFAULT_STATE_DIR, readStateRecord, statePath } from '../../src/subhost/state.js';
import { makeSubhost, subhostTest, uniqueName } from '../helpers/subhost.js';

/** A command inside the subhost through overlay-go's `ovb-launch enter` (user namespace included). */
export function inside(pid1: number, script: string): string {
  const argv = enterArgv(findNative().launcher, processId(pid1)!, ['/bin/sh', '-c', script]);
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

t.test('--check shows the user namespace and refuses a root that cannot be idmapped', async (t) => {
  const name = uniqueName('c');
  const sh = makeSubhost(t, name, ['START=none', 'PRIVILEGED=no']);
  const { config, plan } = await checkConfig(sh.conf);
  t.equal(config.privileged, false);
  t.match(formatPlan(config, plan), /PRIVILEGED=no/, '--check says so');
  const ns = plan.steps.find((s) => s.id === 'netns')!;
  t.match(ns.host[0], { kind: 'userns', name, count: 65536 }, 'the network namespace is made with the user namespace');
  t.match(plan.steps.find((s) => s.id === 'mount-root')!.native.map((o) => o.op), ['chown-root', 'idmap-lower', 'mount', 'root']);
  const bind = makeSubhost(t, uniqueName('c'), ['START=none', 'PRIVILEGED=no', 'UPPER=/']);
  await t.rejects(checkConfig(bind.conf), { code: 'UNPRIV_UNSUPPORTED', variable: 'PRIVILEGED' });
  const dev = makeSubhost(t, uniqueName('c'), ['START=none', 'PRIVILEGED=no', 'SHARE=/dev/null']);
  await t.rejects(checkConfig(dev.conf), { code: 'UNPRIV_UNSUPPORTED', variable: 'SHARE' }, 'a device node is not shared into it');
  const bad = makeSubhost(t, uniqueName('c'), ['START=none', 'PRIVILEGED=maybe']);
  await t.rejects(checkConfig(bad.conf), { code: 'CONFIG_BAD_VALUE' });
});

const name = uniqueName('n');
subhostTest(t, 'an unprivileged subhost: root inside, a mapped id on the host', [name], async (t) => {
  const sh = makeSubhost(t, name, ['START=none', 'CABLES==', 'PRIVILEGED=no']);
  const r = await boot(sh.conf);
  const record = readStateRecord(statePath(name))!;
  t.ok(record.idmap, 'the state record holds the id range');
  const base = record.idmap!.base;
  t.ok(existsSync(slotFile(DEFAULT_STATE_DIR, record.idmap!.slot)), 'the range is reserved');
  t.equal(readFileSync(`/proc/${r.pid1}/uid_map`, 'utf8').trim().split(/\s+/).join(' '), `0 ${base} 65536`, 'pid 1 runs with the mapped ids');
  t.equal(statSync(`/proc/${r.pid1}`).uid, base, 'host uid of pid 1 is the range base');

  t.equal(inside(r.pid1, 'id -u; id -g').trim(), '0\n0', 'overlay-go enters as root of the user namespace');
  // pid 1 (and so every service the reaper starts) runs confined, as what overlay-go runs does.
  const pid1Status = readFileSync(`/proc/${r.pid1}/status`, 'utf8');
  const field = (status: string, k: string) => new RegExp(`^${k}:\\s*(\\S+)`, 'm').exec(status)?.[1];
  t.equal(field(pid1Status, 'Seccomp'), '2', 'pid 1 runs under a seccomp filter');
  t.equal(field(pid1Status, 'NoNewPrivs'), '0', 'without no_new_privs (setuid programs inside work)');
  t.equal(BigInt(`0x${field(pid1Status, 'CapBnd')}`) & (1n << 21n), 0n, 'and without CAP_SYS_ADMIN in its bounding set');
  t.equal(field(pid1Status, 'CapBnd'), field(inside(r.pid1, 'cat /proc/self/status'), 'CapBnd'), 'the same bounding set as overlay-go\'s command');
  t.equal(inside(r.pid1, 'stat -c %U:%G /etc/shadow /usr/bin').trim(), 'root:shadow\nroot:root', 'LOWER shows its real owners');
  inside(r.pid1, 'echo hi > /made-inside; mkdir /etc/made-inside.d');
  t.equal(statSync(path.join(sh.base, 'root/made-inside')).uid, base, 'a file root makes inside is the mapped uid on the host');
  t.equal(statSync(path.join(sh.base, 'root/etc/made-inside.d')).gid, base, 'and the mapped gid');
  t.equal(statSync(path.join(sh.base, 'root/etc/network/interfaces')).uid, base, 'the built-in premount\'s file is the subhost root\'s');
  t.equal(inside(r.pid1, 'stat -c %U /dev/null /run /dev').trim(), 'root\nroot\nroot', '/dev and /run are its root\'s');
  t.match(inside(r.pid1, 'cat /proc/self/mountinfo | grep " /sys "'), / ro,/, '/sys is read-only');
  t.equal(inside(r.pid1, 'hostname').trim(), name);
  // containment.test.ts's checks, for this kind: no host mount inside, its own cgroup, its own interfaces.
  const mounts = inside(r.pid1, 'cat /proc/self/mountinfo');
  const points = new Set(mounts.split('\n').filter(Boolean).map((l) => l.split(' ')[4]));
  t.same([...points].filter((p) => !p!.startsWith('/proc/') && p !== '/sys/firmware').sort(), ['/', '/dev', '/dev/pts', '/proc', '/run', '/sys', '/sys/fs/cgroup'],
    'no host mount is listed inside, only its own (and the /proc masks)');
  t.notMatch(mounts, /\/run\/netns|\/sys\/fs\/cgroup\/|\.userns/, 'no trace of the host\'s namespace files or cgroup mounts (its own cgroup2 is /sys/fs/cgroup)');
  t.equal(inside(r.pid1, 'cat /proc/1/cgroup | grep "^0::"').trim(), '0::/', 'its processes are in its cgroup, the root of its cgroup namespace');
  t.ok(readFileSync(`/sys/fs/cgroup/unified/${name}/cgroup.procs`, 'utf8').split('\n').includes(String(r.pid1)), 'which is its cgroup on the host');
  t.same(inside(r.pid1, 'ls /sys/class/net').split(/\s+/).filter(Boolean).sort(), ['eth0', 'lo'], 'only its own interfaces');
  t.same(inside(r.pid1, 'ls /proc').split(/\s+/).filter((p) => /^\d+$/.test(p)).map(Number).includes(1), true, 'its own /proc');
  // The network namespace is the user namespace's: root inside configures its interface.
  inside(r.pid1, 'ip addr add 192.0.2.7/24 dev eth0 && ip link set eth0 up');
  t.match(inside(r.pid1, 'ip -o addr show eth0'), /192\.0\.2\.7/, 'root inside configures its cable');
  // Opened for writing, never written: the open is the permission check.
  t.equal(inside(r.pid1, '(exec 3>>/proc/sys/kernel/sysrq) 2>/dev/null && echo open || echo refused').trim(), 'refused', 'but not the host\'s kernel settings');
  // What works for any subhost works here: overlay-ls, overlay-share (under the mapped ids), the services.
  const listed = list().find((s) => s.name === name);
  t.match(listed, { state: 'running', pid1: r.pid1 }, 'overlay-ls lists it running');
  t.ok(listed?.reaper, 'with the reaper\'s report');
  t.ok(inside(r.pid1, 'ls /proc').split(/\s+/).filter((p) => /^\d+$/.test(p)).length >= 2, 'the reaper keeps dummy_service running');
  const shared = path.join(sh.dir, 'shared');
  mkdirSync(shared);
  writeFileSync(path.join(shared, 'from-host'), 'hi\n');
  await share(shared, name, { subhostPath: '/mnt/shared' });
  t.equal(inside(r.pid1, 'cat /mnt/shared/from-host'), 'hi\n', 'overlay-share brings a host directory in');
  t.equal(inside(r.pid1, 'stat -c %u /mnt/shared/from-host').trim(), '65534', 'whose host-root files are nobody\'s inside');
  await unshare(name, '/mnt/shared');
  await stop(sh.conf, { timeoutSeconds: 3 });
  t.notOk(existsSync(slotFile(DEFAULT_STATE_DIR, record.idmap!.slot)), 'overlay-stop gives the range back');
  t.notOk(existsSync(path.join(DEFAULT_STATE_DIR, `${name}.userns`)), 'and removes the user namespace file');
  await t.rejects(stop(sh.conf), { code: 'NOT_RUNNING' }, 'stopping it again: not running');
});

const failing = uniqueName('f');
subhostTest(t, 'a failed unprivileged boot is undone: namespaces, mounts and the range', [failing], async (t) => {
  const sh = makeSubhost(t, failing, ['START=none', 'CABLES==', 'PRIVILEGED=no']);
  for (const step of ['netns', 'mount-root', 'pid1', 'init']) {
    await t.rejects(boot(sh.conf, { failStep: step }), { code: /FAULT_INJECTED|STEP_FAILED/ }, `a failure at ${step}`);
    t.notOk(existsSync(path.join(DEFAULT_STATE_DIR, `${failing}.userns`)), `leaves no user namespace file (${step})`);
    t.notOk(readdirSync(path.join(DEFAULT_STATE_DIR, 'idmap')).some((f) => readFileSync(path.join(DEFAULT_STATE_DIR, 'idmap', f), 'utf8').startsWith(`${failing} `)),
      `and no range reserved (${step})`);
  }
});

const fast = uniqueName('s');
subhostTest(t, 'overlay-stop\'s native fast path stops an unprivileged subhost and gives its range back', [fast], async (t) => {
  const sh = makeSubhost(t, fast, ['START=none', 'PRIVILEGED=no']);
  await boot(sh.conf);
  const slot = readStateRecord(statePath(fast))!.idmap!.slot;
  execFileSync(path.resolve('bin/overlay-stop'), ['-q', '--timeout', '3', sh.conf], { stdio: 'ignore' });
  t.notOk(existsSync(statePath(fast)), 'the record is gone');
  t.notOk(existsSync(slotFile(DEFAULT_STATE_DIR, slot)), 'and so is the range');
});
