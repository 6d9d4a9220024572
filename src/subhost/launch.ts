import { existsSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { encodeBootProgram, encodeOps } from '../plan/program.js';
import type { NativeOp } from '../plan/types.js';
import { processId, type ProcessId } from './process.js';

/** A status line from ovb-launch (src/native/PROTOCOL.md). */
export type LaunchStatus =
  | { kind: 'step'; step: string; usec: number }
  | { kind: 'pid1'; pid: number }
  | { kind: 'fail'; step: string; errno: number; message: string }
  | { kind: 'ready'; status: number }
  | { kind: 'exit'; status: number }
  | { kind: 'torn'; ok: boolean };

export function parseStatusLine(line: string): LaunchStatus | undefined {
  const [kind, a = '', ...rest] = line.split(' ');
  switch (kind) {
    case 'step': return { kind, step: a, usec: Number(rest[0]) };
    case 'pid1': return { kind, pid: Number(a) };
    case 'fail': return { kind, step: a, errno: Number(rest[0]), message: rest.slice(1).join(' ') };
    case 'ready': return { kind, status: Number(a) };
    case 'exit': return { kind, status: Number(a) };
    case 'torn': return { kind, ok: a === 'ok' };
    default: return undefined;
  }
}

export interface LaunchHandle {
  monitor: ProcessId;
  /** Status lines as they arrive; ends when ovb-launch closes the status pipe. */
  statuses: AsyncIterable<LaunchStatus>;
  /**
   * Tell the monitor the boot is committed: it now owns the subhost alone. With
   * `stayAttached`, keep this process alive until the monitor exits (--foreground).
   */
  detach(stayAttached?: boolean): void;
  /** Close the control pipe without detaching: the monitor kills the subhost and tears down. */
  abandon(): void;
  /** Resolves with the monitor's exit code (only meaningful when attached). */
  exited: Promise<number | null>;
}

/**
 * Start the native monitor with a boot program. It runs in its own session so
 * that it outlives this process; its log output goes to logFd.
 */
export function launchSubhost(launcher: string, boot: NativeOp[], teardown: NativeOp[],
  logFd: number, env: NodeJS.ProcessEnv): LaunchHandle {
  // Hooks run in BASE, as the spec has every value but NAME and LOG evaluated there.
  // node:child_process is loaded here, not imported: --check never spawns and skips its ~4 ms.
  const child = process.getBuiltinModule('node:child_process').spawn(launcher, ['boot'], {
    stdio: ['pipe', logFd, logFd, 'pipe', 'pipe'], detached: true, env, cwd: env.BASE && existsSync(env.BASE) ? env.BASE : '/',
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  child.stdin!.end(encodeBootProgram(boot, teardown));
  const status = child.stdio[3] as Readable;
  const control = child.stdio[4] as Writable;
  control.on('error', () => { /* the monitor may be gone already */ });
  const monitor = processId(child.pid!) ?? { pid: child.pid!, start: 0 };
  let closed = false;
  const close = (word: string, keepRef = false) => {
    if (closed) return;
    closed = true;
    if (word) control.end(word); else control.end();
    status.destroy();
    if (!keepRef) child.unref();
  };
  return {
    monitor,
    statuses: readStatuses(status),
    detach: (stayAttached = false) => close('detach\n', stayAttached),
    // Kept referenced: the caller waits for the monitor's teardown before it returns.
    abandon: () => close('', true),
    exited,
  };
}

async function* readStatuses(stream: Readable): AsyncGenerator<LaunchStatus> {
  let buf = '';
  try {
    for await (const chunk of stream) {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const s = parseStatusLine(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (s) yield s;
      }
    }
  } catch {
    // The stream was destroyed after detach: nothing more to read.
  }
}

/** Run a teardown program now, with `ovb-launch teardown` (rollback, recovery). */
export async function runTeardown(launcher: string, ops: NativeOp[], logFd: number | 'ignore', env: NodeJS.ProcessEnv): Promise<number | null> {
  const child = process.getBuiltinModule('node:child_process').spawn(launcher, ['teardown'], { stdio: ['pipe', logFd, logFd], env });
  const done = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null));
  });
  child.stdin!.end(encodeOps(ops));
  return done;
}
