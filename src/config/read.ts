import path from 'node:path';
import { stat, realpath } from 'node:fs/promises';
import type { OverlayBootError } from '../errors.js';
import type { Assignment, Cable, KnownVariable, Origin, Share, SubhostConfig, Warning } from './types.js';
import { readConfigFile, parseConfigText, REPEATABLE_VARIABLES } from './parse.js';
import { checkConfigSafety } from './safety.js';
import { evaluateBang, isBangValue, DEFAULT_BANG_TIMEOUT_MS } from './bang.js';
import { watchBangMounts, type MountWatch } from './bang-mounts.js';
import { parseCables } from './cables.js';
import {
  checkName, parseCpuMax, parseLogKeep, parseLogMaxSize, parseMemoryMax, parsePidsMax, parseRamSize, parsePrivileged, parseRun, parseStart, parseStopTimeout,
  DEFAULT_LOG_KEEP, DEFAULT_RAM_SIZE, DEFAULT_START, DEFAULT_STOP_TIMEOUT,
} from './values.js';
import { innerLayer } from './inner-layer.js';
import { resolveLayers, resolveRootLayout, type PathValue } from './root.js';
import { resolveShare } from './shares.js';
import { configError, throwGathered, type Where } from './where.js';

/** Options of {@link readConfig}. */
export interface ReadConfigOptions {
  /**
   * Name of the running tool, given to `!` commands as `ACTION` so helpers such as
   * overlay-diskfile can tell a boot from a check. Default: `'overlay-boot'`.
   */
  action?: string;
  /**
   * The directory overlay-boot was started from: a relative config path is resolved
   * against it, and the `!` commands of NAME and LOG run in it (as does a relative
   * LOG). Default: `process.cwd()`.
   */
  cwd?: string;
  /** Environment `!` commands start from (`ACTION` and `CONFIG` are added). Default: `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Milliseconds a `!` command may run before its process group is killed. Default: 10000. */
  bangTimeoutMs?: number;
  /**
   * Refuse a config file or directory writable by anyone but root or the current
   * user (CONFIG_UNSAFE). Turn off only for tests and tools that never run `!`
   * values as root. Default: `true`.
   */
  checkOwnership?: boolean;
  /**
   * Called once the `!` values have run, also when the read then fails, with the host
   * mounts they made (deepest first): those reported in OVERLAY_BOOT_MOUNTS, and, as a
   * fallback, new mounts within the config's own directories. The caller owns them.
   */
  onMounts?: (mountPoints: string[]) => void;
}

/** Variables evaluated in the starting directory rather than in BASE (SPEC "`!` values"). */
const IN_START_DIRECTORY: ReadonlySet<KnownVariable> = new Set(['NAME', 'LOG']);

/**
 * Reads, evaluates and checks a subhost configuration file, returning it fully
 * resolved. Every problem found is gathered: one is thrown as itself, several as
 * CONFIG_INVALID with `errors` listing them. Runs `!` values (as the spec wants) but
 * nothing else: an UPPER program is only recognised, never started.
 */
export async function readConfig(file: string, options: ReadConfigOptions = {}): Promise<SubhostConfig> {
  const cwd = path.resolve(options.cwd ?? process.cwd());
  const abs = path.resolve(cwd, file);
  const buf = await readConfigFile(abs);
  if (options.checkOwnership !== false) await checkConfigSafety(abs);
  const parsed = parseConfigText(buf, abs);
  const reader = new ConfigReader(abs, cwd, options, parsed.assignments, parsed.warnings);
  return reader.read();
}

/** One read of one file: the gathered errors and the values evaluated so far. */
class ConfigReader {
  private readonly errors: OverlayBootError[] = [];
  private readonly first = new Map<string, Assignment>();
  private readonly values = new Map<KnownVariable, string>();
  private readonly origins: Partial<Record<KnownVariable, Origin>> = {};
  private base: string | undefined;
  private mountWatch: MountWatch | undefined;

  constructor(
    private readonly file: string,
    private readonly cwd: string,
    private readonly options: ReadConfigOptions,
    private readonly assignments: Assignment[],
    private readonly warnings: Warning[],
  ) {
    for (const a of assignments) {
      if (!this.first.has(a.variable)) this.first.set(a.variable, a);
    }
  }

