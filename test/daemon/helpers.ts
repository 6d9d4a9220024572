// What the daemon tests share: a daemon of the library on a temporary socket and state
// directory, and a plain JSON-RPC client written with node:net (not the library's).
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Test } from 'tap';
import { createPkgDaemon, type CreatePkgDaemonOptions } from '../../src/daemon/index.js';
import type { PkgDaemon } from '../../src/daemon/server.js';
import { defaultPkgConfig, type PkgConfig } from '../../src/package/config.js';

/** A temporary directory (0755, so that `nobody` can reach a socket in it), removed when `t` ends. */
export function tempDir(t: Test, prefix = 'ovb-pkgd-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A configuration whose state, templates and socket are in `dir`. */
export function testConfig(dir: string): PkgConfig {
  const config = defaultPkgConfig();
  config.paths.state = path.join(dir, 'state');
  config.paths.templates = path.join(dir, 'templates');
  config.paths.socket = path.join(dir, 'run', 'pkgd.sock');
  mkdirSync(config.paths.templates, { recursive: true });
  return config;
}

export interface TestDaemon {
  daemon: PkgDaemon;
  config: PkgConfig;
  dir: string;
  socket: string;
  logs: string[];
}

/** A listening daemon in a fresh directory (or `dir`), closed when `t` ends. */
export async function startDaemon(t: Test, opts: Partial<CreatePkgDaemonOptions> & { dir?: string } = {}): Promise<TestDaemon> {
  const dir = opts.dir ?? tempDir(t);
  const config = opts.config ?? testConfig(dir);
  const logs: string[] = [];
  const daemon = createPkgDaemon({ ...opts, config, log: (l) => logs.push(l) });
  t.teardown(() => daemon.close());
  await daemon.listen();
  return { daemon, config, dir, socket: daemon.socketPath, logs };
}

/** Polls `cond` every 10 ms, at most `ms` in all; false when it never held. */
export async function until(cond: () => boolean, ms = 10000): Promise<boolean> {
  for (let waited = 0; waited < ms; waited += 10) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

/** A message received: a response or a notification, parsed; `raw` when the line was not JSON. */
export type Message = Record<string, unknown> & { id?: unknown; method?: string; result?: unknown; error?: { code: number; message: string; data?: unknown } };

/** A JSON-RPC client over node:net: one object per line. */
export class Client {
  readonly socket: net.Socket;
  readonly received: Message[] = [];
  closed = false;
  private buf = '';
  private nextId = 1;
  private waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.buf += d;
      for (let nl = this.buf.indexOf('\n'); nl !== -1; nl = this.buf.indexOf('\n')) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        let m: Message;
        try {
          m = JSON.parse(line) as Message;
        } catch {
          m = { raw: line };
        }
        this.received.push(m);
      }
      this.wake();
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(t: Test, file: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(file);
      s.once('connect', () => resolve(new Client(s)));
      s.once('error', reject);
      t.teardown(() => s.destroy());
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits (at most `ms`) until a message matching `pred` arrived or the connection closed; returns it. */
  async waitFor(pred: (m: Message) => boolean, ms = 10000): Promise<Message | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.received.find(pred);
      if (m || this.closed) return m;
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
    }
  }

  /** Waits until the daemon closed the connection. */
  async waitClosed(ms = 10000): Promise<boolean> {
    await this.waitFor(() => false, ms);
    return this.closed;
  }

  /** Sends raw text. */
  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends a request and returns its response. */
  async call(method: string, params?: unknown): Promise<Message> {
    const id = this.nextId++;
    this.send(JSON.stringify({ jsonrpc: '2.0', method, ...(params === undefined ? {} : { params }), id }) + '\n');
    const m = await this.waitFor((x) => x.id === id);
    if (!m) throw new Error(`no response to ${method} (closed: ${this.closed})`);
    return m;
  }

  end(): void {
    this.socket.destroy();
  }
}

/** Runs a command without blocking the daemon in this process; killed (by pid) at `t`'s end or after `timeoutMs`. */
export function runChild(t: Test, cmd: string, args: string[], timeoutMs = 30000): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    t.teardown(() => { if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Writes DIR/client.mjs: connects to argv[2], sends `du.list`, closes after the first
 * line (or when the daemon closes), prints `{"uid":..., "out": what it received}`.
 */
export function writeClientScript(dir: string): string {
  const script = path.join(dir, 'client.mjs');
  writeFileSync(script, `import net from 'node:net';
const s = net.connect(process.argv[2]);
let out = '';
s.on('connect', () => s.write('{"jsonrpc":"2.0","method":"du.list","id":1}\\n'));
s.on('data', (d) => { out += d; if (out.includes('\\n')) s.end(); });
s.on('error', (e) => { out += 'ERROR ' + e.code; });
s.on('close', () => process.stdout.write(JSON.stringify({ uid: process.getuid(), out })));
`);
  return script;
}
