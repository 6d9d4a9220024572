/**
 * Execution environments (EEs): templates a DU's subhost is made from. A template is a
 * file `NAME.conf` holding a subhost config fragment (overlay-boot.conf(5) syntax): any
 * variable except NAME, BASE, UPPER, WORK and LIVE, which the manager fills for each DU.
 * Templates are looked up in the configured directory (`[paths] templates`, default
 * /etc/overlay-boot/templates) first, then among those shipped in the package's
 * `templates/` directory; a custom template shadows a shipped one of the same name.
 *
 * An EE is disabled (TR-181 `Enable` false; installing into it is fault 9024) while a
 * file `NAME.disabled` exists in the configured directory: an administrator can disable
 * a shipped EE without editing a shipped file.
 *
 * A relative LOWER is resolved against the DU's BASE, where the manager creates the
 * directories of {@link MANAGED_DIRS}, among them an empty directory `empty`: the `oci`
 * template's `LOWER=empty` gives a root made of the DU's layer alone.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isBangValue } from '../config/bang.js';
import { parseConfigText, readConfigFile } from '../config/parse.js';
import { readConfig } from '../config/read.js';
import { checkConfigSafety } from '../config/safety.js';
import type { Assignment, Warning } from '../config/types.js';
import { MAX_NAME_LENGTH } from '../config/values.js';
import { OverlayBootError, isOverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';

/** Variables the manager sets for every DU; a template setting one is PKG_TEMPLATE_INVALID. */
export const MANAGER_VARIABLES: readonly string[] = ['NAME', 'BASE', 'UPPER', 'WORK', 'LIVE'];

/** Directories the manager creates in every DU's BASE: UPPER, WORK, LIVE, and the empty lower. */
export const MANAGED_DIRS = { upper: 'root', work: 'work', live: 'live', empty: 'empty' } as const;

/** The EE a DU goes into when none is named. */
export const DEFAULT_EE = 'bee';

/** TR-181 ExecEnv.Type of every EE here. */
export const EE_TYPE = 'overlay-boot subhost';

const TEMPLATE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The templates shipped with the package (the repository's `templates/`). */
export function shippedTemplatesDir(): string {
  // src/lifecycle/ and dist/lifecycle/ both sit two levels below the package root
  return fileURLToPath(new URL('../../templates/', import.meta.url));
}

/** Where templates are looked up. */
export interface TemplateDirs {
  /** The configured directory (`[paths] templates`). */
  custom: string;
  /** The shipped templates. Default: {@link shippedTemplatesDir}. */
  shipped?: string;
}

/** A template found on disk. */
export interface TemplateRef {
  name: string;
  file: string;
  source: 'custom' | 'shipped';
}

/** A template read and checked for the variables the manager fills. */
export interface Template extends TemplateRef {
  /** The file's text, as the DU's config starts with it. */
  text: string;
  assignments: Assignment[];
  /** Unknown variables and repeated ones (see overlay-boot.conf(5)). */
  warnings: Warning[];
}

function namesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.conf') && TEMPLATE_NAME.test(f.slice(0, -'.conf'.length)))
      .map((f) => f.slice(0, -'.conf'.length));
  } catch {
    return [];
  }
}

/** Every template, custom ones first then shipped ones not shadowed, each group sorted by name. */
export function listTemplates(dirs: TemplateDirs): TemplateRef[] {
  const shipped = dirs.shipped ?? shippedTemplatesDir();
  const custom = namesIn(dirs.custom).sort();
  const seen = new Set(custom);
  return [
    ...custom.map((name) => ({ name, file: path.join(dirs.custom, `${name}.conf`), source: 'custom' as const })),
    ...namesIn(shipped).sort().filter((n) => !seen.has(n)).map((name) => ({ name, file: path.join(shipped, `${name}.conf`), source: 'shipped' as const })),
  ];
}

/** The template of EE `name`. Throws PKG_TEMPLATE_UNKNOWN (fault 9023) when there is none. */
export function findTemplate(name: string, dirs: TemplateDirs): TemplateRef {
  if (TEMPLATE_NAME.test(name)) {
    const found = listTemplates(dirs).find((t) => t.name === name);
    if (found) return found;
  }
  throw new OverlayBootError('PKG_TEMPLATE_UNKNOWN', `no execution environment ${JSON.stringify(name)} in ${dirs.custom} or the shipped templates`, {
    name, expected: listTemplates(dirs).map((t) => t.name).join(', '), found: name,
  });
}

