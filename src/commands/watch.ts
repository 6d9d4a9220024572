import { EventEmitter } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { watch as chokidarWatch, type FSWatcher } from 'chokidar';
import { configDigest, readConfig, type ReadConfigOptions } from '../config/index.js';
import { OverlayBootError, isOverlayBootError, type ErrorCode } from '../errors.js';
import { DEFAULT_STATE_DIR, listStateRecords, liveness, readStateRecord, statePath, type StateRecord } from '../subhost/state.js';
import { boot } from './boot.js';
import { requireRoot } from './preflight.js';
import { stopByName } from './stop.js';

/** Default directory of `overlay-watch` for installed use. */
export const DEFAULT_WATCH_DIR = '/etc/overlay-boot/conf.d';

/** Default quiet time, in milliseconds, before a changed config is acted on. */
export const DEFAULT_DEBOUNCE_MS = 250;

/** The subset of a pino logger the watcher uses; any pino `Logger` fits. */
export interface WatchLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Why a subhost was left as it was. */
export type UnchangedReason =
  /** Already running from this config with the same configDigest, first seen by this watcher. */
  | 'adopted'
  /** The file changed but its meaning did not (a comment, the order of lines). */
  | 'same-config'
  /** Another command is booting it right now. */
  | 'booting';

/** What the watcher did, or failed to do, for one config file. `config` is its absolute path. */
export type WatchEvent =
  | { type: 'booted'; config: string; name: string; pid1: number }
  | { type: 'restarted'; config: string; name: string; pid1: number; previousPid1?: number; previousName?: string }
  | { type: 'stopped'; config: string; name: string }
  | { type: 'unchanged'; config: string; name: string; pid1?: number; reason: UnchangedReason }
  | {
    type: 'error'; config: string; name?: string; code: ErrorCode; message: string;
    /** What was being done: `read` (the config failed its checks), `boot`, `stop` or `restart`. */
    operation: 'read' | 'boot' | 'stop' | 'restart';
    error: OverlayBootError;
  };

export type WatchEventType = WatchEvent['type'];

/** Options of {@link watch} and {@link reconcileDir}. */
export interface WatchOptions extends Omit<ReadConfigOptions, 'action'> {
  /**
   * Milliseconds a config must stay quiet before it is acted on, so an editor's
   * write-then-rename (or several quick saves) counts once. Default 250.
   */
  debounceMs?: number;
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
  /** Where the watcher logs what it does (a pino logger fits). Default: no logging. */
  logger?: WatchLogger;
  /** Called for every {@link WatchEvent}, before the handle emits it. */
  onEvent?: (event: WatchEvent) => void;
  /** Milliseconds each boot may take until the subhost is ready. Default: boot's default (120000). */
  bootTimeoutMs?: number;
  /**
   * Seconds to wait after SIGTERM before SIGKILL when stopping a subhost.
   * Default: STOP_TIMEOUT of its config when it can be read, else 10.
   */
  stopTimeoutSeconds?: number;
  /** Poll instead of using inotify (network filesystems). Default false. */
  usePolling?: boolean;
}

/** What one reconciliation did: config paths per outcome, and every event. */
export interface ReconcileReport {
  booted: string[];
  restarted: string[];
  stopped: string[];
  unchanged: string[];
  failed: Array<{ config: string; code: ErrorCode; message: string }>;
  events: WatchEvent[];
}

/** Events of a {@link WatchHandle}: one per WatchEvent type, and `event` for all of them. */
export interface WatchEventMap {
  event: [WatchEvent];
  booted: [Extract<WatchEvent, { type: 'booted' }>];
  restarted: [Extract<WatchEvent, { type: 'restarted' }>];
  stopped: [Extract<WatchEvent, { type: 'stopped' }>];
  unchanged: [Extract<WatchEvent, { type: 'unchanged' }>];
  /** Emitted only when someone listens: an unheard `error` must not throw. */
  error: [Extract<WatchEvent, { type: 'error' }>];
}

/**
 * A running watcher. It is an EventEmitter of {@link WatchEventMap}. Closing it
 * stops nothing: the subhosts never depend on the watcher.
 */
