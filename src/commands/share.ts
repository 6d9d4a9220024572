import path from 'node:path';
import { runCommand } from '../host/run.js';
import { OverlayBootError } from '../errors.js';
import { findNative } from '../subhost/native.js';
import { parseStatusLine } from '../subhost/launch.js';
import { requireRoot } from './preflight.js';
import { runningPid1, type ListOptions } from './list.js';

export interface ShareOptions extends ListOptions {
  /** Path inside the subhost. Default: the same path as on the host. */
  subhostPath?: string;
}

export interface ShareResult {
  name: string;
  hostPath: string;
  subhostPath: string;
}

async function runShareHelper(args: string[], name: string): Promise<void> {
  const r = await runCommand(findNative().launcher, args, { timeoutMs: 10000 });
  if (r.code !== 0) {
    const st = parseStatusLine(r.stderr.split('\n').find((l) => l.startsWith('fail ')) ?? '');
    const msg = st?.kind === 'fail' ? st.message : r.stderr.trim() || `exit ${r.code}`;
    throw new OverlayBootError('STEP_FAILED', `${args[0]} into ${name}: ${msg}`, { name, step: args[0] });
  }
}

/**
 * Bind-mount a host directory or file into a running subhost (overlay-share).
 * The mount exists only in the subhost's mount namespace, never in the host's.
 */
export async function share(hostPath: string, name: string, options: ShareOptions = {}): Promise<ShareResult> {
  requireRoot('overlay-share');
  const abs = path.resolve(hostPath);
  const subhostPath = path.posix.normalize(options.subhostPath ?? abs);
  if (!subhostPath.startsWith('/') || subhostPath === '/') {
    throw new OverlayBootError('USAGE', `the subhost path must be absolute and not /: ${subhostPath}`, { name, found: subhostPath });
  }
  const pid1 = runningPid1(name, options);
  await runShareHelper(['share', String(pid1), abs, subhostPath], name);
  return { name, hostPath: abs, subhostPath };
}

/** Undo share(): detach what is mounted on that path inside the subhost. */
export async function unshare(name: string, subhostPath: string, options: ListOptions = {}): Promise<void> {
  requireRoot('overlay-share');
  const pid1 = runningPid1(name, options);
  await runShareHelper(['unshare', String(pid1), path.posix.normalize(path.resolve(subhostPath))], name);
}
