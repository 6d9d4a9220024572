import path from 'node:path';
import type { SubhostConfig } from '../config/types.js';
import { OverlayBootError } from '../errors.js';
import { cableActions, cableUndo, describeCable } from '../host/cables.js';
import type { CgroupLayout } from '../host/cgroup.js';
import { limitSteps } from '../host/limits.js';
import { devOps, devptsOps, nativeOp as op, runOps, sysfsOps } from '../rootfs/devices.js';
import { builtinInitScript, stopCommands } from '../subhost/init-script.js';
import type { IdRange } from '../subhost/idmap.js';
import { slotFile } from '../subhost/idmap.js';
import { mapOpArgs } from './program.js';
import type { BootPlan, NativeOp, PlanStep } from './types.js';

/** Stands for the directory the UPPER program prints, until boot runs it. */
export const UPPER_PLACEHOLDER = '<output of UPPER program>';

export interface BuildPlanOptions {
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
  /** Path of the reaper binary on the host. */
  reaperPath: string;
  /** cgroup v2 root, or undefined when cgroup v2 is not mounted. */
  cgroupRoot?: string;
  /** Where the limit controllers are (MEMORY_MAX, CPU_MAX, PIDS_MAX). Default: nowhere. */
  cgroupLayout?: CgroupLayout;
  /** The init script when INIT is set (its output, computed at boot). */
  initScript?: string;
  /** ACTION for hooks. Default `overlay-boot`. */
  action?: string;
  /** A file to hold the monitor's pid (systemd's PIDFile=); removed when the subhost ends. */
  pidFile?: string;
  /** Mounts that `!` commands made on the host while the config was read (overlay-diskfile). */
  bangMounts?: string[];
  /** Milliseconds a PREMOUNT/POSTMOUNT hook may run. Default 60000. */
  hookTimeoutMs?: number;
  /** PRIVILEGED=no: the host ids of the subhost's user namespace (reserved by boot; a preview for --check). */
  idmap?: IdRange;
}

/**
 * SubhostConfig -> the ordered steps of a boot, each with its undo. Pure: it
 * reads nothing and changes nothing, so `--check` prints exactly what boot runs.
 */
