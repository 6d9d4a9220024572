/**
 * The two configs a DU's operations write from its EE's template
 * ({@link composeDuConfig} with overrides):
 *
 * - the **DU subhost's** config: the template, NAME/BASE/UPPER/WORK/LIVE, `LAYERS=` the
 *   layer, and `START=` the template's START entries followed by `/etc/init.d/EU` for
 *   each AutoStart EU (or `none`), so the AutoStart EUs come up whenever the subhost
 *   boots, at host boot too;
 * - the **staging subhost's** config, for running preinst/postinst: the template with
 *   the new layer as UPPER (so what the scripts change lands in the layer), its own
 *   WORK and LIVE, no cables, no services and no premount (the built-in premount would
 *   write /etc/network/interfaces into the layer), privileged as the DU will be.
 */
import path from 'node:path';
import { isBangValue } from '../config/bang.js';
import { parseStart } from '../config/values.js';
import { OverlayBootError, isOverlayBootError } from '../errors.js';
import { composeDuConfig, type Template } from './templates.js';
import type { UnitPaths } from './unit.js';

/** The START entries of a template, `none` dropped. Throws PKG_TEMPLATE_INVALID for a `!` or bad START. */
export function templateStart(template: Template): string[] {
  const a = template.assignments.find((x) => x.variable === 'START');
  if (a === undefined) return [];
  const where = { file: template.file, line: a.line, variable: 'START' };
  if (isBangValue(a.value)) {
    throw new OverlayBootError('PKG_TEMPLATE_INVALID', 'START may not be a ! value in a template: overlay-pkg appends the DU\'s AutoStart services to it', {
      ...where, expected: 'service names or absolute paths, or none', found: a.value,
    });
  }
  try {
    return parseStart(a.value, where);
  } catch (e) {
    if (!isOverlayBootError(e)) throw e;
    throw new OverlayBootError('PKG_TEMPLATE_INVALID', e.message, { ...where, expected: e.expected, found: e.found, cause: e });
  }
}

/**
 * Whether a DU made from `template` runs privileged: `privileged` when the install said so
 * (`--privileged`, TR-181 InstallDU `Privileged`), else the template's PRIVILEGED (the shipped
 * templates say no; a template without it gets overlay-boot's default, yes). A `!` value is
 * PKG_TEMPLATE_INVALID: staging must know before the DU boots.
 */
export function duPrivileged(template: Template, privileged?: boolean): boolean {
  if (privileged !== undefined) return privileged;
  const a = template.assignments.find((x) => x.variable === 'PRIVILEGED');
  if (a === undefined) return true;
  if (isBangValue(a.value)) {
    throw new OverlayBootError('PKG_TEMPLATE_INVALID', 'PRIVILEGED may not be a ! value in a template: overlay-pkg stages a DU as it will run', {
      file: template.file, line: a.line, variable: 'PRIVILEGED', expected: 'yes or no', found: a.value,
    });
  }
  return a.value !== 'no';
}

/** The init script path of EU script `name` inside the subhost. */
export function initScriptPath(name: string): string {
  return `/etc/init.d/${name}`;
}

/** START of a DU: the template's entries, then each AutoStart EU's init script; `none` when empty. */
export function duStart(template: Template, autoStart: readonly string[]): string {
  const entries = [...templateStart(template), ...autoStart.map(initScriptPath)];
  return entries.length === 0 ? 'none' : entries.join(' ');
}

/** What the DU subhost's config needs besides the template. */
export interface DuConfigSpec {
  subhost: string;
  unit: UnitPaths;
  /** Absolute path of the DU's layer. */
  layer: string;
  /** Script names of the AutoStart EUs, in order. */
  autoStart: readonly string[];
  /** An OCI bundle's process (oci.ts duServices): the config's one RUN= line, instead of the template's. */
  run?: string;
  /** PRIVILEGED over the template's ({@link duPrivileged}); undefined keeps the template's. */
  privileged?: boolean;
}

/** The DU subhost's config text. */
export function composeUnitConfig(template: Template, spec: DuConfigSpec): string {
  return composeDuConfig(template, {
    name: spec.subhost,
    base: spec.unit.base,
    log: spec.unit.log,
    overrides: {
      LAYERS: spec.layer, START: duStart(template, spec.autoStart), ...(spec.run === undefined ? {} : { RUN: spec.run }),
      ...privilegedOverride(spec.privileged),
    },
  });
}

/** What the staging subhost's config needs besides the template. */
export interface StagingConfigSpec {
  /** The staging subhost's NAME. */
  name: string;
  unit: UnitPaths;
  /** The new layer: the staging subhost's UPPER. */
  layer: string;
  /** The staging directory, holding `work` and `live`. */
  dir: string;
  /** LOG of the staging subhost, unless the template names one. */
  log: string;
  /** PRIVILEGED over the template's, as the DU's ({@link duPrivileged}). */
  privileged?: boolean;
}

function privilegedOverride(privileged: boolean | undefined): Record<string, string> {
  return privileged === undefined ? {} : { PRIVILEGED: privileged ? 'yes' : 'no' };
}

/**
 * The staging subhost's config text. BASE is the DU's BASE, so that a relative LOWER of
 * the template (the `oci` template's `empty`) means what it means for the DU itself.
 */
export function composeStagingConfig(template: Template, spec: StagingConfigSpec): string {
  return composeDuConfig(template, {
    name: spec.name,
    base: spec.unit.base,
    log: spec.log,
    upper: spec.layer,
    work: path.join(spec.dir, 'work'),
    live: path.join(spec.dir, 'live'),
    // No cables, services, shares or premount: the scripts run alone, and nothing of the host is writable to them.
    overrides: { CABLES: null, START: 'none', PREMOUNT: 'true', RUN: null, SHARE: null, LAYERS: null, ...privilegedOverride(spec.privileged) },
  });
}
