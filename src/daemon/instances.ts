/**
 * Instance numbers of the TR-181 tables (`Device.SoftwareModules.ExecEnv.{i}.` ...),
 * stable for as long as an object exists and never given to another one: each table
 * keeps a counter that only grows, and the number of each present object, in
 * `STATE/instances.json` (written atomically). An ACS that cached
 * `DeploymentUnit.3` finds the same DU there until it is removed, and never another.
 *
 * Objects are keyed by what identifies them for their lifetime: an EE by its name, a DU
 * by its DUID (a reinstall under the same subhost NAME is a new DU), an EU by its DU's
 * DUID and its name. One writer at a time: the daemon (or a command holding the queue
 * lock); the read-assign-write is synchronous, so callers in one process never interleave.
 */
import path from 'node:path';
import { ensureDir, writeFileAtomic } from '../lifecycle/durable.js';
import { corrupt, Fields, readJsonFile } from '../lifecycle/state-file.js';

/** The multi-instance tables of `Device.SoftwareModules.`. */
export const INSTANCE_TABLES = ['ExecEnv', 'DeploymentUnit', 'ExecutionUnit'] as const;
export type InstanceTable = (typeof INSTANCE_TABLES)[number];

interface TableState {
  /** The number the next new object gets. */
  next: number;
  byKey: Map<string, number>;
}

/** The file's name in the state directory. */
export const INSTANCES_FILE = 'instances.json';

function read(file: string): Record<InstanceTable, TableState> {
  const value = readJsonFile(file);
  const out = {} as Record<InstanceTable, TableState>;
  const f = value === undefined ? undefined : Fields.of(file, value);
  if (f && f.integer('format', 1) !== 1) throw corrupt(file, 'format is not 1', 'format');
  for (const table of INSTANCE_TABLES) {
    const state: TableState = { next: 1, byKey: new Map() };
    if (f && f.raw(table) !== undefined) {
      const t = f.object(table);
      state.next = t.integer('next', 1);
      for (const [key, n] of Object.entries(t.rawObject('byKey'))) {
        if (!Number.isSafeInteger(n) || (n as number) < 1 || (n as number) >= state.next) throw corrupt(file, `${table}.byKey.${key} is not a number below next`, `${table}.byKey`);
        state.byKey.set(key, n as number);
      }
    }
    out[table] = state;
  }
  return out;
}

/**
 * The instance number of every present object, by table and key, assigning new numbers
 * (in the order given) to new objects and forgetting those no longer present. The file
 * is rewritten only when something changed.
 */
export function assignInstances(stateDir: string, present: Record<InstanceTable, string[]>): Record<InstanceTable, Map<string, number>> {
  const file = path.join(path.resolve(stateDir), INSTANCES_FILE);
  const tables = read(file);
  let changed = false;
  const out = {} as Record<InstanceTable, Map<string, number>>;
  for (const table of INSTANCE_TABLES) {
    const state = tables[table];
    const keys = new Set(present[table]);
    for (const key of [...state.byKey.keys()]) {
      if (!keys.has(key)) {
        state.byKey.delete(key);
        changed = true;
      }
    }
    for (const key of keys) {
      if (!state.byKey.has(key)) {
        state.byKey.set(key, state.next++);
        changed = true;
      }
    }
    out[table] = state.byKey;
  }
  if (changed) {
    const json = { format: 1, ...Object.fromEntries(INSTANCE_TABLES.map((t) => [t, { next: tables[t].next, byKey: Object.fromEntries(tables[t].byKey) }])) };
    ensureDir(path.dirname(file));
    writeFileAtomic(file, JSON.stringify(json, null, 2) + '\n');
  }
  return out;
}
