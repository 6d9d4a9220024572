/**
 * One operation as a transaction (DESIGN.md "Every operation is a transaction"): under
 * the queue lock, first finish or undo whatever a crash left in the journal, then write
 * the intent, act step by step, and record the result in the history before the journal
 * is cleared. install, update, uninstall and the EU requests are each a {@link transact}
 * call with their own `act`, `undo` and `recover`.
 *
 * The history line is appended before the journal is cleared, so a crash between the
 * two is recognised on recovery (the history's last id is the operation's) and the
 * operation is only cleared, never recovered or recorded twice.
 */
import type { LifecycleEvents } from './events.js';
import { removeDirIfEmpty, sweepTempFiles } from './durable.js';
import { faultOf, type Fault } from './faults.js';
import { History, historyEntry, type CurrentState, type HistoryEntry } from './history.js';
import { Journal, type BeginOptions, type JournalOperation } from './journal.js';
import { stateLayout } from './layout.js';
import { withLock, type LockOptions } from './lock.js';

/** How an operation, or its recovery, ended. */
export interface OperationResult {
  /** `Failed` when nothing took effect (the operation was undone); otherwise the DU's state. */
  CurrentState: CurrentState;
  Fault?: Fault;
  UUID?: string;
  Version?: string;
}

/**
 * Finishes (rolls forward) or undoes (rolls back) an operation found in flight, from its
 * intent and steps (journal.ts says which per kind). It may journal further steps. Its
 * result's CurrentState is `Failed` when it undid the operation.
 */
export type RecoverFn = (op: JournalOperation, journal: Journal) => Promise<OperationResult>;

/** Options of {@link transact}. */
export interface TransactOptions {
  /**
   * The intent, written (fsync) before `act` runs; or a function computing it under the
   * lock, after recovery (install chooses the DU's subhost NAME from the records there).
   */
  begin: BeginOptions | (() => BeginOptions);
  /**
   * Does the work, calling `journal.step()` after each change with what undoing it
   * needs. Returns the result; a `Failed` one means act undid its own work (as an
   * update that rolls back when an EU does not start) and the operation is aborted.
   */
  act: (op: JournalOperation, journal: Journal) => Promise<OperationResult>;
  /**
   * Undoes the steps of `op` (as on disk) after `act` threw `error`. If undo throws
   * too, the operation stays in the journal and the next command recovers it.
   */
  undo: (op: JournalOperation, journal: Journal, error: unknown) => Promise<void>;
  /** Recovers an operation a crash left in flight before this one begins. */
  recover: RecoverFn;
  /** How to wait for the lock. Default: as long as it takes. */
  lock?: LockOptions;
  /** Where `operation.complete` is emitted for this operation and any recovered one. */
  events?: LifecycleEvents;
}

/** What {@link transact} did. */
export interface TransactResult {
  /** This operation's history entry. */
  entry: HistoryEntry;
  /** The history entry of an operation recovered first, if there was one. */
  recovered?: HistoryEntry;
  /** What `act` threw, when the operation failed that way. */
  error?: unknown;
}

/** Appends `op`'s history entry, then clears it from the journal: commit unless Failed. */
function finish(journal: Journal, history: History, op: JournalOperation, result: OperationResult & { recovered?: boolean }): HistoryEntry {
  const entry = historyEntry(op, result);
  history.append(entry);
  if (result.CurrentState === 'Failed') journal.abort();
  else journal.commit();
  return entry;
}

/**
 * Finishes or undoes an operation left in flight in `stateDir`'s journal, if any, and
 * records it in the history with `recovered: true`; removes temporary files a crash left
 * mid-write. The caller holds the lock. Returns the history entry, or undefined when
 * nothing was in flight.
 */
export async function recoverPending(stateDir: string, recover: RecoverFn, events?: LifecycleEvents): Promise<HistoryEntry | undefined> {
  const layout = stateLayout(stateDir);
  sweepTempFiles(layout.dir);
  sweepTempFiles(layout.records);
  removeDirIfEmpty(layout.records);
  const journal = new Journal(stateDir);
  const history = new History(stateDir);
  const op = journal.pending();
  if (op === undefined) return undefined;
  const last = history.read().entries.at(-1);
  if (last?.id === op.id) {
    // The crash came after the result was recorded: only the journal is behind.
    if (last.CurrentState === 'Failed') journal.abort();
    else journal.commit();
    return last;
  }
  const result = await recover(op, journal);
  const entry = finish(journal, history, journal.pending() ?? op, { ...result, recovered: true });
  events?.emit('operation.complete', entry);
  return entry;
}

/**
 * Runs one operation as a transaction under `stateDir`'s lock (waiting its turn):
 * recovers what a crash left, begins, acts, records. A failure of `act` is undone and
 * reported as the entry's `Fault` (and `error`), not thrown: it is the operation's
 * result. Throws only when the state directory or the undo itself fails.
 */
export async function transact(stateDir: string, opts: TransactOptions): Promise<TransactResult> {
  return withLock(stateDir, async () => {
    const recovered = await recoverPending(stateDir, opts.recover, opts.events);
    const journal = new Journal(stateDir);
    const history = new History(stateDir);
    const op = journal.begin(typeof opts.begin === 'function' ? opts.begin() : opts.begin);
    let result: OperationResult;
    try {
      result = await opts.act(op, journal);
    } catch (error) {
      await opts.undo(journal.pending() ?? op, journal, error);
      const entry = finish(journal, history, journal.pending() ?? op, { CurrentState: 'Failed', Fault: faultOf(error) });
      opts.events?.emit('operation.complete', entry);
      return { entry, error, ...(recovered ? { recovered } : {}) };
    }
    const entry = finish(journal, history, journal.pending() ?? op, result);
    opts.events?.emit('operation.complete', entry);
    return { entry, ...(recovered ? { recovered } : {}) };
  }, opts.lock);
}
