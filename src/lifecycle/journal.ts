/**
 * The operation journal, `STATE/journal.json`: what makes every operation a transaction
 * that survives SIGKILL and power loss. Protocol, always under lock.ts's lock:
 *
 * 1. {@link Journal.begin} writes the intent (fsync) before anything on the host changes.
 * 2. The operation acts; after each step that changed something it calls
 *    {@link Journal.step} (fsync), naming the step and what is needed to undo it.
 * 3. {@link Journal.commit} or {@link Journal.abort} clears the operation (fsync) and
 *    returns it, for the history.
 *
 * On start, before anything else, {@link Journal.pending} returns an operation still in
 * flight, and the caller rolls it forward or back from its `intent` and `steps`:
 *
 * - **install**: until the step `committed` (the DU record written `Installed`), roll back:
 *   remove what the steps made (staged layer, subhost directory, record) in reverse,
 *   so a failed or interrupted install leaves nothing. After `committed`, roll forward:
 *   only starting the AutoStart EUs remains, and they start when the subhost boots anyway.
 * - **update**: the new layer is staged beside the old one and the record names the
 *   layer in use; until `committed`, roll back: put the old layer (intent.oldLayer) back
 *   in the record, delete the new one, restart the EUs that were Active
 *   (intent.activeEUs). After `committed` roll forward: delete the old layer.
 * - **uninstall**: every destructive step is a rename into `STATE/trash/ID/` (undone
 *   by renaming back) until `committed` (the record removed); roll back by renaming
 *   back and restarting intent.activeEUs, roll forward by deleting the trash.
 *
 * So a crash leaves every DU in its state before the operation or after it. The file
 * also keeps the counters of operation ids and DUIDs, so neither is ever reused; with
 * no operation in flight it is the "empty journal" that remains when no DU is installed.
 */
import { OverlayBootError } from '../errors.js';
import { ensureDir, writeFileAtomic } from './durable.js';
import { stateLayout } from './layout.js';
import { Fields, readJsonFile } from './state-file.js';

/** What an operation does (USP's OperationPerformed is derived from it). */
export const OPERATION_KINDS = ['install', 'update', 'uninstall', 'eu-start', 'eu-stop', 'eu-restart'] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

/** One step an operation finished. */
export interface JournalStep {
  /** A name the operation's recovery knows, e.g. `staged`, `scripts`, `committed`. */
  name: string;
  /** ISO 8601 UTC. */
  at: string;
  /** What undoing or finishing the step needs (paths, previous values). */
  data?: Record<string, unknown>;
}

/** An operation in flight. */
export interface JournalOperation {
  /** The operation id: unique and increasing on this host; the id of its events. */
  id: number;
  kind: OperationKind;
  /** The DU's subhost NAME (for an install: the NAME it is being given). */
  subhost: string;
  /** The DUID an install allocated in {@link Journal.begin}. */
  DUID?: string;
  /** Who asked: for the history. */
  pid: number;
  uid: number;
  command: string;
  /** ISO 8601 UTC. */
  startedAt: string;
  /** What the operation means to do, enough to undo or finish it (its own shape per kind). */
  intent: Record<string, unknown>;
  steps: JournalStep[];
}

/** What {@link Journal.begin} takes. */
export interface BeginOptions {
  kind: OperationKind;
  subhost: string;
  intent: Record<string, unknown>;
  /** Allocate a new DUID (install). Default false. */
  allocateDUID?: boolean;
  /** The command line, for the history. Default: process.argv joined. */
  command?: string;
}

interface JournalFile {
  format: 1;
  /** The id of the last operation begun. */
  lastOperation: number;
  /** The last DUID allocated. */
  lastDUID: number;
  operation: JournalOperation | null;
}

function validateOperation(value: unknown, file: string): JournalOperation {
  const f = Fields.of(file, value, 'operation');
  const op: JournalOperation = {
    id: f.integer('id', 1),
    kind: f.oneOf('kind', OPERATION_KINDS),
    subhost: f.string('subhost'),
    pid: f.integer('pid'),
    uid: f.integer('uid'),
    command: f.string('command'),
    startedAt: f.string('startedAt'),
    intent: f.rawObject('intent'),
    steps: f.array('steps').map((s, i) => {
      const sf = Fields.of(file, s, `operation.steps.${i}`);
      const step: JournalStep = { name: sf.string('name'), at: sf.string('at') };
      if (sf.raw('data') !== undefined) step.data = sf.rawObject('data');
      return step;
    }),
  };
  const duid = f.optionalString('DUID');
  if (duid !== undefined) op.DUID = duid;
  return op;
}