export function buildBootPlan(config: SubhostConfig, options: BuildPlanOptions): BootPlan {
  const stateDir = options.stateDir ?? '/run/overlay-boot';
  const hookTimeout = String(options.hookTimeoutMs ?? 60000);
  const { name, live } = config;
  const upper = config.upperProgram ? UPPER_PLACEHOLDER : (config.upper as string);
  const steps: PlanStep[] = [];
  const step = (s: Omit<PlanStep, 'host' | 'native' | 'undo' | 'undoTitle'> & Partial<PlanStep>) =>
    steps.push({ host: [], native: [], undo: [], undoTitle: '', ...s });
  const origin = (v: keyof SubhostConfig['origins']) => ({ variable: v, line: config.origins[v]?.line });

  checkOverlayPaths(config, upper);
  const ids = userNamespace(config, options.idmap);
  const usernsFile = path.join(stateDir, `${name}.userns`);
  const root = ids?.base ?? 0;

  const env: Record<string, string> = {
    CONFIG: config.file,
    ACTION: options.action ?? 'overlay-boot',
    NAME: name, BASE: config.base, LIVE: live, UPPER: upper, WORK: config.work,
    LOWER: config.lower, LOG: config.log, RAM_SIZE: config.ramSize ?? 'none',
    START: config.start.join(' ') || 'none',
    CABLES: config.cables.map((c) => c.spec).join(' '),
  };

  if (options.bangMounts?.length) {
    step({
      id: 'bang-mounts', title: `keep ${options.bangMounts.join(', ')} mounted ('!' commands mounted them)`, place: 'host',
      undo: options.bangMounts.map((m) => op('umount', m)), undoTitle: `unmount ${options.bangMounts.join(', ')}`,
    });
  }

  const statePath = path.join(stateDir, `${name}.json`);
  step({
    id: 'state', title: `create runtime state record ${statePath} (the lock on NAME ${name})`, place: 'host',
    host: [{ kind: 'state-record', path: statePath }],
    undo: [op('unlink', statePath)], undoTitle: `remove ${statePath}`,
  });

  if (config.upperProgram) {
    step({
      id: 'upper-setup', title: `run UPPER program ${config.upperProgram} with ACTION=setup`, place: 'host',
      ...origin('UPPER'),
      host: [{ kind: 'upper-setup', program: config.upperProgram }],
      undo: [op('setenv', 'ACTION', 'teardown'), op('run', '60000', '', config.upperProgram)],
      undoTitle: `run ${config.upperProgram} with ACTION=teardown`,
    });
  }

  if (ids) {
    // The network namespace belongs to the user namespace, so the subhost's root configures its interfaces.
    step({
      id: 'netns', title: `create user namespace ${usernsFile} (ids 0..${ids.count - 1} are ${ids.base}.. on the host) and its network namespace ${name}`,
      place: 'host', ...origin('PRIVILEGED'),
      host: [{ kind: 'userns', name, file: usernsFile, base: ids.base, count: ids.count }],
      undo: [op('del-netns', name), op('umount', usernsFile), op('unlink', usernsFile), op('unlink', slotFile(stateDir, ids.slot))],
      undoTitle: `delete network namespace ${name} and user namespace ${usernsFile}; give back id range ${ids.slot}`,
    });
  } else {
    step({
      id: 'netns', title: `create network namespace ${name}`, place: 'host', ...origin('NAME'),
      host: [{ kind: 'ip', commands: [`netns add ${name}`] }],
      undo: [op('del-netns', name)], undoTitle: `delete network namespace ${name}`,
    });
  }

  config.cables.forEach((cable, i) => {
    step({
      id: `cable-${i}`, title: `cable ${describeCable(cable)}`, place: 'host', ...origin('CABLES'),
      host: cableActions(name, cable),
      undo: cableUndo(cable), undoTitle: `delete ${cable.hostIf}`,
    });
  });

  if (options.cgroupRoot) {
    const dir = path.join(options.cgroupRoot, name);
    step({
      id: 'cgroup',
      title: `create cgroup ${dir}; the subhost's processes go into it${ids ? `; delegated to its root (${root} owns the directory, cgroup.procs, cgroup.threads and cgroup.subtree_control, not its limits)` : ''}`,
      place: 'host',
      host: [{ kind: 'cgroup', path: dir }], native: [op('cgroup', dir), ...(ids ? [op('cgroup-delegate', dir, root, root)] : [])],
      undo: [op('rmdir', dir, '3000')], undoTitle: `remove cgroup ${dir}`,
    });
  }
  // After the v2 cgroup step: a v2 limit writes into the directory it creates.
  for (const s of limitSteps(config, options.cgroupLayout ?? { v2Enabled: [], v1: {} })) step(s);

  // From here on, ops run in the subhost's private mount namespace.
  const setenv = Object.entries(env).map(([k, v]) => op('setenv', k, v));
  step({
    id: 'mount-namespace', title: 'enter a new private mount namespace (the host never sees the mounts below)',
    place: 'mount-namespace', native: [op('name', name), ...setenv],
    undoTitle: 'the kernel drops every mount below with the namespace',
  });

  if (config.logMaxSize !== undefined) {
    const keep = config.logKeep ?? 10;
    step({
      id: 'log-rotate', place: 'mount-namespace', ...origin('LOG_MAX_SIZE'),
      title: `rotate ${config.log} before it passes ${config.logMaxSize} bytes; keep ${keep} older logs gzip-compressed (${config.log}.1.gz ...)`,
      native: [op('log-rotate', config.log, config.logMaxSize, keep)],
    });
  }

  if (config.rootVariant !== 'premounted') {
    if (config.premount) {
      step({
        id: 'premount', title: `PREMOUNT: ${config.premount}`, place: 'mount-namespace', ...origin('PREMOUNT'),
        native: [op('hook', hookTimeout, config.premount)],
      });
    } else {
      const file = path.join(upper, 'etc/network/interfaces');
      // Written by ovb-launch inside UPPER's root (a link the subhost left there stays inside it);
      // the monitor removes the file again, inside that root, when the boot does not succeed.
      step({
        id: 'premount', title: `built-in premount: write ${file} unless it exists`, place: 'mount-namespace',
        native: [op('root', upper), op('write-if-missing', file, '0644', defaultInterfaces(config)),
          ...(ids ? ['etc', 'etc/network', 'etc/network/interfaces'].map((p) => op('chown-root', path.join(upper, p), root, root)) : [])],
        undoTitle: `remove ${file} if this boot wrote it, only when the boot fails`,
      });
    }
  }

  // From here on every path below LIVE is resolved inside it (`root`): the subhost may have left links there.
  if (config.rootVariant === 'overlay' && ids && config.layers.length) {
    // Unprivileged with LAYERS: every layer and LOWER an idmapped mount of its own, given to overlayfs as descriptors.
    const { title, native } = config.innerLayer ? innerLayerRoot(config, upper, usernsFile) : idmappedLayersRoot(config, upper, usernsFile);
    step({
      id: 'mount-root', place: 'mount-namespace', ...origin('LAYERS'),
      title: `${title}; each layer and LOWER idmapped (host uid 0 is ${root}); UPPER's top owned by ${root}`,
      native: [op('chown-root', upper, root, root), ...native],
    });
  } else if (config.rootVariant === 'overlay' && ids) {
    // Unprivileged: LOWER idmapped onto LIVE, and the overlay on top of it takes it as its lower layer.
    const data = `lowerdir=${live},upperdir=${upper},workdir=${config.work}`;
    step({
      id: 'mount-root',
      title: `mount ${config.lower} idmapped (host uid 0 is ${root}) on ${live}, then overlay on ${live} (${data}); UPPER's top owned by ${root}`,
      place: 'mount-namespace', ...origin('LIVE'),
      native: [
        op('chown-root', upper, root, root), op('idmap-lower', config.lower, live, usernsFile),
        op('mount', 'overlay', live, 'overlay', '', data), op('root', live),
      ],
    });
  } else if (config.rootVariant === 'overlay' && config.innerLayer) {
    step({ id: 'mount-root', place: 'mount-namespace', ...origin('LAYERS'), ...innerLayerRoot(config, upper) });
  } else if (config.rootVariant === 'overlay') {
    // One lower layer an argument (fsconfig "lowerdir+"): no 4 KB option string limits LAYERS.
    const layers = config.layers;
    const lowers = lowerList(layers);
    const title = `mount overlay on ${live} (upperdir=${upper}, workdir=${config.work}, ${layers.length ? `LAYERS ${lowers}, ` : ''}lowerdir+=${config.lower})`;
    step({
      id: 'mount-root', title, place: 'mount-namespace', ...origin(layers.length ? 'LAYERS' : 'LIVE'),
      native: [op('mount-overlay', live, upper, config.work, ...layers.concat(config.lower) as [string, ...string[]]), op('root', live)],
    });
  } else if (config.rootVariant === 'bind') {
    step({
      id: 'mount-root', title: `bind-mount UPPER ${upper} on ${live}`, place: 'mount-namespace', ...origin('UPPER'),
      native: [op('mount', upper, live, '', 'bind,rec', ''), op('root', live)],
    });
  } else {
    step({
      id: 'mount-root', title: `use ${live} as it is (LIVE equals LOWER: a premounted root)`,
      place: 'mount-namespace', ...origin('LIVE'), native: [op('root', live)],
    });
  }

  step({
    id: 'netns-join', title: `join network namespace ${name}, loopback up`, place: 'mount-namespace',
    native: [op('netns', `/run/netns/${name}`), op('link-up', 'lo')],
  });

  if (config.postmount) {
    step({
      id: 'postmount', title: `POSTMOUNT: ${config.postmount}`, place: 'mount-namespace', ...origin('POSTMOUNT'),
      native: [op('hook', hookTimeout, config.postmount)],
    });
  } else {
    step({ id: 'dev', title: `tmpfs on ${live}/dev (50M) with console, null, zero, ptmx, tty, random, urandom, fd links, shm, pts`,
      place: 'mount-namespace', native: devOps(live, root) });
    step({ id: 'devpts', title: `devpts (new instance) on ${live}/dev/pts`, place: 'mount-namespace', native: devptsOps(live, root) });
    step({ id: 'sysfs', title: `sysfs on ${live}/sys${ids ? ' (read-only)' : ''}`, place: 'mount-namespace', native: sysfsOps(live, !!ids) });
    if (config.ramSize) {
      step({ id: 'run', title: `tmpfs of ${config.ramSize} on ${live}/run, with run/lock`, place: 'mount-namespace',
        ...origin('RAM_SIZE'), native: runOps(live, config.ramSize, root) });
    }
    step({ id: 'adjtime', title: `bind /etc/adjtime on ${live}/etc/adjtime when both exist`, place: 'mount-namespace',
      native: [op('bind-optional', '/etc/adjtime', path.join(live, 'etc/adjtime'))] });
    step({ id: 'reaper-install', title: `install the reaper as ${live}/.reaper unless one is there`, place: 'mount-namespace',
      native: [op('copy-if-missing', options.reaperPath, path.join(live, '.reaper'), '0755')] });
  }

  config.shares.forEach((share, i) => {
    step({
      id: `share-${i}`, title: `bind-mount ${share.hostPath} on ${path.join(live, share.subhostPath)}`,
      place: 'mount-namespace', variable: 'SHARE', line: share.line,
      native: [op('bind-share', share.hostPath, path.join(live, share.subhostPath))],
    });
  });

  const procFlags = 'nosuid,nodev,noexec';
  const cgroupMount = !!options.cgroupRoot && !config.postmount;
  step({
    id: 'pid1',
    title: ids
      ? `join user namespace ${usernsFile} as its root, with mount and cgroup namespaces of its own; new pid, ipc, uts and time namespaces; hostname ${name}; mount /proc${cgroupMount ? ' and its cgroup on /sys/fs/cgroup' : ''}; pivot_root into ${live}; mask /proc as runc does`
      : `new pid, ipc, uts and time namespaces; hostname ${name}; pivot_root into ${live}; mount /proc`,
    place: 'subhost',
    native: ids
      ? [
        op('open-exec', options.reaperPath),
        op('userns', usernsFile),
        op('fork-pid1'),
        op('hostname', name),
        // Before pivot_root: in a user namespace, proc may only be mounted while the host's is visible.
        op('mkdir', path.join(live, 'proc'), '0555'),
        op('mount', 'proc', path.join(live, 'proc'), 'proc', procFlags, ''),
        // Its own v2 cgroup as the root of the hierarchy (the cgroup namespace), which it may
        // manage; on the sysfs of the built-in mounts (a POSTMOUNT hook replaces those: it has none).
        ...(cgroupMount ? [op('mount', 'cgroup2', path.join(live, 'sys/fs/cgroup'), 'cgroup2', procFlags, '')] : []),
        op('pivot', live),
        op('mask-proc'),
      ]
      : [
        op('open-exec', options.reaperPath),
        op('fork-pid1'),
        op('hostname', name),
        op('pivot', live),
        op('mkdir', '/proc', '0555'),
        op('mount', 'proc', '/proc', 'proc', procFlags, ''),
      ],
    undoTitle: 'the subhost ends when its pid 1 does',
  });

  const initScript = options.initScript ?? builtinInitScript(config.start);
  step({
    id: 'init', place: 'subhost', ...origin(config.init ? 'INIT' : 'START'),
    title: config.init
      ? `run the output of INIT (${config.init}), with the reaper as pid 1`
      : `start ${config.start.length ? config.start.join(', ') : 'no service (dummy_service)'}, with the reaper as pid 1`,
    native: [
      op('setenv', 'OVB_INIT', initScript),
      // The reaper stops START services itself at shutdown (reverse order); not with INIT set.
      op('setenv', 'OVB_STOP', config.init ? '' : stopCommands(config.start).join('\n')),
      // Supervised foreground services, one `/bin/sh -c` command line each.
      op('setenv', 'OVB_RUN', config.run.join('\n')),
      op('setenv', 'OVB_STOP_TIMEOUT', String(config.stopTimeout)),
      op('setenv', 'OVB_DUMMY', config.init ? '0' : '1'),
      // Unprivileged: the bounding set and the seccomp filter (src/native/confine.c), last before the reaper.
      ...(ids ? [op('confine')] : []),
      op('exec', 'reaper', name),
    ],
  });

  // Host files that need the running subhost's pids: written after START returned, removed when it ends.
  const fastStop = statePath.replace(/\.json$/, '.stop');
  step({
    id: 'fast-stop', title: `write the fast-stop line ${fastStop} (overlay-stop without Node.js) once the subhost is up`,
    place: 'host', when: 'running',
    host: [{ kind: 'fast-stop', path: fastStop, config: config.file, name, stopTimeout: config.stopTimeout }],
    undo: [op('unlink', fastStop)], undoTitle: `remove ${fastStop}`,
  });
  if (options.pidFile) {
    step({
      id: 'pidfile', title: `write the monitor's pid to ${options.pidFile} once the subhost is up`, place: 'host', when: 'running',
      host: [{ kind: 'pidfile', path: options.pidFile }],
      undo: [op('unlink', options.pidFile)], undoTitle: `remove ${options.pidFile}`,
    });
  }

  return { name, configFile: config.file, log: config.log, steps, initScript, env };
}

