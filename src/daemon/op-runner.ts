/**
 * How the daemon runs a queued operation: through the same library functions as
 * `overlay-pkg` (installDU, updateDU, uninstallDU, euStart/euStop/euRestart), so the same
 * lock, journal and history serialise it with any `overlay-pkg` run from a shell.
 *
 * Each run gets an emitter of its own; what the library emits on it is published to
 * subscribers tagged with the daemon's operationId (the library's events carry the
 * journal's id, allocated only once the lock is held; the daemon's id is given when the
 * request is answered): `du.status` and the final DUStateChange as `du.statechange`
 * (each with the DU's `Status`), `eu.status` as `eu.statechange`. Download progress is a
 * `du.statechange` with `bytesDone`/`bytesTotal`, at most {@link PROGRESS_PER_SECOND} a second.
 *
 * The history entry of a daemon's operation has the command `overlay-pkgd operation ID: ...`:
 * after the daemon was killed, that is how the new one finds the outcome of the operation
 * it had running, once the library's recovery finished or undid it.
 */
import { EventEmitter } from 'node:events';
import { euRestart, euStart, euStop, type EuOutcome, type EuRequestOptions } from '../lifecycle/eu-ops.js';
import type { DuStateChange, LifecycleEvents } from '../lifecycle/events.js';
import { faultOf, type Fault } from '../lifecycle/faults.js';
import { History, type HistoryEntry } from '../lifecycle/history.js';
import { installDU } from '../lifecycle/install.js';
import { Journal } from '../lifecycle/journal.js';
import { recoverNow } from '../lifecycle/recover.js';
import { DuStore, type DuStatus } from '../lifecycle/store.js';
import { findDU, uninstallDU } from '../lifecycle/uninstall.js';
import { updateDU } from '../lifecycle/update.js';
import type { PkgConfig } from '../package/config.js';
import type { OperationComplete, OperationRunner, OperationSecrets, QueuedOperation } from './queue.js';
import { euRequestJSON, operationJSON, updateJSON } from './results.js';

/** Most download progress events a second. */
export const PROGRESS_PER_SECOND = 4;

/** Options of {@link LibraryRunner}. */
export interface LibraryRunnerOptions {
  config: PkgConfig;
  /** Sends a notification to the subscribers. */
  publish: (method: string, params: unknown) => void;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** The shipped templates directory. Default: the package's. */
  shippedTemplates?: string;
}

/** The `command` of the history entry of daemon operation `id`. */
export function operationCommand(op: QueuedOperation): string {
  const p = op.params;
  const what = op.method === 'du.install' ? [p.url]
    : op.method === 'du.update' ? [p.du, p.url]
      : op.method === 'du.uninstall' ? [p.du]
        : [p.eu];
  return [`overlay-pkgd operation ${op.operationId}:`, op.method, ...what.filter((x) => x !== undefined)].join(' ') + ` (for pid ${op.peer.pid} uid ${op.peer.uid})`;
}

/** The DU Status a finished operation leaves (DUStateChange has only CurrentState, which may be Failed). */
function statusAfter(c: DuStateChange): DuStatus {
  if (c.CurrentState !== 'Failed') return c.CurrentState;
  return c.OperationPerformed === 'Install' ? 'Uninstalled' : 'Installed';
}

/** Calls `fn` at most `perSecond` times a second, and always for the last value (done === total). */
function throttled(perSecond: number, fn: (done: number, total?: number) => void): (done: number, total?: number) => void {
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (done !== total && now - last < 1000 / perSecond) return;
    last = now;
    fn(done, total);
  };
}

const EU_REQUESTS: Record<'eu.start' | 'eu.stop' | 'eu.restart', (o: EuRequestOptions) => Promise<EuOutcome>> = {
  'eu.start': euStart, 'eu.stop': euStop, 'eu.restart': euRestart,
};

/** What one operation ended with. */
interface Ended {
  CurrentState: OperationComplete['CurrentState'];
  Fault: Fault | null;
  result: Record<string, unknown> | null;
}

function endedWith(entry: HistoryEntry, result: Record<string, unknown>): Ended {
  return { CurrentState: entry.CurrentState, Fault: entry.Fault ?? null, result };
}

/** Runs the daemon's operations with the lifecycle library (see the module's description). */
export class LibraryRunner implements OperationRunner {
  private readonly opts: LibraryRunnerOptions;

  constructor(opts: LibraryRunnerOptions) {
    this.opts = opts;
  }

  private get stateDir(): string {
    return this.opts.config.paths.state;
  }

  /** Finishes what a killed `overlay-pkg` or daemon left in the journal. */
  async prepare(): Promise<void> {
    if (new Journal(this.stateDir).pending() !== undefined) await recoverNow(this.stateDir);
  }

  async run(op: QueuedOperation, secrets: OperationSecrets): Promise<OperationComplete> {
    let ended: Ended;
    try {
      ended = await this.execute(op, secrets, this.tagged(op));
    } catch (e) {
      ended = { CurrentState: 'Failed', Fault: faultOf(e), result: null };
    }
    return this.complete(op, ended);
  }

