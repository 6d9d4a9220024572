import { execa } from 'execa';
import { readConfig, type ReadConfigOptions } from '../config/index.js';
import { OverlayBootError } from '../errors.js';
import { netnsExists } from '../host/links.js';
import { stopCommands } from '../subhost/init-script.js';
import { runTeardown } from '../subhost/launch.js';
import { findNative } from '../subhost/native.js';
import { isAlive } from '../subhost/process.js';
import { DEFAULT_STATE_DIR, liveness, readStateRecord, removeStateRecord, statePath, type StateRecord } from '../subhost/state.js';
import { requireRoot } from './preflight.js';

export interface StopOptions extends Omit<ReadConfigOptions, 'action'> {
  /** Seconds to wait after SIGTERM before SIGKILL. Default: STOP_TIMEOUT of the config (10). */
  timeoutSeconds?: number;
  /** Seconds each START service's `stop` may take. Default 10. */
  serviceTimeoutSeconds?: number;
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
}

export interface StopResult {
  name: string;
  /** false when the subhost was not running (left-overs were cleaned). */
  wasRunning: boolean;
  /** Services whose stop command failed. */
  failedServices: string[];
  killed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitGone(record: StateRecord, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (!isAlive(record.monitor) && !isAlive(record.pid1)) return true;
    await sleep(5);
  }
  return !isAlive(record.monitor) && !isAlive(record.pid1);
}

/**
 * Stop the subhost of a config file: its START services in reverse order, then
 * TERM to pid 1 (the reaper stops the rest), KILL after the timeout; returns
 * when the monitor has undone everything. Stopping a stopped subhost cleans any
 * left-over and throws NOT_RUNNING.
 */
export async function stop(configPath: string, options: StopOptions = {}): Promise<StopResult> {
  requireRoot('overlay-stop');
  const config = await readConfig(configPath, { ...options, action: 'overlay-stop' });
  return stopByName(config.name, { ...options, timeoutSeconds: options.timeoutSeconds ?? config.stopTimeout });
}

export async function stopByName(name: string, options: StopOptions = {}): Promise<StopResult> {
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const file = statePath(name, stateDir);
  const record = readStateRecord(file);
  const native = findNative();
  if (!record || liveness(record) === 'stale') {
    await cleanLeftovers(name, record, native.launcher, file);
    throw new OverlayBootError('NOT_RUNNING', `${name} is not running`, { name });
  }
  if (record.phase === 'booting' && !record.pid1) {
    throw new OverlayBootError('LOCKED', `${name} is still booting (pid ${record.boot?.pid})`, { name });
  }
  const failedServices: string[] = [];
  const pid1 = record.pid1!;
  const serviceMs = (options.serviceTimeoutSeconds ?? 10) * 1000;
  for (const cmd of stopCommands(record.services)) {
    if (!isAlive(pid1)) break;
    const r = await execa('nsenter', ['-t', String(pid1.pid), '-m', '-u', '-i', '-n', '-p', '-r', '-w', '/bin/sh', '-c', cmd], {
      reject: false, timeout: serviceMs, stdin: 'ignore',
    });
    // Stopping the last service ends the subhost, which kills this very command: not a failure.
    if (r.exitCode !== 0 && isAlive(pid1)) failedServices.push(cmd);
  }
  let killed = false;
  if (isAlive(pid1)) {
    try { process.kill(pid1.pid, 'SIGTERM'); } catch { /* gone */ }
  }
  const timeoutMs = (options.timeoutSeconds ?? 10) * 1000;
  if (!(await waitGone(record, timeoutMs))) {
    killed = true;
    if (isAlive(pid1)) {
      try { process.kill(pid1.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (!(await waitGone(record, 10000))) {
      throw new OverlayBootError('STOP_FAILED', `${name}: the monitor (pid ${record.monitor?.pid}) did not finish`, { name });
    }
  }
  // The monitor removes the record at the end of its teardown; if it died, finish its work.
  if (readStateRecord(file)) await cleanLeftovers(name, record, native.launcher, file);
  return { name, wasRunning: true, failedServices, killed };
}

async function cleanLeftovers(name: string, record: StateRecord | undefined, launcher: string, file: string): Promise<void> {
  if (record) {
    await runTeardown(launcher, record.teardown, 'ignore', process.env);
    removeStateRecord(file);
  } else if (netnsExists(name)) {
    // SPEC: overlay-stop of a stopped subhost deletes a left-over network namespace.
    await runTeardown(launcher, [{ op: 'del-netns', args: [name] }], 'ignore', process.env);
  }
}
