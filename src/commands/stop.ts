import path from 'node:path';
import { readConfig, type ReadConfigOptions } from '../config/index.js';
import { OverlayBootError } from '../errors.js';
import { existsSync } from 'node:fs';
import { linkExists, mountPoints, netnsExists } from '../host/links.js';
import { hostUndo } from '../plan/execute.js';
import type { NativeOp } from '../plan/types.js';
import { previewIdRange, releaseLeftOverRanges } from '../subhost/idmap.js';
import { runTeardown } from '../subhost/launch.js';
import { findNative, signalPinned } from '../subhost/native.js';
import { isAlive } from '../subhost/process.js';
import { DEFAULT_STATE_DIR, liveness, readStateRecord, removeOrphanTemps, removeStateRecord, statePath, type StateRecord } from '../subhost/state.js';
import { planBoot } from './boot.js';
import { requireRoot } from './preflight.js';

export interface StopOptions extends Omit<ReadConfigOptions, 'action'> {
  /** Seconds to wait after SIGTERM before SIGKILL. Default: STOP_TIMEOUT of the config (10). */
  timeoutSeconds?: number;
  /**
   * Unused since the reaper stops the START services itself, within its grace period
   * (STOP_TIMEOUT); kept so that existing callers still compile.
   * @deprecated
   */
  serviceTimeoutSeconds?: number;
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
  /** Milliseconds to wait for a boot in progress before giving up with LOCKED. Default 130000. */
  bootWaitMs?: number;
  /**
   * Teardown ops for left-overs when the subhost is not running and has no record: stop()
   * gives the undo of its plan's host steps. Default: delete the network namespace NAME.
   */
  leftovers?: NativeOp[];
}

export interface StopResult {
  name: string;
  /** false when the subhost was not running (left-overs were cleaned). */
  wasRunning: boolean;
  /**
   * Services whose stop command failed. Always empty now: the reaper runs the stop
   * commands as one script at SIGTERM and their output goes to the subhost's log.
   */
  failedServices: string[];
  killed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long stop waits for a boot in progress (boot itself gives up after 120 s). */
const BOOT_WAIT_MS = 130000;

/** Added to timeoutSeconds before stop SIGKILLs pid 1 itself: the reaper's KILL and the teardown. */
const STOP_MARGIN_MS = 3000;

async function waitGone(record: StateRecord, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isAlive(record.monitor) && !isAlive(record.pid1)) return true;
    await sleep(5);
  }
  return !isAlive(record.monitor) && !isAlive(record.pid1);
}

/**
 * Stop the subhost of a config file: SIGTERM to pid 1, whose reaper stops the START
 * services in reverse order, TERMs the rest and KILLs at its grace limit; SIGKILL to
 * pid 1 here when the subhost is still there after the timeout (+3 s); returns
 * when the monitor has undone everything. Stopping a stopped subhost cleans any
 * left-over and throws NOT_RUNNING.
 */
export async function stop(configPath: string, options: StopOptions = {}): Promise<StopResult> {
  requireRoot('overlay-stop');
  const config = await readConfig(configPath, { ...options, action: 'overlay-stop' });
  // Without a state record, the boot plan of the config still tells what would be this
  // subhost's on the host (namespace, cable ends, cgroup): its host steps' undo cleans them.
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  // PRIVILEGED=no: the range of the record; without one, no range is this subhost's to give back
  // through the plan (one left by a boot that died goes in cleanLeftovers).
  const idmap = config.privileged ? undefined : readStateRecord(statePath(config.name, stateDir))?.idmap ?? previewIdRange(stateDir);
  const plan = await planBoot(config, { stateDir, reaperPath: findNative().reaper, runInit: false, idmap });
  const leftovers = hostUndo(plan).filter((o) => !(o.op === 'unlink' && o.args[0].startsWith(path.join(stateDir, 'idmap') + path.sep)));
  return stopByName(config.name, { ...options, leftovers, timeoutSeconds: options.timeoutSeconds ?? config.stopTimeout });
}

