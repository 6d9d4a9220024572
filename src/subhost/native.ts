import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OverlayBootError } from '../errors.js';
import { runCommand } from '../host/run.js';
import { parseStatusLine } from './launch.js';
import type { ProcessId } from './process.js';

export interface NativePaths {
  launcher: string;
  reaper: string;
}

/**
 * The native helpers built at install time (src/native/build). OVERLAY_BOOT_NATIVE_DIR
 * overrides the directory, for packagers who install them elsewhere.
 */
export function findNative(env: NodeJS.ProcessEnv = process.env): NativePaths {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const dir = env.OVERLAY_BOOT_NATIVE_DIR ?? path.resolve(here, '../../src/native/build');
  const paths = { launcher: path.join(dir, 'ovb-launch'), reaper: path.join(dir, 'reaper') };
  for (const p of Object.values(paths)) {
    try {
      accessSync(p, constants.X_OK);
    } catch (cause) {
      throw new OverlayBootError('NATIVE_MISSING',
        `${p} is missing: build it with 'make -C ${path.resolve(here, '../../src/native')}' (needs gcc; musl-tools for small binaries)`,
        { cause, found: p });
    }
  }
  return paths;
}

/**
 * The coded error for the `fail` line of `ovb-launch share|unshare|enter`: PROCESS_CHANGED
 * when the pid no longer names the process of the record (checked after pinning it with a
 * pidfd, so nothing was entered or mounted), else STEP_FAILED with ovb-launch's message.
 */
export function pinnedHelperError(output: string, what: string, name: string): OverlayBootError | undefined {
  const st = parseStatusLine(output.split('\n').find((l) => l.startsWith('fail ')) ?? '');
  if (st?.kind !== 'fail') return undefined;
  const changed = st.message.startsWith('PROCESS_CHANGED: ');
  return new OverlayBootError(changed ? 'PROCESS_CHANGED' : 'STEP_FAILED',
    `${what} ${name}: ${changed ? st.message.slice('PROCESS_CHANGED: '.length) : st.message}`, { name, step: what });
}

/**
 * Signal a process named by pid and start time through `ovb-launch kill`, which pins
 * it with a pidfd before checking the start time (Node.js cannot hold a pidfd): a pid
 * reused since the record was written is never signalled. false when that process is gone.
 */
export async function signalPinned(launcher: string, id: ProcessId, signal: 'SIGTERM' | 'SIGKILL'): Promise<boolean> {
  const r = await runCommand(launcher, ['kill', String(id.pid), String(id.start), signal === 'SIGTERM' ? '15' : '9'], { timeoutMs: 10000 });
  return r.code === 0;
}
