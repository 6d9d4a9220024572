import { readFileSync } from 'node:fs';

/**
 * Where cgroup v2 is mounted, or undefined. Debian with sysvinit mounts the
 * hybrid layout (v2 at /sys/fs/cgroup/unified); a pure v2 host at /sys/fs/cgroup.
 */
export function findCgroup2Root(mounts = '/proc/self/mounts'): string | undefined {
  let text: string;
  try {
    text = readFileSync(mounts, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2' && f[1]) return unescapeMountPath(f[1]);
  }
  return undefined;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The controllers the subhost limits use (MEMORY_MAX, CPU_MAX, PIDS_MAX). */
export const LIMIT_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;
export type LimitController = (typeof LIMIT_CONTROLLERS)[number];

/** Where each limit controller can be used on this host. */
export interface CgroupLayout {
  /** The cgroup v2 mount, whose child NAME is the subhost's v2 cgroup. */
  v2Root?: string;
  /** Controllers in `V2ROOT/cgroup.subtree_control`: those the subhost's v2 cgroup has files for. */
  v2Enabled: string[];
  /** Mount point of each controller's cgroup v1 hierarchy (`cpu` may share one with `cpuacct`). */
  v1: Partial<Record<LimitController, string>>;
}

/**
 * Reads where the limit controllers are: enabled below the cgroup v2 root, or
 * mounted as v1 hierarchies (hybrid hosts). Changes nothing.
 */
export function readCgroupLayout(mounts = '/proc/self/mounts'): CgroupLayout {
  let text = '';
  try {
    text = readFileSync(mounts, 'utf8');
  } catch {
    // No mount table: no controller anywhere, which the limit check reports.
  }
  const v1: CgroupLayout['v1'] = {};
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] !== 'cgroup' || !f[1] || !f[3]) continue;
    const options = f[3].split(',');
    for (const c of LIMIT_CONTROLLERS) if (options.includes(c) && v1[c] === undefined) v1[c] = unescapeMountPath(f[1]);
  }
  const v2Root = findCgroup2Root(mounts);
  let v2Enabled: string[] = [];
  if (v2Root) {
    try {
      v2Enabled = readFileSync(`${v2Root}/cgroup.subtree_control`, 'utf8').trim().split(/\s+/).filter(Boolean);
    } catch {
      // Unreadable: treated as nothing enabled.
    }
  }
  return v2Root ? { v2Root, v2Enabled, v1 } : { v2Enabled, v1 };
}