/** The built-in premount's /etc/network/interfaces for the subhost. */
export function defaultInterfaces(config: SubhostConfig): string {
  const lines = ['# written by overlay-boot: the subhost configures its own addresses', 'auto lo', 'iface lo inet loopback'];
  for (const cable of config.cables) {
    lines.push('', `auto ${cable.subhostIf}`, `iface ${cable.subhostIf} inet manual`);
  }
  return lines.join('\n') + '\n';
}

/**
 * The id range of an unprivileged subhost, or undefined for a privileged one. Only the
 * overlay root can be idmapped (a premounted or bound root would show the host's ids).
 */
function userNamespace(config: SubhostConfig, idmap: IdRange | undefined): IdRange | undefined {
  if (config.privileged) return undefined;
  if (config.rootVariant !== 'overlay') {
    throw new OverlayBootError('UNPRIV_UNSUPPORTED', `PRIVILEGED=no needs an overlay root; this config has a ${config.rootVariant} root (LIVE, UPPER and LOWER must differ)`, {
      file: config.file, line: config.origins.PRIVILEGED?.line, variable: 'PRIVILEGED', expected: 'LIVE, UPPER and LOWER distinct', found: config.rootVariant,
    });
  }
  if (!idmap) throw new OverlayBootError('INTERNAL', 'an unprivileged plan needs its id range', { variable: 'PRIVILEGED' });
  return idmap;
}

