/**
 * overlay-pkgd, the lifecycle daemon, as a library: a Unix socket speaking JSON-RPC 2.0
 * lines, peers checked with SO_PEERCRED, a typed method registry, lifecycle events to
 * subscribers, and the TR-181 `Device.SoftwareModules.` view. See overlay-pkgd(8).
 *
 * ```ts
 * const daemon = createPkgDaemon({ config: readPkgConfig(), log: console.error });
 * daemon.methods.register('my.method', { params: { du: 'string' }, run: async (p, ctx) => ... });
 * await daemon.listen();
 * daemon.events.emit('operation.complete', entry);   // to every subscriber
 * ```
 */
import { registerOperationMethods } from './op-methods.js';
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
export * from './queue.js';
export * from './op-methods.js';
export * from './op-runner.js';
export * from './results.js';

/** Options of {@link createPkgDaemon}. */
export interface CreatePkgDaemonOptions extends PkgDaemonOptions {
  /** The shipped templates directory, for ee.list and datamodel.get. Default: the package's. */
  shipped?: string;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
}

/**
 * A daemon with the read and watch methods (query-methods.ts) and the queued operations
 * (op-methods.ts) registered; call listen() next, which starts the queue.
 */
export function createPkgDaemon(opts: CreatePkgDaemonOptions): PkgDaemon {
  const daemon = new PkgDaemon(opts);
  registerQueryMethods(daemon, { shipped: opts.shipped });
  registerOperationMethods(daemon, { shipped: opts.shipped, runtimeDir: opts.runtimeDir });
  return daemon;
}
