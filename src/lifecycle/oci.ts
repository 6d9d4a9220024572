/**
 * An OCI bundle's `config.json` as a DU subhost's one service: the `process` becomes a
 * single `RUN=` line (the reaper runs it with `/bin/sh -c` and supervises it), and every
 * field is either honoured or refused (PKG_OCI_UNSUPPORTED naming `NAME/config.json` and
 * the field): never ignored silently (LIFECYCLE.md, "OCI bundles").
 *
 * How each honoured field is carried, using only what the bundle's rootfs has (the `oci`
 * template's LOWER is empty, so nothing of the host is there to help):
 *
 * - `process.args`, `process.env`: `exec ENV -i 'K=V'... 'ARG0' 'ARG1'...` with the
 *   rootfs's own `env`: the environment is exactly the bundle's (nothing of the reaper's
 *   leaks in), and ARG0 is looked up in the bundle's PATH as a runtime does. Every word
 *   is single-quoted, so nothing in the config is ever shell syntax.
 * - `process.cwd`: `cd 'DIR' &&` before it (a missing directory fails the start).
 * - `process.rlimits`: `ulimit -H`/`-S` (a shell builtin) for the limits POSIX shells
 *   know; others are refused.
 * - `process.user` other than 0:0, `process.noNewPrivileges`: the rootfs's `setpriv`
 *   (util-linux's: `--reuid --regid --clear-groups|--groups`, `--nnp`).
 * - `hostname`: nothing when it is the subhost's NAME (the subhost's hostname), else
 *   `hostname 'H' &&` with the rootfs's `hostname`, in the subhost's own UTS namespace.
 * - `root.path` must be `rootfs` (the bundle's rootfs is the DU's layer); `mounts` may
 *   only be runc's defaults (the subhost has its own /proc, /dev, /sys); `linux.namespaces`
 *   only the kinds a subhost has, without a `path`; `linux.resources` only runc's default
 *   deny-all device rule (limits come from the EE's template).
 *
 * Refused: `process.terminal: true` (a RUN service has no terminal), capabilities,
 * apparmor/selinux labels, `root.readonly`, hooks, `linux.devices`, seccomp, sysctl,
 * masked and read-only paths, uid/gid mappings, any other `linux` key, and unknown keys.
 */
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import type { PackageInfo } from '../package/types.js';
import { discoverEUs, ociEU } from './eu.js';
import type { EuRecord } from './store.js';

/** What {@link ociRunLine} needs besides the config. */
export interface OciRunOptions {
  /** The bundle's directory name (the member named in errors is `NAME/config.json`). */
  bundle: string;
  /** The DU subhost's NAME (its hostname). */
  subhost: string;
  /** The bundle's rootfs as unpacked (the DU's layer): where the tools the line needs are looked up. */
  rootfs: string;
}

/** The mount destinations runc's default config.json has (`runc spec`); the subhost provides its own. */
const DEFAULT_MOUNTS: ReadonlyMap<string, string> = new Map([
  ['/proc', 'proc'], ['/dev', 'tmpfs'], ['/dev/pts', 'devpts'], ['/dev/shm', 'tmpfs'],
  ['/dev/mqueue', 'mqueue'], ['/sys', 'sysfs'], ['/sys/fs/cgroup', 'cgroup'],
]);

/** Namespace kinds every subhost has of its own (ovb-launch unshares them). */
const OUR_NAMESPACES: ReadonlySet<string> = new Set(['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup']);

/** rlimits a POSIX shell's `ulimit` sets (dash, bash and busybox ash agree on these letters). */
const ULIMIT_FLAGS: Readonly<Record<string, string>> = {
  RLIMIT_CORE: 'c', RLIMIT_DATA: 'd', RLIMIT_FSIZE: 'f', RLIMIT_NOFILE: 'n', RLIMIT_STACK: 's', RLIMIT_CPU: 't', RLIMIT_AS: 'v',
};

/** Where a tool is looked up in the rootfs, as a default PATH would. */
const TOOL_DIRS = ['usr/local/sbin', 'usr/local/bin', 'usr/sbin', 'usr/bin', 'sbin', 'bin'];

type Json = Record<string, unknown>;

