/**
 * The append-only history of operations, `STATE/history.jsonl`: one JSON line per
 * finished operation (who, what, when, result), appended with O_APPEND and fsynced, never
 * rewritten (KerOS keeps one status line per operation; LIFECYCLE.md "Every operation is
 * recorded"). `overlay-pkg history` prints it.
 */
import { readFileSync } from 'node:fs';
import { OverlayBootError } from '../errors.js';
import { appendLineDurable, ensureDir } from './durable.js';
import type { Fault } from './faults.js';
import type { JournalOperation, OperationKind } from './journal.js';
import { stateLayout } from './layout.js';
import { Fields } from './state-file.js';

/** An operation's result `CurrentState` (TR-181 / USP). */
export const CURRENT_STATES = ['Installed', 'Uninstalled', 'Failed'] as const;
export type CurrentState = (typeof CURRENT_STATES)[number];

/** One history line. Keys are TR-181 / USP names where they exist. */
export interface HistoryEntry {
  /** The operation id (journal.ts). */
  id: number;
  /** USP's OperationPerformed: Install, Update, Uninstall, or the EU request. */
  OperationPerformed: string;
  /** The DU's subhost NAME. */
  Subhost: string;
  UUID?: string;
  DUID?: string;
  Version?: string;
  /** What the DU is after the operation; for EU requests, the DU's (unchanged) state. */
  CurrentState: CurrentState;
  /** Present when the operation failed. */
  Fault?: Fault;
  /** Who: process id, user id and command line of the requester. */
  pid: number;
  uid: number;
  command: string;
  /** When, ISO 8601 UTC: the request began and the result was known. */
  StartTime: string;
  CompleteTime: string;
  /** Whether it recovered an operation a crash had left in flight. */
  recovered?: boolean;
}

const PERFORMED: Record<OperationKind, string> = {
  install: 'Install',
  update: 'Update',
  uninstall: 'Uninstall',
  'eu-start': 'EUStart',
  'eu-stop': 'EUStop',
  'eu-restart': 'EURestart',
};

/** The history entry of a journal operation that ended with `result`. */
export function historyEntry(
  op: JournalOperation,
  result: { CurrentState: CurrentState; Fault?: Fault; UUID?: string; Version?: string; recovered?: boolean },
): HistoryEntry {
  const e: HistoryEntry = {
    id: op.id,
    OperationPerformed: PERFORMED[op.kind],
    Subhost: op.subhost,
    CurrentState: result.CurrentState,
    pid: op.pid,
    uid: op.uid,
    command: op.command,
    StartTime: op.startedAt,
    CompleteTime: new Date().toISOString(),
  };
  if (result.UUID !== undefined) e.UUID = result.UUID;
  if (op.DUID !== undefined) e.DUID = op.DUID;
  if (result.Version !== undefined) e.Version = result.Version;
  if (result.Fault !== undefined) e.Fault = result.Fault;
  if (result.recovered) e.recovered = true;
  return e;
}

/** What {@link readHistory} found. */
export interface HistoryRead {
  entries: HistoryEntry[];
  /** `file:line: why` for each line skipped: a line torn by a crash mid-write, or edited by hand. */
  warnings: string[];
}

function validateEntry(value: unknown, file: string): HistoryEntry {
  const f = Fields.of(file, value);
  const e: HistoryEntry = {
    id: f.integer('id', 1),
    OperationPerformed: f.string('OperationPerformed'),
    Subhost: f.string('Subhost'),
    CurrentState: f.oneOf('CurrentState', CURRENT_STATES),
    pid: f.integer('pid'),
    uid: f.integer('uid'),
    command: f.string('command'),
    StartTime: f.string('StartTime'),
    CompleteTime: f.string('CompleteTime'),
  };
  for (const key of ['UUID', 'DUID', 'Version'] as const) {
    const v = f.optionalString(key);
    if (v !== undefined) e[key] = v;
  }
  if (f.raw('Fault') !== undefined) {
    const fault = f.object('Fault');
    e.Fault = { FaultCode: fault.integer('FaultCode'), FaultString: fault.string('FaultString') };
  }
  if (f.raw('recovered') !== undefined) e.recovered = f.boolean('recovered');
  return e;
}

/** The history of one state directory. */
export class History {
  readonly file: string;
  private readonly dir: string;

  constructor(stateDir: string) {
    const layout = stateLayout(stateDir);
    this.file = layout.history;
    this.dir = layout.dir;
  }

  /** Appends `entry` as one line, durably. Safe without the lock: one write(2) per line. */
  append(entry: HistoryEntry): void {
    ensureDir(this.dir);
    appendLineDurable(this.file, JSON.stringify(entry));
  }

  /** Every entry in order; an absent file is an empty history. Bad lines are skipped with a warning. */
  read(): HistoryRead {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { entries: [], warnings: [] };
      throw new OverlayBootError('PKG_STATE_IO', `cannot read: ${(e as Error).message}`, { file: this.file, cause: e });
    }
    const entries: HistoryEntry[] = [];
    const warnings: string[] = [];
    text.split('\n').forEach((line, i) => {
      if (line === '') return;
      try {
        entries.push(validateEntry(JSON.parse(line), this.file));
      } catch (e) {
        const why = e instanceof OverlayBootError ? e.message : `not JSON: ${(e as Error).message}`;
        warnings.push(`${this.file}:${i + 1}: ${why} (line skipped)`);
      }
    });
    return { entries, warnings };
  }
}
