// Nothing lost, nothing leaked: a fault at every step of a full-featured boot,
// SIGKILL at random moments, and races, each compared with a host snapshot.
import t, { type Test } from 'tap';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { stopByName } from '../../src/commands/stop.js';
import { OverlayBootError } from '../../src/errors.js';
import { findCgroup2Root } from '../../src/host/cgroup.js';
import { snapshotHost, waitFor, type HostSnapshot } from '../helpers/host.js';
import { makeBusyboxRoot, writeScript } from '../helpers/rootfs.js';
import { forEachMode, type Mode } from '../helpers/mode.js';
import { makeBridge, makeSubhost, stopAtTeardown, tempDir, uniqueName } from '../helpers/subhost.js';

const BIN = (c: string) => fileURLToPath(new URL(`../../bin/overlay-${c}.js`, import.meta.url));
const same = (a: HostSnapshot, b: HostSnapshot) => JSON.stringify(a) === JSON.stringify(b);
const vlanKernel = existsSync('/proc/net/vlan');

/**
 * A config that uses every kind of step: a '!' mount, an UPPER program, cables
 * (bridge with MAC, one without bridge, a VLAN where the kernel has 802.1Q),
 * SHARE, a START service, and the built-in premount and postmount.
 */
function fullConfig(t: Test, name: string, hooks: boolean, mode: Mode) {
  const br = makeBridge(t, `${name}b`);
  const lower = makeBusyboxRoot(path.join(tempDir(t, 'ovb-lower-'), 'root'));
  writeScript(path.join(lower, 'etc/init.d/svc'), `case "$1" in start) (while :; do sleep 1; done) </dev/null >/dev/null 2>&1 & ;; esac\n`);
  const shared = tempDir(t, 'ovb-shared-');
  const cables = [`${br}=02:00:00:00:01:01`, '='];
  if (vlanKernel) cables.push(`${br}=.7`);
  const lines = [
    'START=/etc/init.d/svc', `CABLES=${cables.join(' ')}`, `SHARE=${shared}:/srv/shared`, 'UPPER=upper.sh',
    // Like overlay-diskfile: mounts only when ACTION says a real boot runs.
    'LIVE=!{ test "$ACTION" != overlay-boot || mount -t tmpfs ovbt livefs; } && mkdir -p livefs/l && echo livefs/l',
  ];
  // A POSTMOUNT replaces the built-in one, so it makes the /dev the services need itself.
  if (hooks) lines.push('PREMOUNT=echo premount; test -d "$LIVE"', 'POSTMOUNT=mount -t tmpfs dev "$LIVE/dev" && mknod -m 666 "$LIVE/dev/null" c 1 3');
  const sh = makeSubhost(t, name, lines, { lower, mode });
  mkdirSync(path.join(sh.base, 'livefs'));
  writeScript(path.join(sh.base, 'upper.sh'), `
dir="$(dirname "$CONFIG")/${name}/fresh"
case "$ACTION" in
setup) mkdir -p "$dir" && echo "$dir" ;;
teardown) rm -rf "$dir" ;;
esac
`);
  stopAtTeardown(t, name);
  t.teardown(() => { spawnSync('umount', ['-l', path.join(sh.base, 'livefs')]); });
  return sh;
}

for (const hooks of [false, true]) {
  forEachMode(t, `a fault at every step leaves the host as it was (${hooks ? 'PREMOUNT/POSTMOUNT hooks' : 'built-in premount/postmount'})`, async (t, mode) => {
    const name = uniqueName(hooks ? 'p' : 'q');
    const sh = fullConfig(t, name, hooks, mode);
    const before = snapshotHost({ names: [name] });
    // The steps of a real boot ('!' mounts happen only then), which must also work without a fault.
    const first = await boot(sh.conf);
    const steps = first.plan.steps.map((s) => s.id);
    if (!hooks) t.ok(existsSync(path.join(sh.base, 'fresh/etc/network/interfaces')), 'the built-in premount wrote into the UPPER program\'s directory');
    // Every kind of step, in order: a missing '!' mount, cable, share or late host step shows here.
    const expected = ['bang-mounts', 'state', 'upper-setup', 'netns', 'cable-0', 'cable-1', ...(vlanKernel ? ['cable-2'] : []),
      ...(findCgroup2Root() ? ['cgroup'] : []), 'mount-namespace', 'premount', 'mount-root', 'netns-join',
      ...(hooks ? ['postmount'] : ['dev', 'devpts', 'sysfs', 'run', 'adjtime', 'reaper-install']), 'share-0', 'pid1', 'init', 'fast-stop'];
    t.same(steps, expected, 'the boot ran every kind of step, in order');
    t.same(first.plan.steps.find((s) => s.id === 'bang-mounts')?.undo, [{ op: 'umount', args: [path.join(sh.base, 'livefs')] }],
      'the \'!\' mount, and only it, is the subhost\'s');
    await stopByName(name, { timeoutSeconds: 3 });
    t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 3000), 'a plain boot and stop leave nothing');
    t.same((await checkConfig(sh.conf)).plan.steps.map((s) => s.id), steps.filter((s) => s !== 'bang-mounts'), '--check shows the same steps');
    let covered = 0;
    for (const step of steps) {
      let err: unknown;
      try {
        await boot(sh.conf, { failStep: step });
      } catch (e) {
        err = e;
      }
      t.ok(err instanceof OverlayBootError, `${step}: fails`);
      t.equal((err as OverlayBootError).code, 'FAULT_INJECTED', `${step}: FAULT_INJECTED: ${(err as Error).message}`);
      t.equal((err as OverlayBootError).step, step, `${step}: the error names the step`);
      t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 3000), `${step}: host as before`);
      t.same(snapshotHost({ names: [name] }), before);
      t.notOk(existsSync(path.join(sh.base, 'fresh')), `${step}: UPPER teardown ran`);
      t.notOk(readFileSync('/proc/self/mountinfo', 'utf8').includes(path.join(sh.base, 'livefs')), `${step}: '!' mount undone`);
      covered += 1;
    }
    t.ok(steps.includes('bang-mounts') && steps.includes('upper-setup') && steps.includes('cable-1') && steps.includes('share-0'));
    t.comment(`fault injection covered ${covered} steps: ${steps.join(' ')}`);
    // And without a fault, the same config boots and stops cleanly.
    const r = await boot(sh.conf);
    t.ok(r.pid1 > 0, 'boots without a fault');
    await stopByName(name, { timeoutSeconds: 3 });
    t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 3000));
    t.same(snapshotHost({ names: [name] }), before, 'and leaves nothing after a stop');
  });
}