/** Checks one config.json; `refuse` throws for its member. */
class OciConfig {
  private readonly member: string;

  constructor(private readonly opts: OciRunOptions) {
    this.member = `${opts.bundle}/config.json`;
  }

  refuse(field: string, why: string, found?: unknown): never {
    throw new OverlayBootError('PKG_OCI_UNSUPPORTED', `${this.member}: ${field} ${why}`, {
      member: this.member, variable: field, found: found === undefined ? undefined : JSON.stringify(found).slice(0, 200),
    });
  }

  object(value: unknown, field: string): Json {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.refuse(field, 'is not an object', value);
    return value as Json;
  }

  /** Only `allowed` keys; anything else is named and refused. */
  keys(obj: Json, field: string, allowed: readonly string[]): void {
    for (const k of Object.keys(obj)) if (!allowed.includes(k)) this.refuse(`${field}${field ? '.' : ''}${k}`, 'cannot be honoured by a subhost', obj[k]);
  }

  /** A string the RUN line may carry: no NUL, no line break (RUN is one config line). */
  word(value: unknown, field: string): string {
    if (typeof value !== 'string') this.refuse(field, 'is not a string', value);
    if (/[\0\n\r]/.test(value)) this.refuse(field, 'holds a NUL or line break, which one RUN line cannot carry', value);
    return value;
  }

  strings(value: unknown, field: string): string[] {
    if (!Array.isArray(value)) this.refuse(field, 'is not an array', value);
    return value.map((v, i) => this.word(v, `${field}[${i}]`));
  }

  id(value: unknown, field: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xfffffffe) this.refuse(field, 'is not a uid/gid', value);
    return value;
  }

  /** The absolute path, inside the rootfs, of tool `name`, or a refusal naming the field that needs it. */
  tool(name: string, field: string): string {
    for (const dir of TOOL_DIRS) {
      if (lstatSync(path.join(this.opts.rootfs, dir, name), { throwIfNoEntry: false })) return `/${dir}/${name}`;
    }
    return this.refuse(field, `needs ${name} in the bundle's rootfs (looked in /${TOOL_DIRS.join(', /')}), and it has none`);
  }
}

/** A word quoted for `sh -c`: single quotes, each `'` as `'\''`. */
export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function checkRoot(c: OciConfig, config: Json): void {
  if (config.root === undefined) return;
  const root = c.object(config.root, 'root');
  c.keys(root, 'root', ['path', 'readonly']);
  if (root.path !== 'rootfs') c.refuse('root.path', 'must be "rootfs": the bundle\'s rootfs is the DU\'s layer', root.path);
  if (root.readonly === true) c.refuse('root.readonly', 'cannot be honoured: a DU\'s root is writable (its UPPER keeps its data)', root.readonly);
}

function checkMounts(c: OciConfig, config: Json): void {
  if (config.mounts === undefined) return;
  if (!Array.isArray(config.mounts)) c.refuse('mounts', 'is not an array', config.mounts);
  config.mounts.forEach((m: unknown, i) => {
    const mount = c.object(m, `mounts[${i}]`);
    const want = typeof mount.destination === 'string' ? DEFAULT_MOUNTS.get(mount.destination) : undefined;
    if (want === undefined || (mount.type !== undefined && mount.type !== want)) {
      c.refuse(`mounts[${i}]`, `(${String(mount.destination)}) is not one of runc's default mounts, which are all a subhost can honour`, mount);
    }
  });
}

