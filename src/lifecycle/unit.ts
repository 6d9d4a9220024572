/**
 * The files of one DU, all on the state directory's filesystem (so that moving them into
 * the trash, or a staged layer into place, is a rename):
 *
 * ```
 * STATE/units/SUBHOST/
 *   SUBHOST.conf      the DU subhost's config (composed from the EE's template)
 *   SUBHOST.log       its LOG, unless the template names one
 *   base/             BASE: root/ (UPPER, the DU's runtime data), work/, live/, empty/
 *   layer-OPID/       the DU's layer, built by operation OPID (install or update)
 *   stage-OPID/       while operation OPID runs scripts: the staging subhost's work/ and live/
 * STATE/retained/SUBHOST/   UPPER kept by `remove --retain-data`
 * ```
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { ensureDir } from './durable.js';
import { stateLayout } from './layout.js';
import { MANAGED_DIRS } from './templates.js';

/** The paths of one DU's unit directory. */
export interface UnitPaths {
  /** `STATE/units/SUBHOST`. */
  dir: string;
  /** The DU subhost's config file. */
  config: string;
  /** The LOG the config gets when its template sets none. */
  log: string;
  /** BASE. */
  base: string;
  /** UPPER: BASE/root. */
  upper: string;
  /** Where UPPER is kept after `remove --retain-data`: `STATE/retained/SUBHOST`. */
  retained: string;
}

/** The paths of DU subhost `subhost` in state directory `stateDir`. */
export function unitPaths(stateDir: string, subhost: string): UnitPaths {
  const layout = stateLayout(stateDir);
  const dir = path.join(layout.units, subhost);
  const base = path.join(dir, 'base');
  return {
    dir,
    config: path.join(dir, `${subhost}.conf`),
    log: path.join(dir, `${subhost}.log`),
    base,
    upper: path.join(base, MANAGED_DIRS.upper),
    retained: path.join(retainedRoot(stateDir), subhost),
  };
}

/** `STATE/retained`: the UPPERs kept by `remove --retain-data`, one directory per subhost NAME. */
export function retainedRoot(stateDir: string): string {
  return path.join(stateLayout(stateDir).dir, 'retained');
}

/** The layer directory operation `opId` builds in unit `unit`. */
export function layerPath(unit: UnitPaths, opId: number): string {
  return path.join(unit.dir, `layer-${opId}`);
}

/** The staging subhost's directory of operation `opId` (its WORK and LIVE). */
export function stagingPath(unit: UnitPaths, opId: number): string {
  return path.join(unit.dir, `stage-${opId}`);
}

/**
 * Creates the unit directory and BASE with the directories of {@link MANAGED_DIRS}
 * (0755: UPPER's mode is the mode of the DU's `/`). An UPPER that is there already
 * (retained data put back) is kept.
 */
export function createUnitBase(unit: UnitPaths): void {
  ensureDir(path.dirname(unit.dir));
  mkdirSync(unit.dir, { mode: 0o700 });
  mkdirSync(unit.base, { mode: 0o755 });
  for (const d of Object.values(MANAGED_DIRS)) {
    const p = path.join(unit.base, d);
    if (!existsSync(p)) mkdirSync(p, { mode: 0o755 });
  }
}