/** Whether EE `name` is enabled: no `NAME.disabled` in the configured directory. */
export function isEnabled(name: string, dirs: TemplateDirs): boolean {
  return !existsSync(path.join(dirs.custom, `${name}.disabled`));
}

/**
 * Reads a template: the file must be safe as a config is (root's, not writable by
 * others: its `!` values will run as root when the DU boots; CONFIG_UNSAFE otherwise)
 * and must not set a variable the manager fills (PKG_TEMPLATE_INVALID naming file,
 * line and variable). Config syntax errors keep their CONFIG_ codes.
 */
export async function loadTemplate(ref: TemplateRef): Promise<Template> {
  const buf = await readConfigFile(ref.file);
  await checkConfigSafety(ref.file);
  const parsed = parseConfigText(buf, ref.file);
  for (const a of parsed.assignments) {
    if (MANAGER_VARIABLES.includes(a.variable)) {
      throw new OverlayBootError('PKG_TEMPLATE_INVALID', `${a.variable} is set by overlay-pkg for each DU; a template may not set it`, {
        file: ref.file, line: a.line, variable: a.variable, expected: `any variable but ${MANAGER_VARIABLES.join(', ')}`, found: a.variable,
      });
    }
  }
  return { ...ref, text: buf.toString('utf8'), assignments: parsed.assignments, warnings: parsed.warnings };
}

/** What the manager fills in a DU's config. */
export interface DuConfigValues {
  /** The DU's subhost NAME. */
  name: string;
  /** The DU's BASE, absolute, holding the directories of {@link MANAGED_DIRS}. */
  base: string;
  /** LOG, used only when the template sets none. */
  log?: string;
  /** UPPER, WORK and LIVE, relative to BASE or absolute. Default: those of {@link MANAGED_DIRS}. */
  upper?: string;
  work?: string;
  live?: string;
  /**
   * Variables the manager sets over the template's (START, LAYERS, ...), written after
   * the filled ones; `null` drops the variable (its default applies). A template line
   * setting one of them becomes a comment: the first assignment in a config counts,
   * and a comment keeps the line numbers.
   */
  overrides?: Record<string, string | null>;
}

/**
 * The text of a DU's subhost config: the template's lines (so its line numbers stay
 * valid in messages; those setting an overridden variable commented out), then the
 * variables the manager fills, then the overrides.
 */
export function composeDuConfig(template: Template, values: DuConfigValues): string {
  const overrides = Object.entries(values.overrides ?? {});
  const overridden = new Set(template.assignments.filter((a) => values.overrides?.[a.variable] !== undefined).map((a) => a.line));
  const text = overridden.size === 0 ? template.text
    : template.text.split('\n').map((l, i) => (overridden.has(i + 1) ? `# (overridden below) ${l}` : l)).join('\n');
  const lines = [
    '',
    `# filled by overlay-pkg from execution environment ${template.name} (${template.file})`,
    `NAME=${values.name}`,
    `BASE=${values.base}`,
    `UPPER=${values.upper ?? MANAGED_DIRS.upper}`,
    `WORK=${values.work ?? MANAGED_DIRS.work}`,
    `LIVE=${values.live ?? MANAGED_DIRS.live}`,
  ];
  if (values.log !== undefined && !template.assignments.some((a) => a.variable === 'LOG')) lines.push(`LOG=${values.log}`);
  for (const [variable, value] of overrides) if (value !== null) lines.push(`${variable}=${value}`);
  const body = text.endsWith('\n') || text === '' ? text : `${text}\n`;
  return `${body}${lines.join('\n')}\n`;
}

/** Rewrites errors about the composed file so that they name the template instead. */
function renamed(e: OverlayBootError, from: string, to: string): OverlayBootError {
  const file = e.file === from ? to : e.file;
  return new OverlayBootError(e.code, e.message.split(from).join(to), {
    file, line: e.line, variable: e.variable, step: e.step, name: e.subhost, expected: e.expected, found: e.found,
    member: e.member, cause: e.cause, errors: e.errors?.map((x) => renamed(x, from, to)),
  });
}

/**
 * Checks a template as the config reader checks a config, without changing the host:
 * the template is composed with a placeholder NAME (of the longest length, so that
 * interface names are checked at their longest) and a placeholder BASE in a temporary
 * directory, and read with readConfig. `!` values are not run here (they run when the
 * DU boots): their lines are blanked, so the variable's default is checked instead.
 * Returns the reader's warnings; throws PKG_TEMPLATE_INVALID naming the template and,
 * in `errors`, what the reader found.
 */
