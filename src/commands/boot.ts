import { closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { checkHookSafety, configDigest, isDeviceNode, readConfig, type ReadConfigOptions } from '../config/index.js';
import type { SubhostConfig } from '../config/types.js';
import { OverlayBootError, isOverlayBootError } from '../errors.js';
import { firstLine } from '../host/actions.js';
import { findCgroup2Root, readCgroupLayout } from '../host/cgroup.js';
import { runTeardown } from '../subhost/launch.js';
import { buildBootPlan } from '../plan/build.js';
import type { BootEventListener } from '../plan/events.js';
import { executePlan } from '../plan/execute.js';
import type { BootPlan } from '../plan/types.js';
import { releaseIdRange, reserveIdRange, type IdRange } from '../subhost/idmap.js';
import { openLogFile, openSubhostLog } from '../subhost/log.js';
import { findNative } from '../subhost/native.js';
import { processId } from '../subhost/process.js';
import { createStateRecord, DEFAULT_STATE_DIR, readStateRecord, statePath, writeStateRecord, type StateRecord } from '../subhost/state.js';
import { checkHostForBoot, recoverStaleRecord, requireRoot } from './preflight.js';

export interface BootOptions extends Omit<ReadConfigOptions, 'action'> {
  /** Called for every step as it starts, ends or fails. */
  onEvent?: BootEventListener;
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
  /** Milliseconds from launch until the subhost must be ready (START returned). Default 120000. */
  bootTimeoutMs?: number;
  /** Return only when the subhost has ended (for supervisors like systemd). Default false. */
  foreground?: boolean;
  /** Write the monitor's pid here once the subhost is up (for systemd's PIDFile=). */
  pidFile?: string;
  /** Fail this step on purpose (tests). Default: `OVERLAY_BOOT_FAIL_STEP` from the environment. */
  failStep?: string;
  /**
   * START for this boot only, instead of the config's (`[]`: start no service). overlay-pkg
   * boots a DU's subhost without its AutoStart EUs this way (install --no-start, update).
   * The state record keeps the digest of the config as written, so overlay-watch adopts it.
   */
  start?: string[];
}

export interface BootResult {
  name: string;
  config: string;
  log: string;
  pid1: number;
  monitorPid: number;
  /** Milliseconds per step. */
  stepTimes: Record<string, number>;
  /** The plan that was run: every step with its undo. */
  plan: BootPlan;
  /** With `foreground`: resolves with the monitor's exit status when the subhost has ended. */
  ended?: Promise<number | null>;
}

/** The plan a boot would run, with everything resolved that can be without changing the host. */
export async function planBoot(config: SubhostConfig,
  options: { stateDir?: string; reaperPath: string; runInit?: boolean; bangMounts?: string[]; pidFile?: string; idmap?: IdRange }): Promise<BootPlan> {
  if (!config.privileged) refuseDeviceShares(config);
  const initScript = config.init && options.runInit ? await runInitCommand(config) : undefined;
  return buildBootPlan(config, {
    stateDir: options.stateDir, reaperPath: options.reaperPath, cgroupRoot: findCgroup2Root(), cgroupLayout: readCgroupLayout(), initScript,
    bangMounts: options.bangMounts, pidFile: options.pidFile, idmap: options.idmap,
  });
}

/**
 * A host device node shared into an unprivileged subhost would be reachable by a root
 * that is not the host's: refused up front (--check says so too).
 */
function refuseDeviceShares(config: SubhostConfig): void {
  for (const share of config.shares) {
    if (isDeviceNode(share.hostPath)) {
      throw new OverlayBootError('UNPRIV_UNSUPPORTED', `SHARE ${share.hostPath} is a device node, which PRIVILEGED=no does not hand to a subhost`, {
        file: config.file, line: share.line, variable: 'SHARE', found: share.hostPath, expected: 'a directory or regular file',
      });
    }
  }
}

/** Unmount what `!` commands mounted, deepest first, when the boot goes no further. */
async function unmountBangMounts(launcher: string, mounts: string[]): Promise<void> {
  if (mounts.length) await runTeardown(launcher, mounts.map((m) => ({ op: 'umount', args: [m] })), 'ignore', process.env);
}

/**
 * Boot the subhost of a config file: returns once pid 1 runs and START has
 * returned. On failure everything done is undone before the error is thrown.
 */
export async function boot(configPath: string, options: BootOptions = {}): Promise<BootResult> {
  requireRoot('overlay-boot');
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const native = findNative();
  // The mounts of this read's own '!' commands, never those of a simultaneous boot.
  let bangMounts: string[] = [];
  let config: SubhostConfig;
  try {
    config = await readConfig(configPath, { ...options, action: 'overlay-boot', onMounts: (m) => { bangMounts = m; options.onMounts?.(m); } });
  } catch (e) {
    await unmountBangMounts(native.launcher, bangMounts);
    throw e;
  }
  const digest = configDigest(config);
  if (options.start) config = { ...config, start: [...options.start] };
  let plan: BootPlan;
  // PRIVILEGED=no: a range of host ids of its own, reserved until the subhost ends (the plan's undo).
  let idmap: IdRange | undefined;
  const giveBack = () => { if (idmap) releaseIdRange(idmap, config.name, stateDir); };
  try {
    if (options.checkOwnership !== false) await checkHookSafety(config);
    await recoverStaleRecord(config.name, stateDir, native.launcher, 'ignore');
    checkHostForBoot(config, stateDir);
    const pidFile = options.pidFile ? path.resolve(options.pidFile) : undefined;
    if (!config.privileged) idmap = reserveIdRange(config.name, stateDir, undefined, config.upperProgram ? undefined : config.upper);
    plan = await planBoot(config, { stateDir, reaperPath: native.reaper, runInit: true, bangMounts, pidFile, idmap });
  } catch (e) {
    giveBack();
    await unmountBangMounts(native.launcher, bangMounts);
    throw e;
  }

  let logFd: number;
  let log: ReturnType<typeof openSubhostLog>;
  try {
    ({ logFd, log } = openLog(config));
  } catch (e) {
    giveBack();
    await unmountBangMounts(native.launcher, bangMounts);
    throw e;
  }
  const file = statePath(config.name, stateDir);
  const record: StateRecord = {
    version: 1, name: config.name, config: config.file, configDigest: digest, log: config.log, boot: processId(process.pid),
    phase: 'booting', startedAt: new Date().toISOString(),
    cables: config.cables.map((c) => ({ hostIf: c.hostIf, subhostIf: c.subhostIf, bridge: c.bridge,
      mac: c.kind === 'veth' ? c.mac : undefined, vlan: c.kind === 'vlan' ? c.vlan : undefined })),
    services: config.start, teardown: [], ...(idmap ? { idmap } : {}),
  };
  log.info({ config: config.file }, `Booting ${config.name}`);
  try {
    const result = await executePlan(plan, {
      launcher: native.launcher,
      logFd,
      bootTimeoutMs: options.bootTimeoutMs,
      failStep: options.failStep ?? process.env.OVERLAY_BOOT_FAIL_STEP,
      stayAttached: options.foreground,
      onEvent: (e) => {
        if (e.type === 'step-failed') log.error({ step: e.step, ms: e.durationMs }, `step ${e.step} failed: ${e.error}`);
        else if (e.type === 'step-done') log.debug({ step: e.step, ms: e.durationMs }, e.title);
        options.onEvent?.(e);
      },
      createState: (f, teardown) => createStateRecord(f, { ...record, teardown }),
      onProgress: ({ monitor, pid1, running, teardown }) => {
        // The monitor removes the record when the subhost ends; never resurrect it.
        if (!readStateRecord(file)) return;
        writeStateRecord(file, {
          ...record, boot: running ? undefined : record.boot, phase: running ? 'running' : 'booting', monitor,
          pid1: pid1 === undefined ? undefined : processId(pid1) ?? { pid: pid1, start: 0 }, teardown,
        });
      },
    });
    log.info({ pid1: result.pid1 }, `Started ${config.name}`);
    return {
      name: config.name, config: config.file, log: config.log, pid1: result.pid1, monitorPid: result.monitor.pid,
      stepTimes: result.stepTimes, plan: result.plan, ended: result.exited,
    };
  } catch (e) {
    giveBack();
    log.error({ err: e instanceof OverlayBootError ? e.toJSON() : String(e) }, `Boot of ${config.name} failed`);
    throw e;
  } finally {
    closeSync(logFd);
    log.flush?.();
  }
}

/** LOG opened for appending (with its directory), for the monitor and for our own lines. */
function openLog(config: SubhostConfig): { logFd: number; log: ReturnType<typeof openSubhostLog> } {
  let fd: number | undefined;
  try {
    mkdirSync(path.dirname(config.log), { recursive: true });
    fd = openLogFile(config.log);
    return { logFd: fd, log: openSubhostLog(config.log, config.name, fd) };
  } catch (cause) {
    if (fd !== undefined) closeSync(fd);
    if (isOverlayBootError(cause) && cause.code === 'LOG_UNSAFE') {
      throw new OverlayBootError('LOG_UNSAFE', cause.message, {
        file: config.file, line: config.origins.LOG?.line, variable: 'LOG', found: config.log, expected: cause.expected, cause,
      });
    }
    throw new OverlayBootError('LOG_UNWRITABLE', `cannot open LOG ${config.log} for appending: ${(cause as Error).message}`, {
      file: config.file, line: config.origins.LOG?.line, variable: 'LOG', found: config.log, cause,
    });
  }
}

/** INIT is a command line whose output is the init script (SPEC variable table). */
async function runInitCommand(config: SubhostConfig): Promise<string> {
  const { execa } = await import('execa');
  const r = await execa('/bin/sh', ['-c', config.init as string], {
    env: { CONFIG: config.file, ACTION: 'overlay-boot', NAME: config.name }, cwd: config.base,
    reject: false, timeout: 30000, detached: true, stdin: 'ignore',
  });
  if (r.exitCode !== 0 || r.timedOut) {
    throw new OverlayBootError('HOOK_FAILED', `INIT command failed (${r.timedOut ? 'timed out' : `status ${r.exitCode}`})${r.stderr ? `: ${firstLine(r.stderr)}` : ''}`,
      { file: config.file, line: config.origins.INIT?.line, variable: 'INIT', step: 'init' });
  }
  return r.stdout + '\n';
}
