// The reaper as a supervisor, in real subhosts booted by boot(): orphans, stop signals
// from the host, RUN services with back-off, the report file, idle CPU (issue 5).
import t, { type Test } from 'tap';
import { readdirSync, readFileSync, readlinkSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { reaperReportPath, type ReaperReport } from '../../src/commands/list.js';
import { stopByName } from '../../src/commands/stop.js';
import { findNative } from '../../src/subhost/native.js';
import { snapshotHost, waitFor, type HostSnapshot } from '../helpers/host.js';
import { makeBusyboxRoot, writeScript } from '../helpers/rootfs.js';
import { forEachMode, giveToSubhostRoot } from '../helpers/mode.js';
import { makeSubhost, stopAtTeardown, tempDir, uniqueName } from '../helpers/subhost.js';

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Fields of /proc/<pid>/stat after the command name (index 0 is the state). */
function statFields(pid: number): string[] {
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return st.slice(st.lastIndexOf(')') + 2).split(' ');
}

/**
 * The processes of the subhost whose pid 1 is `pid1` (host pids), with their states:
 * those in its pid namespace, and (a zombie has no namespace link left) the
 * descendants of pid 1.
 */
function subhostProcesses(pid1: number): Array<{ pid: number; state: string }> {
  const ns = readlinkSync(`/proc/${pid1}/ns/pid`);
  const procs: Array<{ pid: number; ppid: number; state: string; inNs: boolean }> = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const pid = Number(e);
    try {
      const f = statFields(pid);
      let inNs = false;
      try { inNs = readlinkSync(`/proc/${pid}/ns/pid`) === ns; } catch { /* a zombie: no link */ }
      procs.push({ pid, ppid: Number(f[1]), state: f[0]!, inNs });
    } catch {
      // gone meanwhile
    }
  }
  const inside = new Set<number>(procs.filter((p) => p.inNs).map((p) => p.pid));
  inside.add(pid1);
  for (let grew = true; grew;) {
    grew = false;
    for (const p of procs) {
      if (!inside.has(p.pid) && inside.has(p.ppid)) { inside.add(p.pid); grew = true; }
    }
  }
  return procs.filter((p) => inside.has(p.pid)).map(({ pid, state }) => ({ pid, state }));
}

/**
 * Waits (bounded) until the host's objects of the subhost NAME are as in `before`
 * (snapshots of its own objects only: other subhosts may come and go meanwhile).
 */
async function leftNothing(t: Test, name: string, before: HostSnapshot): Promise<void> {
  await waitFor(() => JSON.stringify(snapshotHost({ names: [name] })) === JSON.stringify(before), 8000);
  t.same(snapshotHost({ names: [name] }), before, `nothing of ${name} left on the host`);
}

function readReport(pid1: number): ReaperReport | undefined {
  try {
    return JSON.parse(readFileSync(reaperReportPath(pid1), 'utf8')) as ReaperReport;
  } catch {
    return undefined;
  }
}

/** A busybox lower root with the given init.d scripts. */
function busyboxLower(t: Test, scripts: Record<string, string> = {}): string {
  const lower = makeBusyboxRoot(path.join(tempDir(t, 'ovb-lower-'), 'root'));
  for (const [n, body] of Object.entries(scripts)) writeScript(path.join(lower, 'etc/init.d', n), body);
  return lower;
}

