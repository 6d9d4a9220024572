/**
 * The state directory (`[paths] state`, default /var/lib/overlay-boot/pkg) and what
 * lives in it:
 *
 * ```
 * STATE/
 *   lock/            the queue lock (lock.ts): empty when no command runs
 *   journal.json     the operation in flight, if any, and the id counters (journal.ts)
 *   history.jsonl    one JSON line per finished operation, append-only (history.ts)
 *   du/SUBHOST.json  one record per installed DU, keyed by its subhost NAME (store.ts)
 *   units/SUBHOST/   the DU's config, BASE and layer (for the operations to come)
 *   trash/OPID/      what an operation in flight moved aside, to put back or delete
 * ```
 *
 * `du/`, `units/` and `trash/` are removed when they become empty, so that after every DU is
 * removed only the lock, the journal (with no operation) and the history remain.
 */
import path from 'node:path';

/** Where each part of the state lives, all absolute. */
export interface StateLayout {
  dir: string;
  lock: string;
  journal: string;
  history: string;
  records: string;
  units: string;
  trash: string;
}

/** The paths of the state directory `dir`. */
export function stateLayout(dir: string): StateLayout {
  const abs = path.resolve(dir);
  return {
    dir: abs,
    lock: path.join(abs, 'lock'),
    journal: path.join(abs, 'journal.json'),
    history: path.join(abs, 'history.jsonl'),
    records: path.join(abs, 'du'),
    units: path.join(abs, 'units'),
    trash: path.join(abs, 'trash'),
  };
}
