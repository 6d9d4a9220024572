/**
 * overlay-pkg's commands that read the TR-181 view and watch the lifecycle: `datamodel`
 * (through overlay-pkgd's `datamodel.get` when it runs, else the same library function
 * here, under the state directory's lock since it assigns instance numbers) and `events`
 * (the daemon's notifications, one line each, until SIGINT or SIGTERM).
 */
import { readSoftwareModules, selectParameters, SOFTWARE_MODULES, type Parameters } from '../daemon/datamodel.js';
import { RPC_ERRORS, RpcError } from '../daemon/jsonrpc.js';
import { withLock } from '../lifecycle/lock.js';
import { OverlayBootError } from '../errors.js';
import { flagOption, printJSON, type PkgCommand, type PkgContext } from './pkg-command.js';
import { linkDaemon } from './pkg-daemon.js';

const TOOL = 'overlay-pkg';

/** The parameters `path` selects, from the daemon when one answers, else computed here. */
async function readParameters(path: string | undefined, ctx: PkgContext): Promise<Parameters> {
  const link = await linkDaemon(ctx);
  if (link?.methods.has('datamodel.get')) {
    try {
      return await link.client.call<Parameters>('datamodel.get', path === undefined ? {} : { path });
    } catch (e) {
      // an unknown path: the same answer as below, whoever computed it
      if (e instanceof RpcError && e.code === RPC_ERRORS.INVALID_PARAMS) return {};
      throw e;
    } finally {
      link.client.close();
    }
  }
  link?.client.close();
  return withLock(ctx.config.paths.state, async () => selectParameters(await readSoftwareModules(ctx.config), path));
}

/** One `Path value` line a parameter, in order. */
export function formatParameters(p: Parameters): string {
  return Object.entries(p).map(([k, v]) => `${k} ${String(v)}\n`).join('');
}

async function datamodel(path: string | undefined, ctx: PkgContext): Promise<number> {
  const params = await readParameters(path, ctx);
  if (Object.keys(params).length === 0) {
    const why = `no parameter or object ${JSON.stringify(path)} in ${SOFTWARE_MODULES} (a path ending in "." selects a subtree)`;
    if (flagOption(ctx, 'json')) printJSON(ctx, { ok: false, error: { code: 'INVALID_PATH', message: why } });
    ctx.io.stderr(`${TOOL}: ${why}\n`);
    return 1;
  }
  if (flagOption(ctx, 'json')) printJSON(ctx, { changed: false, parameters: params });
  else ctx.io.stdout(formatParameters(params));
  return 0;
}

type Params = Record<string, unknown>;

function obj(v: unknown): Params {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Params) : {};
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined;
}

/**
 * The human line of one notification: time, event, the DU or EU, its state, the fault
 * (when there is one), the operation id; bytes done/total for a download in progress.
 * Reads the fields of every event the daemon sends (du.statechange, operation.complete,
 * eu and du status events) and ignores what it does not know.
 */
export function formatEvent(time: Date, method: string, params: unknown): string {
  const p = obj(params);
  const request = obj(p.params);
  const result = obj(p.result);
  const ref = str(p.DeploymentUnitRef) ?? str(p.EUID) ?? str(p.Subhost) ?? str(result.EUID) ?? str(result.Subhost)
    ?? str(request.eu) ?? str(request.du) ?? str(request.name) ?? str(request.url) ?? '-';
  const state = str(p.CurrentState) ?? str(p.Status) ?? (method === 'operation.start' ? 'Running' : '-');
  const parts = [time.toISOString(), method];
  if (typeof p.method === 'string') parts.push(p.method);
  parts.push(ref, state);
  const f = obj(p.Fault);
  if (typeof f.FaultCode === 'number' && f.FaultCode !== 0) parts.push(`fault ${f.FaultCode}: ${str(f.FaultString) ?? ''}`);
  const euFault = str(p.ExecutionFaultCode);
  if (euFault !== undefined && euFault !== 'NoFault') parts.push(`(${euFault})`);
  if (typeof p.bytesDone === 'number') parts.push(`${p.bytesDone}/${typeof p.bytesTotal === 'number' ? p.bytesTotal : '?'} bytes`);
  const op = str(p.operationId) ?? str(p.id);
  if (op !== undefined) parts.push(`op ${op}`);
  return parts.join(' ');
}

/** Resolves with the signal that asked the watch to end. */
function untilSignal(): { stopped: Promise<NodeJS.Signals>; dispose: () => void } {
  let stop: (s: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => { stop = resolve; });
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { stopped, dispose: () => { process.off('SIGINT', stop); process.off('SIGTERM', stop); } };
}

async function events(ctx: PkgContext): Promise<number> {
  const signals = untilSignal();
  try {
    const link = await linkDaemon({ ...ctx, values: { ...ctx.values, 'no-daemon': false } });
    if (!link) {
      throw new OverlayBootError('PKG_DAEMON_UNAVAILABLE', 'no overlay-pkgd answers on this socket: events come from the daemon (start it: overlay-pkgd, or its init script)', { file: ctx.config.paths.socket });
    }
    const json = flagOption(ctx, 'json');
    link.client.on('notification', (method, params) => {
      const time = new Date();
      ctx.io.stdout(json ? JSON.stringify({ time: time.toISOString(), event: method, params }) + '\n' : formatEvent(time, method, params) + '\n');
    });
    const lost = new Promise<OverlayBootError | undefined>((resolve) => link.client.once('close', resolve));
    await link.client.call('events.subscribe');
    const ended = await Promise.race([signals.stopped, lost]);
    link.client.close();
    if (typeof ended === 'string') return 0;
    throw ended ?? new OverlayBootError('PKG_DAEMON_UNAVAILABLE', 'the daemon closed the connection', { file: ctx.config.paths.socket });
  } finally {
    signals.dispose();
  }
}

/** The watch commands, by name. */
export const WATCH_COMMANDS: Record<string, PkgCommand> = {
  datamodel: {
    usage: [
      'datamodel [PATH]                         the TR-181 Device.SoftwareModules. parameters, one "Path value" line each',
      '                                         (PATH: one parameter, or a subtree when it ends in ".")',
    ],
    args: { min: 0, max: 1, what: 'at most one PATH' },
    run: (a, c) => datamodel(a[0], c),
  },
  events: {
    usage: ['events                                   print the daemon\'s events as they happen, one line each, until SIGINT'],
    args: { min: 0, max: 0, what: 'no arguments' },
    run: (_a, c) => events(c),
  },
};
