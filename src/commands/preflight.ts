import { renameSync } from 'node:fs';
import type { SubhostConfig } from '../config/types.js';
import { OverlayBootError } from '../errors.js';
import { isBridge, linkExists, mountPoints, netnsExists } from '../host/links.js';
import { runTeardown } from '../subhost/launch.js';
import { liveness, readStateRecord, removeOrphanTemps, statePath } from '../subhost/state.js';

export function requireRoot(what: string): void {
  if (process.getuid && process.getuid() !== 0) {
    throw new OverlayBootError('NOT_ROOT', `${what} needs root (it creates namespaces, mounts and interfaces)`);
  }
}

/**
 * Read-only checks of the host before the first change, so that the common
 * failures (a running subhost, a missing bridge, a name in use) change nothing.
 */
export function checkHostForBoot(config: SubhostConfig, stateDir: string): void {
  try {
    checkHost(config, stateDir);
  } catch (e) {
    // A boot racing us may have taken NAME between our reads: say so, not "in use".
    const record = readStateRecord(statePath(config.name, stateDir));
    if (record && liveness(record) !== 'stale' && (e as OverlayBootError).code !== 'ALREADY_RUNNING') {
      throw new OverlayBootError('ALREADY_RUNNING', `${config.name} is already running (${record.phase}, config ${record.config})`,
        { file: config.file, name: config.name, variable: 'NAME', line: config.origins.NAME?.line });
    }
    throw e;
  }
}

function checkHost(config: SubhostConfig, stateDir: string): void {
  const where = (variable: string) => ({ file: config.file, line: config.origins[variable as 'NAME']?.line, variable, name: config.name });
  const record = readStateRecord(statePath(config.name, stateDir));
  if (record && liveness(record) !== 'stale') {
    const pid = record.pid1?.pid ?? record.boot?.pid;
    throw new OverlayBootError('ALREADY_RUNNING', `${config.name} is already running (${record.phase}, pid ${pid}, config ${record.config})`, where('NAME'));
  }
  if (!record && netnsExists(config.name)) {
    throw new OverlayBootError('NAME_IN_USE', `network namespace ${config.name} already exists and is not one of ours`, where('NAME'));
  }
  for (const cable of config.cables) {
    if (cable.bridge && !isBridge(cable.bridge)) {
      throw new OverlayBootError('BRIDGE_MISSING', `bridge ${cable.bridge} (cable ${cable.spec}) does not exist`, { ...where('CABLES'), found: cable.bridge });
    }
    if (!record && linkExists(cable.hostIf)) {
      throw new OverlayBootError('NAME_IN_USE', `interface ${cable.hostIf} already exists on the host`, { ...where('CABLES'), found: cable.hostIf });
    }
  }
  if (config.rootVariant !== 'premounted' && mountPoints().has(config.live)) {
    throw new OverlayBootError('LIVE_BUSY', `${config.live} already has a mount on it`, { ...where('LIVE'), found: config.live });
  }
}

/**
 * A record whose processes are all gone was left by a crash: undo what it
 * recorded. Renaming it first means only one of several racing boots does so.
 */
export async function recoverStaleRecord(name: string, stateDir: string, launcher: string, logFd: number | 'ignore'): Promise<boolean> {
  const file = statePath(name, stateDir);
  removeOrphanTemps(name, stateDir);
  const record = readStateRecord(file);
  if (!record || liveness(record) !== 'stale') return false;
  const claimed = `${file}.stale.${process.pid}`;
  try {
    renameSync(file, claimed);
  } catch {
    return false;
  }
  await runTeardown(launcher, [...record.teardown, { op: 'unlink', args: [claimed] }], logFd, process.env);
  return true;
}
