/**
 * The methods that change things, each answered at once with `{operationId}` once the
 * operation is stored in the queue (queue.ts) and run there one at a time:
 * `du.install`, `du.update`, `du.uninstall`, `eu.start`, `eu.stop`, `eu.restart`; and the
 * methods that follow them: `operation.get`, `operation.list`. Subscribers receive
 * `operation.start` when one begins and exactly one `operation.complete` when it ends
 * (kept for the next subscriber when there is none, across restarts too).
 *
 * What can be refused without running is refused before anything is stored (fault 9003):
 * a URL with userinfo (the credentials go in `username`/`password`, which are never
 * logged and never stored with the params), a relative path (the daemon's working
 * directory is not the client's), an EUID without `/` (overlay-pkg's usage error). What
 * the library refuses (a bad NAME, an unknown DU) is the operation's Fault, in the
 * history, as for `overlay-pkg`.
 */
import { splitEuid } from '../lifecycle/eu-ops.js';
import { fault } from '../lifecycle/faults.js';
import { faultError, RPC_ERRORS, RpcError } from './jsonrpc.js';
import type { MethodContext } from './methods.js';
import { LibraryRunner } from './op-runner.js';
import { OperationQueue, QueueFull, type OperationRunner, type OperationSecrets, type QueuedMethod, type QueuedOperation } from './queue.js';
import type { PkgDaemon } from './server.js';

/** Options of {@link registerOperationMethods}. */
export interface OperationMethodsOptions {
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** The shipped templates directory. Default: the package's. */
  shipped?: string;
  /** Runs the operations instead of the library (tests of the queue alone). */
  runner?: OperationRunner;
  /** Operations waiting beyond which a request is refused with fault 9027. Default 1000. */
  maxQueued?: number;
}

function invalid(why: string): RpcError {
  return faultError(fault('INVALID_ARGUMENTS', why));
}

/** Refuses a source the daemon cannot use as the client meant it. */
function checkSource(url: string): void {
  if (url === '') throw invalid('url is empty');
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(url)) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch { /* the download reports it, with its fault */ }
    if (parsed && (parsed.username !== '' || parsed.password !== '')) {
      throw invalid('a user name or password inside the URL is refused; give them as the username and password params');
    }
    return;
  }
  if (!url.startsWith('/')) throw invalid(`url ${JSON.stringify(url)} is a relative path; give an absolute path or a URL`);
}

/** The params kept with the operation and sent back in its events: all but the secrets. */
function split(params: Record<string, unknown>): { shown: Record<string, unknown>; secrets: OperationSecrets } {
  const { password, key, ...shown } = params as Record<string, unknown> & OperationSecrets;
  const secrets: OperationSecrets = {};
  if (password !== undefined) secrets.password = password;
  if (key !== undefined) secrets.key = key;
  return { shown, secrets };
}

/** An operation as operation.list shows it. */
function listed(op: QueuedOperation): Record<string, unknown> {
  return { operationId: op.operationId, method: op.method, params: op.params, status: op.status, queuedAt: op.queuedAt, ...(op.startedAt ? { startedAt: op.startedAt } : {}) };
}

/** Registers the queued methods and operation.get/list on `daemon`; the queue starts when it listens. */
export function registerOperationMethods(daemon: PkgDaemon, opts: OperationMethodsOptions = {}): OperationQueue {
  const runner = opts.runner ?? new LibraryRunner({
    config: daemon.config, runtimeDir: opts.runtimeDir, shippedTemplates: opts.shipped,
    publish: (method, params) => daemon.publish(method, params),
  });
  const queue = new OperationQueue({
    stateDir: daemon.config.paths.state,
    runner,
    maxQueued: opts.maxQueued,
    log: (l) => daemon.logLine(l),
    onStart: (op) => {
      daemon.logLine(`operation ${op.operationId} (${op.method} for pid ${op.peer.pid} uid ${op.peer.uid}) starts`);
      daemon.publish('operation.start', { operationId: op.operationId, method: op.method, params: op.params, StartTime: op.startedAt });
    },
    onComplete: (complete, delivered, again) => {
      const f = complete.Fault;
      if (!again) daemon.logLine(`operation ${complete.operationId} (${complete.method}) ended: ${complete.CurrentState}${f ? `, fault ${f.FaultCode}: ${f.FaultString}` : ''}`);
      daemon.publishKept('operation.complete', complete, delivered);
    },
  });
  daemon.use(queue);
  const m = daemon.methods;
  const submit = (method: QueuedMethod, params: Record<string, unknown>, ctx: MethodContext) => {
    const { shown, secrets } = split(params);
    try {
      return { operationId: queue.add(method, shown, secrets, { pid: ctx.peer.pid, uid: ctx.peer.uid }) };
    } catch (e) {
      throw faultError(fault(e instanceof QueueFull ? 'RESOURCES_EXCEEDED' : 'REQUEST_DENIED', `the operation cannot be queued: ${(e as Error).message}`));
    }
  };
  const checkEuid = (eu: string) => {
    try {
      splitEuid(eu);
    } catch (e) {
      throw invalid((e as Error).message);
    }
  };
  const credentials = { username: 'string?', password: 'string?', key: 'string?' } as const;

  m.register('du.install', {
    params: { url: 'string', ee: 'string?', name: 'string?', privileged: 'boolean?', ...credentials },
    run: (p, ctx) => {
      checkSource(p.url);
      return submit('du.install', p, ctx);
    },
  });
  m.register('du.update', {
    params: { du: 'string', url: 'string?', forceDowngrade: 'boolean?', ...credentials },
    run: (p, ctx) => {
      if (p.url !== undefined) checkSource(p.url);
      return submit('du.update', p, ctx);
    },
  });
  m.register('du.uninstall', { params: { du: 'string', retainData: 'boolean?' }, run: (p, ctx) => submit('du.uninstall', p, ctx) });
  for (const method of ['eu.start', 'eu.stop', 'eu.restart'] as const) {
    m.register(method, {
      params: { eu: 'string' },
      run: (p, ctx) => {
        checkEuid(p.eu);
        return submit(method, p, ctx);
      },
    });
  }
  m.register('operation.get', {
    params: { operationId: 'integer' },
    run: ({ operationId }) => {
      const op = queue.get(operationId);
      if (!op) throw new RpcError(RPC_ERRORS.INVALID_PARAMS, `invalid params for operation.get: no operation ${operationId} (the daemon keeps the last 1000 done)`);
      return { operationId, method: op.method, status: op.status, ...(op.complete ? { complete: op.complete } : {}) };
    },
  });
  m.register('operation.list', { params: {}, run: () => queue.pending().map(listed) });
  return queue;
}