function checkLinux(c: OciConfig, config: Json): void {
  if (config.linux === undefined) return;
  const linux = c.object(config.linux, 'linux');
  c.keys(linux, 'linux', ['namespaces', 'resources']);
  if (linux.namespaces !== undefined) {
    if (!Array.isArray(linux.namespaces)) c.refuse('linux.namespaces', 'is not an array', linux.namespaces);
    linux.namespaces.forEach((n: unknown, i) => {
      const ns = c.object(n, `linux.namespaces[${i}]`);
      if (typeof ns.type !== 'string' || !OUR_NAMESPACES.has(ns.type)) c.refuse(`linux.namespaces[${i}]`, `(${String(ns.type)}) is not a namespace a subhost has`, ns);
      if (ns.path !== undefined) c.refuse(`linux.namespaces[${i}].path`, 'cannot be honoured: a subhost makes its own namespaces', ns.path);
    });
  }
  if (linux.resources !== undefined) {
    const res = c.object(linux.resources, 'linux.resources');
    c.keys(res, 'linux.resources', ['devices']);
    const devices = res.devices;
    const denyAll = Array.isArray(devices) && devices.every((d: unknown) => {
      const dev = c.object(d, 'linux.resources.devices[]');
      return dev.allow === false && Object.keys(dev).every((k) => k === 'allow' || k === 'access') && (dev.access === undefined || dev.access === 'rwm');
    });
    if (devices !== undefined && !denyAll) c.refuse('linux.resources.devices', 'may only be runc\'s default deny-all rule (a subhost sees no device nodes but its own /dev)', devices);
  }
}

/** The `ulimit` commands for `process.rlimits`. */
function rlimitCommands(c: OciConfig, value: unknown): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) c.refuse('process.rlimits', 'is not an array', value);
  return value.flatMap((r: unknown, i) => {
    const field = `process.rlimits[${i}]`;
    const rl = c.object(r, field);
    c.keys(rl, field, ['type', 'hard', 'soft']);
    const flag = typeof rl.type === 'string' ? ULIMIT_FLAGS[rl.type] : undefined;
    if (flag === undefined) c.refuse(`${field}.type`, `(${String(rl.type)}) is not a limit a shell's ulimit sets (${Object.keys(ULIMIT_FLAGS).join(', ')})`, rl.type);
    const n = (v: unknown, f: string): string => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) c.refuse(f, 'is not a whole number', v);
      return String(v);
    };
    const hard = n(rl.hard, `${field}.hard`);
    const soft = n(rl.soft, `${field}.soft`);
    if (Number(soft) > Number(hard)) c.refuse(`${field}.soft`, 'is above the hard limit', rl.soft);
    // Soft first (it may fail while above the current hard limit: then it is set after the
    // hard one), so that lowering the hard limit below the current soft one works too.
    return [`{ ulimit -S -${flag} ${soft} || :; } 2>/dev/null`, `ulimit -H -${flag} ${hard}`, `ulimit -S -${flag} ${soft}`];
  });
}

/** The `setpriv` words for `process.user` and `noNewPrivileges`, or none when neither asks for anything. */
function privilegeWords(c: OciConfig, proc: Json): string[] {
  const words: string[] = [];
  if (proc.user !== undefined) {
    const user = c.object(proc.user, 'process.user');
    c.keys(user, 'process.user', ['uid', 'gid', 'additionalGids', 'umask']);
    const uid = c.id(user.uid ?? 0, 'process.user.uid');
    const gid = c.id(user.gid ?? 0, 'process.user.gid');
    const extra = user.additionalGids === undefined ? [] : (Array.isArray(user.additionalGids) ? user.additionalGids : c.refuse('process.user.additionalGids', 'is not an array', user.additionalGids))
      .map((g: unknown, i: number) => c.id(g, `process.user.additionalGids[${i}]`));
    if (user.umask !== undefined) c.refuse('process.user.umask', 'cannot be honoured', user.umask);
    if (uid !== 0 || gid !== 0 || extra.length > 0) {
      words.push(`--reuid=${uid}`, `--regid=${gid}`, extra.length > 0 ? `--groups=${extra.join(',')}` : '--clear-groups');
    }
  }
  if (proc.noNewPrivileges === true) words.push('--nnp');
  else if (proc.noNewPrivileges !== undefined && proc.noNewPrivileges !== false) c.refuse('process.noNewPrivileges', 'is not a boolean', proc.noNewPrivileges);
  return words.length === 0 ? [] : [c.tool('setpriv', proc.user !== undefined ? 'process.user' : 'process.noNewPrivileges'), ...words];
}

/**
 * The `RUN=` value (one `/bin/sh -c` line) that runs bundle `opts.bundle`'s process in
 * the DU subhost, after checking every field of `config` (the parsed config.json).
 * Throws PKG_OCI_UNSUPPORTED naming `NAME/config.json` and the field that cannot be
 * honoured, or the tool the rootfs lacks for it.
 */
