/**
 * The installed DUs, as `overlay-pkg list` shows them: every record, each with whether
 * its subhost runs. An operation a crash left in the journal is recovered first (under
 * the lock, waiting its turn), so the list is never of a half-done state; with an empty
 * journal the records are read without the lock, as they are written atomically.
 */
import { DEFAULT_STATE_DIR } from '../subhost/state.js';
import type { LifecycleEvents } from './events.js';
import type { HistoryEntry } from './history.js';
import { Journal } from './journal.js';
import type { LockOptions } from './lock.js';
import { recoverNow } from './recover.js';
import { DuStore, type DuRecord } from './store.js';
import { isRunning } from './uninstall.js';

/** One DU as listed: its record and whether its subhost runs. */
export interface ListedDU extends DuRecord {
  /** Whether the DU's subhost is running. */
  running: boolean;
}

/** Options of {@link listDUs}. */
export interface ListDUsOptions {
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  events?: LifecycleEvents;
  lock?: LockOptions;
}

/** What {@link listDUs} found. */
export interface ListDUsResult {
  DeploymentUnit: ListedDU[];
  /** An operation recovered first, if one was in flight. */
  recovered?: HistoryEntry;
}

/** Every installed DU of state directory `stateDir`, sorted by subhost NAME. */
export async function listDUs(stateDir: string, opts: ListDUsOptions = {}): Promise<ListDUsResult> {
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const recovered = new Journal(stateDir).pending() === undefined ? undefined : await recoverNow(stateDir, opts);
  const DeploymentUnit = new DuStore(stateDir).list().map((r) => ({ ...r, running: isRunning(r.Subhost, runtimeDir) }));
  return recovered ? { DeploymentUnit, recovered } : { DeploymentUnit };
}
