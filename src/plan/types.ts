import type { KnownVariable } from '../config/types.js';

/**
 * The native op protocol (src/native/PROTOCOL.md), one row an op: how many fixed
 * arguments (each may be empty), whether one or more non-empty ones follow, and in
 * which program it is allowed. ovb-launch's handler table says the same
 * (`ovb-launch --list-ops`); test/native/protocol.test.ts checks the three agree.
 */
export const NATIVE_OPS = {
  name: { fixed: 1, variadic: false, in: 'boot,teardown' },
  setenv: { fixed: 2, variadic: false, in: 'boot,teardown' },
  step: { fixed: 1, variadic: false, in: 'boot' },
  hook: { fixed: 2, variadic: false, in: 'boot' },
  root: { fixed: 1, variadic: false, in: 'boot' },
  'write-if-missing': { fixed: 3, variadic: false, in: 'boot' },
  mkdir: { fixed: 2, variadic: false, in: 'boot' },
  mount: { fixed: 5, variadic: false, in: 'boot' },
  'mount-overlay': { fixed: 3, variadic: true, in: 'boot' },
  'log-rotate': { fixed: 3, variadic: false, in: 'boot' },
  mknod: { fixed: 7, variadic: false, in: 'boot' },
  symlink: { fixed: 2, variadic: false, in: 'boot' },
  'copy-if-missing': { fixed: 3, variadic: false, in: 'boot' },
  'bind-share': { fixed: 2, variadic: false, in: 'boot' },
  'bind-optional': { fixed: 2, variadic: false, in: 'boot' },
  cgroup: { fixed: 1, variadic: false, in: 'boot' },
  'cgroup-delegate': { fixed: 3, variadic: false, in: 'boot' },
  netns: { fixed: 1, variadic: false, in: 'boot' },
  'link-up': { fixed: 1, variadic: false, in: 'boot' },
  'open-exec': { fixed: 1, variadic: false, in: 'boot' },
  'idmap-lower': { fixed: 3, variadic: false, in: 'boot' },
  'idmap-overlay': { fixed: 5, variadic: true, in: 'boot' },
  'chown-root': { fixed: 3, variadic: false, in: 'boot' },
  userns: { fixed: 1, variadic: false, in: 'boot' },
  'fork-pid1': { fixed: 0, variadic: false, in: 'boot' },
  hostname: { fixed: 1, variadic: false, in: 'boot' },
  pivot: { fixed: 1, variadic: false, in: 'boot' },
  'mask-proc': { fixed: 0, variadic: false, in: 'boot' },
  confine: { fixed: 0, variadic: false, in: 'boot' },
  exec: { fixed: 0, variadic: true, in: 'boot' },
  fail: { fixed: 1, variadic: false, in: 'boot' },
  teardown: { fixed: 0, variadic: false, in: 'boot' },
  log: { fixed: 1, variadic: false, in: 'teardown' },
  run: { fixed: 2, variadic: true, in: 'teardown' },
  'del-netns': { fixed: 1, variadic: false, in: 'teardown' },
  rmdir: { fixed: 2, variadic: false, in: 'teardown' },
  unlink: { fixed: 1, variadic: false, in: 'teardown' },
  umount: { fixed: 1, variadic: false, in: 'teardown' },
  'del-link': { fixed: 1, variadic: false, in: 'teardown' },
} as const satisfies Record<string, { fixed: number; variadic: boolean; in: 'boot' | 'teardown' | 'boot,teardown' }>;

export type NativeOpName = keyof typeof NATIVE_OPS & keyof NativeOpArgs;

/** The arguments of each op (PROTOCOL.md's tables); a variadic tail holds one or more. */
export interface NativeOpArgs {
  name: [name: string];
  setenv: [key: string, value: string];
  step: [id: string];
  hook: [timeoutMs: string, command: string];
  root: [dir: string];
  'write-if-missing': [path: string, mode: string, content: string];
  mkdir: [path: string, mode: string];
  mount: [source: string, target: string, fstype: string, flags: string, data: string];
  'mount-overlay': [target: string, upper: string, work: string, lower: string, ...lowers: string[]];
  'log-rotate': [path: string, maxBytes: string, keep: string];
  mknod: [path: string, type: string, major: string, minor: string, mode: string, uid: string, gid: string];
  symlink: [target: string, path: string];
  'copy-if-missing': [src: string, dst: string, mode: string];
  'bind-share': [src: string, dst: string];
  'bind-optional': [src: string, dst: string];
  cgroup: [dir: string];
  'cgroup-delegate': [dir: string, uid: string, gid: string];
  netns: [path: string];
  'link-up': [ifname: string];
  'open-exec': [path: string];
  'idmap-lower': [src: string, dst: string, userns: string];
  'idmap-overlay': [target: string, upper: string, work: string, userns: string, mode: 'lowers' | 'lowers-but-last' | 'all', lower: string, ...lowers: string[]];
  'chown-root': [path: string, uid: string, gid: string];
  userns: [file: string];
  'fork-pid1': [];
  hostname: [name: string];
  pivot: [dir: string];
  'mask-proc': [];
  confine: [];
  exec: [argv0: string, ...argv: string[]];
  fail: [message: string];
  teardown: [];
  log: [message: string];
  run: [timeoutMs: string, stdin: string, argv0: string, ...argv: string[]];
  'del-netns': [name: string];
  rmdir: [path: string, timeoutMs: string];
  unlink: [path: string];
  umount: [path: string];
  'del-link': [ifname: string];
}

// Compile-time: a fixed op's tuple has the table's length; a variadic op's tuple has a rest element.
type ArityOk = {
  [K in NativeOpName]: (typeof NATIVE_OPS)[K]['variadic'] extends true
    ? number extends NativeOpArgs[K]['length'] ? true : K
    : NativeOpArgs[K]['length'] extends (typeof NATIVE_OPS)[K]['fixed'] ? true : K;
};
type Assert<T extends true> = T;
export type NativeOpArityChecked = Assert<ArityOk[NativeOpName]>;

/** One instruction for the native launcher (see src/native/PROTOCOL.md): a discriminated union on `op`. */
export type NativeOp = { [K in NativeOpName]: { op: K; args: NativeOpArgs[K] } }[NativeOpName];

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
  /** Write the monitor's pid to a file (systemd's PIDFile=); runs once the subhost is up. */
  | { kind: 'pidfile'; path: string }
  /**
   * Write the fast-stop line beside the state record (src/native/fast-stop.c reads it):
   * the config's real path, NAME, pid 1, the monitor and STOP_TIMEOUT; runs once the subhost is up.
   */
  | { kind: 'fast-stop'; path: string; config: string; name: string; stopTimeout: number }
  /**
   * PRIVILEGED=no: `ovb-launch userns`: a user namespace mapping 0..count-1 to base.., kept
   * on `file`, and the network namespace NAME owned by it (instead of `ip netns add`).
   */
  | { kind: 'userns'; name: string; file: string; base: number; count: number }
  /** Write a value to a cgroup file (a limit); it goes with its cgroup directory. */
  | { kind: 'cgroup-set'; path: string; value: string };

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
  /**
   * `running`: a host step that needs the running subhost (its pids), run after the init
   * script returned and before the boot commits; a failure there still undoes the whole boot.
   */
  when?: 'running';
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
