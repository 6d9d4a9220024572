/**
 * The EU requests (LIFECYCLE.md "EU start / stop / restart"; USP's RequestedState Active
 * or Idle), each one {@link transact} of kind `eu-start`, `eu-stop` or `eu-restart`:
 * under the queue lock, after recovering what a crash left, with history and events.
 *
 * - start: refused while the EU is Stopping (PKG_EU_STATE, 9029); an EU already Active is
 *   a no-op (`changed: false`); when the DU's subhost does not run it is booted first
 *   without its AutoStart EUs (`start: []`), so only this EU starts. Not Active within
 *   the timeout: the operation fails (PKG_EU_FAILED), the EU is stopped again (best
 *   effort) and recorded Idle with ExecutionFaultCode FailureOnStart.
 * - stop: an EU that is Idle (live) is a no-op; else `stop` and wait for Idle
 *   (FailureOnStop when it does not come).
 * - restart: stop (when Active), then start.
 *
 * The record's EU goes through Starting / Stopping / Restarting while the operation runs
 * (only in the journal's lifetime: recovery, or the operation's own end, writes the
 * live state). Recovery of an interrupted EU operation ({@link recoverEuOperation})
 * re-reads the live status and records it; nothing else is undone, since starting or
 * stopping a service has nothing to roll back but the service's own state.
 */
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { boot } from '../commands/boot.js';
import { DEFAULT_STATE_DIR } from '../subhost/state.js';
import { journalStep } from './crash.js';
import { euFaultOf, probeEU, startEU, stopEU, DEFAULT_EU_TIMEOUT_MS, type EuOptions, type EuProbe } from './eu.js';
import type { LifecycleEvents } from './events.js';
import type { HistoryEntry } from './history.js';
import { Journal, type JournalOperation, type OperationKind } from './journal.js';
import type { LockOptions } from './lock.js';
import { recoverNow, recoverOperation } from './recover.js';
import { DuStore, type DuRecord, type EuFaultCode, type EuRecord, type EuStatus } from './store.js';
import { transact, type OperationResult } from './transaction.js';
import { findDU, isRunning } from './uninstall.js';
import { unitPaths } from './unit.js';

/** What an EU request does. */
export type EuAction = 'start' | 'stop' | 'restart';

/** Options of {@link euStart}, {@link euStop} and {@link euRestart}. */
export interface EuRequestOptions {
  config: PkgConfig;
  /** The EU: `SUBHOST/NAME` (the DU may be given by its UUID too, when only one DU has it). */
  euid: string;
  events?: LifecycleEvents;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** Milliseconds the EU has to become Active or Idle. Default: the config's `[lifecycle] eu_timeout`. */
  timeoutMs?: number;
  lock?: LockOptions;
  /** The command line, for the history. */
  command?: string;
}

/** What an EU request did. */
export interface EuOutcome {
  /** Whether the EU's state changed: false for a no-op (stop of an Idle EU) and for a failure. */
  changed: boolean;
  /** The operation's history entry (CurrentState Installed, or Failed with its Fault). */
  entry: HistoryEntry;
  /** The EU's record afterwards (its Status and ExecutionFaultCode), when the EU exists. */
  eu?: EuRecord;
  /** What failed, as thrown. */
  error?: unknown;
  /** An operation recovered first. */
  recovered?: HistoryEntry;
}

/** What an EU operation's recovery reads from the intent. */
interface EuIntent {
  stateDir: string;
  runtimeDir: string;
  /** The EU's Name. */
  name: string;
  timeoutMs: number;
}

const KIND: Record<EuAction, OperationKind> = { start: 'eu-start', stop: 'eu-stop', restart: 'eu-restart' };
const TRANSIENT: Record<EuAction, EuStatus> = { start: 'Starting', stop: 'Stopping', restart: 'Restarting' };