export function ociRunLine(config: unknown, opts: OciRunOptions): string {
  const c = new OciConfig(opts);
  const cfg = c.object(config, '(top level)');
  c.keys(cfg, '', ['ociVersion', 'process', 'root', 'hostname', 'mounts', 'linux', 'annotations']);
  checkRoot(c, cfg);
  checkMounts(c, cfg);
  checkLinux(c, cfg);
  if (cfg.process === undefined) c.refuse('process', 'is missing: the bundle\'s process is its one service');
  const proc = c.object(cfg.process, 'process');
  c.keys(proc, 'process', ['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'rlimits', 'noNewPrivileges', 'oomScoreAdj']);
  if (proc.terminal === true || proc.consoleSize !== undefined) c.refuse(proc.terminal === true ? 'process.terminal' : 'process.consoleSize', 'cannot be honoured: a RUN service has no terminal (set "terminal": false)', proc.terminal);
  if (proc.oomScoreAdj !== undefined) c.refuse('process.oomScoreAdj', 'cannot be honoured', proc.oomScoreAdj);
  const args = c.strings(proc.args, 'process.args');
  if (args.length === 0 || args[0] === '') c.refuse('process.args', 'is empty: there is nothing to run', proc.args);
  // env takes its first operand holding `=` as an assignment, and our own words start with `-`.
  if (args[0]!.includes('=') || args[0]!.startsWith('-')) c.refuse('process.args[0]', 'starts with "-" or holds "=", which env would take for an option or a variable', args[0]);
  const env = proc.env === undefined ? [] : c.strings(proc.env, 'process.env');
  env.forEach((e, i) => {
    if (!/^[^=]+=/.test(e)) c.refuse(`process.env[${i}]`, 'is not KEY=VALUE', e);
  });
  const cwd = proc.cwd === undefined ? '/' : c.word(proc.cwd, 'process.cwd');
  if (!cwd.startsWith('/')) c.refuse('process.cwd', 'is not an absolute path', cwd);
  if (!lstatSync(path.join(opts.rootfs, 'bin/sh'), { throwIfNoEntry: false })) c.refuse('process', 'needs /bin/sh in the bundle\'s rootfs (RUN is a /bin/sh -c line), and it has none');

  const before = rlimitCommands(c, proc.rlimits);
  if (cfg.hostname !== undefined) {
    const host = c.word(cfg.hostname, 'hostname');
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$/.test(host)) c.refuse('hostname', 'is not a host name', host);
    if (host !== opts.subhost) before.push(`${c.tool('hostname', 'hostname')} ${shellQuote(host)}`);
  }
  before.push(`cd ${shellQuote(cwd)}`);
  const exec = ['exec', c.tool('env', 'process.env'), '-i', ...env.map(shellQuote), ...privilegeWords(c, proc), ...args.map(shellQuote)];
  return [...before, exec.join(' ')].join(' && ');
}

/** A DU's services as its config and record need them. */
export interface DuServices {
  /** Its EUs (AutoStart as found). */
  eus: EuRecord[];
  /** The init script names START gets (the AutoStart EUs that are init scripts). */
  autoStart: string[];
  /** For an OCI bundle: the RUN= line of its process. */
  run?: string;
}

/**
 * The services of a DU whose package is `info` and layer `layer`: the init scripts the
 * layer ships, or for an OCI bundle its process as the one `run` EU with its RUN= line
 * ({@link ociRunLine}: PKG_OCI_UNSUPPORTED when the config asks what cannot be honoured).
 * Install and update call it once the layer is staged.
 */
export function duServices(info: PackageInfo, layer: string, subhost: string, autoStartOf?: (eu: EuRecord) => boolean): DuServices {
  const bundle = info.control.package;
  const eus = (info.format === 'oci' ? [ociEU(subhost, bundle)] : discoverEUs(layer, subhost))
    .map((eu) => (autoStartOf ? { ...eu, AutoStart: autoStartOf(eu) } : eu));
  const out: DuServices = { eus, autoStart: eus.filter((eu) => eu.AutoStart && eu.kind !== 'run').map((eu) => eu.Name) };
  if (info.format === 'oci') out.run = ociRunLine(info.oci?.config, { bundle, subhost, rootfs: layer });
  return out;
}
