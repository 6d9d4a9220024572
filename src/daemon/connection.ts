/**
 * One client connection of the daemon, after its peer was checked: JSON-RPC lines in,
 * answers and notifications out, with every resource bounded.
 *
 * - A line is cut into pieces as it arrives and never held beyond `maxLineBytes`: a
 *   longer one is answered with -32002 and the connection closed, whatever follows.
 * - Requests run one at a time, in order; reading pauses while one runs, so a client
 *   that sends faster than it is answered waits in the kernel's buffer, not in ours.
 * - Output the client has not read is capped: past `maxPendingOutput` bytes the
 *   connection is destroyed (a subscriber that never reads cannot grow the daemon).
 * - A connection that asks nothing for `idleTimeoutMs` is closed, unless it is
 *   subscribed to events (waiting is what a subscriber does).
 */
import type { Socket } from 'node:net';
import { isOverlayBootError } from '../errors.js';
import { errorObject, notificationLine, parseLine, responseLine, RPC_ERRORS, RpcError, type RpcErrorObject, type RpcId } from './jsonrpc.js';
import { LineSplitter } from './lines.js';
import type { MethodRegistry, RpcConnectionHandle } from './methods.js';
import type { PeerCredentials } from './peer.js';

/** The bounds of one connection. */
export interface ConnectionLimits {
  /** Longest request line, newline excluded. */
  maxLineBytes: number;
  /** Unsent output above which the connection is dropped. */
  maxPendingOutput: number;
  /** Milliseconds without a request before an unsubscribed connection is closed; 0: never. */
  idleTimeoutMs: number;
}

/** What a connection needs from its daemon. */
export interface ConnectionHost {
  methods: MethodRegistry;
  limits: ConnectionLimits;
  log: (line: string) => void;
  /** Called once the socket has closed. */
  onClose: (c: RpcConnection) => void;
  /** Called when the connection subscribes (to deliver what waited for a subscriber). */
  onSubscribe: (c: RpcConnection) => void;
}

/**
 * Ends `socket` with `line` and destroys it once written (or after a second). With
 * `discardMs`, what the client still sends is read and dropped for that long first, so a
 * client busy writing (an over-long line) can read the answer before its writes fail.
 */
export function endWith(socket: Socket, line: string, discardMs = 0): void {
  socket.on('error', () => {});
  const t = setTimeout(() => socket.destroy(), discardMs || 1000);
  socket.once('close', () => clearTimeout(t));
  if (discardMs) {
    socket.on('end', () => socket.destroy());
    socket.end(line);
    socket.resume();
  } else {
    socket.end(line, () => socket.destroy());
  }
}

export class RpcConnection implements RpcConnectionHandle {
  readonly id: number;
  readonly peer: PeerCredentials;
  private readonly socket: Socket;
  private readonly host: ConnectionHost;
  private subscribedFlag = false;
  private readonly lines: LineSplitter;
  private readonly queue: Buffer[] = [];
  private running = false;
  private closing = false;
  /**
   * The client shut down its side: answer what it sent, then end ours. A subscriber too:
   * EOF alone cannot tell a half-close from a client gone, and a gone one must not hold
   * its slot until the next event fails to reach it.
   */
  private inputEnded = false;

  constructor(socket: Socket, id: number, peer: PeerCredentials, host: ConnectionHost) {
    this.socket = socket;
    this.id = id;
    this.peer = peer;
    this.host = host;
    this.lines = new LineSplitter(host.limits.maxLineBytes);
  }

  /** Whether it receives the lifecycle notifications; setting it true (re)arms nothing else. */
  get subscribed(): boolean {
    return this.subscribedFlag;
  }

  set subscribed(on: boolean) {
    const was = this.subscribedFlag;
    this.subscribedFlag = on;
    this.socket.setTimeout(on ? 0 : this.host.limits.idleTimeoutMs);
    if (on && !was) this.host.onSubscribe(this);
  }

