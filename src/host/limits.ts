import path from 'node:path';
import type { KnownVariable, SubhostConfig } from '../config/types.js';
import { OverlayBootError } from '../errors.js';
import type { HostAction, PlanStep } from '../plan/types.js';
import { nativeOp as op } from '../rootfs/devices.js';
import type { CgroupLayout, LimitController } from './cgroup.js';

/** cpu.max / cpu.cfs_period_us: the kernel's default period, 100 ms. */
export const CPU_PERIOD_US = 100000;

/** Each limit's variable, controller and the files that hold it, in cgroup v2 and v1. */
const LIMITS: readonly {
  variable: KnownVariable;
  key: 'memoryMax' | 'cpuMax' | 'pidsMax';
  controller: LimitController;
  show: (n: number) => string;
  v2: (n: number) => [string, string][];
  v1: (n: number) => [string, string][];
}[] = [
  {
    variable: 'MEMORY_MAX', key: 'memoryMax', controller: 'memory', show: (n) => `${n} bytes`,
    v2: (n) => [['memory.max', String(n)]],
    v1: (n) => [['memory.limit_in_bytes', String(n)]],
  },
  {
    variable: 'CPU_MAX', key: 'cpuMax', controller: 'cpu', show: (n) => `${n}% of one CPU`,
    v2: (n) => [['cpu.max', `${cpuQuota(n)} ${CPU_PERIOD_US}`]],
    // The period first: the quota is checked against it.
    v1: (n) => [['cpu.cfs_period_us', String(CPU_PERIOD_US)], ['cpu.cfs_quota_us', String(cpuQuota(n))]],
  },
  {
    variable: 'PIDS_MAX', key: 'pidsMax', controller: 'pids', show: (n) => `${n} processes and threads`,
    v2: (n) => [['pids.max', String(n)]],
    v1: (n) => [['pids.max', String(n)]],
  },
];

/** CPU_MAX percent -> microseconds of CPU time per period. */
export function cpuQuota(percent: number): number {
  return Math.round((percent * CPU_PERIOD_US) / 100);
}

/**
 * The boot steps that apply MEMORY_MAX, CPU_MAX and PIDS_MAX, one per set limit
 * (`limit-memory`, `limit-cpu`, `limit-pids`). Each controller is used in the
 * subhost's v2 cgroup when the v2 root enables it for its children, else in its
 * v1 hierarchy, where the step creates `NAME`, joins the subhost to it and removes
 * it again at the end. Never enables a controller in the v2 root: that would change
 * every other cgroup on the host, and a v1-bound controller cannot move anyway.
 * Pure; a limit whose controller is found nowhere throws CONFIG_BAD_VALUE naming it.
 */
export function limitSteps(config: SubhostConfig, layout: CgroupLayout): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const limit of LIMITS) {
    const value = config[limit.key];
    if (value === undefined) continue;
    const where = { file: config.file, line: config.origins[limit.variable]?.line, variable: limit.variable, name: config.name };
    const set = (dir: string, files: [string, string][]): HostAction[] =>
      files.map(([file, v]) => ({ kind: 'cgroup-set', path: path.join(dir, file), value: v }));
    const title = `${limit.variable}: ${limit.show(value)}`;
    const base = { id: `limit-${limit.controller}`, place: 'host' as const, variable: limit.variable, line: where.line };
    if (layout.v2Root && layout.v2Enabled.includes(limit.controller)) {
      const dir = path.join(layout.v2Root, config.name);
      steps.push({
        ...base, title: `${title}, in cgroup ${dir}`,
        host: set(dir, limit.v2(value)), native: [], undo: [], undoTitle: `goes with cgroup ${dir}`,
      });
      continue;
    }
    const hierarchy = layout.v1[limit.controller];
    if (hierarchy === undefined) {
      throw new OverlayBootError('CONFIG_BAD_VALUE',
        `${limit.variable} needs the ${limit.controller} cgroup controller, which is neither enabled in ` +
        `${layout.v2Root ? `${layout.v2Root}/cgroup.subtree_control` : 'a cgroup v2 mount'} nor mounted as a cgroup v1 hierarchy`,
        { ...where, expected: `the ${limit.controller} controller in cgroup v2 or v1`, found: `no ${limit.controller} controller` });
    }
    const dir = path.join(hierarchy, config.name);
    steps.push({
      ...base, title: `${title}, in cgroup v1 ${dir}; the subhost's processes go into it`,
      host: [{ kind: 'cgroup', path: dir }, ...set(dir, limit.v1(value))],
      native: [op('cgroup', dir)],
      undo: [op('rmdir', dir, '3000')], undoTitle: `remove cgroup ${dir}`,
    });
  }
  return steps;
}