  async read(): Promise<SubhostConfig> {
    if (this.assignments.some((a) => isBangValue(a.value))) this.mountWatch = watchBangMounts();
    try {
      await this.evaluateAll();
    } finally {
      this.reportMounts();
    }
    const name = this.check('NAME', (v, w) => checkName(v, w)) ?? this.values.get('NAME') ?? '';
    const cables = this.cables(name);
    const start = this.check('START', (v, w) => parseStart(v, w)) ?? [];
    const ramSize = this.values.has('RAM_SIZE') ? this.check('RAM_SIZE', (v, w) => parseRamSize(v, w)) : DEFAULT_RAM_SIZE;
    const stopTimeout = this.values.has('STOP_TIMEOUT')
      ? (this.check('STOP_TIMEOUT', (v, w) => parseStopTimeout(v, w)) ?? DEFAULT_STOP_TIMEOUT)
      : DEFAULT_STOP_TIMEOUT;
    const privileged = this.check('PRIVILEGED', (v, w) => parsePrivileged(v, w)) ?? true;
    const limits = {
      memoryMax: this.check('MEMORY_MAX', (v, w) => parseMemoryMax(v, w)),
      cpuMax: this.check('CPU_MAX', (v, w) => parseCpuMax(v, w)),
      pidsMax: this.check('PIDS_MAX', (v, w) => parsePidsMax(v, w)),
    };
    const logMaxSize = this.check('LOG_MAX_SIZE', (v, w) => parseLogMaxSize(v, w));
    const logKeep = this.check('LOG_KEEP', (v, w) => parseLogKeep(v, w));
    if (logKeep !== undefined && logMaxSize === undefined && !this.values.has('LOG_MAX_SIZE')) {
      this.warnings.push({ message: 'LOG_KEEP has no effect without LOG_MAX_SIZE: LOG is never rotated', line: this.first.get('LOG_KEEP')?.line, variable: 'LOG_KEEP' });
    }
    const run = this.repeated('RUN').flatMap((a) => this.attempt(() => parseRun(a.value, this.where('RUN', a.line))) ?? []);
    const log = path.resolve(this.cwd, this.values.get('LOG') ?? `/tmp/overlay-${name}.log`);
    const rooted = await this.rootAndShares();
    throwGathered(this.errors, this.file);
    const config: SubhostConfig = {
      file: this.file,
      name,
      base: this.base!,
      cables,
      ...rooted.layout,
      start,
      log,
      shares: rooted.shares,
      run,
      stopTimeout,
      privileged,
      origins: this.origins,
      warnings: this.warnings,
    };
    if (ramSize !== undefined) config.ramSize = ramSize;
    for (const [key, value] of Object.entries(limits) as [keyof typeof limits, number | undefined][]) {
      if (value !== undefined) config[key] = value;
    }
    if (logMaxSize !== undefined) {
      config.logMaxSize = logMaxSize;
      config.logKeep = logKeep ?? DEFAULT_LOG_KEEP;
    }
    for (const [variable, key] of [['PREMOUNT', 'premount'], ['POSTMOUNT', 'postmount'], ['INIT', 'init']] as const) {
      const value = this.values.get(variable);
      if (value !== undefined) config[key] = value;
    }
    return config;
  }

  /**
   * Applies defaults and runs `!` values, one at a time in the order of the spec's
   * table (a `!` helper may mount what a later variable names). SHARE and RUN are
   * never evaluated: their values are paths and command lines, taken literally.
   */
  private async evaluateAll(): Promise<void> {
    this.values.set('NAME', defaultName(this.file));
    this.values.set('LIVE', 'live');
    this.values.set('UPPER', 'root');
    this.values.set('WORK', 'work');
    this.values.set('LOWER', '/');
    this.values.set('START', DEFAULT_START.join(' '));
    for (const variable of ['NAME', 'BASE', 'CABLES', 'LIVE', 'UPPER', 'WORK', 'LOWER', 'START', 'RAM_SIZE', 'LOG', 'PREMOUNT', 'POSTMOUNT', 'INIT', 'STOP_TIMEOUT', 'MEMORY_MAX', 'CPU_MAX', 'PIDS_MAX', 'LAYERS', 'PRIVILEGED', 'LOG_MAX_SIZE', 'LOG_KEEP'] as const) {
      await this.evaluate(variable);
      if (variable === 'BASE') await this.resolveBase();
    }
    for (const variable of REPEATABLE_VARIABLES) {
      const a = this.first.get(variable);
      if (a !== undefined) this.origins[variable as KnownVariable] = { line: a.line, raw: a.value };
    }
  }

  private async evaluate(variable: KnownVariable): Promise<void> {
    const a = this.first.get(variable);
    this.origins[variable] = a === undefined ? {} : { line: a.line, raw: a.value };
    // An empty value means "not set", as in the shell tool: the default applies.
    if (a === undefined || a.value === '') return;
    if (!isBangValue(a.value)) {
      this.values.set(variable, a.value);
      return;
    }
    const dir = variable === 'BASE' ? path.dirname(this.file) : IN_START_DIRECTORY.has(variable) ? this.cwd : this.base;
    // Without a BASE there is nowhere to run it; the BASE error already explains.
    if (dir === undefined) {
      this.values.delete(variable);
      return;
    }
    const value = await this.attemptAsync(() =>
      evaluateBang(a.value, {
        cwd: dir,
        configFile: this.file,
        action: this.options.action ?? 'overlay-boot',
        env: this.options.env ?? process.env,
        mountsFile: this.mountWatch?.file,
        timeoutMs: this.options.bangTimeoutMs ?? DEFAULT_BANG_TIMEOUT_MS,
        where: this.where(variable, a.line),
      }),
    );
    if (value === undefined) this.values.delete(variable);
    else this.values.set(variable, value);
  }