/**
 * The unprivileged overlay root with LAYERS: each lower layer (LOWER too) a detached
 * idmapped clone of its mount, handed to overlayfs as a descriptor (`idmap-overlay`).
 */
function idmappedLayersRoot(config: SubhostConfig, upper: string, userns: string): Pick<PlanStep, 'title' | 'native'> {
  const { live, work } = config;
  const lowers = config.layers.concat(config.lower) as [string, ...string[]];
  return {
    title: `mount overlay on ${live} (upperdir=${upper}, workdir=${work}, LAYERS ${lowerList(lowers)})`,
    native: [op('idmap-overlay', live, upper, work, userns, 'lowers', ...lowers), op('root', live)],
  };
}

function lowerList(dirs: string[]): string {
  return dirs.map((d) => `lowerdir+=${d}`).join(', ');
}

/**
 * The root when one layer lies inside LOWER's tree (overlayfs refuses it as a lower, but
 * checks the upper for no such overlap): an inner overlay on LIVE, read-only, with that
 * layer as its upper and the layers below it and LOWER as its lowers; then the subhost's
 * overlay on LIVE, with the layers above it and the inner overlay (LIVE, resolved before
 * the new mount covers it) as its lowers. Whiteouts and opaque directories of an upper
 * hide what is below as they do in a lower layer. Unprivileged (`userns`), the inner
 * overlay is made of idmapped mounts, its upper and workdir included (an overlay cannot
 * be idmapped itself, so it must show the mapped ids already), and the subhost's overlay
 * takes the layers above it idmapped and the inner overlay as it is.
 */
