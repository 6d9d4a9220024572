// MEMORY_MAX, CPU_MAX, PIDS_MAX: parsing, the reader's located errors, and the plan steps
// built from a cgroup layout (pure: the layouts are given, nothing is read or written).
import t from 'tap';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readConfig } from '../../src/config/read.js';
import { parseCpuMax, parseMemoryMax, parsePidsMax } from '../../src/config/values.js';
import type { SubhostConfig } from '../../src/config/types.js';
import { readCgroupLayout, type CgroupLayout } from '../../src/host/cgroup.js';
import { limitSteps } from '../../src/host/limits.js';
import { buildBootPlan } from '../../src/plan/build.js';
import { teardownProgram } from '../../src/plan/execute.js';
import { formatPlan } from '../../src/plan/format.js';
import { makeSubhost, rejection, tempDir, thrown, writeConf } from '../fixtures/config/helpers.js';

const where = { file: '/l.conf', line: 3, variable: 'X' };

t.test('MEMORY_MAX sizes', async (t) => {
  const ok: [string, number | undefined][] = [
    ['1', 1], ['4096', 4096], ['64k', 65536], ['256M', 268435456], ['2G', 2147483648], ['1t', 1099511627776], ['max', undefined],
  ];
  for (const [v, n] of ok) t.equal(parseMemoryMax(v, where), n, v);
  for (const v of ['0', '0M', '-1', '1.5G', '10%', '5P', 'M', '1 G', 'unlimited', '999999999999999T']) {
    t.match(thrown(t, () => parseMemoryMax(v, where), 'CONFIG_BAD_VALUE'), { found: v, line: 3 }, `refuses ${v}`);
  }
});

t.test('CPU_MAX percents', async (t) => {
  for (const [v, n] of [['50', 50], ['50%', 50], ['1', 1], ['250%', 250], ['max', undefined]] as const) t.equal(parseCpuMax(v, where), n, v);
  for (const v of ['0', '0%', '-5', '12.5', '%', '100001', 'half', '50 %']) {
    t.match(thrown(t, () => parseCpuMax(v, where), 'CONFIG_BAD_VALUE'), { found: v }, `refuses ${v}`);
  }
});

t.test('PIDS_MAX counts', async (t) => {
  for (const [v, n] of [['1', 1], ['512', 512], ['4194304', 4194304], ['max', undefined]] as const) t.equal(parsePidsMax(v, where), n, v);
  for (const v of ['0', '-1', '4194305', '1e3', '10k', 'lots']) {
    t.match(thrown(t, () => parsePidsMax(v, where), 'CONFIG_BAD_VALUE'), { found: v }, `refuses ${v}`);
  }
});

t.test('the reader: values, unlimited, and each bad value located at file:line:VAR', async (t) => {
  const dir = tempDir(t);
  makeSubhost(dir);
  const good = writeConf(dir, 'good.conf', 'BASE=sub\nMEMORY_MAX=256M\nCPU_MAX=50%\nPIDS_MAX=512\n');
  const c = await readConfig(good);
  t.match(c, { memoryMax: 268435456, cpuMax: 50, pidsMax: 512 });
  const none = await readConfig(writeConf(dir, 'none.conf', 'BASE=sub\nMEMORY_MAX=max\nCPU_MAX=\n'));
  t.same([none.memoryMax, none.cpuMax, none.pidsMax], [undefined, undefined, undefined], 'max and empty are unlimited');
  for (const [variable, value] of [['MEMORY_MAX', '12X'], ['CPU_MAX', '0'], ['PIDS_MAX', '-3']]) {
    const file = writeConf(dir, `${variable}.conf`, `# limits\nBASE=sub\n${variable}=${value}\n`);
    const e = await rejection(t, readConfig(file), 'CONFIG_BAD_VALUE');
    t.match(e, { file, line: 3, variable, found: value }, `${variable}=${value}`);
    t.match(e.describe(), `${file}:3`, 'the description names file and line');
  }
  const all = writeConf(dir, 'all.conf', 'BASE=sub\nMEMORY_MAX=x\nCPU_MAX=y\nPIDS_MAX=z\n');
  const e = await rejection(t, readConfig(all), 'CONFIG_INVALID');
  t.same(e.errors?.map((x) => x.variable), ['MEMORY_MAX', 'CPU_MAX', 'PIDS_MAX'], 'all three gathered');
});

const config = { file: '/etc/subhosts/lim.conf', name: 'lim', memoryMax: 1048576, cpuMax: 150, pidsMax: 64,
  origins: { MEMORY_MAX: { line: 4 }, CPU_MAX: { line: 5 }, PIDS_MAX: { line: 6 } } } as unknown as SubhostConfig;