forEachMode(t, '10 000 short-lived orphans leave no zombie', async (t, mode) => {
  const name = uniqueName('z');
  const before = snapshotHost({ names: [name] });
  // The service starts a daemon that double-forks in a bounded loop (each inner
  // process is orphaned to pid 1 and exits at once), then stays up to be looked at.
  const lower = busyboxLower(t, {
    orph: `
case "$1" in
start)
  ( i=0; while [ $i -lt 10000 ]; do ( true & ); i=$((i+1)); done; echo done > /run/orph-done; exec sleep 100000 ) </dev/null >/dev/null 2>&1 &
  ;;
stop) ;;
esac
`,
  });
  const sh = makeSubhost(t, name, ['START=/etc/init.d/orph', 'STOP_TIMEOUT=2'], { lower, mode });
  stopAtTeardown(t, name, 3);
  const r = await boot(sh.conf);
  let peak = 0;
  const done = await waitFor(() => {
    peak = Math.max(peak, subhostProcesses(r.pid1).filter((p) => p.state === 'Z').length);
    return existsSync(`/proc/${r.pid1}/root/run/orph-done`);
  }, 120000, 50);
  t.ok(done, 'the loop of 10 000 double forks ended');
  let zombies = -1;
  const clean = await waitFor(() => {
    zombies = subhostProcesses(r.pid1).filter((p) => p.state === 'Z').length;
    return zombies === 0;
  }, 3000, 50);
  t.ok(clean, `no zombie within 3 s (now ${zombies}; at most ${peak} seen while forking)`);
  t.ok(subhostProcesses(r.pid1).length <= 3, 'only pid 1 and the daemon are left');
  await stopByName(name, { timeoutSeconds: 3 });
  await leftNothing(t, name, before);
});

forEachMode(t, 'kill -TERM <pid 1> from the host: START services stopped in reverse order, stubborn one killed at the grace limit', async (t, mode) => {
  const name = uniqueName('s');
  const before = snapshotHost({ names: [name] });
  const marks = tempDir(t, 'ovb-marks-');
  const svc = (n: string, ignoreTerm = false) => `
case "$1" in
start) (${ignoreTerm ? `trap '' TERM; ` : ''}while :; do sleep 1; done) </dev/null >/dev/null 2>&1 & echo $! > /run/${n}.pid ;;
stop) echo "${n} $(cut -d' ' -f1 /proc/uptime)" >> /marks/stopped; ${ignoreTerm ? ':' : `kill $(cat /run/${n}.pid)`} ;;
esac
`;
  const lower = busyboxLower(t, { alpha: svc('alpha'), beta: svc('beta'), stubborn: svc('stubborn', true) });
  const sh = makeSubhost(t, name, [
    'START=/etc/init.d/alpha /etc/init.d/stubborn /etc/init.d/beta', 'STOP_TIMEOUT=2', `SHARE=${marks}:/marks`,
  ], { lower, mode });
  stopAtTeardown(t, name, 3);
  const r = await boot(sh.conf);
  giveToSubhostRoot(marks, name);
  t.ok(await waitFor(() => readReport(r.pid1)?.phase === 'running', 3000), 'the report says running');
  t.match(readReport(r.pid1), { name, phase: 'running', initStatus: 0, services: [] });

  const start = Date.now();
  process.kill(r.pid1, 'SIGTERM');
  t.ok(await waitFor(() => readReport(r.pid1)?.phase !== 'running', 5000), 'the report leaves running');
  t.ok(await waitFor(() => !alive(r.pid1), 8000), 'pid 1 ended');
  const took = Date.now() - start;
  // Not before the 2 s grace limit; how long after depends on the machine's load (bounded above by the wait).
  t.ok(took >= 1800, `not before the 2 s grace limit (${took} ms)`);
  const lines = readFileSync(path.join(marks, 'stopped'), 'utf8').trim().split('\n').map((l) => l.split(' '));
  t.same(lines.map((l) => l[0]), ['beta', 'stubborn', 'alpha'], 'stopped in reverse order');
  const times = lines.map((l) => Number(l[1]));
  t.ok(times[0]! <= times[1]! && times[1]! <= times[2]!, `timestamps in order: ${times.join(' ')}`);
  await leftNothing(t, name, before);
  const log = readFileSync(path.join(sh.dir, 'log'), 'utf8');
  t.match(log, `reaper ${name}: stopped by SIGTERM, KILL after the grace period (init script status 0)`);
  t.match(log, /Exited /);
});

