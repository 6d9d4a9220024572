import { existsSync, mkdirSync, readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from './run.js';
import { OverlayBootError } from '../errors.js';
import type { HostAction } from '../plan/types.js';
import type { ProcessId } from '../subhost/process.js';
import { findNative } from '../subhost/native.js';
import { writeFastStopEntry } from '../subhost/state.js';

export interface HostActionContext {
  env: Record<string, string>;
  /** Create the state record (the caller knows its content). */
  createState: (file: string) => void;
  /** Milliseconds an external command may run. */
  timeoutMs: number;
  /** The running subhost's processes, for the actions of `when: 'running'` steps. */
  running?: { monitor: ProcessId; pid1: ProcessId };
}

/** What a host action found out that the rest of the boot needs. */
export interface HostActionResult {
  /** The upper directory printed by the UPPER program. */
  upper?: string;
}

const IFUP = ['/sbin/ifup', '/usr/sbin/ifup'];

export async function runHostAction(action: HostAction, ctx: HostActionContext): Promise<HostActionResult> {
  switch (action.kind) {
    case 'state-record':
      ctx.createState(action.path);
      return {};
    case 'ip': {
      const args = action.netns ? ['-n', action.netns, '-batch', '-'] : ['-batch', '-'];
      const r = await runCommand('ip', args, { input: action.commands.join('\n') + '\n', timeoutMs: ctx.timeoutMs });
      if (r.code !== 0) {
        throw new Error(`ip ${action.netns ? `-n ${action.netns} ` : ''}${action.commands.join('; ')}: ${firstLine(r.stderr) || (r.timedOut ? 'timed out' : `exit ${r.code}`)}`);
      }
      return {};
    }
    case 'ifup': {
      // SPEC: ifup is attempted (host-side config in /etc/network/interfaces), else just link up.
      const ifup = IFUP.find((p) => existsSync(p));
      if (ifup) {
        const r = await runCommand(ifup, [action.iface], { timeoutMs: ctx.timeoutMs });
        if (r.code === 0) return {};
      }
      const r = await runCommand('ip', ['link', 'set', action.iface, 'up'], { timeoutMs: ctx.timeoutMs });
      if (r.code !== 0) throw new Error(`ip link set ${action.iface} up: ${firstLine(r.stderr)}`);
      return {};
    }
    case 'cgroup':
      createCgroup(action.path);
      return {};
    case 'cgroup-set':
      writeFileSync(action.path, action.value);
      return {};
    case 'userns': {
      const launcher = findNative().launcher;
      const r = await runCommand(launcher, ['userns', action.name, action.file, String(action.base), String(action.count)], { timeoutMs: ctx.timeoutMs });
      if (r.code !== 0) throw new Error(`ovb-launch userns: ${firstLine(r.stderr).replace(/^fail \S+ \d+ /, '') || `exit ${r.code}`}`);
      return {};
    }
    case 'upper-setup':
      return { upper: await runUpperSetup(action.program, ctx) };
    case 'pidfile':
      writeFileSync(action.path, `${running(action, ctx).monitor.pid}\n`);
      return {};
    case 'fast-stop': {
      const { monitor, pid1 } = running(action, ctx);
      writeFastStopEntry(action.path, { config: realpathSync(action.config), name: action.name, pid1, monitor, stopTimeout: action.stopTimeout });
      return {};
    }
  }
}

function running(action: HostAction, ctx: HostActionContext): { monitor: ProcessId; pid1: ProcessId } {
  if (!ctx.running) throw new OverlayBootError('INTERNAL', `host action ${action.kind} needs the running subhost`);
  return ctx.running;
}

function createCgroup(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // An empty cgroup left by a crash is harmless to reuse; a populated one is someone's.
    const procs = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim();
    if (procs) {
      throw new OverlayBootError('NAME_IN_USE', `cgroup ${dir} exists and holds processes ${procs.split('\n').join(' ')}`, { found: dir });
    }
  }
}

async function runUpperSetup(program: string, ctx: HostActionContext): Promise<string> {
  const { execa } = await import('execa');
  const r = await execa(program, [], {
    env: { ...ctx.env, ACTION: 'setup' }, cwd: ctx.env.BASE, reject: false, timeout: ctx.timeoutMs,
    detached: true, forceKillAfterDelay: 1000, stdin: 'ignore',
  });
  const where = { variable: 'UPPER', found: program };
  if (r.timedOut) throw new OverlayBootError('UPPER_PROGRAM_FAILED', `UPPER program ${program} did not finish in ${ctx.timeoutMs} ms`, where);
  if (r.exitCode !== 0) {
    throw new OverlayBootError('UPPER_PROGRAM_FAILED', `UPPER program ${program} exited with status ${r.exitCode}${r.stderr ? `: ${firstLine(r.stderr)}` : ''}`, where);
  }
  const upper = firstLine(r.stdout);
  if (!upper) throw new OverlayBootError('UPPER_PROGRAM_FAILED', `UPPER program ${program} printed no directory`, where);
  const resolved = path.resolve(ctx.env.BASE ?? '/', upper);
  let isDir = false;
  try {
    isDir = statSync(resolved).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new OverlayBootError('UPPER_PROGRAM_FAILED', `UPPER program ${program} printed ${upper}, which is not a directory`, where);
  return resolved;
}

export function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n').find((l) => l.trim() !== '')?.trim() ?? '';
}
