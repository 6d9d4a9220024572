/**
 * The two kinds of package whose install means something else (KerOS, LIFECYCLE.md):
 *
 * - a **removal package**: Package `NAME-remove` with `Tags: remove`. Installing it
 *   uninstalls the DU of package NAME (for delivery channels that can only hand the
 *   device a file); it installs nothing itself.
 * - a **hotfix**: `Tags: hotfix` with `Depends` on an exact version (`NAME (= VERSION)`)
 *   of another package. It installs as any package does, but only while a DU of NAME is
 *   installed at exactly VERSION (else PKG_HOTFIX_MISMATCH): a hotfix for another
 *   version would patch what is not there.
 *
 * install calls {@link classifyPackage} on the verified package: a removal package is
 * turned into an uninstall of {@link removalTarget}'s DU, a hotfix is checked with
 * {@link checkHotfix} under the lock against the installed DUs.
 */
import { OverlayBootError } from '../errors.js';
import { controlField } from '../package/control.js';
import type { ControlFields } from '../package/types.js';
import { compareVersions } from '../package/version.js';
import type { DuRecord } from './store.js';

/** What installing a package means. */
export type PackageClass =
  | { kind: 'plain' }
  | { kind: 'remove'; /** The package name whose DU is removed. */ target: string }
  | { kind: 'hotfix'; /** The exact versions it needs installed, by package name. */ needs: ExactDependency[] };

/** One `NAME (= VERSION)` of a Depends field. */
export interface ExactDependency {
  name: string;
  version: string;
}

/** The package's Tags (comma- or blank-separated, as Debian's and opkg's Tags are written). */
export function packageTags(control: ControlFields): string[] {
  return (controlField(control.fields, 'Tags') ?? '').split(/[\s,]+/).filter(Boolean);
}

/** The `NAME (= VERSION)` entries of Depends (alternatives `a | b` are not exact and are skipped). */
export function exactDependencies(control: ControlFields): ExactDependency[] {
  const out: ExactDependency[] = [];
  for (const entry of (controlField(control.fields, 'Depends') ?? '').split(',')) {
    if (entry.includes('|')) continue;
    const m = /^\s*([a-z0-9][a-z0-9.+-]*)(?::[a-z0-9-]+)?\s*\(\s*=\s*([^\s)]+)\s*\)\s*$/.exec(entry);
    if (m) out.push({ name: m[1]!, version: m[2]! });
  }
  return out;
}

/**
 * What installing the package with this control means (see the module's description).
 * Throws PKG_BAD_CONTROL for `Tags: remove` on a package not named `NAME-remove`, and
 * for `Tags: hotfix` without an exact-version Depends, naming the field.
 */
export function classifyPackage(control: ControlFields, file?: string): PackageClass {
  const tags = packageTags(control);
  if (tags.includes('remove')) {
    const m = /^(.+)-remove$/.exec(control.package);
    if (!m) {
      throw new OverlayBootError('PKG_BAD_CONTROL', `${control.package} has Tags: remove but is not named NAME-remove: which package it removes is unknown`, {
        file, member: 'control', variable: 'Package', expected: 'NAME-remove', found: control.package,
      });
    }
    return { kind: 'remove', target: m[1]! };
  }
  if (tags.includes('hotfix')) {
    const needs = exactDependencies(control);
    if (needs.length === 0) {
      throw new OverlayBootError('PKG_BAD_CONTROL', `${control.package} has Tags: hotfix but its Depends names no exact version (NAME (= VERSION)) of the package it fixes`, {
        file, member: 'control', variable: 'Depends', expected: 'NAME (= VERSION)', found: controlField(control.fields, 'Depends') ?? '',
      });
    }
    return { kind: 'hotfix', needs };
  }
  return { kind: 'plain' };
}

/** The package name a removal package removes, or undefined when it is not one. */
export function removalTarget(control: ControlFields, file?: string): string | undefined {
  const c = classifyPackage(control, file);
  return c.kind === 'remove' ? c.target : undefined;
}

/**
 * The DU a removal package for `target` removes: the one DU of that package, or among
 * several the one in EE `ee` (install's `--ee`) or with subhost NAME `name` (`--name`).
 * Throws PKG_UNKNOWN_DU (9028) when none is installed, USAGE when several fit.
 */
export function removalDU(records: readonly DuRecord[], target: string, opts: { ee?: string; name?: string } = {}): DuRecord {
  let fit = records.filter((r) => r.Name === target);
  if (opts.name !== undefined) fit = fit.filter((r) => r.Subhost === opts.name);
  if (fit.length > 1 && opts.ee !== undefined) fit = fit.filter((r) => r.ExecutionEnvRef === opts.ee);
  if (fit.length === 1) return fit[0]!;
  if (fit.length === 0) {
    throw new OverlayBootError('PKG_UNKNOWN_DU', `the removal package ${target}-remove removes ${target}, and no DU of ${target} is installed${opts.name ? ` as ${opts.name}` : ''}`, {
      name: opts.name, found: target,
    });
  }
  throw new OverlayBootError('USAGE', `${fit.length} DUs of ${target} are installed (${fit.map((r) => r.Subhost).join(', ')}): say which with --name`, { found: target });
}

/**
 * Refuses a hotfix (PKG_HOTFIX_MISMATCH) unless, for every exact dependency, a DU of that
 * package is installed at exactly that version (dpkg's version equality: `1.0` is `1.00`).
 */
export function checkHotfix(needs: readonly ExactDependency[], records: readonly DuRecord[], pkg: string, file?: string): void {
  for (const need of needs) {
    const installed = records.filter((r) => r.Name === need.name);
    if (installed.some((r) => compareVersions(r.Version, need.version) === 0)) continue;
    const found = installed.length === 0 ? 'not installed' : installed.map((r) => `${r.Version} (${r.Subhost})`).join(', ');
    throw new OverlayBootError('PKG_HOTFIX_MISMATCH', `hotfix ${pkg} is for ${need.name} ${need.version}; installed: ${found}`, {
      file, member: 'control', variable: 'Depends', expected: `${need.name} ${need.version}`, found,
    });
  }
}