  /** Starts reading. */
  start(): void {
    const s = this.socket;
    s.on('error', (e) => this.close(`socket error: ${e.message}`));
    s.on('close', () => {
      this.closing = true;
      this.host.onClose(this);
    });
    // `printf REQUEST | socat - UNIX-CONNECT:...` sends, shuts down its side and waits for the answer
    s.on('end', () => {
      this.inputEnded = true;
      this.lines.end((line) => this.queue.push(line));
      if (this.queue.length && !this.running) void this.drain();
      else if (!this.running) this.inputDone();
    });
    s.on('timeout', () => {
      if (this.subscribedFlag || this.running) return;
      this.fail({ code: RPC_ERRORS.IDLE_TIMEOUT, message: `no request for ${this.host.limits.idleTimeoutMs} ms: closing` }, 'idle');
    });
    s.setTimeout(this.host.limits.idleTimeoutMs);
    s.on('data', (chunk: Buffer) => this.received(chunk));
    s.resume();
  }

  /** Sends a notification now. */
  notify(method: string, params: unknown): void {
    this.send(notificationLine(method, params));
  }

  /** Closes the connection at once (daemon shutdown, or a fault of the client). */
  close(why: string): void {
    if (this.closing) return;
    this.closing = true;
    this.host.log(`connection ${this.id} closed: ${why}`);
    this.socket.destroy();
  }

  private send(line: string): void {
    if (this.closing || this.socket.destroyed) return;
    this.socket.write(line);
    // writableLength is what Node holds beyond the kernel's socket buffer: the client's debt
    if (this.socket.writableLength > this.host.limits.maxPendingOutput) {
      this.close(`the client does not read: more than ${this.host.limits.maxPendingOutput} bytes unsent`);
    }
  }

  /** Answers with `error` (id null), then closes: the client broke a rule of the transport. */
  private fail(error: RpcErrorObject, why: string): void {
    if (this.closing) return;
    this.closing = true;
    this.host.log(`connection ${this.id} closed: ${why}`);
    this.queue.length = 0;
    endWith(this.socket, responseLine(null, { error }), 1000);
  }

  private received(chunk: Buffer): void {
    if (this.closing) return;
    if (!this.lines.push(chunk, (line) => this.queue.push(line))) return this.tooLong();
    if (this.queue.length && !this.running) void this.drain();
  }

  private tooLong(): void {
    this.fail({ code: RPC_ERRORS.LINE_TOO_LONG, message: `line longer than ${this.host.limits.maxLineBytes} bytes: closing` }, 'line too long');
  }

  private async drain(): Promise<void> {
    this.running = true;
    this.socket.pause();
    while (this.queue.length && !this.closing) await this.handle(this.queue.shift()!);
    this.running = false;
    if (this.inputEnded) this.inputDone();
    else if (!this.closing) this.socket.resume();
  }

  /** Everything the client sent is answered: end our side too. */
  private inputDone(): void {
    if (this.closing) return;
    this.closing = true;
    this.host.log(`connection ${this.id} closed: the client ended its side and was answered`);
    this.socket.end(() => this.socket.destroy());
  }

  private async handle(bytes: Buffer): Promise<void> {
    const text = bytes.toString('utf8');
    if (text.trim() === '') return;
    const parsed = parseLine(text);
    if ('error' in parsed) {
      this.answer(parsed.id, { error: parsed.error });
      return;
    }
    const req = parsed.request;
    let reply: { result: unknown } | { error: RpcErrorObject };
    try {
      reply = { result: (await this.host.methods.call(req.method, req.params, { peer: this.peer, connection: this })) ?? null };
    } catch (e) {
      // what failed is logged, never the params (a password may be among them); a bug with its stack
      if (isOverlayBootError(e)) this.host.log(`connection ${this.id}: ${req.method} failed: ${e.code}: ${e.describe()}`);
      else if (!(e instanceof RpcError)) this.host.log(`connection ${this.id}: ${req.method} failed: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      reply = { error: errorObject(e) };
    }
    // a notification (no id) is never answered, not even with an error
    if (req.id !== undefined) this.answer(req.id, reply);
  }

  private answer(id: RpcId, reply: { result: unknown } | { error: RpcErrorObject }): void {
    this.send(responseLine(id, reply));
  }
}
