/**
 * overlay-pkgd's server: a Unix socket speaking JSON-RPC lines (connection.ts), each
 * connection's peer checked with SO_PEERCRED before a byte of it is read, a method
 * registry (methods.ts), notifications to subscribers ({@link PkgDaemon.publish}, and
 * {@link PkgDaemon.publishKept} for those kept until someone subscribes), and services
 * that run while it listens (the operation queue, {@link PkgDaemon.use}).
 *
 * The socket is made under a temporary name, given its mode and group, and only then
 * linked into place (link(2) fails when the name is taken), so no client ever sees it
 * with other permissions and two daemons starting at once cannot both believe they serve. A socket file
 * left by a dead daemon is replaced; one a live daemon listens on is refused.
 */
import { EventEmitter } from 'node:events';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import type { HistoryEntry } from '../lifecycle/history.js';
import type { DuStateChange, LifecycleEventMap, LifecycleEvents } from '../lifecycle/events.js';
import type { PkgConfig } from '../package/config.js';
import { findNative } from '../subhost/native.js';
import { endWith, RpcConnection, type ConnectionLimits } from './connection.js';
import { responseLine, RPC_ERRORS } from './jsonrpc.js';
import { MethodRegistry } from './methods.js';
import { peerAllowed, peerCredentials, resolveGroup, type PeerCredentials } from './peer.js';

/** Options of {@link PkgDaemon}; every limit has a default fit for a gateway. */
export interface PkgDaemonOptions {
  config: PkgConfig;
  /** The socket. Default: `config.paths.socket`. */
  socketPath?: string;
  /** The emitter whose `du.statechange` and `operation.complete` go to subscribers. Default: a new one. */
  events?: LifecycleEvents;
  /** One line per connection, refusal and failure (no newline). Default: nothing. */
  log?: (line: string) => void;
  /** ovb-launch, which reads a peer's credentials. Default: findNative().launcher. */
  launcher?: string;
  /** Open connections (those being checked included) beyond which new ones are refused. Default 64. */
  maxConnections?: number;
  /** Default 1 MiB. */
  maxLineBytes?: number;
  /** Default 1 MiB. */
  maxPendingOutput?: number;
  /** Default 300000 (5 minutes). */
  idleTimeoutMs?: number;
  /** operation.complete events kept while nobody is subscribed, oldest dropped first. Default 1000. */
  maxUndelivered?: number;
  /** For tests only: the socket's mode instead of 0600 (0660 with `[daemon] group`), to show that the peer check alone refuses. */
  socketMode?: number;
}

/** The lifecycle events a subscriber receives, as notifications of the same name. */
export const FORWARDED_EVENTS = ['du.statechange', 'operation.complete'] as const;

/** Something that runs while the daemon listens (the operation queue): started by listen(), stopped by close(). */
export interface DaemonService {
  /** Called once the socket accepts connections. */
  start(): void;
  /** Called by close() before the connections are closed; close() waits for it. */
  stop(): Promise<void>;
}

/** A notification kept for the next subscriber; `delivered` is called once it was sent. */
interface Kept {
  method: string;
  params: unknown;
  delivered?: () => void;
}

const MAX_SUN_PATH = 107;
let tmpCounter = 0;

function socketError(message: string, file: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_DAEMON_SOCKET', message, { file, cause });
}

/** Whether something accepts connections on `file`: `live`, `stale` (a socket file nobody listens on), or `absent`. */
export async function probeSocket(file: string, timeoutMs = 2000): Promise<'live' | 'stale' | 'absent'> {
  let st;
  try {
    st = lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'absent';
    throw socketError(`cannot look at the socket: ${(e as Error).message}`, file, e);
  }
  if (!st.isSocket()) throw socketError('exists and is not a socket: not replacing it', file);
  return new Promise((resolve) => {
    const c = net.connect(file);
    const done = (r: 'live' | 'stale' | 'absent') => {
      clearTimeout(t);
      c.destroy();
      resolve(r);
    };
    // a daemon too busy to accept within the timeout is still a daemon
    const t = setTimeout(() => done('live'), timeoutMs);
    c.on('connect', () => done('live'));
    c.on('error', (e: NodeJS.ErrnoException) => done(e.code === 'ECONNREFUSED' ? 'stale' : e.code === 'ENOENT' ? 'absent' : 'live'));
  });
}