  private reportMounts(): void {
    if (!this.mountWatch) return;
    const base = this.base;
    const paths = base === undefined ? []
      : (['LIVE', 'UPPER', 'WORK', 'LOWER'] as const).flatMap((v) => {
        const value = this.values.get(v);
        return value === undefined ? [] : [path.resolve(base, value)];
      });
    const mounts = this.mountWatch.finish({ configDir: path.dirname(this.file), base, paths });
    this.options.onMounts?.(mounts);
  }

  private async resolveBase(): Promise<void> {
    const value = this.values.get('BASE');
    const where = this.where('BASE');
    if (value === undefined) {
      if (!this.first.has('BASE') || this.first.get('BASE')!.value === '') {
        this.errors.push(configError('CONFIG_BASE_MISSING', 'BASE is required: the directory holding the subhost', where));
      }
      return;
    }
    const lexical = path.resolve(path.dirname(this.file), value);
    const real = await realpath(lexical).catch(() => undefined);
    const isDir = real !== undefined && (await stat(real).then((s) => s.isDirectory(), () => false));
    if (!isDir) {
      this.errors.push(
        configError('CONFIG_BAD_PATH', `${lexical} ${real === undefined ? 'does not exist' : 'is not a directory'}`, where, {
          expected: 'an existing directory',
          found: lexical,
        }),
      );
      return;
    }
    this.base = real;
  }

  private cables(name: string): Cable[] {
    const value = this.values.get('CABLES');
    if (value === undefined) return [];
    const { cables, errors } = parseCables(value, name, this.where('CABLES'));
    // Not push(...errors): a CABLES line of a megabyte can hold 500 000 bad specifiers,
    // more arguments than the stack takes (RangeError).
    for (const e of errors) this.errors.push(e);
    return cables;
  }

  private async rootAndShares() {
    if (this.base === undefined) {
      return { layout: { live: '', work: '', lower: '', layers: [] as string[], rootVariant: 'overlay' as const }, shares: [] as Share[] };
    }
    const base = this.base;
    const pathValue = (variable: KnownVariable): PathValue | undefined => {
      const value = this.values.get(variable);
      return value === undefined ? undefined : { value, where: this.where(variable) };
    };
    const live = pathValue('LIVE');
    const upper = pathValue('UPPER');
    const work = pathValue('WORK');
    const lower = pathValue('LOWER');
    // A failed `!` leaves its variable unset; checking the others would only add noise.
    if (!live || !upper || !work || !lower) {
      return { layout: { live: '', work: '', lower: '', layers: [] as string[], rootVariant: 'overlay' as const }, shares: [] as Share[] };
    }
    const { layout: root, errors } = await resolveRootLayout({ base, live, upper, work, lower });
    this.errors.push(...errors);
    const layersValue = pathValue('LAYERS');
    const resolved = layersValue ? await resolveLayers(base, layersValue) : { layers: [], errors: [] };
    for (const e of resolved.errors) this.errors.push(e);
    const inner = layersValue && root.rootVariant === 'overlay' && !errors.length && !resolved.errors.length
      ? await this.attemptAsync(() => innerLayer({ ...root, layers: resolved.layers }, layersValue.where)) : undefined;
    const layout = { ...root, layers: resolved.layers, ...(inner ? { innerLayer: inner } : {}) };
    if (layout.layers.length && layout.rootVariant !== 'overlay') {
      this.warnings.push({ message: `LAYERS is not used: the root is ${layout.rootVariant === 'bind' ? 'a bind mount of UPPER' : 'premounted (LIVE is LOWER)'}, not an overlay`, line: layersValue?.where.line, variable: 'LAYERS' });
    }
    const shares: Share[] = [];
    for (const a of this.repeated('SHARE')) {
      const result = await this.attemptAsync(() => resolveShare({ raw: a.value, line: a.line, base, lower: layout.lower, file: this.file }));
      if (result?.share) shares.push(result.share);
      if (result?.warning) this.warnings.push(result.warning);
    }
    return { layout, shares };
  }

  /** Runs a check on a variable's value, recording its error instead of stopping. */
  private check<T>(variable: KnownVariable, fn: (value: string, where: Where) => T): T | undefined {
    const value = this.values.get(variable);
    if (value === undefined) return undefined;
    return this.attempt(() => fn(value, this.where(variable)));
  }

  private attempt<T>(fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.errors.push(e as OverlayBootError);
      return undefined;
    }
  }

  private async attemptAsync<T>(fn: () => Promise<T>): Promise<T | undefined> {
    try {
      return await fn();
    } catch (e) {
      this.errors.push(e as OverlayBootError);
      return undefined;
    }
  }

  private repeated(variable: 'SHARE' | 'RUN'): Assignment[] {
    return this.assignments.filter((a) => a.variable === variable);
  }

  private where(variable: KnownVariable, line = this.first.get(variable)?.line): Where {
    return line === undefined ? { file: this.file, variable } : { file: this.file, line, variable };
  }
}

/** The config file's base name without `.conf`: `/etc/subhosts/mail.conf` names `mail`. */
export function defaultName(file: string): string {
  const base = path.basename(file);
  return base.endsWith('.conf') ? base.slice(0, -'.conf'.length) : base;
}
