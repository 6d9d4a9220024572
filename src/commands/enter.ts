import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { spawn, type StdioOptions } from 'node:child_process';
import { requireRoot } from './preflight.js';
import { runningPid1, type ListOptions } from './list.js';

export interface EnterOptions extends ListOptions {
  /** stdio for the command. Default 'inherit' (a terminal works). */
  stdio?: StdioOptions;
  /** Extra environment; TERM is kept from the caller. */
  env?: Record<string, string>;
}

/** The subhost's own shell: /bin/bash when it has one, else /bin/sh. */
export function subhostShell(pid1: number): string {
  return existsSync(`/proc/${pid1}/root/bin/bash`) ? '/bin/bash' : '/bin/sh';
}

/**
 * The argv that runs a command inside every namespace, the root and the working
 * directory of a running subhost (overlay-go). nsenter forks into the pid
 * namespace, so the command is a process of the subhost, not of its pid 1.
 */
export function enterArgv(pid1: number, command: string[]): string[] {
  return ['nsenter', '-t', String(pid1), '-m', '-u', '-i', '-n', '-p', '-T', '-r', '-w', ...command];
}

/**
 * Run a command (default: the subhost's shell) inside a running subhost and
 * resolve with its exit status (128+N when killed by signal N).
 */
export async function enter(name: string, command: string[] = [], options: EnterOptions = {}): Promise<number> {
  requireRoot('overlay-go');
  const pid1 = runningPid1(name, options);
  const argv = enterArgv(pid1, command.length ? command : [subhostShell(pid1)]);
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', SHELL: '/bin/sh',
    ...(process.env.TERM ? { TERM: process.env.TERM } : {}), ...options.env,
  };
  const child = spawn(argv[0]!, argv.slice(1), { stdio: options.stdio ?? 'inherit', env });
  // The terminal's ^C belongs to the command inside, not to us.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  process.on('SIGQUIT', ignore);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] ?? 0 : 0)));
    });
  } finally {
    process.off('SIGINT', ignore);
    process.off('SIGQUIT', ignore);
  }
}
