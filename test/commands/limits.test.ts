// MEMORY_MAX, CPU_MAX, PIDS_MAX on the real kernel: a booted subhost's cgroups hold the
// limits and its processes; stop, a failed boot and a refused config leave no cgroup.
// Root, under the root lock.
import t from 'tap';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { stop, stopByName } from '../../src/commands/stop.js';
import { OverlayBootError } from '../../src/errors.js';
import { readCgroupLayout, type LimitController } from '../../src/host/cgroup.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { makeSubhost, stopAtTeardown, uniqueName } from '../helpers/subhost.js';

const layout = readCgroupLayout();
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
const LIMITS = ['MEMORY_MAX=64M', 'CPU_MAX=50%', 'PIDS_MAX=100'];

/** The subhost's cgroup directory for a controller, as the plan chooses it: v2 where enabled, else v1. */
function cgroupOf(controller: LimitController, name: string): { dir: string; v2: boolean } {
  if (layout.v2Root && layout.v2Enabled.includes(controller)) return { dir: path.join(layout.v2Root, name), v2: true };
  return { dir: path.join(layout.v1[controller]!, name), v2: false };
}

const read = (file: string) => readFileSync(file, 'utf8').trim();

/** The cgroup path of a process for a controller, from /proc/PID/cgroup (v1 line or the v2 `0::` line). */
function cgroupPath(pid: number, controller: LimitController, v2: boolean): string | undefined {
  for (const line of read(`/proc/${pid}/cgroup`).split('\n')) {
    const [, controllers, p] = line.split(':');
    if (v2 ? line.startsWith('0::') : controllers?.split(',').includes(controller)) return p;
  }
  return undefined;
}

t.test('a subhost with all three limits has them in its cgroups, its processes inside, and nothing left after stop', async (t) => {
  const name = uniqueName('l');
  const before = snapshotHost({ names: [name] });
  const sh = makeSubhost(t, name, ['START=none', ...LIMITS]);
  stopAtTeardown(t, name, 3);
  const r = await boot(sh.conf);
  const steps = r.plan.steps.map((s) => s.id);
  t.same(steps.filter((s) => s.startsWith('limit-')), ['limit-memory', 'limit-cpu', 'limit-pids'], 'one step per limit');

  const memory = cgroupOf('memory', name);
  t.equal(read(path.join(memory.dir, memory.v2 ? 'memory.max' : 'memory.limit_in_bytes')), String(64 * 1024 * 1024), `memory limit in ${memory.dir}`);
  const cpu = cgroupOf('cpu', name);
  if (cpu.v2) t.equal(read(path.join(cpu.dir, 'cpu.max')), '50000 100000', `cpu.max in ${cpu.dir}`);
  else t.same([read(path.join(cpu.dir, 'cpu.cfs_quota_us')), read(path.join(cpu.dir, 'cpu.cfs_period_us'))], ['50000', '100000'], `cfs quota in ${cpu.dir}`);
  const pids = cgroupOf('pids', name);
  t.equal(read(path.join(pids.dir, 'pids.max')), '100', `pids.max in ${pids.dir}`);

  // pid 1 and what it started (dummy_service) are in the subhost's cgroup of every controller.
  const children = read(`/proc/${r.pid1}/task/${r.pid1}/children`).split(/\s+/).filter(Boolean).map(Number);
  t.ok(children.length > 0, 'pid 1 has a child');
  for (const pid of [r.pid1, ...children]) {
    for (const c of ['memory', 'cpu', 'pids'] as const) {
      t.equal(cgroupPath(pid, c, cgroupOf(c, name).v2), `/${name}`, `process ${pid} is in the ${c} cgroup /${name}`);
    }
  }
  t.ok(Number(read(path.join(pids.dir, 'pids.current'))) >= 2, 'the pids controller counts the subhost\'s processes');

  const running = snapshotHost({ names: [name] }).cgroups;
  for (const c of [memory, cpu, pids]) {
    if (!c.v2) t.ok(running.includes(path.relative('/sys/fs/cgroup', c.dir)), `the host snapshot sees ${c.dir}`);
  }
  await stopByName(name, { timeoutSeconds: 3 });
  t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 5000), 'every cgroup directory is gone');
  t.same(snapshotHost({ names: [name] }), before);
});

t.test('a fault at each limit step leaves the host as it was', async (t) => {
  const name = uniqueName('f');
  const before = snapshotHost({ names: [name] });
  const sh = makeSubhost(t, name, ['START=none', ...LIMITS]);
  stopAtTeardown(t, name, 3);
  for (const step of ['limit-memory', 'limit-cpu', 'limit-pids']) {
    const err: unknown = await boot(sh.conf, { failStep: step }).catch((e: unknown) => e);
    t.ok(err instanceof OverlayBootError, `${step}: fails`);
    t.match(err, { code: 'FAULT_INJECTED', step }, `${step}: FAULT_INJECTED names the step`);
    t.ok(await waitFor(() => same(snapshotHost({ names: [name] }), before), 3000), `${step}: host as before`);
    t.same(snapshotHost({ names: [name] }), before);
  }
});

t.test('a bad value is refused before anything changes, at file:line:VAR; --check shows the limits', async (t) => {
  const name = uniqueName('b');
  const before = snapshotHost({ names: [name] });
  for (const [variable, value] of [['MEMORY_MAX', '1.5G'], ['CPU_MAX', '0%'], ['PIDS_MAX', 'many']]) {
    const sh = makeSubhost(t, name, ['START=none', `${variable}=${value}`]);
    const err: unknown = await boot(sh.conf).catch((e: unknown) => e);
    t.match(err, { code: 'CONFIG_BAD_VALUE', file: sh.conf, line: 5, variable, found: value }, `${variable}=${value}`);
    t.match((err as OverlayBootError).describe(), `${sh.conf}:5`);
    t.same(snapshotHost({ names: [name] }), before, `${variable}: nothing changed`);
  }
  const sh = makeSubhost(t, name, ['START=none', ...LIMITS]);
  const { plan } = await checkConfig(sh.conf);
  for (const [id, variable] of [['limit-memory', 'MEMORY_MAX'], ['limit-cpu', 'CPU_MAX'], ['limit-pids', 'PIDS_MAX']] as const) {
    const s = plan.steps.find((x) => x.id === id);
    t.match(s, { variable, place: 'host' }, `--check lists ${id}`);
    if (!cgroupOf(s?.id.slice('limit-'.length) as LimitController, name).v2) t.match(s?.undoTitle, /^remove cgroup /, `${id} has its undo`);
  }
});

t.test('overlay-stop of a crashed subhost (no state record) removes its left-over limit cgroups', async (t) => {
  const name = uniqueName('s');
  const before = snapshotHost({ names: [name] });
  const sh = makeSubhost(t, name, ['START=none', ...LIMITS]);
  const dirs = (['memory', 'cpu', 'pids'] as const).map((c) => cgroupOf(c, name).dir);
  t.teardown(() => { for (const d of dirs) { try { rmdirSync(d); } catch { /* gone */ } } });
  for (const d of dirs) mkdirSync(d, { recursive: true });
  t.ok(dirs.every((d) => existsSync(d)), 'left-overs in place');
  t.match(await stop(sh.conf).catch((e: unknown) => e), { code: 'NOT_RUNNING' });
  t.notOk(dirs.some((d) => existsSync(d)), 'and gone');
  t.same(snapshotHost({ names: [name] }), before);
});