/** Splits an EUID `DU/NAME` at its first `/`; PKG_UNKNOWN_EU when it has no `/` or an empty part. */
export function splitEuid(euid: string): { du: string; name: string } {
  const i = euid.indexOf('/');
  if (i <= 0 || i === euid.length - 1) {
    throw new OverlayBootError('PKG_UNKNOWN_EU', `${JSON.stringify(euid)} is not an EUID (DU/NAME)`, { found: euid, expected: 'DU/NAME' });
  }
  return { du: euid.slice(0, i), name: euid.slice(i + 1) };
}

/** The DU record and the EU of `euid`: PKG_UNKNOWN_DU (9028) or PKG_UNKNOWN_EU (9003) when there is none. */
export function findEU(store: DuStore, euid: string): { record: DuRecord; eu: EuRecord } {
  const { du, name } = splitEuid(euid);
  const record = findDU(store, du);
  const eu = record.EUs.find((e) => e.Name === name);
  if (!eu) {
    throw new OverlayBootError('PKG_UNKNOWN_EU', `DU ${record.Subhost} has no EU ${JSON.stringify(name)}${record.EUs.length ? ` (its EUs: ${record.EUs.map((e) => e.Name).join(', ')})` : ' (it has none)'}`,
      { name: `${record.Subhost}/${name}`, found: name });
  }
  return { record, eu };
}

/**
 * Writes EU `name` of DU `subhost` as `Status`/`ExecutionFaultCode` into its record (read
 * afresh) and emits `eu.status`; returns the EU as written, or undefined when the DU or
 * the EU is gone.
 */
function recordEU(store: DuStore, subhost: string, name: string, change: { Status: EuStatus; ExecutionFaultCode?: EuFaultCode },
  events?: LifecycleEvents, operationId?: number): EuRecord | undefined {
  const record = store.get(subhost);
  const eu = record?.EUs.find((e) => e.Name === name);
  if (!record || !eu) return undefined;
  const next: EuRecord = { ...eu, Status: change.Status, ExecutionFaultCode: change.ExecutionFaultCode ?? eu.ExecutionFaultCode };
  if (next.Status !== eu.Status || next.ExecutionFaultCode !== eu.ExecutionFaultCode) {
    store.put({ ...record, EUs: record.EUs.map((e) => (e.Name === name ? next : e)) });
  }
  events?.emit('eu.status', { ...(operationId === undefined ? {} : { operationId }), EUID: next.EUID, Status: next.Status, ExecutionFaultCode: next.ExecutionFaultCode });
  return next;
}

/**
 * The ExecutionFaultCode an EU shows given what a live look found: FailureWhileActive when
 * it was recorded Active and is Idle now (it died by itself), NoFault when it is Active,
 * else the recorded one.
 */
export function observedFault(recorded: EuRecord, live: EuProbe['Status']): EuFaultCode {
  if (live === 'Active') return 'NoFault';
  if (recorded.Status === 'Active') return 'FailureWhileActive';
  return recorded.ExecutionFaultCode;
}

