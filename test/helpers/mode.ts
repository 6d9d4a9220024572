// The two kinds of subhost (issue 16): the suites that apply to both run their core cases once per mode.
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Test } from 'tap';
import { enterArgv } from '../../src/commands/enter.js';
import type { BootPlan } from '../../src/plan/types.js';
import { status } from '../../src/commands/list.js';
import { findNative } from '../../src/subhost/native.js';
import { processId } from '../../src/subhost/process.js';
import { DEFAULT_STATE_DIR } from '../../src/subhost/state.js';

/** `privileged`: PRIVILEGED=yes, the default. `unprivileged`: PRIVILEGED=no, a user namespace of its own. */
export type Mode = 'privileged' | 'unprivileged';

/**
 * The modes a suite runs in: both, or those OVB_TEST_MODES names (comma-separated),
 * to run one mode of a suite while working on it.
 */
export function testModes(env: NodeJS.ProcessEnv = process.env): Mode[] {
  const all: Mode[] = ['privileged', 'unprivileged'];
  const wanted = env.OVB_TEST_MODES?.split(',').map((m) => m.trim()).filter(Boolean);
  return wanted?.length ? all.filter((m) => wanted.includes(m)) : all;
}

/** The config lines that select MODE (privileged is the default, so none). */
export function modeLines(mode: Mode): string[] {
  return mode === 'unprivileged' ? ['PRIVILEGED=no'] : [];
}

/** Run FN as one subtest per mode, titled `TITLE (MODE)`, one after the other. */
export function forEachMode(t: Test, title: string, fn: (t: Test, mode: Mode) => Promise<void>): void {
  for (const mode of testModes()) void t.test(`${title} (${mode})`, (sub) => fn(sub, mode));
}

/**
 * The host uid (and gid) of root inside the running subhost NAME: 0 for a privileged
 * one, the first id of its range for an unprivileged one (overlay-ls's `idmap`). A host path that the
 * subhost's root is to write through SHARE is given to this id.
 */
export function subhostRootId(name: string): number {
  return status(name).idmap?.base ?? 0;
}

/**
 * What an unprivileged subhost NAME holds on the host besides a privileged one's
 * objects: its user namespace file and its reserved id range (`idmap/<slot>`, whose
 * first word is NAME). Empty when it holds neither, as after its end.
 */
export function idmapLeftovers(name: string): string[] {
  const dir = path.join(DEFAULT_STATE_DIR, 'idmap');
  const holds = (f: string) => { try { return readFileSync(path.join(dir, f), 'utf8').startsWith(`${name} `); } catch { return false; } };
  const slots = existsSync(dir) ? readdirSync(dir).filter((f) => /^\d+$/.test(f) && holds(f)) : [];
  const userns = path.join(DEFAULT_STATE_DIR, `${name}.userns`);
  return [...slots.map((f) => path.join(dir, f)), ...(existsSync(userns) ? [userns] : [])];
}

/**
 * Give the host path PATH to root of the running subhost NAME (see subhostRootId), so
 * that root inside may write it through SHARE; returns that id.
 */
export function giveToSubhostRoot(file: string, name: string): number {
  const id = subhostRootId(name);
  chownSync(file, id, id);
  return id;
}

/**
 * The mount points a process inside sees, less the masks an unprivileged subhost
 * puts over /proc files and /sys/firmware (runc's list): what both modes share.
 */
export function ownMountPoints(mountinfo: string, mode: Mode): string[] {
  const points = mountinfo.split('\n').filter(Boolean).map((l) => l.split(' ')[4]!);
  return (mode === 'unprivileged' ? points.filter((p) => !p.startsWith('/proc/') && p !== '/sys/firmware') : points).sort();
}

/**
 * Whether the boot PLAN gives the subhost a cgroup of its own to manage: its cgroup
 * mounted on /sys/fs/cgroup, the root of a cgroup namespace (an unprivileged subhost's
 * delegated cgroup). Such a subhost sees that mount and its processes at `0::/`.
 */
export function ownsCgroup(plan: BootPlan): boolean {
  return plan.steps.some((s) => s.native.some((o) => o.op === 'mount' && o.args[2] === 'cgroup2'));
}

/**
 * Run a command inside the running subhost whose pid 1 is PID1 as overlay-go does
 * (`ovb-launch enter`: every namespace, the user namespace of an unprivileged one
 * too); its stdout. Throws when it exits non-zero.
 */
export function insideSubhost(pid1: number, command: string[]): string {
  const id = processId(pid1);
  if (!id) throw new Error(`pid 1 ${pid1} is gone`);
  const argv = enterArgv(findNative().launcher, id, command);
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}
