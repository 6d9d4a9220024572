import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import type { BootEvent } from '../../src/plan/events.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { makeBusyboxRoot, writeScript } from '../helpers/rootfs.js';
import { forEachMode, giveToSubhostRoot, insideSubhost, ownMountPoints, ownsCgroup } from '../helpers/mode.js';
import { makeBridge, makeSubhost, stopAtTeardown, tempDir, uniqueName } from '../helpers/subhost.js';

/** Run a command inside the running subhost as overlay-go does (its user namespace too, when it has one). */
const inside = (pid1: number, ...cmd: string[]) => insideSubhost(pid1, cmd);

forEachMode(t, 'a copy of the host (LOWER=/) boots, is contained, and leaves nothing when it ends', async (t, mode) => {
  const name = uniqueName('h');
  const before = snapshotHost({ names: [name] });
  const shared = tempDir(t, 'ovb-share-');
  writeFileSync(path.join(shared, 'hello'), 'from the host\n');
  const sh = makeSubhost(t, name, ['START=none', 'RAM_SIZE=7M', `SHARE=${shared}:/mnt/shared`], { mode });
  stopAtTeardown(t, name, 3);
  const events: BootEvent[] = [];
  const r = await boot(sh.conf, { onEvent: (e) => events.push(e) });
  t.equal(r.name, name);
  t.ok(r.pid1 > 1, 'pid 1 of the subhost has a host pid');

  t.equal(inside(r.pid1, 'cat', '/proc/1/comm').trim(), 'reaper', 'pid 1 is the reaper');
  t.equal(inside(r.pid1, 'hostname').trim(), name, 'hostname is NAME');
  t.match(inside(r.pid1, 'ls', '-l', '/dev/null'), /^crw-rw-rw- .* 1, +3 /, '/dev/null is c 1 3 0666');
  t.match(inside(r.pid1, 'ls', '-l', '/dev/console'), /^crw--w--w- .* 5, +1 /, '/dev/console is c 5 1 0622');
  t.match(inside(r.pid1, 'stat', '-c', '%a', '/dev/shm'), /^1777/, '/dev/shm is 1777');
  t.match(inside(r.pid1, 'df', '-k', '/run'), /\s7168\s/, '/run is a 7M tmpfs');
  t.match(inside(r.pid1, 'stat', '-c', '%a', '/run/lock'), /^1777/);
  t.equal(inside(r.pid1, 'cat', '/mnt/shared/hello'), 'from the host\n', 'SHARE is visible inside');
  // SHARE keeps the host's ids: a place the subhost's root may write is one the host gives to its (mapped) root id.
  const root = giveToSubhostRoot(shared, name);
  inside(r.pid1, 'sh', '-c', 'echo from the subhost > /mnt/shared/back');
  t.equal(readFileSync(path.join(shared, 'back'), 'utf8'), 'from the subhost\n', 'SHARE is writable where the host lets its root write');
  t.equal(statSync(path.join(shared, 'back')).uid, root, `and what root writes there is the host's uid ${root}`);
  t.match(inside(r.pid1, 'ps', '-e', '-o', 'comm'), /dummy_service/, 'dummy_service runs when no service started');
  t.same(ownMountPoints(inside(r.pid1, 'cat', '/proc/self/mountinfo'), mode),
    ['/', '/dev', '/dev/pts', '/mnt/shared', '/proc', '/run', '/sys', ...(ownsCgroup(r.plan) ? ['/sys/fs/cgroup'] : [])], 'only the subhost\'s own mounts inside');
  // nsenter -m alone (no -r) must still land in the subhost's root: pivot_root, not chroot.
  t.notOk(existsSync('/.reaper'), 'the host root has no /.reaper');
  const rootLs = execFileSync('nsenter', ['-t', String(r.pid1), '-m', 'ls', '-a', '/'], { encoding: 'utf8' });
  t.match(rootLs, /^\.reaper$/m, 'nsenter -m lands in the subhost root');
  const hostMounts = readFileSync('/proc/self/mountinfo', 'utf8');
  t.notOk(hostMounts.includes(path.join(sh.base, 'live')), 'the host mount table does not show LIVE');
  t.ok(existsSync(`/run/netns/${name}`), 'network namespace exists while running');
  t.ok(events.some((e) => e.type === 'step-done' && e.step === 'mount-root'), 'a step event for mount-root');
  t.ok(events.some((e) => e.type === 'step-done' && e.step === 'init'), 'a step event for init');

  // Release dummy_service through its fifo: the last process ends, and so does the subhost.
  inside(r.pid1, '/bin/sh', '-c', 'echo x > /run/dummy_service');
  t.ok(await waitFor(() => !existsSync(`/run/overlay-boot/${name}.json`), 5000), 'state record removed');
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 5000), 'host back as before');
  t.same(snapshotHost({ names: [name] }), before);
  t.match(readFileSync(path.join(sh.dir, 'log'), 'utf8'), /Exited /, 'log says Exited NAME');
});

