/**
 * How overlay-pkg reaches overlay-pkgd: a connection to the socket of `[paths] socket`
 * that answered `daemon.info` for the same state directory, or nothing (no daemon runs, a
 * stale socket, a refusal, no answer in time, a daemon of another state directory), in
 * which case the command does the work itself with the library.
 */
import path from 'node:path';
import { PkgDaemonClient } from '../daemon/client.js';
import type { PkgContext } from './pkg-command.js';
import { flagOption } from './pkg-command.js';

/** A daemon that answers, and the methods it offers. */
export interface DaemonLink {
  client: PkgDaemonClient;
  methods: Set<string>;
}

/** Connecting and `daemon.info` each give up after this long: a daemon that does not answer at once is treated as absent. */
export const DAEMON_ANSWER_MS = 5000;

/** `p`, or a rejection naming `what` when it takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/**
 * The daemon of `ctx.config.paths.socket` when one answers `daemon.info`; undefined when
 * none does or `--no-daemon` was given. The caller closes the client.
 */
export async function linkDaemon(ctx: PkgContext): Promise<DaemonLink | undefined> {
  if (flagOption(ctx, 'no-daemon')) return undefined;
  let client: PkgDaemonClient;
  try {
    client = await PkgDaemonClient.connect(ctx.config.paths.socket, { connectTimeoutMs: DAEMON_ANSWER_MS });
  } catch {
    return undefined;
  }
  try {
    const info = await withTimeout(client.call<{ methods?: unknown; state?: unknown }>('daemon.info'), DAEMON_ANSWER_MS, 'daemon.info');
    // a daemon of another state directory (another configuration on the same socket) is not ours
    if (typeof info.state === 'string' && path.resolve(info.state) !== path.resolve(ctx.config.paths.state)) {
      client.close();
      return undefined;
    }
    const methods = Array.isArray(info.methods) ? info.methods.filter((m): m is string => typeof m === 'string') : [];
    return { client, methods: new Set(methods) };
  } catch {
    // refused (not root nor its group) or mute: the library alone does what the daemon would
    client.close();
    return undefined;
  }
}
