/**
 * The methods that read and watch, registered on every daemon: `daemon.info`, `ee.list`, `du.list`,
 * `du.detail`, `eu.list`, `eu.detail`, `history.list`, `events.subscribe`,
 * `events.unsubscribe`, `datamodel.get`. They read the state directory as it is on disk
 * at each call (the operations, under the lock, are its only writers).
 */
import { fault } from '../lifecycle/faults.js';
import { History } from '../lifecycle/history.js';
import { DuStore, type DuRecord, type EuRecord } from '../lifecycle/store.js';
import { listExecEnvs, packageVersion } from '../lifecycle/templates.js';
import { readSoftwareModules, selectParameters, SOFTWARE_MODULES } from './datamodel.js';
import { faultError, RPC_ERRORS, RpcError } from './jsonrpc.js';
import type { PkgDaemon } from './server.js';

/** An EU with the DU it belongs to, as `eu.list` and `eu.detail` give it. */
export interface EuView extends EuRecord {
  /** The DU's subhost NAME. */
  DeploymentUnitRef: string;
  ExecutionEnvRef: string;
  Version: string;
  Vendor: string;
}

function euView(r: DuRecord, eu: EuRecord): EuView {
  return { ...eu, DeploymentUnitRef: r.Subhost, ExecutionEnvRef: r.ExecutionEnvRef, Version: r.Version, Vendor: r.Vendor };
}

/** The one DU `du` (subhost NAME or UUID) names: 9028 when none, 9003 when a UUID names several (one per EE). */
export function findOneDu(store: DuStore, du: string): DuRecord {
  const found = store.find(du);
  if (found.length === 0) throw faultError(fault('UNKNOWN_DU', `no deployment unit ${JSON.stringify(du)}`));
  if (found.length > 1) {
    throw faultError(fault('INVALID_ARGUMENTS', `UUID ${du} is installed in several execution environments: name one of ${found.map((r) => r.Subhost).join(', ')}`));
  }
  return found[0]!;
}

/** The default and largest number of entries `history.list` returns. */
export const HISTORY_LIMIT = 1000;

/** Registers the read and watch methods on `daemon`. */
export function registerQueryMethods(daemon: PkgDaemon, opts: { shipped?: string } = {}): void {
  const config = daemon.config;
  const store = () => new DuStore(config.paths.state);
  const m = daemon.methods;

  // what a client checks before it relies on a method (the daemon grows with the lifecycle operations)
  // `state`: a client whose configuration names another state directory must not use this daemon
  m.register('daemon.info', { params: {}, run: () => ({ version: packageVersion(), pid: process.pid, state: config.paths.state, methods: m.names() }) });
  m.register('ee.list', { params: {}, run: () => listExecEnvs(config, { shipped: opts.shipped }) });
  m.register('du.list', { params: {}, run: () => store().list() });
  m.register('du.detail', { params: { du: 'string' }, run: ({ du }) => findOneDu(store(), du) });
  m.register('eu.list', { params: {}, run: () => store().list().flatMap((r) => r.EUs.map((eu) => euView(r, eu))) });
  m.register('eu.detail', {
    params: { eu: 'string' },
    run: ({ eu }) => {
      for (const r of store().list()) {
        const found = r.EUs.find((x) => x.EUID === eu);
        if (found) return euView(r, found);
      }
      throw faultError(fault('INVALID_ARGUMENTS', `no execution unit ${JSON.stringify(eu)}`));
    },
  });
  m.register('history.list', {
    params: { after: 'integer?', limit: 'integer?' },
    run: ({ after = 0, limit = HISTORY_LIMIT }) => {
      if (limit < 1 || limit > HISTORY_LIMIT) throw new RpcError(RPC_ERRORS.INVALID_PARAMS, `invalid params for history.list: limit must be 1 to ${HISTORY_LIMIT}`);
      const { entries, warnings } = new History(config.paths.state).read();
      // the newest `limit` of those after `after`, oldest first
      return { entries: entries.filter((e) => e.id > after).slice(-limit), warnings };
    },
  });
  m.register('events.subscribe', {
    params: {},
    run: (_p, { connection }) => {
      connection.subscribed = true;
      return { subscribed: true };
    },
  });
  m.register('events.unsubscribe', {
    params: {},
    run: (_p, { connection }) => {
      connection.subscribed = false;
      return { subscribed: false };
    },
  });
  m.register('datamodel.get', {
    params: { path: 'string?' },
    run: async ({ path }) => {
      if (path !== undefined && path !== '' && !path.startsWith(SOFTWARE_MODULES) && `${path}.` !== SOFTWARE_MODULES) {
        throw new RpcError(RPC_ERRORS.INVALID_PARAMS, `invalid params for datamodel.get: path must start with ${SOFTWARE_MODULES}`);
      }
      const selected = selectParameters(await readSoftwareModules(config, { shipped: opts.shipped }), path);
      if (Object.keys(selected).length === 0) throw new RpcError(RPC_ERRORS.INVALID_PARAMS, `invalid params for datamodel.get: no parameter or object ${path}`);
      return selected;
    },
  });
}