t.test('limit steps on a hybrid host use the v1 hierarchies, each with its cgroup and undo', async (t) => {
  const hybrid: CgroupLayout = { v2Root: '/sys/fs/cgroup/unified', v2Enabled: [],
    v1: { memory: '/sys/fs/cgroup/memory', cpu: '/sys/fs/cgroup/cpu,cpuacct', pids: '/sys/fs/cgroup/pids' } };
  const steps = limitSteps(config, hybrid);
  t.same(steps.map((s) => [s.id, s.variable, s.line]), [['limit-memory', 'MEMORY_MAX', 4], ['limit-cpu', 'CPU_MAX', 5], ['limit-pids', 'PIDS_MAX', 6]]);
  t.same(steps[0]!.host, [
    { kind: 'cgroup', path: '/sys/fs/cgroup/memory/lim' },
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/memory/lim/memory.limit_in_bytes', value: '1048576' },
  ]);
  t.same(steps[1]!.host.slice(1), [
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/cpu,cpuacct/lim/cpu.cfs_period_us', value: '100000' },
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/cpu,cpuacct/lim/cpu.cfs_quota_us', value: '150000' },
  ]);
  t.same(steps[2]!.native, [{ op: 'cgroup', args: ['/sys/fs/cgroup/pids/lim'] }], 'the subhost joins the v1 cgroup');
  t.same(steps[2]!.undo, [{ op: 'rmdir', args: ['/sys/fs/cgroup/pids/lim', '3000'] }], 'and it is removed as the v2 one is');
});

t.test('limit steps on a v2 host write into the subhost\'s v2 cgroup, with nothing more to undo', async (t) => {
  const v2: CgroupLayout = { v2Root: '/sys/fs/cgroup', v2Enabled: ['cpuset', 'cpu', 'io', 'memory', 'pids'], v1: {} };
  const steps = limitSteps(config, v2);
  t.same(steps.flatMap((s) => s.host), [
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/lim/memory.max', value: '1048576' },
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/lim/cpu.max', value: '150000 100000' },
    { kind: 'cgroup-set', path: '/sys/fs/cgroup/lim/pids.max', value: '64' },
  ]);
  t.same(steps.flatMap((s) => [...s.native, ...s.undo]), [], 'the v2 cgroup step joins and removes');
  // Mixed: memory in v2, the rest in v1.
  const mixed = limitSteps(config, { v2Root: '/sys/fs/cgroup/unified', v2Enabled: ['memory'], v1: { cpu: '/c', pids: '/p' } });
  t.same(mixed.map((s) => s.host.at(-1)?.kind === 'cgroup-set' && (s.host.at(-1) as { path: string }).path),
    ['/sys/fs/cgroup/unified/lim/memory.max', '/c/lim/cpu.cfs_quota_us', '/p/lim/pids.max']);
});

t.test('a controller found nowhere is an error naming the variable', async (t) => {
  const e = thrown(t, () => limitSteps(config, { v2Root: '/sys/fs/cgroup/unified', v2Enabled: ['memory'], v1: { pids: '/p' } }), 'CONFIG_BAD_VALUE');
  t.match(e, { variable: 'CPU_MAX', line: 5, file: config.file, found: 'no cpu controller' });
  t.match(e.message, /cpu cgroup controller/);
  t.same(limitSteps({ ...config, memoryMax: undefined, cpuMax: undefined, pidsMax: undefined } as SubhostConfig, { v2Enabled: [], v1: {} }), [],
    'no limit, no controller needed');
});

t.test('--check: the plan lists the limit steps with their undo, and teardown removes the v1 cgroups', async (t) => {
  const dir = tempDir(t);
  makeSubhost(dir);
  const c = await readConfig(writeConf(dir, 'lim.conf', 'BASE=sub\nMEMORY_MAX=64M\nCPU_MAX=25\nPIDS_MAX=100\n'));
  const layout: CgroupLayout = { v2Root: '/sys/fs/cgroup/unified', v2Enabled: [], v1: { memory: '/m', cpu: '/c', pids: '/p' } };
  const plan = buildBootPlan(c, { reaperPath: '/r', cgroupRoot: '/sys/fs/cgroup/unified', cgroupLayout: layout });
  const ids = plan.steps.map((s) => s.id);
  t.same(ids.slice(ids.indexOf('cgroup'), ids.indexOf('cgroup') + 4), ['cgroup', 'limit-memory', 'limit-cpu', 'limit-pids']);
  const text = formatPlan(c, plan);
  t.match(text, /limit-memory \(host\): MEMORY_MAX: 67108864 bytes, in cgroup v1 \/m\/lim.*\[MEMORY_MAX, line 2\]/);
  t.match(text, 'do: echo 25000 > /c/lim/cpu.cfs_quota_us');
  t.match(text, 'undo: remove cgroup /p/lim');
  const teardown = teardownProgram(plan.steps, 'lim').filter((o) => o.op === 'rmdir').map((o) => o.args[0]);
  t.same(teardown, ['/p/lim', '/c/lim', '/m/lim', '/sys/fs/cgroup/unified/lim'], 'the v1 cgroups go before the v2 one');
  await rejection(t, Promise.resolve().then(() => buildBootPlan(c, { reaperPath: '/r' })), 'CONFIG_BAD_VALUE');
});

t.test('readCgroupLayout reads v1 hierarchies from a mount table', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ob-layout-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const mounts = path.join(dir, 'mounts');
  writeFileSync(mounts, [
    'cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,cpu,cpuacct 0 0',
    'cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0',
    'cgroup /sys/fs/cgroup/sys\\040temd cgroup rw,name=systemd 0 0',
    `cgroup2 ${dir} cgroup2 rw 0 0`,
  ].join('\n'));
  writeFileSync(path.join(dir, 'cgroup.subtree_control'), 'pids io\n');
  t.same(readCgroupLayout(mounts), { v2Root: dir, v2Enabled: ['pids', 'io'], v1: { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' } });
  t.same(readCgroupLayout(path.join(dir, 'absent')), { v2Enabled: [], v1: {} });
});