export interface WatchHandle extends EventEmitter<WatchEventMap> {
  /** The watched directory, absolute. */
  readonly dir: string;
  /** Resolves when the directory is watched and the first reconciliation is done. */
  readonly ready: Promise<void>;
  /** Reconcile every config in the directory now (as at start). */
  reconcile(): Promise<ReconcileReport>;
  /** Stop watching; waits for operations under way. Leaves every subhost as it is. */
  close(): Promise<void>;
}

function isConfName(file: string): boolean {
  const base = path.basename(file);
  // Editors' temporary and backup files (`.x.conf.swp`, `x.conf~`, `.#x.conf`) are not configs.
  return base.endsWith('.conf') && !base.startsWith('.') && base.length > '.conf'.length;
}

function isRegularFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function asOverlayBootError(e: unknown, config: string): OverlayBootError {
  if (isOverlayBootError(e)) return e;
  return new OverlayBootError('INTERNAL', (e as Error)?.message ?? String(e), { file: config, cause: e });
}

/** The configs of DIR: regular files named `*.conf`, absolute, sorted. */
function configsIn(dir: string): string[] {
  return readdirSync(dir).filter(isConfName).map((n) => path.join(dir, n)).filter(isRegularFile).sort();
}

function emptyReport(): ReconcileReport {
  return { booted: [], restarted: [], stopped: [], unchanged: [], failed: [], events: [] };
}

function addToReport(report: ReconcileReport, events: WatchEvent[]): void {
  for (const e of events) {
    report.events.push(e);
    if (e.type === 'error') report.failed.push({ config: e.config, code: e.code, message: e.message });
    else report[e.type].push(e.config);
  }
}

function checkDir(dir: string): string {
  const abs = path.resolve(dir);
  let ok: boolean;
  try {
    ok = statSync(abs).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new OverlayBootError('CONFIG_BAD_PATH', `${abs} is not a directory`, { file: abs, expected: 'a directory of *.conf files', found: abs });
  }
  return abs;
}

/**
 * Brings the subhosts of one directory in step with its configs. Operations on
 * one config file run one at a time; different files run side by side.
 */
class Reconciler {
  /** Config files this reconciler has acted on or adopted: decides `adopted` versus `same-config`. */
  private readonly seen = new Set<string>();
  /** The operation chain of each config file. */
  private readonly chains = new Map<string, Promise<unknown>>();
  /** A sync queued but not yet started: later requests share it (it reads the file when it starts). */
  private readonly pending = new Map<string, Promise<WatchEvent[]>>();

  constructor(readonly dir: string, private readonly options: WatchOptions, private readonly emit: (e: WatchEvent) => void) {}

  get stateDir(): string {
    return this.options.stateDir ?? DEFAULT_STATE_DIR;
  }

  /** Queue a sync of one config file; resolves with what it did. */
  sync(config: string): Promise<WatchEvent[]> {
    const queued = this.pending.get(config);
    if (queued) return queued;
    const previous = this.chains.get(config) ?? Promise.resolve();
    const run = previous.then(async () => {
      this.pending.delete(config);
      const events = await this.syncNow(config);
      for (const e of events) this.emit(e);
      return events;
    });
    this.pending.set(config, run);
    const tail = run.catch(() => undefined);
    this.chains.set(config, tail);
    void tail.then(() => { if (this.chains.get(config) === tail) this.chains.delete(config); });
    return run;
  }

  /** Every config in DIR, and every subhost booted from a config of DIR that is gone. */
  async reconcileAll(): Promise<ReconcileReport> {
    const files = new Set(configsIn(this.dir));
    for (const { record } of listStateRecords(this.stateDir)) {
      if (path.dirname(record.config) === this.dir && isConfName(record.config) && liveness(record) !== 'stale') files.add(record.config);
    }
    const results = await Promise.all([...files].sort().map((f) => this.sync(f)));
    const report = emptyReport();
    for (const events of results) addToReport(report, events);
    return report;
  }

