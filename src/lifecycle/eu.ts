/**
 * Execution units (LIFECYCLE.md): the services of a DU, run inside the DU's subhost.
 * An EU is either an init script the DU's layer ships (`/etc/init.d/NAME`: started with
 * `start`, stopped with `stop`, its state from the LSB `status` exit code, 0 running and
 * 3 not running) or, for an OCI bundle, the bundle's process as the subhost's one `RUN=`
 * service (kind `run`: its state from the reaper's report; it runs exactly while the
 * subhost runs, so starting it boots the subhost and stopping it stops the subhost).
 *
 * These are the primitives; the operations (eu-start, eu-stop, eu-restart under the
 * queue lock, with journal and history) are in eu-ops.ts, and install and update call
 * these directly. Every wait is bounded by a timeout.
 */
import { closeSync, constants, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../commands/boot.js';
import { enter } from '../commands/enter.js';
import { readReaperReport } from '../commands/list.js';
import { stopByName } from '../commands/stop.js';
import { OverlayBootError, isOverlayBootError } from '../errors.js';
import { DEFAULT_EU_TIMEOUT_MS } from '../package/config.js';
import { openLogFile } from '../subhost/log.js';
import { isAlive } from '../subhost/process.js';
import { DEFAULT_STATE_DIR, liveness, readStateRecord, statePath } from '../subhost/state.js';
import { euid } from './identity.js';
import type { EuFaultCode, EuRecord } from './store.js';

/** How long an EU may take to reach Active or Idle, by default (`[lifecycle] eu_timeout`). */
export { DEFAULT_EU_TIMEOUT_MS };

/** How often start and stop look at the EU's status while they wait. */
const POLL_MS = 100;

/**
 * A name an init script may have to be an EU: what an EUID can carry and a shell word
 * needs no quoting for; dotfiles and editor or dpkg leftovers (`x~`, `x.dpkg-old`) are not EUs.
 */
const EU_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,63}$/;

/** Whether `name` can be an EU's Name (an /etc/init.d script name). */
export function isEuName(name: string): boolean {
  return EU_NAME.test(name) && !/\.dpkg-[a-z]+$|\.opkg$|-opkg$/.test(name);
}

/** The path of init script `name` inside the subhost. */
export function euScript(name: string): string {
  return `/etc/init.d/${name}`;
}

/**
 * The EUs a layer ships: every executable regular file in LAYER/etc/init.d (not a
 * symbolic link) whose name {@link isEuName}, sorted by name; AutoStart true, Idle.
 */
