// The error codes a boot or stop can end with, each raised for real, each leaving the host as it was.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../src/commands/boot.js';
import { status } from '../src/commands/list.js';
import { stop, stopByName } from '../src/commands/stop.js';
import { OverlayBootError } from '../src/errors.js';
import { snapshotHost, waitFor } from './helpers/host.js';
import { writeScript } from './helpers/rootfs.js';
import { makeSubhost, stopAtTeardown, tempDir, uniqueName } from './helpers/subhost.js';

const BIN = (c: string) => fileURLToPath(new URL(`../bin/overlay-${c}.js`, import.meta.url));

async function code(p: Promise<unknown>): Promise<string> {
  try { await p; } catch (e) { return e instanceof OverlayBootError ? e.code : `not an OverlayBootError: ${e}`; }
  return 'resolved';
}

t.test('NOT_ROOT: the commands that change the host refuse other users', async (t) => {
  const name = uniqueName('n');
  const sh = makeSubhost(t, name, ['START=none']);
  for (const cmd of ['boot', 'stop']) {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN(cmd), sh.conf],
      { encoding: 'utf8', env: { PATH: process.env.PATH } });
    t.equal(r.status, 1, `overlay-${cmd} exits 1`);
    t.match(r.stderr, /needs root .*\[NOT_ROOT\]/, `overlay-${cmd} says it needs root`);
  }
});

t.test('NATIVE_MISSING: a clear error naming the rebuild command', async (t) => {
  const name = uniqueName('n');
  const sh = makeSubhost(t, name, ['START=none']);
  const r = spawnSync(process.execPath, [BIN('boot'), sh.conf], { encoding: 'utf8', env: { ...process.env, OVERLAY_BOOT_NATIVE_DIR: '/nonexistent' } });
  t.equal(r.status, 1);
  t.match(r.stderr, /make -C .*src\/native.*\[NATIVE_MISSING\]/);
});

t.test('NAME_IN_USE and LIVE_BUSY: what is not ours is left alone', async (t) => {
  const name = uniqueName('y');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES==']);
  stopAtTeardown(t, name);
  spawnSync('ip', ['netns', 'add', name]);
  t.teardown(() => { spawnSync('ip', ['netns', 'del', name]); });
  const before = snapshotHost({ names: [name] });
  t.equal(await code(boot(sh.conf)), 'NAME_IN_USE', 'a network namespace of that name');
  t.same(snapshotHost({ names: [name] }), before, 'the foreign namespace is still there, nothing else');
  spawnSync('ip', ['netns', 'del', name]);
  spawnSync('ip', ['link', 'add', `${name}0`, 'type', 'bridge']);
  t.teardown(() => { spawnSync('ip', ['link', 'del', `${name}0`]); });
  const c2 = await code(boot(sh.conf));
  t.equal(c2, 'NAME_IN_USE', 'an interface named like its cable');
  t.ok(existsSync(`/sys/class/net/${name}0`), 'the foreign interface is untouched');
  spawnSync('ip', ['link', 'del', `${name}0`]);
  const live = path.join(sh.base, 'live');
  spawnSync('mount', ['-t', 'tmpfs', 'busy', live]);
  t.teardown(() => { spawnSync('umount', ['-l', live]); });
  t.equal(await code(boot(sh.conf)), 'LIVE_BUSY', 'something mounted on LIVE');
  spawnSync('umount', [live]);
  t.same(snapshotHost({ names: [name] }).netns, [], 'no namespace made');
});

t.test('BOOT_TIMEOUT: a START script that never returns is stopped and undone', async (t) => {
  const name = uniqueName('o');
  const sh = makeSubhost(t, name, ['START=/srv/hang', 'CABLES==']);
  writeScript(path.join(sh.base, 'root/srv/hang'), 'exec sleep 1000\n');
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  t.equal(await code(boot(sh.conf, { bootTimeoutMs: 800 })), 'BOOT_TIMEOUT');
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 5000), 'host as before');
});

t.test('LOCKED: a stop that cannot wait for a slow boot says so; a patient one stops it', async (t) => {
  const name = uniqueName('z');
  const sh = makeSubhost(t, name, ['START=/srv/slow']);
  writeScript(path.join(sh.base, 'root/srv/slow'), 'sleep 2\n');
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const b = spawn(process.execPath, [BIN('boot'), sh.conf], { stdio: 'ignore' });
  const done = new Promise((r) => b.once('exit', r));
  t.ok(await waitFor(() => existsSync(`/run/overlay-boot/${name}.json`), 5000), 'booting');
  t.equal(await code(stopByName(name, { bootWaitMs: 200 })), 'LOCKED');
  const r = await stopByName(name, { timeoutSeconds: 2 });
  t.equal(r.wasRunning, true, 'waited for the boot, then stopped it');
  await done;
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 5000));
});

t.test('STATE_CORRUPT: an unreadable record is reported, not guessed at', async (t) => {
  const name = uniqueName('j');
  const dir = tempDir(t, 'ovb-state-');
  writeFileSync(path.join(dir, `${name}.json`), '{ not json');
  try {
    status(name, { stateDir: dir });
    t.fail('no error');
  } catch (e) {
    t.equal((e as OverlayBootError).code, 'STATE_CORRUPT');
    t.equal((e as OverlayBootError).file, path.join(dir, `${name}.json`));
  }
});

t.test('a hung monitor does not keep overlay-stop from finishing the job', async (t) => {
  const name = uniqueName('h');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES==']);
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const r = await boot(sh.conf);
  process.kill(r.monitorPid, 'SIGSTOP');
  t.teardown(() => { try { process.kill(r.monitorPid, 'SIGCONT'); } catch { /* gone */ } });
  const s = await stop(sh.conf, { timeoutSeconds: 1 });
  t.equal(s.killed, true, 'it had to use force');
  t.ok(await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 5000), 'and left nothing');
});

t.test('overlay-stop of a stopped subhost removes left-over cable ends and namespace', async (t) => {
  const name = uniqueName('g');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES==']);
  const before = snapshotHost({ names: [name] });
  spawnSync('ip', ['netns', 'add', name]);
  spawnSync('ip', ['link', 'add', `${name}0`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', name]);
  t.teardown(() => { spawnSync('ip', ['netns', 'del', name]); spawnSync('ip', ['link', 'del', `${name}0`]); });
  const r = spawnSync(process.execPath, [BIN('stop'), sh.conf], { encoding: 'utf8' });
  t.equal(r.status, 1);
  t.equal(r.stderr, `${name} is not running\n`);
  t.same(snapshotHost({ names: [name] }), before, 'namespace and cable end removed');
  mkdirSync(path.join(sh.base, 'x'), { recursive: true });
});
