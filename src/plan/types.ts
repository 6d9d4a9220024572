import type { KnownVariable } from '../config/types.js';

/** One instruction for the native launcher (see src/native/PROTOCOL.md). */
export interface NativeOp {
  op: string;
  args: string[];
}

/** A change the library makes on the host itself, before launching the subhost. */
export type HostAction =
  /** Create the runtime state record (and so take the NAME lock). */
  | { kind: 'state-record'; path: string }
  /** Run the UPPER program with ACTION=setup; its output is the upper directory. */
  | { kind: 'upper-setup'; program: string }
  /** One `ip -batch` run, on the host or inside a network namespace. */
  | { kind: 'ip'; netns?: string; commands: string[] }
  /** `ifup IFACE` when ifupdown is installed, else just `ip link set IFACE up`. */
  | { kind: 'ifup'; iface: string }
  /** mkdir of a cgroup directory. */
  | { kind: 'cgroup'; path: string }
  /** Write a value to a cgroup file (a limit); it goes with its cgroup directory. */
  | { kind: 'cgroup-set'; path: string; value: string }
  /** Write a file only if it does not exist (undone only when the boot fails). */
  | { kind: 'write-if-missing'; path: string; content: string };

/** Where a step acts. */
export type StepPlace = 'host' | 'mount-namespace' | 'subhost';

/**
 * One step of a boot: what it does, where, which config line asked for it and
 * what undoes it. The same objects feed `--check` (printed), boot (run) and
 * teardown (the `undo` ops, run in reverse step order).
 */
export interface PlanStep {
  /** Stable identifier, e.g. `netns`, `cable-0`, `mount-root`, `share-1`. */
  id: string;
  /** One line for humans. */
  title: string;
  place: StepPlace;
  variable?: KnownVariable;
  line?: number;
  /** Host-side actions, run by the library. */
  host: HostAction[];
  /** Native ops, run by ovb-launch in the subhost's mount namespace or as its pid 1. */
  native: NativeOp[];
  /** Teardown ops that undo this step when the subhost ends or the boot fails. */
  undo: NativeOp[];
  /** Human description of what undoes it ('' when the kernel undoes it with the mount namespace). */
  undoTitle: string;
}

export interface BootPlan {
  name: string;
  configFile: string;
  log: string;
  steps: PlanStep[];
  /** The shell script pid 1 runs at boot (built-in init, or INIT's output). */
  initScript?: string;
  /** Environment for hooks and the init script. */
  env: Record<string, string>;
}
