import { spawn, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { findNative, pinnedHelperError } from '../subhost/native.js';
import type { ProcessId } from '../subhost/process.js';
import { requireRoot } from './preflight.js';
import { runningPid1, type ListOptions } from './list.js';

export interface EnterOptions extends ListOptions {
  /** stdio for the command. Default 'inherit' (a terminal works). */
  stdio?: StdioOptions;
  /** Extra environment; TERM is kept from the caller. */
  env?: Record<string, string>;
  /**
   * Run in a session (and process group) of its own, so that what the command leaves
   * behind is not in ours and a timeout can end all of it. Default false.
   */
  session?: boolean;
  /**
   * Milliseconds the command may run; then its process group (with `session`, else the
   * command alone) is killed with SIGKILL and the status is 137. Default: no limit.
   */
  timeoutMs?: number;
}

/**
 * The subhost's own shell: /bin/bash when it has one, else /bin/sh. Only a guess made
 * from the host; `ovb-launch enter` without a command makes the same choice inside.
 */
export function subhostShell(pid1: number): string {
  return existsSync(`/proc/${pid1}/root/bin/bash`) ? '/bin/bash' : '/bin/sh';
}

/**
 * The argv that runs a command inside every namespace, the root and the working
 * directory of a running subhost (overlay-go): `ovb-launch enter` pins pid 1 with a
 * pidfd, checks its start time, joins its namespaces through that pidfd and forks
 * into the pid namespace, so the command is a process of the subhost. No command:
 * the subhost's shell (/bin/bash, else /bin/sh).
 */
export function enterArgv(launcher: string, pid1: ProcessId, command: string[]): string[] {
  return [launcher, 'enter', String(pid1.pid), String(pid1.start), '--', ...command];
}

/**
 * Run a command (default: the subhost's shell) inside a running subhost and
 * resolve with its exit status (128+N when killed by signal N). PROCESS_CHANGED
 * when pid 1 of the record is not that process any more (nothing was entered).
 */
export async function enter(name: string, command: string[] = [], options: EnterOptions = {}): Promise<number> {
  requireRoot('overlay-go');
  const pid1 = runningPid1(name, options);
  const argv = enterArgv(findNative().launcher, pid1, command);
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SHELL: '/bin/sh',
    ...(process.env.TERM ? { TERM: process.env.TERM } : {}), ...options.env,
  };
  const stdio = options.stdio ?? 'inherit';
  const std: StdioOptions = typeof stdio === 'string' ? [stdio, stdio, stdio] : stdio.slice(0, 3);
  // fd 3: ovb-launch's own `fail` line (closed before the command runs), so a refusal is told
  // apart from the command's exit status.
  const child = spawn(argv[0]!, argv.slice(1), { stdio: [...std, 'pipe'], env, detached: options.session === true });
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(options.session ? -child.pid : child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, options.timeoutMs);
  let status = '';
  child.stdio[3]?.on('data', (b: Buffer) => { status += b.toString(); });
  const statusDone = new Promise<void>((resolve) => {
    if (!child.stdio[3]) resolve();
    child.stdio[3]?.once('close', () => resolve());
  });
  // The terminal's ^C belongs to the command inside, not to us.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, signal) => resolve(c ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0)));
    });
    await statusDone;
    const refused = pinnedHelperError(status, 'enter', name);
    if (refused) throw refused;
    return code;
  } finally {
    clearTimeout(timer);
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  }
}