/** Runs one EU request (see the module's description). A failure is the result's Fault, not a throw. */
async function euRequest(action: EuAction, opts: EuRequestOptions): Promise<EuOutcome> {
  const stateDir = opts.config.paths.state;
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const timeoutMs = opts.timeoutMs ?? opts.config.lifecycle.euTimeoutMs;
  const euOpts: EuOptions = { runtimeDir, timeoutMs };
  const store = new DuStore(stateDir);
  let changed = false;
  let subhost: string | undefined;
  let name: string | undefined;
  const result = await transact(stateDir, {
    lock: opts.lock,
    events: opts.events,
    recover: recoverOperation,
    begin: () => {
      try {
        const found = findEU(store, opts.euid);
        subhost = found.record.Subhost;
        name = found.eu.Name;
      } catch {
        // act reports it, so that the refusal is in the history
      }
      const intent: EuIntent = { stateDir, runtimeDir, name: name ?? '', timeoutMs };
      return { kind: KIND[action], subhost: subhost ?? (opts.euid.split('/')[0] || opts.euid), intent: { ...intent }, command: opts.command };
    },
    act: async (op, journal) => {
      const { record, eu } = findEU(store, opts.euid);
      if (action === 'start' && eu.Status === 'Stopping') {
        throw new OverlayBootError('PKG_EU_STATE', `${eu.EUID} is Stopping: it cannot be started now`, { name: eu.EUID, found: 'Stopping', expected: 'Idle or Active' });
      }
      const live = (await probeEU(record.Subhost, eu, euOpts)).Status;
      const ok: OperationResult = { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
      if ((action === 'start' && live === 'Active') || (action === 'stop' && live === 'Idle')) {
        // Nothing to do; the record learns what is so (a service that died is FailureWhileActive).
        recordEU(store, record.Subhost, eu.Name, { Status: live, ExecutionFaultCode: observedFault(eu, live) }, opts.events, op.id);
        return ok;
      }
      journalStep(journal, 'transient', { live });
      recordEU(store, record.Subhost, eu.Name, { Status: TRANSIENT[action] }, opts.events, op.id);
      changed = true;
      if (action !== 'start' && live === 'Active') {
        journalStep(journal, 'stopping');
        await stopEU(record.Subhost, eu, euOpts);
        if (action === 'stop') {
          recordEU(store, record.Subhost, eu.Name, { Status: 'Idle', ExecutionFaultCode: 'NoFault' }, opts.events, op.id);
          return ok;
        }
      }
      if (eu.kind !== 'run' && !isRunning(record.Subhost, runtimeDir)) {
        journalStep(journal, 'booting');
        await boot(unitPaths(stateDir, record.Subhost).config, { stateDir: runtimeDir, start: [] });
      }
      journalStep(journal, 'starting');
      await startEU(record.Subhost, eu, { ...euOpts, configPath: unitPaths(stateDir, record.Subhost).config });
      recordEU(store, record.Subhost, eu.Name, { Status: 'Active', ExecutionFaultCode: 'NoFault' }, opts.events, op.id);
      return ok;
    },
    undo: async (op, _journal, error) => {
      changed = false;
      const fault = euFaultOf(error);
      // A start that failed half-way leaves no half-started service behind: Idle is its state.
      if (fault === 'FailureOnStart' && subhost && name) {
        const eu = store.get(subhost)?.EUs.find((e) => e.Name === name);
        if (eu) await stopEU(subhost, eu, euOpts).catch(() => undefined);
      }
      await settleEU(op, fault, opts.events);
    },
  });
  const outcome: EuOutcome = { changed: changed && result.entry.CurrentState !== 'Failed', entry: result.entry };
  const eu = subhost && name ? store.get(subhost)?.EUs.find((e) => e.Name === name) : undefined;
  if (eu) outcome.eu = eu;
  if (result.error !== undefined) outcome.error = result.error;
  if (result.recovered) outcome.recovered = result.recovered;
  return outcome;
}

/**
 * Records the live state of the EU an operation `op` was about (its intent names it),
 * with `fault` as its ExecutionFaultCode when given (else what {@link observedFault} says).
 */
async function settleEU(op: JournalOperation, fault: EuFaultCode | undefined, events?: LifecycleEvents): Promise<EuRecord | undefined> {
  const intent = op.intent as unknown as EuIntent;
  const store = new DuStore(intent.stateDir);
  const eu = store.get(op.subhost)?.EUs.find((e) => e.Name === intent.name);
  if (!eu) return undefined;
  const live = (await probeEU(op.subhost, eu, { runtimeDir: intent.runtimeDir, timeoutMs: intent.timeoutMs })).Status;
  return recordEU(store, op.subhost, eu.Name, { Status: live, ExecutionFaultCode: fault ?? (live === 'Active' ? 'NoFault' : eu.ExecutionFaultCode) }, events, op.id);
}

/**
 * Recovers an EU operation a crash interrupted: the EU's live status recorded (the
 * operation stands as far as it got; a start that did not get its EU Active is
 * FailureOnStart, a stop that left it Active FailureOnStop). The DU stays Installed.
 */
export async function recoverEuOperation(op: JournalOperation): Promise<OperationResult> {
  const intent = op.intent as unknown as EuIntent;
  const store = new DuStore(intent.stateDir);
  const record = store.get(op.subhost);
  if (!record) return { CurrentState: 'Failed', Fault: { FaultCode: 9028, FaultString: `DU ${op.subhost} is not installed` } };
  const eu = record.EUs.find((e) => e.Name === intent.name);
  if (!eu) return { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
  const live = (await probeEU(op.subhost, eu, { runtimeDir: intent.runtimeDir, timeoutMs: intent.timeoutMs })).Status;
  const wanted = op.kind === 'eu-stop' ? 'Idle' : 'Active';
  const reached = Journal.done(op, 'transient') ? live === wanted : true;
  const fault: EuFaultCode | undefined = reached ? undefined : wanted === 'Active' ? 'FailureOnStart' : 'FailureOnStop';
  await settleEU(op, fault);
  const ok: OperationResult = { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
  return reached ? ok : { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: `interrupted; ${record.Subhost}/${eu.Name} is ${live}` } };
}

/** Starts EU `opts.euid` (see the module's description). */
export function euStart(opts: EuRequestOptions): Promise<EuOutcome> {
  return euRequest('start', opts);
}

/** Stops EU `opts.euid`; an Idle EU is a no-op with `changed: false`. */
export function euStop(opts: EuRequestOptions): Promise<EuOutcome> {
  return euRequest('stop', opts);
}

/** Restarts EU `opts.euid`: stop when Active, then start. */
export function euRestart(opts: EuRequestOptions): Promise<EuOutcome> {
  return euRequest('restart', opts);
}

/** One EU as `overlay-pkg eus` shows it. */
export interface ListedEU {
  EUID: string;
  Name: string;
  /** Live: Active or Idle as the service says now. */
  Status: EuStatus;
  AutoStart: boolean;
  /** The recorded fault, or FailureWhileActive for an EU recorded Active that is Idle now. */
  ExecutionFaultCode: EuFaultCode;
  /** The DU's subhost NAME. */
  Subhost: string;
}

/** How many status probes {@link listEUs} runs at once. */
const PROBES_AT_ONCE = 8;

/** Options of {@link listEUs}. */
export interface ListEUsOptions {
  /** Only this DU's EUs (subhost NAME or UUID). Default every DU's. */
  du?: string;
  runtimeDir?: string;
  /** Milliseconds one status probe may take. Default 10000. */
  timeoutMs?: number;
  events?: LifecycleEvents;
  lock?: LockOptions;
}

/**
 * The EUs of every installed DU (or of `opts.du`), with their live Status. Reads only:
 * an operation a crash left in the journal is recovered first; nothing else is written.
 */
export async function listEUs(stateDir: string, opts: ListEUsOptions = {}): Promise<{ ExecutionUnit: ListedEU[]; recovered?: HistoryEntry }> {
  const recovered = new Journal(stateDir).pending() === undefined ? undefined : await recoverNow(stateDir, opts);
  const store = new DuStore(stateDir);
  const records = opts.du === undefined ? store.list() : [findDU(store, opts.du)];
  const euOpts: EuOptions = { runtimeDir: opts.runtimeDir ?? DEFAULT_STATE_DIR, timeoutMs: opts.timeoutMs ?? DEFAULT_EU_TIMEOUT_MS };
  const all = records.flatMap((r) => r.EUs.map((eu) => ({ r, eu })));
  const ExecutionUnit: ListedEU[] = new Array<ListedEU>(all.length);
  // A few probes at a time: each is a process entering a subhost, and a host may have hundreds of EUs.
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < all.length; i = next++) {
      const { r, eu } = all[i]!;
      const live = (await probeEU(r.Subhost, eu, euOpts)).Status;
      ExecutionUnit[i] = { EUID: eu.EUID, Name: eu.Name, Status: live, AutoStart: eu.AutoStart, ExecutionFaultCode: observedFault(eu, live), Subhost: r.Subhost };
    }
  };
  await Promise.all(Array.from({ length: Math.min(PROBES_AT_ONCE, all.length) }, worker));
  return recovered ? { ExecutionUnit, recovered } : { ExecutionUnit };
}