forEachMode(t, 'a busybox root with a cable to a bridge serves TCP to a client on that bridge', async (t, mode) => {
  const name = uniqueName('w');
  const before = snapshotHost({ names: [name] });
  const br = makeBridge(t, `${name}b`);
  const lower = makeBusyboxRoot(path.join(tempDir(t, 'ovb-lower-'), 'root'));
  writeScript(path.join(lower, 'etc/init.d/web'), `
case "$1" in
start)
  ip addr add 10.231.7.2/24 dev eth0
  ip link set eth0 up
  mkdir -p /www && echo "hello from $(hostname)" > /www/index.html
  httpd -p 10.231.7.2:8080 -h /www
  ;;
stop) killall httpd ;;
esac
`);
  const sh = makeSubhost(t, name, ['START=/etc/init.d/web', `CABLES=${br}=02:0a:0b:0c:0d:0e`], { lower, mode });
  stopAtTeardown(t, name, 3);
  const r = await boot(sh.conf);
  t.match(inside(r.pid1, 'cat', '/sys/class/net/eth0/address'), /02:0a:0b:0c:0d:0e/, 'MAC on the subhost end');
  t.equal(readFileSync(`/sys/class/net/${name}0/master/uevent`, 'utf8').includes(`INTERFACE=${br}`), true, 'host end on the bridge');
  t.notOk(inside(r.pid1, 'ls', '/sys/class/net').includes('eth1'), 'only its own interfaces');
  t.match(inside(r.pid1, 'readlink', '/bin/sh'), /busybox/, 'the root is the busybox root');

  // A client in a network namespace of the test's own, on the same bridge.
  const client = `${name}c`;
  execFileSync('ip', ['netns', 'add', client]);
  t.teardown(() => { spawnSync('ip', ['netns', 'del', client]); spawnSync('ip', ['link', 'del', `${client}h`]); });
  execFileSync('ip', ['link', 'add', `${client}h`, 'type', 'veth', 'peer', 'name', 'c0', 'netns', client]);
  execFileSync('ip', ['link', 'set', `${client}h`, 'master', br, 'up']);
  execFileSync('ip', ['-n', client, 'addr', 'add', '10.231.7.1/24', 'dev', 'c0']);
  execFileSync('ip', ['-n', client, 'link', 'set', 'c0', 'up']);
  let body = '';
  const ok = await waitFor(() => {
    // busybox nc, not wget: Debian's static busybox wget crashes outside its own root.
    const res = spawnSync('ip', ['netns', 'exec', client, '/bin/busybox', 'nc', '-w', '1', '10.231.7.2', '8080'],
      { encoding: 'utf8', input: 'GET / HTTP/1.0\r\n\r\n', timeout: 3000 });
    body = res.stdout.split('\r\n\r\n')[1] ?? '';
    return res.status === 0;
  }, 8000, 100);
  t.ok(ok, 'the client reached the service');
  t.equal(body.trim(), `hello from ${name}`);
  spawnSync('ip', ['netns', 'del', client]);
  spawnSync('ip', ['link', 'del', `${client}h`]);

  const s = await stopByName(name, { timeoutSeconds: 5 });
  t.equal(s.wasRunning, true);
  t.same(s.failedServices, [], 'the service stopped');
  spawnSync('ip', ['link', 'del', br]);
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 3000));
  t.same(snapshotHost({ names: [name] }), before, 'nothing left');
});

t.test('failures at boot name the step and leave the host as it was', async (t) => {
  const cases: Array<{ what: string; lines: (d: string) => string[]; code: string; step?: string; setup?: (d: string, base: string) => void }> = [
    { what: 'missing bridge', lines: () => ['START=none', 'CABLES=nobrXq='], code: 'BRIDGE_MISSING' },
    {
      what: 'LOWER not a directory', lines: () => ['START=none', 'LOWER=lower-file'], code: 'CONFIG_BAD_PATH',
      setup: (_d, base) => { writeFileSync(path.join(base, 'lower-file'), 'not a directory\n'); },
    },
    { what: 'PREMOUNT exits 1', lines: () => ['START=none', 'PREMOUNT=echo premount-was-here; exit 1'], code: 'HOOK_FAILED', step: 'premount' },
    {
      what: 'UPPER program prints nothing', code: 'UPPER_PROGRAM_FAILED', step: 'upper-setup',
      lines: () => ['START=none', 'UPPER=upper.sh'],
      setup: (_d, base) => { writeScript(path.join(base, 'upper.sh'), 'exit 0\n'); },
    },
    { what: 'POSTMOUNT exits 3', lines: () => ['START=none', 'POSTMOUNT=exit 3'], code: 'HOOK_FAILED', step: 'postmount' },
    { what: 'the init script fails', lines: () => ['CABLES==', 'INIT=echo exit 9'], code: 'SUBHOST_FAILED', step: 'init' },
  ];
  // This kernel may lack 802.1Q: then the VLAN cable's step fails, and must undo cable-0 and the namespace.
  if (!existsSync('/proc/net/vlan')) {
    cases.push({ what: 'a VLAN cable on a kernel without 802.1Q', lines: () => ['START=none', 'CABLES== =.302'], code: 'STEP_FAILED', step: 'cable-1' });
  }
  for (const c of cases) {
    await t.test(c.what, async (t) => {
      const name = uniqueName('f');
      const before = snapshotHost({ names: [name] });
      const sh = makeSubhost(t, name, c.lines(''));
      c.setup?.(sh.dir, sh.base);
      stopAtTeardown(t, name, 3);
      await t.rejects(boot(sh.conf), { code: c.code }, c.what);
      try {
        await boot(sh.conf);
      } catch (e) {
        const err = e as { step?: string; describe(): string };
        if (c.step) t.equal(err.step, c.step, `names step ${c.step}`);
        t.match(err.describe(), new RegExp(sh.conf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'names the config file');
      }
      t.same(snapshotHost({ names: [name] }), before, 'host unchanged');
      t.notOk(existsSync(path.join(sh.base, 'root/etc/network/interfaces')), 'the built-in premount file was removed again');
    });
  }
});