/** The daemon: construct, register methods, {@link listen}, {@link close}. */
export class PkgDaemon {
  readonly config: PkgConfig;
  readonly socketPath: string;
  readonly events: LifecycleEvents;
  readonly methods = new MethodRegistry();
  private readonly log: (line: string) => void;
  private readonly launcher: string;
  private readonly limits: ConnectionLimits;
  private readonly maxConnections: number;
  private readonly maxUndelivered: number;
  private readonly socketMode?: number;
  private readonly server: net.Server;
  /** Sockets open, connected or being checked. */
  private readonly sockets = new Set<net.Socket>();
  private readonly connections = new Set<RpcConnection>();
  private readonly undelivered: Kept[] = [];
  private readonly services: DaemonService[] = [];
  private readonly listeners: Array<[keyof LifecycleEventMap, (...a: never[]) => void]> = [];
  private nextId = 1;
  private busyRefused = 0;
  private busyLogTimer?: NodeJS.Timeout;
  private socketIno?: number;
  /** `[daemon] group`'s gid, resolved by listen(). */
  private gid?: number;
  private closed = false;

  constructor(opts: PkgDaemonOptions) {
    this.config = opts.config;
    this.socketPath = path.resolve(opts.socketPath ?? opts.config.paths.socket);
    this.events = opts.events ?? (new EventEmitter() as LifecycleEvents);
    this.log = opts.log ?? (() => {});
    this.launcher = opts.launcher ?? findNative().launcher;
    this.limits = {
      maxLineBytes: opts.maxLineBytes ?? 1 << 20,
      maxPendingOutput: opts.maxPendingOutput ?? 1 << 20,
      idleTimeoutMs: opts.idleTimeoutMs ?? 300_000,
    };
    this.maxConnections = opts.maxConnections ?? 64;
    this.maxUndelivered = opts.maxUndelivered ?? 1000;
    this.socketMode = opts.socketMode;
    this.server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true }, (s) => this.accepted(s));
    this.server.on('error', (e) => this.log(`server error: ${e.message}`));
    this.forward('du.statechange', (e: DuStateChange) => this.broadcast('du.statechange', e));
    this.forward('operation.complete', (e: HistoryEntry) => this.publishKept('operation.complete', e));
  }

  /** Writes one line to the daemon's log. */
  logLine(line: string): void {
    this.log(line);
  }

  /** Adds a service, started when the daemon listens and stopped when it closes. */
  use(service: DaemonService): void {
    this.services.push(service);
    if (this.server.listening && !this.closed) service.start();
  }

  /** Sends notification `method` to every subscriber now (nothing is kept when there is none). */
  publish(method: string, params: unknown): void {
    this.broadcast(method, params);
  }

  /**
   * Sends notification `method` to every subscriber, or, when there is none, keeps it
   * (the last `maxUndelivered`) for the next connection that subscribes. `delivered` is
   * called once it was sent (not when it is dropped from a full buffer).
   */
  publishKept(method: string, params: unknown, delivered?: () => void): void {
    if (this.broadcast(method, params)) {
      delivered?.();
      return;
    }
    this.undelivered.push({ method, params, delivered });
    if (this.undelivered.length > this.maxUndelivered) this.undelivered.shift();
  }

  /** Connections that passed the peer check and are open. */
  get connectionCount(): number {
    return this.connections.size;
  }

  /** Connections subscribed to the lifecycle events. */
  get subscriberCount(): number {
    let n = 0;
    for (const c of this.connections) if (c.subscribed) n++;
    return n;
  }

  /**
   * Creates the socket and accepts connections. Throws PKG_DAEMON_RUNNING when a daemon
   * listens on the socket, PKG_DAEMON_SOCKET when it cannot be made, PKG_CONFIG_INVALID
   * for an unknown `[daemon] group`.
   */
  async listen(): Promise<void> {
    const file = this.socketPath;
    const dir = path.dirname(file);
    const gid = this.config.daemon.group === undefined ? undefined : resolveGroup(this.config.daemon.group);
    this.gid = gid;
    // unique to this daemon, and short: a socket path has at most 107 bytes
    const tmp = path.join(dir, `.${process.pid.toString(36)}.${(tmpCounter++).toString(36)}~`);
    for (const p of [file, tmp]) {
      if (Buffer.byteLength(p) > MAX_SUN_PATH) throw socketError(`the path is longer than ${MAX_SUN_PATH} bytes, the limit of a Unix socket`, p);
    }
    try {
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw socketError(`cannot create the socket's directory: ${(e as Error).message}`, dir, e);
    }
    const state = await probeSocket(file);
    if (state === 'live') {
      throw new OverlayBootError('PKG_DAEMON_RUNNING', 'another overlay-pkgd listens on this socket; stop it first', { file });
    }
    try {
      unlinkSync(tmp);
    } catch { /* a leftover of a dead process with our pid, or (usually) nothing */ }
    await new Promise<void>((resolve, reject) => {
      const failed = (e: Error) => reject(socketError(`cannot listen: ${e.message}`, file, e));
      this.server.once('error', failed);
      this.server.listen(tmp, () => {
        this.server.off('error', failed);
        resolve();
      });
    });
    try {
      chownSync(tmp, 0, gid ?? 0);
      chmodSync(tmp, this.socketMode ?? (gid === undefined ? 0o600 : 0o660));
      if (state === 'stale') {
        this.log(`replacing the stale socket ${file}`);
        unlinkSync(file);
      }
      // link, not rename: of two daemons starting at once, the second finds the name taken
      linkSync(tmp, file);
      unlinkSync(tmp);
      this.socketIno = statSync(file).ino;
    } catch (e) {
      try { unlinkSync(tmp); } catch { /* not made, or linked and removed */ }
      await this.close();
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new OverlayBootError('PKG_DAEMON_RUNNING', 'another overlay-pkgd took the socket while this one started', { file, cause: e });
      }
      throw socketError(`cannot set up the socket: ${(e as Error).message}`, file, e);
    }
    this.log(`listening on ${file} (${gid === undefined ? 'root only' : `root and group ${this.config.daemon.group}`})`);
    for (const s of this.services) s.start();
  }

  /** Stops accepting, closes every connection, removes the socket file (when it is still ours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // the operation running finishes first, so that its subscribers hear how it ended
    for (const s of this.services) {
      try {
        await s.stop();
      } catch (e) {
        this.log(`stopping: ${(e as Error).message}`);
      }
    }
    for (const [name, fn] of this.listeners) this.events.off(name, fn as never);
    clearTimeout(this.busyLogTimer);
    this.flushBusyLog();
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.connections) c.close('the daemon stops');
    for (const s of this.sockets) s.destroy();
    if (this.socketIno !== undefined) {
      try {
        // a newer daemon's socket under the same name is not ours to remove
        if (statSync(this.socketPath).ino === this.socketIno) unlinkSync(this.socketPath);
      } catch { /* already gone */ }
    }
    if (this.server.listening) await stopped;
  }

  private forward<K extends (typeof FORWARDED_EVENTS)[number]>(name: K, fn: (...a: LifecycleEventMap[K]) => void): void {
    this.events.on(name, fn as never);
    this.listeners.push([name, fn as never]);
  }

  /** Sends a notification to every subscriber; false when there was none. */
  private broadcast(method: string, params: unknown): boolean {
    let any = false;
    for (const c of this.connections) {
      if (c.subscribed) {
        c.notify(method, params);
        any = true;
      }
    }
    return any;
  }

  private accepted(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.sockets.size >= this.maxConnections) {
      this.refuseBusy(socket);
      return;
    }
    const id = this.nextId++;
    this.sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => this.sockets.delete(socket));
    peerCredentials(socket, this.launcher).then(
      (peer) => this.checked(socket, id, peer),
      (e: Error) => {
        this.log(`connection ${id} dropped: ${e.message}`);
        socket.destroy();
      },
    );
  }

  private checked(socket: net.Socket, id: number, peer: PeerCredentials): void {
    if (socket.destroyed || this.closed) return;
    const who = `pid ${peer.pid} uid ${peer.uid} gid ${peer.gid}`;
    const gid = this.gid;
    if (!peerAllowed(peer, gid)) {
      const rule = gid === undefined ? 'root only' : `root or group ${this.config.daemon.group}`;
      this.log(`connection ${id} refused: ${who} (${rule})`);
      endWith(socket, responseLine(null, { error: { code: RPC_ERRORS.PEER_REFUSED, message: `permission denied: this daemon serves ${rule}` } }));
      return;
    }
    this.log(`connection ${id} from ${who}`);
    const c = new RpcConnection(socket, id, peer, {
      methods: this.methods,
      limits: this.limits,
      log: this.log,
      onClose: (conn) => this.connections.delete(conn),
      onSubscribe: (conn) => {
        for (const k of this.undelivered.splice(0)) {
          conn.notify(k.method, k.params);
          k.delivered?.();
        }
      },
    });
    this.connections.add(c);
    c.start();
  }

  /** Refuses a connection over the cap: an answer, then closed; logged once a second at most, with a count. */
  private refuseBusy(socket: net.Socket): void {
    endWith(socket, responseLine(null, { error: { code: RPC_ERRORS.TOO_MANY_CONNECTIONS, message: `too many connections (${this.maxConnections}): try again later` } }));
    this.busyRefused++;
    this.busyLogTimer ??= setTimeout(() => this.flushBusyLog(), 1000);
  }

  private flushBusyLog(): void {
    this.busyLogTimer = undefined;
    if (this.busyRefused === 0) return;
    this.log(`refused ${this.busyRefused} connection(s): ${this.maxConnections} already open`);
    this.busyRefused = 0;
  }
}