  async recover(op: QueuedOperation): Promise<OperationComplete> {
    let ended: Ended;
    try {
      await recoverNow(this.stateDir);
      const entry = this.historyOf(op);
      ended = entry ? endedWith(entry, this.recoveredResult(op, entry))
        : { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'the daemon was stopped before the operation changed anything; it is not retried' }, result: null };
    } catch (e) {
      ended = { CurrentState: 'Failed', Fault: faultOf(e), result: null };
    }
    return this.complete(op, ended);
  }

  private complete(op: QueuedOperation, ended: Ended): OperationComplete {
    return {
      operationId: op.operationId, method: op.method, params: op.params, ...ended,
      StartTime: op.startedAt ?? op.queuedAt, CompleteTime: new Date().toISOString(),
    };
  }

  /** An emitter whose lifecycle events reach the subscribers as `op`'s. */
  private tagged(op: QueuedOperation): LifecycleEvents {
    const operationId = op.operationId;
    const publish = this.opts.publish;
    const events = new EventEmitter() as LifecycleEvents;
    events.on('du.status', (s) => publish('du.statechange', { operationId, DeploymentUnitRef: s.Subhost, Status: s.Status }));
    events.on('du.statechange', (c) => publish('du.statechange', { ...c, operationId, Status: statusAfter(c) }));
    events.on('eu.status', (s) => publish('eu.statechange', { ...s, operationId }));
    return events;
  }

  /** Download progress of `op` as du.statechange events of the DU (`du`, when known yet) in `Status`. */
  private progress(op: QueuedOperation, Status: DuStatus, du: unknown): (done: number, total?: number) => void {
    const ref = typeof du === 'string' ? { DeploymentUnitRef: du } : {};
    return throttled(PROGRESS_PER_SECOND, (bytesDone, bytesTotal) => {
      this.opts.publish('du.statechange', { operationId: op.operationId, ...ref, Status, bytesDone, ...(bytesTotal === undefined ? {} : { bytesTotal }) });
    });
  }

  private async execute(op: QueuedOperation, secrets: OperationSecrets, events: LifecycleEvents): Promise<Ended> {
    const { config, runtimeDir, shippedTemplates } = this.opts;
    const p = op.params as Record<string, string | boolean | undefined>;
    const str = (k: string) => (typeof p[k] === 'string' ? p[k] : undefined);
    const common = { config, events, runtimeDir, command: operationCommand(op) };
    switch (op.method) {
      case 'du.install': {
        const out = await installDU({
          ...common, shippedTemplates, source: String(p.url), ee: str('ee'), name: str('name'),
          username: str('username'), password: secrets.password, secret: secrets.key,
          // TR-181 InstallDU's Privileged: false unless asked, as the template says
          ...(p.privileged === true ? { privileged: true } : {}),
          onProgress: this.progress(op, 'Installing', p.name),
        });
        return endedWith(out.entry, operationJSON(out.entry, out.changed, out.record));
      }
      case 'du.update': {
        const du = String(p.du);
        // TR-181: an Update without a URL fetches the DU's own URL again
        const source = str('url') ?? findDU(new DuStore(this.stateDir), du).package.source;
        const out = await updateDU({
          ...common, shippedTemplates, du, source, forceDowngrade: p.forceDowngrade === true,
          username: str('username'), password: secrets.password, secret: secrets.key,
          onProgress: this.progress(op, 'Updating', du),
        });
        return endedWith(out.entry, updateJSON(out.entry, out.changed, out.record, out.conffilesKept));
      }
      case 'du.uninstall': {
        const out = await uninstallDU({ ...common, du: String(p.du), retainData: p.retainData === true });
        return endedWith(out.entry, operationJSON(out.entry, out.changed, out.record));
      }
      default: {
        const euid = String(p.eu);
        const out = await EU_REQUESTS[op.method]({ ...common, euid });
        return endedWith(out.entry, euRequestJSON(out, euid));
      }
    }
  }

  /** The history entry of daemon operation `op`, when it got that far. */
  private historyOf(op: QueuedOperation): HistoryEntry | undefined {
    const prefix = `overlay-pkgd operation ${op.operationId}:`;
    const since = op.startedAt ?? op.queuedAt;
    const entries = new History(this.stateDir).read().entries;
    // it is among the last few: one operation ran at a time, and only `overlay-pkg` runs could follow it
    for (let i = entries.length - 1; i >= Math.max(0, entries.length - 100); i--) {
      const e = entries[i]!;
      if (e.command.startsWith(prefix) && e.StartTime >= since) return e;
    }
    return undefined;
  }

  /** The `--json` result of a recovered operation, from its history entry and the records as they are now. */
  private recoveredResult(op: QueuedOperation, entry: HistoryEntry): Record<string, unknown> {
    const changed = entry.CurrentState !== 'Failed';
    const record = new DuStore(this.stateDir).get(entry.Subhost);
    switch (op.method) {
      case 'du.install': return operationJSON(entry, changed, changed ? record : undefined);
      case 'du.update': return updateJSON(entry, changed, record, []);
      case 'du.uninstall': return operationJSON(entry, changed, changed ? undefined : record);
      default: {
        const euid = String(op.params.eu);
        return euRequestJSON({ changed, entry, eu: record?.EUs.find((e) => e.EUID === euid) }, euid);
      }
    }
  }
}
