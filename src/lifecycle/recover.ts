/**
 * Crash recovery of the lifecycle operations: the {@link RecoverFn} every command passes
 * to `transact()` / `recoverPending()`, dispatching on the operation's kind to the
 * recoverer that kind registered in {@link RECOVERERS}. Each recoverer rolls its
 * operation forward (after its step `committed`) or back (before), from the journal's
 * intent and steps alone, idempotently (a crash during recovery is recovered again), and
 * stops any staging or DU subhost the journal names that must not run.
 *
 * Adding an operation kind: write its `recoverX(op, journal)` beside the operation and
 * add it to {@link RECOVERERS} here.
 */
import { OverlayBootError } from '../errors.js';
import type { LifecycleEvents } from './events.js';
import type { HistoryEntry } from './history.js';
import { recoverInstall } from './install.js';
import type { Journal, JournalOperation, OperationKind } from './journal.js';
import { withLock, type LockOptions } from './lock.js';
import { recoverEuOperation } from './eu-ops.js';
import { recoverPending, type OperationResult } from './transaction.js';
import { recoverUninstall } from './uninstall.js';
import { recoverUpdate } from './update.js';

/** Finishes or undoes one operation of a kind (see {@link RECOVERERS}). */
export type KindRecoverer = (op: JournalOperation, journal: Journal) => Promise<OperationResult>;

/** The recoverer of each operation kind. */
export const RECOVERERS: Partial<Record<OperationKind, KindRecoverer>> = {
  install: recoverInstall,
  uninstall: recoverUninstall,
  'eu-start': recoverEuOperation, 'eu-stop': recoverEuOperation, 'eu-restart': recoverEuOperation,
  update: recoverUpdate,
};

/**
 * The RecoverFn of every lifecycle command: the operation's kind's recoverer. A kind
 * without one is PKG_IN_FLIGHT (this overlay-pkg cannot recover it; a newer one can),
 * and the operation stays in the journal.
 */
export async function recoverOperation(op: JournalOperation, journal: Journal): Promise<OperationResult> {
  const recoverer = RECOVERERS[op.kind];
  if (recoverer === undefined) {
    throw new OverlayBootError('PKG_IN_FLIGHT', `operation ${op.id} (${op.kind} of ${op.subhost}) cannot be recovered by this overlay-pkg`, { name: op.subhost });
  }
  return recoverer(op, journal);
}

/**
 * Recovers what a crash left in `stateDir`'s journal, under the lock (waiting its turn);
 * the history entry of the recovered operation, or undefined when nothing was in flight.
 * Commands that only read (list) call it when the journal is not empty.
 */
export async function recoverNow(stateDir: string, opts: { events?: LifecycleEvents; lock?: LockOptions } = {}): Promise<HistoryEntry | undefined> {
  return withLock(stateDir, () => recoverPending(stateDir, recoverOperation, opts.events), opts.lock);
}