export function discoverEUs(layer: string, subhost: string): EuRecord[] {
  const dir = path.join(layer, 'etc/init.d');
  if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return [];
  return readdirSync(dir)
    .filter((name) => {
      if (!isEuName(name)) return false;
      const st = lstatSync(path.join(dir, name), { throwIfNoEntry: false });
      return st !== undefined && st.isFile() && (st.mode & constants.S_IXUSR) !== 0;
    })
    .sort()
    .map((Name) => ({ EUID: euid(subhost, Name), Name, AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' }));
}

/** The one EU of an OCI bundle DU: the bundle's process, the subhost's RUN= service. */
export function ociEU(subhost: string, bundle: string): EuRecord {
  return { EUID: euid(subhost, bundle), Name: bundle, kind: 'run', AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' };
}

/** Options of the EU primitives. */
export interface EuOptions {
  /** Directory of runtime state records (overlay-boot's). Default `/run/overlay-boot`. */
  runtimeDir?: string;
  /** Milliseconds to reach the state, and for one status probe. Default {@link DEFAULT_EU_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** What one look at an EU found. */
export interface EuProbe {
  /** Active or Idle: the persistent states; Starting and Stopping exist only inside operations. */
  Status: 'Active' | 'Idle';
  /** Why it is Idle when that is not simply "not running": a status that is neither 0 nor 3, a failed RUN service. */
  note?: string;
}

/** Whether subhost `subhost` runs (its runtime record's pid 1 is alive); its pid 1 then. */
function runningPid1(subhost: string, runtimeDir: string): number | undefined {
  const record = readStateRecord(statePath(subhost, runtimeDir));
  return record?.pid1 && liveness(record) === 'running' && isAlive(record.pid1) ? record.pid1.pid : undefined;
}

/**
 * Runs `/etc/init.d/NAME action` inside the running subhost; the output of `start` and
 * `stop` goes to the subhost's LOG (as START's does), that of `status` (polled) nowhere. Resolves with its exit status; NOT_RUNNING or
 * PROCESS_CHANGED when the subhost is not running.
 */
async function runScript(subhost: string, name: string, action: string, runtimeDir: string, timeoutMs: number): Promise<number> {
  const record = readStateRecord(statePath(subhost, runtimeDir));
  let logFd: number | undefined;
  try {
    if (record?.log && action !== 'status') logFd = openLogFile(record.log);
  } catch {
    logFd = undefined; // an unsafe or unwritable LOG only loses the script's output
  }
  try {
    const out = logFd ?? 'ignore';
    // The script runs straight under ovb-launch, in a session of its own (a daemon it
    // leaves behind is not in ours), its whole process group killed when it overruns (a
    // hung init script must not hold the queue): no shell, timeout or setsid in between,
    // which halves the processes of every start, stop and status probe.
    return await enter(subhost, [euScript(name), action],
      { stateDir: runtimeDir, stdio: ['ignore', out, out], session: true, timeoutMs: Math.max(1000, timeoutMs) });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
}

/** Whether `e` says the subhost is not (or no longer) running. */
function notRunning(e: unknown): boolean {
  return isOverlayBootError(e) && (e.code === 'NOT_RUNNING' || e.code === 'PROCESS_CHANGED');
}

/**
 * Looks once at EU `eu` of DU subhost `subhost`: an init script's LSB `status` inside
 * the running subhost (0 Active, 3 Idle, anything else Idle with a note), a `run` EU's
 * RUN service in the reaper's report (`running` is Active); Idle when the subhost does
 * not run. The probe is bounded by `timeoutMs` (a status that hangs is Idle with a note).
 */
export async function probeEU(subhost: string, eu: EuRecord, opts: EuOptions = {}): Promise<EuProbe> {
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const pid1 = runningPid1(subhost, runtimeDir);
  if (pid1 === undefined) return { Status: 'Idle' };
  if (eu.kind === 'run') {
    const service = readReaperReport(pid1)?.services?.[0];
    if (service?.state === 'running') return { Status: 'Active' };
    return service?.state === 'failed'
      ? { Status: 'Idle', note: `the RUN service was given up (last exit status ${service.lastExit ?? 'unknown'})` }
      : { Status: 'Idle' };
  }
  let code: number;
  try {
    code = await runScript(subhost, eu.Name, 'status', runtimeDir, opts.timeoutMs ?? DEFAULT_EU_TIMEOUT_MS);
  } catch (e) {
    // Also a subhost that ended while it was being entered (its reaper exits with its last
    // service, as when this EU was just stopped): setns then finds no process.
    if (notRunning(e) || runningPid1(subhost, runtimeDir) !== pid1) return { Status: 'Idle' };
    throw e;
  }
  if (code === 0) return { Status: 'Active' };
  if (code === 3) return { Status: 'Idle' };
  return { Status: 'Idle', note: `${euScript(eu.Name)} status exited with ${code}${code === 137 ? ' (killed: it took too long)' : ''}` };
}

/** The live Status of EU `eu` (see {@link probeEU}): Active or Idle. */
export async function euLiveStatus(subhost: string, eu: EuRecord, opts: EuOptions = {}): Promise<EuProbe['Status']> {
  return (await probeEU(subhost, eu, opts)).Status;
}

/** Polls until the EU's status is `want` or the deadline passes; the last probe. */
async function waitFor(subhost: string, eu: EuRecord, want: EuProbe['Status'], deadline: number, opts: EuOptions): Promise<EuProbe> {
  for (;;) {
    const left = deadline - Date.now();
    const probe = await probeEU(subhost, eu, { ...opts, timeoutMs: Math.max(1000, left) });
    if (probe.Status === want || Date.now() >= deadline) return probe;
    await new Promise((r) => setTimeout(r, Math.min(POLL_MS, Math.max(0, deadline - Date.now()))));
  }
}

/** The PKG_EU_FAILED error of an EU that did not reach `want` during `step`. */
function euFailed(eu: EuRecord, step: 'start' | 'stop', want: string, found: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_EU_FAILED', `${eu.EUID} did not become ${want}: ${found}`, {
    name: eu.EUID, step, expected: want, found, ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Starts EU `eu` of the running DU subhost `subhost` and waits until its status is
 * Active, at most `timeoutMs`. An init script: `/etc/init.d/NAME start` inside, in its
 * own session. A `run` EU: boots the subhost (`configPath` is its config) when it does not run.
 * Throws PKG_EU_FAILED (step `start`; {@link euFaultOf} gives FailureOnStart) when the
 * script fails or the EU is not Active in time.
 */
export async function startEU(subhost: string, eu: EuRecord, opts: EuOptions & { configPath?: string } = {}): Promise<void> {
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EU_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  try {
    if (eu.kind === 'run') {
      if (runningPid1(subhost, runtimeDir) === undefined) {
        if (!opts.configPath) throw euFailed(eu, 'start', 'Active', 'its subhost does not run and no config was given to boot it');
        await boot(opts.configPath, { stateDir: runtimeDir });
      }
    } else {
      const code = await runScript(subhost, eu.Name, 'start', runtimeDir, timeoutMs);
      if (code !== 0) throw euFailed(eu, 'start', 'Active', `${euScript(eu.Name)} start exited with ${code}`);
    }
  } catch (e) {
    if (isOverlayBootError(e) && e.code === 'PKG_EU_FAILED') throw e;
    throw euFailed(eu, 'start', 'Active', isOverlayBootError(e) ? `${e.code}: ${e.message}` : String(e), e);
  }
  const probe = await waitFor(subhost, eu, 'Active', deadline, { ...opts, runtimeDir });
  if (probe.Status !== 'Active') throw euFailed(eu, 'start', 'Active', `still ${probe.Status} after ${timeoutMs} ms${probe.note ? ` (${probe.note})` : ''}`);
}

/**
 * Stops EU `eu` of DU subhost `subhost` and waits until its status is Idle, at most
 * `timeoutMs`: `/etc/init.d/NAME stop` inside (its exit status only reported: the
 * status decides); a `run` EU stops its subhost. Nothing to do when the subhost does
 * not run. Throws PKG_EU_FAILED (step `stop`; FailureOnStop) when it is not Idle in time.
 */
export async function stopEU(subhost: string, eu: EuRecord, opts: EuOptions = {}): Promise<void> {
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EU_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  if (runningPid1(subhost, runtimeDir) === undefined) return;
  let code: number;
  try {
    if (eu.kind === 'run') {
      await stopByName(subhost, { stateDir: runtimeDir });
      return;
    }
    code = await runScript(subhost, eu.Name, 'stop', runtimeDir, timeoutMs);
  } catch (e) {
    if (notRunning(e)) return;
    throw euFailed(eu, 'stop', 'Idle', isOverlayBootError(e) ? `${e.code}: ${e.message}` : String(e), e);
  }
  // Many scripts' stop exits non-zero when the service had ended already: the status decides.
  const probe = await waitFor(subhost, eu, 'Idle', deadline, { ...opts, runtimeDir });
  if (probe.Status !== 'Idle') {
    throw euFailed(eu, 'stop', 'Idle', `still ${probe.Status} after ${timeoutMs} ms${code === 0 ? '' : ` (${euScript(eu.Name)} stop exited with ${code})`}`);
  }
}

/** The ExecutionFaultCode a failure of {@link startEU} or {@link stopEU} means; undefined for other errors. */
export function euFaultOf(error: unknown): EuFaultCode | undefined {
  if (!isOverlayBootError(error) || error.code !== 'PKG_EU_FAILED') return undefined;
  return error.step === 'stop' ? 'FailureOnStop' : 'FailureOnStart';
}