forEachMode(t, 'SIGKILL of the boot command at 50 random moments: overlay-stop restores the host', async (t, mode) => {
  const name = uniqueName('c');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=='], { mode });
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  // A seeded generator, so a failing moment can be replayed.
  let seed = Number(process.env.OVB_CRASH_SEED ?? 20261121);
  const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  t.comment(`seed ${process.env.OVB_CRASH_SEED ?? 20261121}`);
  const t0 = Date.now();
  const ok = spawnSync(process.execPath, [BIN('boot'), sh.conf], { encoding: 'utf8' });
  const bootMs = Date.now() - t0;
  t.equal(ok.status, 0, ok.stderr);
  spawnSync(process.execPath, [BIN('stop'), sh.conf]);
  const outcomes = { before: 0, during: 0, after: 0 };
  for (let i = 0; i < 50; i++) {
    const delay = Math.floor(rand() * bootMs * 1.2);
    const child = spawn(process.execPath, [BIN('boot'), sh.conf], { stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await new Promise((r) => setTimeout(r, delay));
    const killed = child.kill('SIGKILL');
    const code = await exited;
    if (code === 0) outcomes.after += 1; else if (killed) outcomes.during += 1; else outcomes.before += 1;
    const stop = spawnSync(process.execPath, [BIN('stop'), '--timeout', '2', sh.conf], { encoding: 'utf8' });
    t.ok(stop.status === 0 || /is not running/.test(stop.stderr), `#${i} (${delay} ms): overlay-stop: ${stop.stderr.trim()}`);
    const back = await waitFor(() => same(snapshotHost({ names: [name] }), before), 5000);
    t.ok(back, `#${i} (${delay} ms): host as before`);
    if (!back) t.same(snapshotHost({ names: [name] }), before);
  }
  t.comment(`boot took ${bootMs} ms; kills: ${JSON.stringify(outcomes)}`);
});

forEachMode(t, 'SIGKILL of pid 1, and of the monitor', async (t, mode) => {
  const name = uniqueName('m');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=='], { mode });
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const r = await boot(sh.conf);
  process.kill(r.pid1, 'SIGKILL');
  t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 5000), 'pid 1 killed: the monitor tears down');
  const r2 = await boot(sh.conf);
  process.kill(r2.monitorPid, 'SIGKILL');
  await waitFor(() => !existsSync(`/proc/${r2.monitorPid}`), 2000);
  t.ok(existsSync(`/proc/${r2.pid1}`), 'the subhost lives on without its monitor');
  const stop = spawnSync(process.execPath, [BIN('stop'), sh.conf], { encoding: 'utf8' });
  t.equal(stop.status, 0, stop.stderr);
  t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 5000), 'overlay-stop finished the monitor\'s work');
  t.same(snapshotHost({ names: [name] }), before);
});

forEachMode(t, '10 simultaneous boots of one config: exactly one subhost', async (t, mode) => {
  const name = uniqueName('r');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=='], { mode });
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const runs = await Promise.all(Array.from({ length: 10 }, () => new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN('boot'), sh.conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr!.on('data', (d) => { err += d; });
    c.once('exit', (code) => resolve({ code, err }));
  })));
  t.equal(runs.filter((r) => r.code === 0).length, 1, 'one boot won');
  for (const r of runs.filter((x) => x.code !== 0)) t.match(r.err, /ALREADY_RUNNING/, 'the others are told it is already running');
  const snap = snapshotHost({ names: [name] });
  t.equal(snap.netns.filter((n) => n === name).length, 1, 'one namespace');
  t.equal(snap.processes.filter((p) => / reaper /.test(p)).length, 1, 'one pid 1');
  t.equal(snap.links.filter((l) => l === `${name}0`).length, 1, 'one cable');
  t.equal(snap.idRanges.length, mode === 'unprivileged' ? 1 : 0, 'one id range when unprivileged (the losers gave theirs back)');
  await stopByName(name, { timeoutSeconds: 2 });
  t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 3000));
});

forEachMode(t, 'boot and stop racing end clean', async (t, mode) => {
  const name = uniqueName('b');
  const sh = makeSubhost(t, name, ['START=none'], { mode });
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  for (let i = 0; i < 5; i++) {
    const b = spawn(process.execPath, [BIN('boot'), sh.conf], { stdio: 'ignore' });
    const bootDone = new Promise((r) => b.once('exit', r));
    await new Promise((r) => setTimeout(r, i * 40));
    const s = spawnSync(process.execPath, [BIN('stop'), sh.conf], { encoding: 'utf8' });
    t.ok(s.status === 0 || /is not running/.test(s.stderr), `#${i}: stop: ${s.stderr.trim()}`);
    await bootDone;
    spawnSync(process.execPath, [BIN('stop'), sh.conf]);
    t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 5000), `#${i}: clean`);
  }
  void execFileSync;
});