/** The journal of one state directory. Use it only while holding lock.ts's lock. */
export class Journal {
  readonly file: string;
  private readonly dir: string;

  constructor(stateDir: string) {
    const layout = stateLayout(stateDir);
    this.file = layout.journal;
    this.dir = layout.dir;
  }

  /** The journal as on disk; an absent file is an empty journal. Throws PKG_STATE_CORRUPT. */
  private read(): JournalFile {
    const value = readJsonFile(this.file);
    if (value === undefined) return { format: 1, lastOperation: 0, lastDUID: 0, operation: null };
    const f = Fields.of(this.file, value);
    if (f.integer('format', 1) !== 1) throw new OverlayBootError('PKG_STATE_CORRUPT', 'format is not 1', { file: this.file, variable: 'format' });
    const op = f.raw('operation');
    return {
      format: 1,
      lastOperation: f.integer('lastOperation'),
      lastDUID: f.integer('lastDUID'),
      operation: op === null ? null : validateOperation(op, this.file),
    };
  }

  private write(j: JournalFile): void {
    ensureDir(this.dir);
    writeFileAtomic(this.file, JSON.stringify(j, null, 2) + '\n');
  }

  /** The operation in flight, left by a crash (or by a caller that has not finished), or undefined. */
  pending(): JournalOperation | undefined {
    return this.read().operation ?? undefined;
  }

  /**
   * Records the intent of a new operation, durably, and returns it with its id (and
   * DUID when asked). Throws PKG_IN_FLIGHT while another operation is in flight: it must
   * be recovered (rolled forward or back, then committed or aborted) first.
   */
  begin(opts: BeginOptions): JournalOperation {
    const j = this.read();
    if (j.operation !== null) {
      throw new OverlayBootError('PKG_IN_FLIGHT', `operation ${j.operation.id} (${j.operation.kind} of ${j.operation.subhost}) is still in flight`, {
        file: this.file, name: j.operation.subhost, step: j.operation.steps.at(-1)?.name,
      });
    }
    j.lastOperation += 1;
    const op: JournalOperation = {
      id: j.lastOperation,
      kind: opts.kind,
      subhost: opts.subhost,
      pid: process.pid,
      uid: process.getuid?.() ?? 0,
      command: opts.command ?? process.argv.join(' '),
      startedAt: new Date().toISOString(),
      intent: opts.intent,
      steps: [],
    };
    if (opts.allocateDUID) {
      j.lastDUID += 1;
      op.DUID = String(j.lastDUID);
    }
    j.operation = op;
    this.write(j);
    return op;
  }

  /** Durably records that the operation in flight finished step `name`; returns the operation. */
  step(name: string, data?: Record<string, unknown>): JournalOperation {
    const j = this.read();
    const op = this.inFlight(j, 'step');
    const s: JournalStep = { name, at: new Date().toISOString() };
    if (data !== undefined) s.data = data;
    op.steps.push(s);
    this.write(j);
    return op;
  }

  /** Whether the operation in flight finished step `name`. */
  static done(op: JournalOperation, name: string): boolean {
    return op.steps.some((s) => s.name === name);
  }

  /** Clears the operation in flight after it took effect; returns it for the history. */
  commit(): JournalOperation {
    return this.finish('commit');
  }

  /** Clears the operation in flight after it was undone; returns it for the history. */
  abort(): JournalOperation {
    return this.finish('abort');
  }

  private finish(what: string): JournalOperation {
    const j = this.read();
    const op = this.inFlight(j, what);
    j.operation = null;
    this.write(j);
    return op;
  }

  private inFlight(j: JournalFile, what: string): JournalOperation {
    if (j.operation === null) throw new OverlayBootError('INTERNAL', `${what}: no operation in flight`, { file: this.file });
    return j.operation;
  }
}