export async function checkTemplate(template: Template): Promise<Warning[]> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'ovb-ee-check-'));
  try {
    const base = path.join(scratch, 'base');
    for (const d of Object.values(MANAGED_DIRS)) mkdirSync(path.join(base, d), { recursive: true });
    const bang = new Set(template.assignments.filter((a) => isBangValue(a.value)).map((a) => a.line));
    const text = template.text.split('\n').map((l, i) => (bang.has(i + 1) ? '# (a ! value, run at boot)' : l)).join('\n');
    const conf = path.join(scratch, `${template.name}.conf`);
    writeFileSync(conf, composeDuConfig({ ...template, text }, { name: 'x'.repeat(MAX_NAME_LENGTH), base, log: path.join(scratch, 'log') }));
    try {
      const config = await readConfig(conf, { checkOwnership: false, action: 'overlay-pkg', cwd: scratch, env: {} });
      return config.warnings;
    } catch (e) {
      if (!isOverlayBootError(e)) throw e;
      const found = renamed(e, conf, template.file);
      throw new OverlayBootError('PKG_TEMPLATE_INVALID', `does not check: ${found.describe()}`, {
        file: template.file, line: found.line, variable: found.variable, errors: [found], cause: found,
      });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** One EE with its TR-181 `Device.SoftwareModules.ExecEnv.{i}.` parameters. */
export interface ExecEnv {
  Name: string;
  Type: string;
  /** `Up` when the template reads and checks, else `Error` (see `reason`). */
  Status: 'Up' | 'Error';
  Enable: boolean;
  Vendor: string;
  /** overlay-boot's version. */
  Version: string;
  /** KiB free for DUs: on the state directory's filesystem. */
  AvailableDiskSpace: number;
  /** KiB: the host's MemAvailable. */
  AvailableMemory: number;
  /** The template file. */
  Source: string;
  /** `custom` or `shipped`. */
  origin: 'custom' | 'shipped';
  /** Why Status is Error: the error's code and description. */
  reason?: string;
  /** The reader's warnings, `line: message`. */
  warnings: string[];
}

/** overlay-boot's version, from package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { version: string };
  return pkg.version;
}

/** KiB available to unprivileged users on the filesystem of `dir` (or of its nearest existing ancestor). */
export function availableDiskKiB(dir: string): number {
  let d = path.resolve(dir);
  while (!existsSync(d) && d !== path.dirname(d)) d = path.dirname(d);
  const s = statfsSync(d);
  return Math.floor((s.bavail * s.bsize) / 1024);
}

/** KiB of MemAvailable in /proc/meminfo (0 when the kernel does not report it). */
export function availableMemoryKiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Options of {@link listExecEnvs}. */
export interface ListExecEnvsOptions {
  /** The shipped templates directory. Default: {@link shippedTemplatesDir}. */
  shipped?: string;
}

/** Every EE with its TR-181 fields; a template that does not load or check is listed with Status Error. */
export async function listExecEnvs(config: PkgConfig, opts: ListExecEnvsOptions = {}): Promise<ExecEnv[]> {
  const dirs: TemplateDirs = { custom: config.paths.templates, shipped: opts.shipped };
  const common = {
    Type: EE_TYPE,
    Vendor: 'overlay-boot',
    Version: packageVersion(),
    AvailableDiskSpace: availableDiskKiB(config.paths.state),
    AvailableMemory: availableMemoryKiB(),
  };
  const out: ExecEnv[] = [];
  for (const ref of listTemplates(dirs)) {
    const ee: ExecEnv = { Name: ref.name, ...common, Status: 'Up', Enable: isEnabled(ref.name, dirs), Source: ref.file, origin: ref.source, warnings: [] };
    try {
      const template = await loadTemplate(ref);
      const warnings = [...template.warnings, ...(await checkTemplate(template))];
      ee.warnings = [...new Set(warnings.map((w) => (w.line === undefined ? w.message : `${w.line}: ${w.message}`)))];
    } catch (e) {
      ee.Status = 'Error';
      ee.reason = isOverlayBootError(e) ? `${e.code}: ${e.describe()}` : String(e);
    }
    out.push(ee);
  }
  return out;
}
