import path from 'node:path';
import { isDeviceNode } from '../config/shares.js';
import { runCommand } from '../host/run.js';
import { OverlayBootError } from '../errors.js';
import { findNative, pinnedHelperError } from '../subhost/native.js';
import type { ProcessId } from '../subhost/process.js';
import { DEFAULT_STATE_DIR, readStateRecord, statePath } from '../subhost/state.js';
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

/** ovb-launch share|unshare: pid 1 pinned by pidfd and start time, the path resolved inside its root. */
async function runShareHelper(what: 'share' | 'unshare', pid1: ProcessId, paths: string[], name: string): Promise<void> {
  const args = [what, String(pid1.pid), String(pid1.start), ...paths];
  const r = await runCommand(findNative().launcher, args, { timeoutMs: 10000 });
  if (r.code !== 0) {
    throw pinnedHelperError(r.stderr, `${what} into`, name)
      ?? new OverlayBootError('STEP_FAILED', `${what} into ${name}: ${r.stderr.trim() || `exit ${r.code}`}`, { name, step: what });
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
  if (isDeviceNode(abs) && readStateRecord(statePath(name, options.stateDir ?? DEFAULT_STATE_DIR))?.idmap) {
    throw new OverlayBootError('UNPRIV_UNSUPPORTED', `${abs} is a device node, which overlay-share does not hand to an unprivileged subhost (PRIVILEGED=no)`, {
      name, found: abs, expected: 'a directory or regular file',
    });
  }
  await runShareHelper('share', pid1, [abs, subhostPath], name);
  return { name, hostPath: abs, subhostPath };
}

/** Undo share(): detach what is mounted on that path inside the subhost. */
export async function unshare(name: string, subhostPath: string, options: ListOptions = {}): Promise<void> {
  requireRoot('overlay-share');
  const pid1 = runningPid1(name, options);
  await runShareHelper('unshare', pid1, [path.posix.normalize(path.resolve(subhostPath))], name);
}
