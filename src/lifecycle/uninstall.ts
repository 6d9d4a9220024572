/**
 * Uninstall: a DU and everything it had (subhost, config, layer, UPPER unless RetainData,
 * boot-list line, record) removed, one transaction ({@link transact}):
 *
 * 1. stop the Active EUs (their init scripts' `stop`), journalled as step `eus-stopped`;
 * 2. `prerm remove`, then `postrm remove`, inside the DU's running subhost (booted
 *    without services for them if it was not running): what they change vanishes with it;
 * 3. step `stopping`, the subhost stopped; step `trashed`, the unit directory renamed
 *    into the operation's trash; step `boot-list`, its line removed; the record removed,
 *    step `committed`;
 * 4. after the commit: UPPER moved to `STATE/retained/SUBHOST` with RetainData, the
 *    trash deleted.
 *
 * Until `committed` a failure (a failing prerm, say), or recovery after a crash, puts
 * everything back and boots the DU again with the EUs that were Active: a failed
 * uninstall removes nothing.
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../commands/boot.js';
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { DEFAULT_STATE_DIR, liveness, readStateRecord, statePath } from '../subhost/state.js';
import { addToBootList, removeFromBootList } from './boot-list.js';
import { crashPoint, journalStep } from './crash.js';
import { euLiveStatus, startEU, stopEU } from './eu.js';
import { ensureDir, fsyncDir, removeDirIfEmpty } from './durable.js';
import { duStateChange, type LifecycleEvents } from './events.js';
import type { HistoryEntry } from './history.js';
import { Journal, type JournalOperation } from './journal.js';
import type { LockOptions } from './lock.js';
import { recoverOperation } from './recover.js';
import { runScript, stopQuietly, type ScriptCall } from './scripts.js';
import { OPKG_INFO_DIR } from './stage.js';
import { DuStore, validateRecord, type DuRecord } from './store.js';
import { transact, type OperationResult } from './transaction.js';
import { emptyTrash, moveToTrash, restoreFromTrash, trashPlace, type Trashed } from './trash.js';
import { retainedRoot, unitPaths } from './unit.js';

/** Options of {@link uninstallDU}. */
export interface UninstallOptions {
  config: PkgConfig;
  /** The DU: its subhost NAME or its UUID (when only one DU has it). */
  du: string;
  /** Keep the DU's UPPER under `STATE/retained/SUBHOST` (a later install with that NAME reuses it). */
  retainData?: boolean;
  events?: LifecycleEvents;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  lock?: LockOptions;
  /** The command line, for the history. */
  command?: string;
}

/** What {@link uninstallDU} did. */
export interface UninstallOutcome {
  changed: boolean;
  entry: HistoryEntry;
  /** The DU's record as it was. */
  record?: DuRecord;
  error?: unknown;
  recovered?: HistoryEntry;
}

interface UninstallIntent {
  stateDir: string;
  retainData: boolean;
  runtimeDir: string;
  bootList: string;
  /** The record before the operation (put back by a rollback). */
  record?: DuRecord;
  /** Whether the DU subhost ran. */
  wasRunning: boolean;
}

function intentOf(op: JournalOperation): UninstallIntent {
  return op.intent as unknown as UninstallIntent;
}

/** Whether subhost `name` runs. */
export function isRunning(name: string, runtimeDir: string): boolean {
  const r = readStateRecord(statePath(name, runtimeDir));
  return r !== undefined && liveness(r) === 'running';
}

/** The record of `du` (a subhost NAME, or a UUID only one DU has); PKG_UNKNOWN_DU (9028) otherwise. */
export function findDU(store: DuStore, du: string): DuRecord {
  const found = store.find(du);
  if (found.length === 1) return found[0]!;
  if (found.length > 1) {
    throw new OverlayBootError('USAGE', `${du} is the UUID of ${found.length} DUs (${found.map((r) => r.Subhost).join(', ')}): name one by its subhost NAME`, { found: du });
  }
  throw new OverlayBootError('PKG_UNKNOWN_DU', `no DU ${JSON.stringify(du)} is installed`, { name: du, found: du });
}

/** Whether the DU's layer has maintainer script `script` in opkg's database. */
function hasScript(record: DuRecord, script: string): boolean {
  return existsSync(path.join(record.layer, OPKG_INFO_DIR, `${record.Name}.${script}`));
}