forEachMode(t, 'RUN services: a crashing one is restarted with growing delays, one that always fails is given up', async (t, mode) => {
  const name = uniqueName('r');
  const name2 = uniqueName('g');
  const before = snapshotHost({ names: [name] });
  const before2 = snapshotHost({ names: [name2] });
  const lower = busyboxLower(t);
  const crash = `echo "$(cut -d' ' -f1 /proc/uptime)" >> /run/crash; sleep 0.2; exit 4`;
  const sh = makeSubhost(t, name, ['START=none', 'STOP_TIMEOUT=2', `RUN=${crash}`, 'RUN=exec sleep 100000', 'RUN=false'], { lower, mode });
  // a subhost with only a service that always fails: it ends by itself once that is given up
  const sh2 = makeSubhost(t, name2, ['START=none', 'RUN=exit 9'], { lower, mode });
  stopAtTeardown(t, name, 3);
  stopAtTeardown(t, name2, 3);
  const r = await boot(sh.conf);
  const r2 = await boot(sh2.conf);
  t.ok(await waitFor(() => (readReport(r.pid1)?.services?.[0]?.restarts ?? 0) >= 3, 12000, 100), 'restarted 3 times');
  const rep = readReport(r.pid1)!;
  t.match(rep, { name, phase: 'running', initStatus: 0 });
  t.match(rep.services![0], { command: crash, lastExit: 4 });
  t.match(rep.services![1], { command: 'exec sleep 100000', state: 'running', restarts: 0, lastExit: null });
  t.ok(await waitFor(() => readFileSync(`/proc/${r.pid1}/root/run/crash`, 'utf8').trim().split('\n').length >= 4, 2000));
  const starts = readFileSync(`/proc/${r.pid1}/root/run/crash`, 'utf8').trim().split('\n').map(Number);
  const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
  t.ok(gaps[0]! >= 1 && gaps[1]! >= 2 && gaps[2]! >= 4 && gaps[2]! < 6, `delays 1, 2, 4 s after each exit: gaps ${gaps.map((g) => g.toFixed(2)).join(' ')}`);

  // false exits at once: restarts after 1, 2, 4, 8 s, given up at the 5th exit (about 15 s)
  t.ok(await waitFor(() => readReport(r.pid1)?.services?.[2]?.state === 'failed', 20000, 200), 'the failing service was given up');
  t.match(readReport(r.pid1)!.services![2], { command: 'false', state: 'failed', restarts: 4, lastExit: 1, pid: null });
  t.ok(alive(r.pid1), 'the subhost runs on with its other services');
  const log = readFileSync(path.join(sh.dir, 'log'), 'utf8');
  t.match(log, `RUN service (false) exited with status 1 after 0.0 s; restart 4 in 8 s`);
  t.match(log, 'RUN service (false) exited with status 1 after 0.0 s; given up after 5 rapid failures');

  t.ok(await waitFor(() => !alive(r2.pid1), 5000), 'a subhost whose only service was given up ends');
  t.match(readFileSync(path.join(sh2.dir, 'log'), 'utf8'), `reaper ${name2}: ended: no process left (init script status 0)`);

  const s = await stopByName(name, { timeoutSeconds: 3 });
  t.equal(s.killed, false, 'the reaper stopped its services within the grace period');
  await leftNothing(t, name, before);
  await leftNothing(t, name2, before2);
});

forEachMode(t, 'the reaper uses no CPU while idle; its size and RSS', async (t, mode) => {
  const name = uniqueName('i');
  const lower = busyboxLower(t);
  const sh = makeSubhost(t, name, ['START=none', 'RUN=exec sleep 100000'], { lower, mode });
  stopAtTeardown(t, name, 3);
  const r = await boot(sh.conf);
  await new Promise((res) => setTimeout(res, 300));
  const cpu = () => { const f = statFields(r.pid1); return Number(f[11]) + Number(f[12]); };
  const c0 = cpu();
  await new Promise((res) => setTimeout(res, 1000));
  t.equal(cpu(), c0, 'utime+stime unchanged over a quiet second');
  t.match(readFileSync(`/proc/${r.pid1}/wchan`, 'utf8'), /sigtimedwait/, 'asleep in sigtimedwait');
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${r.pid1}/status`, 'utf8'))?.[1];
  const size = statSync(findNative().reaper).size;
  t.comment(`reaper: ${size} bytes static binary, RSS ${rss} kB`);
  t.ok(size < 64 * 1024, 'a small binary');
  t.ok(Number(rss) < 664, 'less RSS than the shell tool\'s reaper');
  await stopByName(name, { timeoutSeconds: 3 });
});
