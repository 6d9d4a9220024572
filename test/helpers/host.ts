import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * What a subhost may change on the host, read from the kernel. Two snapshots
 * that compare equal mean the host was left exactly as it was.
 */
export interface HostSnapshot {
  netns: string[];
  links: string[];
  mounts: string[];
  cgroups: string[];
  stateRecords: string[];
  /** Processes that are not ours (the test runner and its children come and go). */
  processes: string[];
  /** What overlay-pkg's default state directory holds (recursively; the queue's lock files left out). */
  pkgState: string[];
  /** The lines of the default boot list, /etc/subhosts.conf. */
  bootList: string[];
  /** The id ranges reserved for unprivileged subhosts, as `SLOT NAME` (/run/overlay-boot/idmap). */
  idRanges: string[];
}

/** overlay-pkg's default state directory and boot list, which a test must leave as it found them. */
export const DEFAULT_PKG_STATE = '/var/lib/overlay-boot/pkg';
export const DEFAULT_BOOT_LIST = '/etc/subhosts.conf';

function ls(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

/**
 * Snapshot the host. With `names`, keep only what belongs to those subhosts (or
 * the test's bridges and clients named after them), so tests running beside
 * other work compare only their own objects; without, everything (leak check).
 */
export function snapshotHost(opts: { cgroupRoot?: string; ignorePids?: number[]; names?: string[] } = {}): HostSnapshot {
  const snap = snapshotAll(opts);
  const names = opts.names;
  if (!names?.length) return snap;
  const mine = (s: string) => names.some((n) => s.includes(n));
  return {
    netns: snap.netns.filter(mine), links: snap.links.filter(mine), mounts: snap.mounts.filter(mine),
    cgroups: snap.cgroups.filter(mine), stateRecords: snap.stateRecords.filter(mine), processes: snap.processes.filter(mine),
    pkgState: snap.pkgState.filter(mine), bootList: snap.bootList.filter(mine), idRanges: snap.idRanges.filter(mine),
  };
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** Which subhost a process of ours works for: its argv, its NAME variable, its cgroup. */
function processLabel(pid: string): string {
  const cmdline = read(`/proc/${pid}/cmdline`).split('\0').join(' ');
  const name = read(`/proc/${pid}/environ`).split('\0').find((e) => e.startsWith('NAME=')) ?? '';
  const cgroup = read(`/proc/${pid}/cgroup`).split('\n').find((l) => l.startsWith('0::')) ?? '';
  return `${cmdline} ${name} ${cgroup}`;
}

/** cgroup v1 hierarchies that MEMORY_MAX, CPU_MAX and PIDS_MAX create directories in (hybrid hosts). */
const V1_LIMIT_HIERARCHIES = ['memory', 'cpu', 'pids'];

/** The subdirectories of DIR, or none when DIR does not exist. */
function subdirectories(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
}

function snapshotAll(opts: { cgroupRoot?: string; ignorePids?: number[] }): HostSnapshot {
  const cgroupRoot = opts.cgroupRoot ?? '/sys/fs/cgroup/unified';
  const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]!).sort();
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean)
    .map((l) => { const f = l.split(' '); const sep = f.indexOf('-'); return `${f[4]} ${f[sep + 1]}`; }).sort();
  // The v2 cgroups by name (as before), then those of the v1 hierarchies limits use, as `controller/NAME`.
  const cgroups = [...subdirectories(cgroupRoot).sort(),
    ...V1_LIMIT_HIERARCHIES.flatMap((c) => subdirectories(`/sys/fs/cgroup/${c}`).map((d) => `${c}/${d}`)).sort()];
  const ignore = new Set(opts.ignorePids ?? []);
  const processes = ls('/proc').filter((p) => /^\d+$/.test(p)).filter((pid) => {
    if (ignore.has(Number(pid))) return false;
    try {
      const comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      return ['reaper', 'ovb-launch', 'dummy_service'].includes(comm);
    } catch {
      return false;
    }
  }).map((pid) => `${pid} ${read(`/proc/${pid}/comm`).trim()} ${processLabel(pid)}`);
  const pkgState = existsSync(DEFAULT_PKG_STATE)
    ? readdirSync(DEFAULT_PKG_STATE, { recursive: true }).map(String).filter((p) => !p.startsWith('lock/')).sort() : [];
  const bootList = read(DEFAULT_BOOT_LIST).split('\n').filter(Boolean);
  const idRanges = ls('/run/overlay-boot/idmap').map((slot) => `${slot} ${read(`/run/overlay-boot/idmap/${slot}`).split(' ')[0]}`);
  return { netns: ls('/run/netns'), links, mounts, cgroups, stateRecords: ls('/run/overlay-boot'), processes, pkgState, bootList, idRanges };
}

/** Wait (bounded) until a condition holds; returns whether it did. */
export async function waitFor(cond: () => boolean, timeoutMs = 5000, stepMs = 20): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
