/**
 * A client of overlay-pkgd, for the commands (`overlay-pkg` when a daemon runs, an
 * `events` watcher) and embedders: JSON-RPC 2.0 lines over the Unix socket, calls
 * matched to answers by id, notifications as events. Bounded like the daemon: a line
 * longer than `maxLineBytes` ends the connection.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { OverlayBootError } from '../errors.js';
import { LineSplitter } from './lines.js';
import { RpcError, type RpcErrorObject } from './jsonrpc.js';

/** Options of {@link PkgDaemonClient.connect}. */
export interface PkgDaemonClientOptions {
  /** Longest line accepted from the daemon. Default 64 MiB (a datamodel of many DUs is one line). */
  maxLineBytes?: number;
  /** Give up connecting after this many milliseconds. Default 5000. */
  connectTimeoutMs?: number;
}

/** The events of a client. */
export interface PkgDaemonClientEvents {
  /** A notification (after `events.subscribe`: `du.statechange`, `operation.complete`). */
  notification: [method: string, params: unknown];
  /** The connection ended; `error` when it was not closed by {@link PkgDaemonClient.close}. */
  close: [error?: OverlayBootError];
}

function unavailable(file: string, why: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_DAEMON_UNAVAILABLE', why, { file, cause });
}

/** One connection to the daemon. */
export class PkgDaemonClient extends EventEmitter<PkgDaemonClientEvents> {
  private readonly socket: net.Socket;
  private readonly file: string;
  private readonly maxLineBytes: number;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly lines: LineSplitter;
  private nextId = 1;
  private ended?: OverlayBootError;

  private constructor(socket: net.Socket, file: string, maxLineBytes: number) {
    super();
    this.socket = socket;
    this.file = file;
    this.maxLineBytes = maxLineBytes;
    this.lines = new LineSplitter(maxLineBytes);
    socket.on('data', (chunk: Buffer) => this.received(chunk));
    socket.on('error', (e) => this.end(unavailable(file, `connection failed: ${e.message}`, e)));
    socket.on('close', () => this.end(unavailable(file, 'the daemon closed the connection')));
  }

  /**
   * Connects to the daemon at `file`. Throws PKG_DAEMON_UNAVAILABLE when nothing listens
   * there (no daemon runs: the caller may do the work itself).
   */
  static connect(file: string, opts: PkgDaemonClientOptions = {}): Promise<PkgDaemonClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(file);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(unavailable(file, `no answer within ${opts.connectTimeoutMs ?? 5000} ms`));
      }, opts.connectTimeoutMs ?? 5000);
      socket.once('error', (e) => {
        clearTimeout(timer);
        reject(unavailable(file, `cannot connect: ${e.message}`, e));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new PkgDaemonClient(socket, file, opts.maxLineBytes ?? 64 << 20));
      });
    });
  }

  /**
   * Calls `method` and returns its result. Rejects with RpcError (the daemon's `code`,
   * `message`, `data`) when the daemon answers with an error, with PKG_DAEMON_UNAVAILABLE
   * when the connection ends first.
   */
  call<T = unknown>(method: string, params?: Record<string, unknown>): Promise<T> {
    if (this.ended) return Promise.reject(this.ended);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }), id }) + '\n');
    });
  }

  /** Closes the connection; pending calls are rejected. */
  close(): void {
    this.end();
    this.socket.destroy();
  }

  private end(error?: OverlayBootError): void {
    if (this.ended) return;
    this.ended = error ?? unavailable(this.file, 'the client closed the connection');
    for (const p of this.pending.values()) p.reject(this.ended);
    this.pending.clear();
    this.emit('close', error);
  }

  private received(chunk: Buffer): void {
    if (!this.lines.push(chunk, (line) => this.message(line.toString('utf8')))) this.tooLong();
  }

  private tooLong(): void {
    this.end(unavailable(this.file, `the daemon sent a line longer than ${this.maxLineBytes} bytes`));
    this.socket.destroy();
  }

  private message(line: string): void {
    let m: { id?: unknown; method?: unknown; params?: unknown; result?: unknown; error?: RpcErrorObject };
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      this.end(unavailable(this.file, 'the daemon sent a line that is not JSON'));
      this.socket.destroy();
      return;
    }
    if (typeof m.method === 'string' && m.id === undefined) {
      this.emit('notification', m.method, m.params);
      return;
    }
    const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
    if (p) {
      this.pending.delete(m.id as number);
      if (m.error) p.reject(new RpcError(m.error.code, m.error.message, m.error.data));
      else p.resolve(m.result);
      return;
    }
    // an error with id null ends the connection (refused, line too long, idle): say why
    if (m.error) {
      this.end(unavailable(this.file, `the daemon refused: ${m.error.message} (${m.error.code})`));
      this.socket.destroy();
    }
  }
}