function innerLayerRoot(config: SubhostConfig, upper: string, userns?: string): Pick<PlanStep, 'title' | 'native'> {
  const { live, work, lower, layers } = config;
  const { layer, workdir } = config.innerLayer!;
  const at = layers.indexOf(layer);
  const innerLowers = layers.slice(at + 1).concat(lower) as [string, ...string[]];
  const outerLowers = layers.slice(0, at).concat(live) as [string, ...string[]];
  const overlay = (up: string, wk: string, mode: 'all' | 'lowers-but-last', lowers: [string, ...string[]]) =>
    userns ? op('idmap-overlay', live, up, wk, userns, mode, ...lowers) : op('mount-overlay', live, up, wk, ...lowers);
  return {
    title: `mount an inner overlay read-only on ${live} with LAYERS ${layer} as its read-only upper (it lies inside LOWER ${lower} on its filesystem, and overlayfs refuses overlapping lower layers) `
      + `(upperdir=${layer}, workdir=${workdir}, ${lowerList(innerLowers)}); then overlay on ${live} (upperdir=${upper}, workdir=${work}, ${lowerList(outerLowers)})`,
    native: [
      op('mkdir', workdir, '0700'),
      overlay(layer, workdir, 'all', innerLowers), op('mount', '', live, '', 'bind,remount,ro', ''),
      overlay(upper, work, 'lowers-but-last', outerLowers), op('root', live),
    ],
  };
}

