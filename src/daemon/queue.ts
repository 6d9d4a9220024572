/**
 * The daemon's queue of operations, on disk: `STATE/daemon/ops/ID.json`, one file per
 * operation, written atomically and fsynced before the request is answered, rewritten as
 * it goes from `queued` to `running` to `done` (with its `operation.complete` params and
 * whether they were delivered). A request's secrets (password, package key) go in
 * `ID.secret` (0600) beside it, removed as soon as the operation ends.
 *
 * One operation runs at a time, in the order of their ids. On start the queue reads the
 * directory: an operation left `running` by a killed daemon is recovered first (the
 * runner's `recover`, which runs the library's recovery and finds its real outcome), its
 * completion published; completions never delivered are published again (kept for the
 * next subscriber); then the queued ones run. Nothing is retried: an operation that
 * failed is done. Operation ids only grow: the next is one more than the largest id on
 * disk, and the newest done operation is never pruned (the last {@link KEEP_DONE} are kept).
 */
import { readdirSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { ensureDir, isTempName, sweepTempFiles, writeFileAtomic } from '../lifecycle/durable.js';
import type { Fault } from '../lifecycle/faults.js';
import type { CurrentState } from '../lifecycle/history.js';
import { stateLayout } from '../lifecycle/layout.js';
import { corrupt, Fields, readJsonFile } from '../lifecycle/state-file.js';

/** The methods that run in the queue. */
export const QUEUED_METHODS = ['du.install', 'du.update', 'du.uninstall', 'eu.start', 'eu.stop', 'eu.restart'] as const;
export type QueuedMethod = (typeof QUEUED_METHODS)[number];

/** The params of the `operation.complete` notification (and of `operation.get`'s `complete`). */
export interface OperationComplete {
  operationId: number;
  method: QueuedMethod;
  /** The request's params without its secrets (password, key). */
  params: Record<string, unknown>;
  CurrentState: CurrentState;
  Fault: Fault | null;
  /** What `overlay-pkg --json` prints for the same command run alone; null when the library failed without an outcome. */
  result: Record<string, unknown> | null;
  /** ISO 8601 UTC: when it began running, and when it ended. */
  StartTime: string;
  CompleteTime: string;
}

/** The secrets of a request, kept apart (0600) until it ends. */
export interface OperationSecrets {
  password?: string;
  key?: string;
}

/** Where an operation stands. */
export type OperationStatus = 'queued' | 'running' | 'done';

/** One operation as stored. */
export interface QueuedOperation {
  operationId: number;
  method: QueuedMethod;
  params: Record<string, unknown>;
  status: OperationStatus;
  /** Who asked (SO_PEERCRED). */
  peer: { pid: number; uid: number };
  queuedAt: string;
  startedAt?: string;
  complete?: OperationComplete;
  /** Whether `complete` reached a subscriber. */
  delivered?: boolean;
}

/** What runs the operations: the library (op-runner.ts), or a test's stand-in. */
export interface OperationRunner {
  /** Runs `op` to its end; a failure is the completion's Fault (a throw is reported as fault 9001). */
  run(op: QueuedOperation, secrets: OperationSecrets): Promise<OperationComplete>;
  /** The outcome of `op`, found `running` after a daemon was killed: finished or undone by the library's recovery. */
  recover(op: QueuedOperation): Promise<OperationComplete>;
  /** Before anything runs: finish what a crash left in the library's journal. */
  prepare?(): Promise<void>;
}

/** Options of {@link OperationQueue}. */
export interface OperationQueueOptions {
  /** The lifecycle state directory; the queue lives in its `daemon/ops/`. */
  stateDir: string;
  runner: OperationRunner;
  /** Called when an operation starts running. */
  onStart?: (op: QueuedOperation) => void;
  /**
   * Called with each completion, and `delivered` to call once a subscriber got it;
   * `again` when it is one a previous daemon had not delivered.
   */
  onComplete?: (complete: OperationComplete, delivered: () => void, again: boolean) => void;
  /** One line per problem (an unreadable file skipped). */
  log?: (line: string) => void;
  /** Operations waiting beyond which add() refuses ({@link QueueFull}). Default {@link MAX_QUEUED}. */
  maxQueued?: number;
}

/** What add() throws when {@link OperationQueueOptions.maxQueued} operations wait already. */
export class QueueFull extends Error {}

/** Done operations kept on disk and for `operation.get`. */
export const KEEP_DONE = 1000;

/** Default bound of the operations waiting: a client that floods the daemon fills neither its memory nor its disk. */
export const MAX_QUEUED = 1000;

const METHODS: readonly string[] = QUEUED_METHODS;
const NAME = /^([0-9]{10})\.(json|secret)$/;

/** The queue's directory in state directory `stateDir`. */
export function queueDir(stateDir: string): string {
  return path.join(stateLayout(stateDir).dir, 'daemon', 'ops');
}

/** The completion of an operation whose runner threw: Failed, fault 9001, no result. */
function thrown(op: QueuedOperation, e: unknown): OperationComplete {
  return {
    operationId: op.operationId, method: op.method, params: op.params, CurrentState: 'Failed',
    Fault: { FaultCode: 9001, FaultString: e instanceof Error ? e.message : String(e) }, result: null,
    StartTime: op.startedAt ?? op.queuedAt, CompleteTime: new Date().toISOString(),
  };
}

function readOperation(file: string): QueuedOperation {
  const value = readJsonFile(file);
  if (value === undefined) throw corrupt(file, 'vanished');
  const f = Fields.of(file, value);
  const method = f.string('method');
  if (!METHODS.includes(method)) throw corrupt(file, `unknown method ${method}`, 'method');
  const op: QueuedOperation = {
    operationId: f.integer('operationId', 1),
    method: method as QueuedMethod,
    params: f.rawObject('params'),
    status: f.oneOf('status', ['queued', 'running', 'done'] as const),
    peer: { pid: f.object('peer').integer('pid'), uid: f.object('peer').integer('uid') },
    queuedAt: f.string('queuedAt'),
  };
  const started = f.optionalString('startedAt');
  if (started !== undefined) op.startedAt = started;
  if (op.status === 'done') {
    op.complete = f.rawObject('complete') as unknown as OperationComplete;
    op.delivered = f.raw('delivered') === true;
  }
  return op;
}

/** The queue (see the module's description). */
export class OperationQueue {
  readonly dir: string;
  private readonly opts: OperationQueueOptions;
  private readonly waiting: QueuedOperation[] = [];
  /** Done operations by id, oldest first (Map keeps insertion order). */
  private readonly done = new Map<number, QueuedOperation>();
  private current?: QueuedOperation;
  /** Left running by a killed daemon: recovered before anything else runs. */
  private interrupted?: QueuedOperation;
  private lastId = 0;
  private loop?: Promise<void>;
  private started = false;
  private stopping = false;

  constructor(opts: OperationQueueOptions) {
    this.opts = opts;
    this.dir = queueDir(opts.stateDir);
    this.load();
  }

  private file(id: number, ext: 'json' | 'secret'): string {
    return path.join(this.dir, `${String(id).padStart(10, '0')}.${ext}`);
  }

  /** Reads what a previous daemon left; an unreadable file is logged and left alone. */
  private load(): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return; // no daemon has queued anything here yet
    }
    sweepTempFiles(this.dir);
    const ops: QueuedOperation[] = [];
    for (const name of names.sort()) {
      const m = NAME.exec(name);
      if (!m || isTempName(name)) continue;
      this.lastId = Math.max(this.lastId, Number(m[1]));
      if (m[2] !== 'json') continue;
      try {
        ops.push(readOperation(path.join(this.dir, name)));
      } catch (e) {
        this.opts.log?.(`queue: skipping ${name}: ${(e as Error).message}`);
      }
    }
    for (const op of ops) {
      if (op.status === 'done') this.done.set(op.operationId, op);
      else if (op.status === 'running' && this.interrupted === undefined) this.interrupted = op;
      else if (op.status === 'running') this.waiting.push({ ...op, status: 'queued' }); // cannot happen: one runs at a time
      else this.waiting.push(op);
    }
    // a stray secret whose operation is done (a crash between the two writes)
    for (const op of this.done.values()) this.removeSecret(op.operationId);
  }

  /** Starts running: recovery first, then undelivered completions, then the queue. */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (const op of this.done.values()) {
      if (!op.delivered && op.complete) this.opts.onComplete?.(op.complete, () => this.markDelivered(op), true);
    }
    this.kick(true);
  }

  /** Stops taking operations and waits for the one running to end (the queued ones stay on disk). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  /**
   * Stores a new operation (durably; secrets in a 0600 file of their own) and queues it;
   * returns its id. Throws when the daemon stops or the directory cannot be written.
   */
  add(method: QueuedMethod, params: Record<string, unknown>, secrets: OperationSecrets, peer: { pid: number; uid: number }): number {
    if (this.stopping) throw new Error('the daemon is stopping');
    const max = this.opts.maxQueued ?? MAX_QUEUED;
    if (this.waiting.length >= max) throw new QueueFull(`${max} operations wait already; try again later`);
    ensureDir(this.dir);
    const id = this.lastId + 1;
    const op: QueuedOperation = { operationId: id, method, params, status: 'queued', peer, queuedAt: new Date().toISOString() };
    if (secrets.password !== undefined || secrets.key !== undefined) writeFileAtomic(this.file(id, 'secret'), JSON.stringify(secrets), 0o600);
    this.save(op);
    this.lastId = id;
    this.waiting.push(op);
    this.kick(false);
    return id;
  }

  /** An operation by id: queued, running, or one of the last {@link KEEP_DONE} done. */
  get(id: number): QueuedOperation | undefined {
    if (this.current?.operationId === id) return this.current;
    if (this.interrupted?.operationId === id) return this.interrupted;
    return this.waiting.find((o) => o.operationId === id) ?? this.done.get(id);
  }

  /** The running operation (if any) and the queued ones, in the order they run. */
  pending(): QueuedOperation[] {
    return [...(this.interrupted ? [this.interrupted] : []), ...(this.current ? [this.current] : []), ...this.waiting];
  }

  private save(op: QueuedOperation): void {
    writeFileAtomic(this.file(op.operationId, 'json'), JSON.stringify(op) + '\n', 0o600);
  }

  private removeSecret(id: number): void {
    try {
      unlinkSync(this.file(id, 'secret'));
    } catch { /* there was none */ }
  }

  private readSecrets(id: number): OperationSecrets {
    try {
      return JSON.parse(readFileSync(this.file(id, 'secret'), 'utf8')) as OperationSecrets;
    } catch {
      return {};
    }
  }

  private markDelivered(op: QueuedOperation): void {
    if (op.delivered) return;
    op.delivered = true;
    // pruned meanwhile: nothing to mark
    if (this.done.get(op.operationId) !== op) return;
    try {
      this.save(op);
    } catch (e) {
      this.opts.log?.(`queue: cannot mark operation ${op.operationId} delivered: ${(e as Error).message}`);
    }
  }

  private kick(first: boolean): void {
    if (!this.started || this.loop !== undefined) return;
    this.loop = this.drain(first).finally(() => {
      this.loop = undefined;
      if (!this.stopping && this.waiting.length > 0) this.kick(false);
    });
  }

  private async drain(first: boolean): Promise<void> {
    if (first) {
      try {
        await this.opts.runner.prepare?.();
      } catch (e) {
        // each operation meets the same failure in its own recovery, and reports it as its Fault
        this.opts.log?.(`queue: recovery failed: ${(e as Error).message}`);
      }
    }
    const interrupted = this.interrupted;
    if (interrupted) {
      const complete = await this.opts.runner.recover(interrupted).catch((e: unknown) => thrown(interrupted, e));
      this.interrupted = undefined;
      this.finish(interrupted, complete);
    }
    while (!this.stopping) {
      const op = this.waiting.shift();
      if (op === undefined) return;
      op.status = 'running';
      op.startedAt = new Date().toISOString();
      this.current = op;
      try {
        this.save(op);
      } catch (e) {
        this.opts.log?.(`queue: cannot mark operation ${op.operationId} running: ${(e as Error).message}`);
      }
      this.opts.onStart?.(op);
      const complete = await this.opts.runner.run(op, this.readSecrets(op.operationId)).catch((e: unknown) => thrown(op, e));
      this.current = undefined;
      this.finish(op, complete);
    }
  }

  private finish(op: QueuedOperation, complete: OperationComplete): void {
    op.status = 'done';
    op.complete = complete;
    op.delivered = false;
    try {
      this.save(op);
    } catch (e) {
      this.opts.log?.(`queue: cannot record the end of operation ${op.operationId}: ${(e as Error).message}`);
    }
    this.removeSecret(op.operationId);
    this.done.set(op.operationId, op);
    this.prune();
    this.opts.onComplete?.(complete, () => this.markDelivered(op), false);
  }

  /** Forgets the oldest done operations beyond {@link KEEP_DONE}, on disk too. */
  private prune(): void {
    for (const id of this.done.keys()) {
      if (this.done.size <= KEEP_DONE) return;
      this.done.delete(id);
      try {
        unlinkSync(this.file(id, 'json'));
      } catch { /* already gone */ }
    }
  }
}