  /** Wait for every operation under way. */
  async idle(): Promise<void> {
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  /** Only what readConfig and boot understand: the watcher's own onEvent is not a boot listener. */
  private readOptions(): Omit<ReadConfigOptions, 'action'> {
    const { cwd, env, bangTimeoutMs, checkOwnership } = this.options;
    return { cwd, env, bangTimeoutMs, checkOwnership };
  }

  /** Running (or booting) subhosts whose state record names this config file. */
  private subhostsOf(config: string): StateRecord[] {
    return listStateRecords(this.stateDir).map((r) => r.record)
      .filter((r) => r.config === config && liveness(r) !== 'stale');
  }

  private async stopSubhost(name: string, timeoutSeconds: number | undefined): Promise<void> {
    try {
      await stopByName(name, { stateDir: this.options.stateDir, timeoutSeconds: this.options.stopTimeoutSeconds ?? timeoutSeconds });
    } catch (e) {
      // It ended by itself meanwhile: that is what we wanted.
      if (!(isOverlayBootError(e) && e.code === 'NOT_RUNNING')) throw e;
    }
  }

  private async syncNow(config: string): Promise<WatchEvent[]> {
    const log = this.options.logger;
    if (!isRegularFile(config) || !isConfName(config)) {
      this.seen.delete(config);
      const events: WatchEvent[] = [];
      for (const r of this.subhostsOf(config)) {
        try {
          await this.stopSubhost(r.name, undefined);
          log?.info({ config, subhost: r.name }, `Stopped ${r.name}: ${config} is gone`);
          events.push({ type: 'stopped', config, name: r.name });
        } catch (e) {
          events.push(this.failure(config, e, 'stop', r.name));
        }
      }
      return events;
    }

    let resolved;
    try {
      resolved = await readConfig(config, { ...this.readOptions(), action: 'overlay-boot' });
    } catch (e) {
      // A broken config leaves its running subhost (if any) alone: the next good save decides.
      return [this.failure(config, e, 'read')];
    }
    const { name } = resolved;
    const digest = configDigest(resolved);
    let previous: StateRecord | undefined;
    try {
      // NAME was edited: the subhost of the old name goes, the new one comes.
      for (const r of this.subhostsOf(config)) {
        if (r.name === name) continue;
        await this.stopSubhost(r.name, resolved.stopTimeout);
        previous = r;
      }
      const record = readStateRecord(statePath(name, this.stateDir));
      const state = record ? liveness(record) : 'stale';
      if (record && state !== 'stale') {
        if (record.config !== config) {
          throw new OverlayBootError('ALREADY_RUNNING', `${name} is already running from another config (${record.config})`,
            { name, file: config, variable: 'NAME' });
        }
        if (state === 'booting') {
          return [{ type: 'unchanged', config, name, reason: 'booting' }];
        }
        if (record.configDigest === digest) {
          const reason: UnchangedReason = this.seen.has(config) ? 'same-config' : 'adopted';
          this.seen.add(config);
          log?.[reason === 'adopted' ? 'info' : 'debug']({ config, subhost: name, pid1: record.pid1?.pid },
            reason === 'adopted' ? `Adopted ${name}` : `${name}: config unchanged in meaning`);
          return [{ type: 'unchanged', config, name, pid1: record.pid1?.pid, reason }];
        }
        log?.info({ config, subhost: name }, `Restarting ${name}: its config changed`);
        await this.stopSubhost(name, resolved.stopTimeout);
        previous = record;
      }
    } catch (e) {
      return [this.failure(config, e, previous ? 'restart' : 'stop', name)];
    }

    try {
      const r = await boot(config, { ...this.readOptions(), stateDir: this.options.stateDir, bootTimeoutMs: this.options.bootTimeoutMs });
      this.seen.add(config);
      if (previous) {
        log?.info({ config, subhost: name, pid1: r.pid1 }, `Restarted ${name}`);
        return [{ type: 'restarted', config, name, pid1: r.pid1, previousPid1: previous.pid1?.pid, previousName: previous.name }];
      }
      log?.info({ config, subhost: name, pid1: r.pid1 }, `Booted ${name}`);
      return [{ type: 'booted', config, name, pid1: r.pid1 }];
    } catch (e) {
      return [this.failure(config, e, previous ? 'restart' : 'boot', name)];
    }
  }

  private failure(config: string, e: unknown, operation: 'read' | 'boot' | 'stop' | 'restart', name?: string): WatchEvent {
    const error = asOverlayBootError(e, config);
    this.options.logger?.error({ config, subhost: name, code: error.code, operation, error: error.toJSON() },
      `${operation === 'read' ? 'Config refused' : `${operation} failed`}: ${error.describe()} [${error.code}]`);
    return { type: 'error', config, name, code: error.code, message: error.describe(), operation, error };
  }
}

/**
 * Reconcile DIR once and return: boot each `*.conf` whose subhost is not
 * running, adopt those running with the same configDigest, restart those whose
 * config changed, stop those whose config file is gone. What `overlay-watch --once` does.
 *
 * @param dir directory of `*.conf` files (for installed use {@link DEFAULT_WATCH_DIR})
 */
export async function reconcileDir(dir: string, options: WatchOptions = {}): Promise<ReconcileReport> {
  requireRoot('overlay-watch');
  const abs = checkDir(dir);
  const reconciler = new Reconciler(abs, options, (e) => options.onEvent?.(e));
  return reconciler.reconcileAll();
}

/**
 * Keep the subhosts of DIR in step with its `*.conf` files until closed.
 *
 * At start every config is reconciled (see {@link reconcileDir}). Then a config
 * that appears is booted; one that changes is read again and its subhost
 * restarted only when its configDigest differs (a comment edit does nothing);
 * one that disappears has its subhost (the one whose state record names that
 * file) stopped. A config that fails its checks is reported (an `error` event,
 * and the logger) and disturbs nothing else. Operations on one file run one
 * at a time. Closing the watcher stops no subhost, and a new watcher adopts them.
 *
 * @param dir directory of `*.conf` files (for installed use {@link DEFAULT_WATCH_DIR});
 *   subdirectories and other files are ignored
 * @throws OverlayBootError NOT_ROOT, or CONFIG_BAD_PATH when DIR is not a directory
 */
export function watch(dir: string, options: WatchOptions = {}): WatchHandle {
  requireRoot('overlay-watch');
  const abs = checkDir(dir);
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  const emitter = new EventEmitter<WatchEventMap>() as EventEmitter<WatchEventMap> & {
    dir: string; ready: Promise<void>; reconcile(): Promise<ReconcileReport>; close(): Promise<void>;
  };
  const emit = (e: WatchEvent) => {
    options.onEvent?.(e);
    emitter.emit('event', e);
    if (e.type === 'error') {
      if (emitter.listenerCount('error') > 0) emitter.emit('error', e);
    } else {
      (emitter.emit as (name: string, ev: WatchEvent) => boolean)(e.type, e);
    }
  };
  const reconciler = new Reconciler(abs, options, emit);
  const timers = new Map<string, NodeJS.Timeout>();
  let closed = false;

  const schedule = (file: string) => {
    if (closed) return;
    const config = path.resolve(file);
    if (path.dirname(config) !== abs || !isConfName(config)) return;
    clearTimeout(timers.get(config));
    timers.set(config, setTimeout(() => {
      timers.delete(config);
      if (!closed) void reconciler.sync(config);
    }, debounceMs));
  };

  const watcher: FSWatcher = chokidarWatch(abs, {
    ignoreInitial: true,
    depth: 0,
    usePolling: options.usePolling ?? false,
    // No globs in chokidar 5: keep DIR itself, drop everything but `*.conf` in it.
    ignored: (p: string) => path.resolve(p) !== abs && !isConfName(p),
  });
  watcher.on('add', schedule).on('change', schedule).on('unlink', schedule);
  watcher.on('error', (err) => {
    options.logger?.error({ dir: abs, err: String(err) }, `watching ${abs}: ${String(err)}`);
  });

  const watching = new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  // Watch first, then reconcile: a change made during the first pass is queued, not lost.
  emitter.ready = watching.then(async () => {
    const report = await reconciler.reconcileAll();
    options.logger?.info({ dir: abs, booted: report.booted.length, restarted: report.restarted.length,
      stopped: report.stopped.length, unchanged: report.unchanged.length, failed: report.failed.length }, `Watching ${abs}`);
  });
  // The caller may never await ready; a rejection there must not crash the process.
  emitter.ready.catch(() => undefined);
  emitter.dir = abs;
  emitter.reconcile = () => reconciler.reconcileAll();
  emitter.close = async () => {
    if (closed) return;
    closed = true;
    for (const t of timers.values()) clearTimeout(t);
    timers.clear();
    await watcher.close();
    await emitter.ready.catch(() => undefined);
    await reconciler.idle();
  };
  return emitter;
}
