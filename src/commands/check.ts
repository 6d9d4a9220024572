import { checkHookSafety, readConfig, type ReadConfigOptions } from '../config/index.js';
import type { SubhostConfig } from '../config/types.js';
import { isOverlayBootError } from '../errors.js';
import type { BootPlan } from '../plan/types.js';
import { findNative } from '../subhost/native.js';
import { previewIdRange } from '../subhost/idmap.js';
import { DEFAULT_STATE_DIR } from '../subhost/state.js';
import { planBoot } from './boot.js';

export interface CheckOptions extends Omit<ReadConfigOptions, 'action'> {
  /** Directory of runtime state records shown in the plan. Default `/run/overlay-boot`. */
  stateDir?: string;
}

export interface CheckResult {
  config: SubhostConfig;
  plan: BootPlan;
}

/**
 * Read and check a config and build its boot plan, changing nothing on the host
 * (`!` values do run, with ACTION=overlay-check, so helpers can tell). Works
 * without root where the files are readable. INIT is not run: the plan says so.
 */
export async function checkConfig(configPath: string, options: CheckOptions = {}): Promise<CheckResult> {
  const config = await readConfig(configPath, { ...options, action: 'overlay-check' });
  if (options.checkOwnership !== false) await checkHookSafety(config);
  let reaperPath = 'src/native/build/reaper (not built)';
  try {
    reaperPath = findNative().reaper;
  } catch (e) {
    if (!isOverlayBootError(e)) throw e;
  }
  const stateDir = options.stateDir ?? DEFAULT_STATE_DIR;
  const idmap = config.privileged ? undefined : previewIdRange(stateDir);
  const plan = await planBoot(config, { stateDir, reaperPath, runInit: false, idmap });
  return { config, plan };
}