/** overlayfs splits its options on ',' and ':'; such paths cannot be given to it. */
function checkOverlayPaths(config: SubhostConfig, upper: string): void {
  if (config.rootVariant !== 'overlay') return;
  // Unprivileged, LIVE is the lower layer too (LOWER idmapped onto it).
  const paths = { LOWER: config.lower, UPPER: upper, WORK: config.work, ...(config.privileged ? {} : { LIVE: config.live }) } as const;
  for (const [variable, p] of Object.entries(paths)) {
    if (p !== UPPER_PLACEHOLDER && /[,:\\]/.test(p)) {
      throw new OverlayBootError('CONFIG_BAD_PATH', `${p} contains ',', ':' or '\\', which overlayfs options cannot carry`, {
        file: config.file, line: config.origins[variable as 'LOWER']?.line, variable, found: p,
      });
    }
  }
}

/** Replace the UPPER placeholder once the UPPER program has printed the real path. */
export function resolveUpper(plan: BootPlan, upper: string): BootPlan {
  const fix = (s: string) => s.split(UPPER_PLACEHOLDER).join(upper);
  const fixOps = (ops: NativeOp[]) => ops.map((o) => mapOpArgs(o, fix));
  return {
    ...plan,
    env: Object.fromEntries(Object.entries(plan.env).map(([k, v]) => [k, fix(v)])),
    steps: plan.steps.map((s) => ({
      ...s,
      title: fix(s.title),
      undoTitle: fix(s.undoTitle),
      native: fixOps(s.native),
      undo: fixOps(s.undo),
    })),
  };
}