export async function stopByName(name: string, options: StopOptions = {}): Promise<StopResult> {
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const file = statePath(name, stateDir);
  const record = readStateRecord(file);
  const native = findNative();
  if (!record || liveness(record) === 'stale') {
    await cleanLeftovers(name, record, native.launcher, file, options.leftovers);
    throw new OverlayBootError('NOT_RUNNING', `${name} is not running`, { name });
  }
  if (record.phase === 'booting' && isAlive(record.boot)) {
    // Boot and stop racing: let the boot finish (it is bounded), then stop what it made.
    const end = Date.now() + (options.bootWaitMs ?? BOOT_WAIT_MS);
    while (Date.now() < end && isAlive(record.boot) && readStateRecord(file)?.phase === 'booting') await sleep(20);
    if (isAlive(record.boot) && readStateRecord(file)?.phase === 'booting') {
      throw new OverlayBootError('LOCKED', `${name} is still booting (pid ${record.boot?.pid})`, { name });
    }
    return stopByName(name, options);
  }
  if (!isAlive(record.pid1)) {
    // The boot command died before pid 1 ran: its monitor is undoing the boot; wait for it.
    await waitGone(record, 15000);
    await cleanLeftovers(name, readStateRecord(file), native.launcher, file);
    throw new OverlayBootError('NOT_RUNNING', `${name} is not running`, { name });
  }
  const failedServices: string[] = [];
  const pid1 = record.pid1!;
  let killed = false;
  // Signals go through pidfds (ovb-launch kill): never to a process that merely took the pid over.
  if (isAlive(pid1)) await signalPinned(native.launcher, pid1, 'SIGTERM');
  // The reaper's own grace limit, plus a margin for it to KILL and for the monitor's teardown.
  const timeoutMs = (options.timeoutSeconds ?? 10) * 1000 + STOP_MARGIN_MS;
  if (!(await waitGone(record, timeoutMs))) {
    killed = true;
    if (isAlive(pid1)) await signalPinned(native.launcher, pid1, 'SIGKILL');
    if (!(await waitGone(record, 5000))) {
      if (isAlive(pid1)) {
        throw new OverlayBootError('STOP_FAILED', `${name}: pid 1 (${pid1.pid}) survived SIGKILL`, { name });
      }
      // Pid 1 is gone but the monitor hangs: end it and do its teardown here.
      if (record.monitor && isAlive(record.monitor)) {
        await signalPinned(native.launcher, record.monitor, 'SIGKILL');
        await waitGone(record, 2000);
      }
    }
  }
  // The monitor removes the record at the end of its teardown; if it died, finish its work.
  if (readStateRecord(file)) await cleanLeftovers(name, record, native.launcher, file);
  return { name, wasRunning: true, failedServices, killed };
}

async function cleanLeftovers(name: string, record: StateRecord | undefined, launcher: string, file: string,
  leftovers: NativeOp[] = [{ op: 'del-netns', args: [name] }]): Promise<void> {
  removeOrphanTemps(name, path.dirname(file));
  if (record) {
    await runTeardown(launcher, record.teardown, 'ignore', process.env);
    removeStateRecord(file);
  } else {
    // SPEC: overlay-stop of a stopped subhost deletes a left-over network namespace (and we its
    // cable ends and cgroup). A teardown process only when one of them is there.
    const ops = leftovers.filter(isLeftOver);
    if (ops.length) await runTeardown(launcher, ops, 'ignore', process.env);
  }
  // PRIVILEGED=no: a boot killed before its undo held its id range (or the record's teardown
  // did) leaves the range reserved; with no record left, it is nobody's.
  releaseLeftOverRanges(name, path.dirname(file));
}

/** Whether what a teardown op removes is there. */
function isLeftOver(o: NativeOp): boolean {
  const [arg = ''] = o.args;
  switch (o.op) {
    case 'del-netns': return netnsExists(arg);
    case 'del-link': return linkExists(arg);
    case 'rmdir': case 'unlink': return existsSync(arg);
    case 'umount': return mountPoints().has(arg);
    default: return false;
  }
}

/**
 * Stop every running subhost, the most recently started first (the init
 * script's `stop`). Errors are collected, not thrown, so one stubborn subhost
 * does not keep the others running.
 */
export async function stopAll(options: StopOptions = {}): Promise<Array<{ name: string; error?: OverlayBootError }>> {
  const { list } = await import('./list.js');
  const running = list(options).filter((s) => s.state === 'running').sort((a, b) => b.startedAt.localeCompare(a.startedAt));
  const results: Array<{ name: string; error?: OverlayBootError }> = [];
  for (const s of running) {
    try {
      await stopByName(s.name, options);
      results.push({ name: s.name });
    } catch (e) {
      results.push({ name: s.name, error: e instanceof OverlayBootError ? e : new OverlayBootError('STOP_FAILED', String(e), { name: s.name }) });
    }
  }
  return results;
}
