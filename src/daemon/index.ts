/**
 * overlay-pkgd, the lifecycle daemon, as a library: a Unix socket speaking JSON-RPC 2.0
 * lines, peers checked with SO_PEERCRED, a typed method registry, lifecycle events to
 * subscribers, and the TR-181 `Device.SoftwareModules.` view. See overlay-pkgd(8).
 *
 * ```ts
 * const daemon = createPkgDaemon({ config: readPkgConfig(), log: console.error });
 * daemon.methods.register('du.uninstall', { params: { du: 'string', retainData: 'boolean?' }, run: async (p, ctx) => ... });
 * await daemon.listen();
 * daemon.events.emit('operation.complete', entry);   // to every subscriber
 * ```
 */
import { registerQueryMethods } from './query-methods.js';
import { PkgDaemon, type PkgDaemonOptions } from './server.js';

export * from './client.js';
export * from './jsonrpc.js';
export * from './methods.js';
export * from './peer.js';
export * from './server.js';
export * from './datamodel.js';
export * from './instances.js';
export * from './query-methods.js';

/** Options of {@link createPkgDaemon}. */
export interface CreatePkgDaemonOptions extends PkgDaemonOptions {
  /** The shipped templates directory, for ee.list and datamodel.get. Default: the package's. */
  shipped?: string;
}

/** A daemon with the read and watch methods registered (query-methods.ts); call listen() next. */
export function createPkgDaemon(opts: CreatePkgDaemonOptions): PkgDaemon {
  const daemon = new PkgDaemon(opts);
  registerQueryMethods(daemon, { shipped: opts.shipped });
  return daemon;
}