/** Removes a DU (see the module's description). A failure is the result's Fault (nothing removed), not a throw. */
export async function uninstallDU(opts: UninstallOptions): Promise<UninstallOutcome> {
  const stateDir = opts.config.paths.state;
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const store = new DuStore(stateDir);
  let before: DuRecord | undefined;
  const result = await transact(stateDir, {
    lock: opts.lock,
    events: opts.events,
    recover: recoverOperation,
    begin: () => {
      try {
        before = findDU(store, opts.du);
      } catch {
        before = undefined; // act reports it, so that the refusal is in the history
      }
      const subhost = before?.Subhost ?? opts.du;
      const intent: UninstallIntent = {
        stateDir, retainData: opts.retainData ?? false, runtimeDir, bootList: opts.config.paths.bootList,
        wasRunning: before !== undefined && isRunning(subhost, runtimeDir),
      };
      if (before) intent.record = before;
      return { kind: 'uninstall', subhost, intent: { ...intent }, command: opts.command };
    },
    act: async (op, journal) => {
      const record = findDU(store, opts.du);
      const intent = intentOf(op);
      const unit = unitPaths(stateDir, record.Subhost);
      opts.events?.emit('du.status', { operationId: op.id, Subhost: record.Subhost, Status: 'Uninstalling' });
      const calls: ScriptCall[] = [];
      if (hasScript(record, 'prerm')) calls.push({ script: 'prerm', args: ['remove'] });
      if (hasScript(record, 'postrm')) calls.push({ script: 'postrm', args: ['remove'] });
      const active = record.EUs.filter((eu) => eu.Status === 'Active');
      if (isRunning(record.Subhost, runtimeDir)) {
        journalStep(journal, 'eus-stopped', { active: active.map((eu) => eu.Name) });
        // Live status, not only the record's: an EU started by hand is stopped too. The
        // subhost's stop follows, so a stop that fails is not the uninstall's failure.
        for (const eu of [...record.EUs].reverse()) await stopEU(record.Subhost, eu, { runtimeDir }).catch(() => undefined);
      }
      // The reaper ends the subhost with its last service, perhaps right now: the scripts
      // get it stopped for certain and booted again without services (it then runs its
      // placeholder service), so they never race its end.
      if (calls.length > 0) {
        journalStep(journal, 'booted', {});
        await stopQuietly(record.Subhost, runtimeDir);
        await boot(unit.config, { stateDir: runtimeDir, start: [] });
      }
      for (const call of calls) await runScript(record.Subhost, record.Name, call, { runtimeDir });
      journalStep(journal, 'stopping');
      await stopQuietly(record.Subhost, runtimeDir);
      const t = trashPlace(stateDir, op.id, unit.dir, 0);
      journalStep(journal, 'trashed', { ...t });
      moveToTrash(t);
      removeDirIfEmpty(path.dirname(unit.dir));
      journalStep(journal, 'boot-list', { file: intent.bootList, config: unit.config });
      removeFromBootList(intent.bootList, unit.config);
      store.remove(record.Subhost);
      crashPoint('unrecorded');
      journalStep(journal, 'committed');
      finishUninstall(journal.pending() ?? op);
      return { CurrentState: 'Uninstalled', UUID: record.UUID, Version: record.Version };
    },
    undo: async (op) => {
      await rollbackUninstall(op);
    },
  });
  const failed = result.entry.CurrentState === 'Failed';
  if (before && opts.events) opts.events.emit('du.statechange', duStateChange(result.entry, before));
  const outcome: UninstallOutcome = { changed: !failed, entry: result.entry };
  if (before) outcome.record = before;
  if (result.error !== undefined) outcome.error = result.error;
  if (result.recovered) outcome.recovered = result.recovered;
  return outcome;
}

function trashedOf(op: JournalOperation): Trashed | undefined {
  const s = op.steps.find((x) => x.name === 'trashed');
  return s?.data ? { from: String(s.data.from), to: String(s.data.to) } : undefined;
}

/** After `committed`: keeps UPPER with RetainData, deletes the trash. Idempotent. */
export function finishUninstall(op: JournalOperation): void {
  const intent = intentOf(op);
  const t = trashedOf(op);
  if (t && intent.retainData) {
    const upper = path.join(t.to, 'base', 'root');
    const keep = path.join(retainedRoot(intent.stateDir), op.subhost);
    if (existsSync(upper)) {
      ensureDir(retainedRoot(intent.stateDir));
      rmSync(keep, { recursive: true, force: true });
      renameSync(upper, keep);
      fsyncDir(path.dirname(keep));
    }
  }
  emptyTrash(intent.stateDir, op.id);
}

/**
 * Undoes an uninstall that did not reach `committed`: the unit directory back from the
 * trash, the boot-list line and the record back, and the DU subhost booted again (its
 * AutoStart EUs with it, and the other EUs that were Active) when it ran before.
 */
export async function rollbackUninstall(op: JournalOperation): Promise<void> {
  const intent = intentOf(op);
  const step = (name: string) => op.steps.find((s) => s.name === name);
  const t = trashedOf(op);
  if (t) {
    ensureDir(path.dirname(t.from));
    restoreFromTrash(t);
    emptyTrash(intent.stateDir, op.id);
  }
  const listed = step('boot-list');
  if (listed) addToBootList(String(listed.data?.file), String(listed.data?.config));
  const store = new DuStore(intent.stateDir);
  if (intent.record && store.get(op.subhost) === undefined) store.put(validateRecord(intent.record, 'journal'));
  const record = store.get(op.subhost);
  if (!record || !(step('eus-stopped') || step('booted') || step('stopping'))) return;
  const running = isRunning(op.subhost, intent.runtimeDir);
  if (!intent.wasRunning) {
    if (running) await stopQuietly(op.subhost, intent.runtimeDir);
    return;
  }
  if (!running) {
    await boot(unitPaths(intent.stateDir, op.subhost).config, { stateDir: intent.runtimeDir });
  }
  // The AutoStart EUs came up with the boot; the others that were Active are started again.
  const active = new Set((step('eus-stopped')?.data?.active as string[] | undefined) ?? []);
  for (const eu of record.EUs.filter((e) => active.has(e.Name))) {
    if ((await euLiveStatus(op.subhost, eu, { runtimeDir: intent.runtimeDir }).catch(() => 'Idle')) !== 'Active') {
      await startEU(op.subhost, eu, { runtimeDir: intent.runtimeDir }).catch(() => undefined);
    }
  }
}

/** Recovers an uninstall: forward after `committed` (Uninstalled), else back (Failed). */
export async function recoverUninstall(op: JournalOperation): Promise<OperationResult> {
  const intent = intentOf(op);
  if (Journal.done(op, 'committed')) {
    await stopQuietly(op.subhost, intent.runtimeDir);
    finishUninstall(op);
    return { CurrentState: 'Uninstalled', UUID: intent.record?.UUID, Version: intent.record?.Version };
  }
  await rollbackUninstall(op);
  return { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'interrupted before it was committed; undone' } };
}
