/**
 * overlay-pkg's configuration: a real ini file (read with the `ini` package), by
 * default /etc/overlay-boot/pkg.ini. See overlay-pkg.conf(5).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ini from 'ini';
import { OverlayBootError } from '../errors.js';
import { DEFAULT_MAX_UNPACKED_SIZE } from './types.js';

/** The configuration file read when neither --config nor OVERLAY_PKG_CONFIG names one. */
export const DEFAULT_PKG_CONFIG = '/etc/overlay-boot/pkg.ini';
/** The environment variable naming the configuration file. */
export const PKG_CONFIG_ENV = 'OVERLAY_PKG_CONFIG';

/** Default `[download] max_size`: the same 2 GiB as the unpack cap. */
export const DEFAULT_DOWNLOAD_MAX_SIZE = DEFAULT_MAX_UNPACKED_SIZE;
/** Default `[download] timeout`: 300 s, in milliseconds. */
export const DEFAULT_DOWNLOAD_TIMEOUT_MS = 300_000;
/** Default `[download] retries`: resumes after a broken transfer. */
export const DEFAULT_DOWNLOAD_RETRIES = 3;

/** Default `[lifecycle] eu_timeout`: 10 s, in milliseconds. */
export const DEFAULT_EU_TIMEOUT_MS = 10_000;

/** The checked configuration, every value filled in. */
export interface PkgConfig {
  /** The file read; undefined when the default file is absent and defaults apply. */
  file?: string;
  trust: {
    /** Directory of trusted public keys; default /etc/overlay-boot/keys. */
    keys: string;
    /** Whether a package must be signed by a trusted key; default true. */
    requireSignature: boolean;
    /** File whose content (trimmed) decrypts encrypted packages; default none. */
    deviceKey?: string;
  };
  paths: {
    /** Default /var/lib/overlay-boot/pkg. */
    state: string;
    /** Default /etc/overlay-boot/templates. */
    templates: string;
    /** Default /run/overlay-boot/pkgd.sock. */
    socket: string;
    /** The boot list a DU's config is registered in, read by the `subhosts` init script; default /etc/subhosts.conf. */
    bootList: string;
  };
  limits: {
    /** Bytes; default 2 GiB. */
    maxUnpackedSize: number;
  };
  /** Downloads of http(s) packages (download.ts takes these as its options). */
  download: {
    /** Bytes; default 2 GiB. */
    maxSize: number;
    /** Whole transfer, retries included, in ms (the file gives seconds); default 300 s. */
    timeoutMs: number;
    /** Resumes after a broken transfer; default 3. */
    retries: number;
  };
  daemon: {
    /** A group (name or gid) whose members may use overlay-pkgd besides root; default none (root only). */
    group?: string;
  };
  /** Deployment and execution units. */
  lifecycle: {
    /** How long an EU has to become Active or Idle, and one status probe, in ms (the file gives seconds); default 10 s. */
    euTimeoutMs: number;
  };
  /** Unknown sections and keys, one message each (`file:line: ...`). */
  warnings: string[];
}

/** Options of readPkgConfig. */
export interface ReadPkgConfigOptions {
  /** The file given with --config; wins over the environment. A missing one is an error. */
  file?: string;
  /** Where OVERLAY_PKG_CONFIG is looked up; default process.env. */
  env?: NodeJS.ProcessEnv;
}

const MAX_CONFIG_SIZE = 1024 * 1024;

/** The configuration with nothing read. */
export function defaultPkgConfig(): PkgConfig {
  return {
    trust: { keys: '/etc/overlay-boot/keys', requireSignature: true },
    paths: { state: '/var/lib/overlay-boot/pkg', templates: '/etc/overlay-boot/templates', socket: '/run/overlay-boot/pkgd.sock', bootList: '/etc/subhosts.conf' },
    limits: { maxUnpackedSize: DEFAULT_MAX_UNPACKED_SIZE },
    download: { maxSize: DEFAULT_DOWNLOAD_MAX_SIZE, timeoutMs: DEFAULT_DOWNLOAD_TIMEOUT_MS, retries: DEFAULT_DOWNLOAD_RETRIES },
    daemon: {},
    lifecycle: { euTimeoutMs: DEFAULT_EU_TIMEOUT_MS },
    warnings: [],
  };
}

/**
 * Reads the configuration: `opts.file`, else the file named by OVERLAY_PKG_CONFIG, else
 * /etc/overlay-boot/pkg.ini. An absent default file gives the defaults; an absent file
 * that was named explicitly, an unreadable file or a bad value is PKG_CONFIG_INVALID
 * naming the file (and line and key for a value).
 */
export function readPkgConfig(opts: ReadPkgConfigOptions = {}): PkgConfig {
  const env = opts.env ?? process.env;
  const named = opts.file ?? (env[PKG_CONFIG_ENV] || undefined);
  const file = named ?? DEFAULT_PKG_CONFIG;
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_CONFIG_SIZE) throw new Error(`larger than ${MAX_CONFIG_SIZE} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    if (!named && (e as NodeJS.ErrnoException).code === 'ENOENT') return defaultPkgConfig();
    throw new OverlayBootError('PKG_CONFIG_INVALID', `cannot read the configuration file: ${(e as Error).message}`, { file, cause: e });
  }
  return parsePkgConfig(text, file);
}

/** Where each `[section]` `key =` stands, found by scanning: ini gives no line numbers. */
function lineIndex(text: string): Map<string, number> {
  const where = new Map<string, number>();
  let section = '';
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const sec = /^\[(.*)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.trim();
      if (!where.has(`[${section}]`)) where.set(`[${section}]`, i + 1);
      return;
    }
    const key = /^([^=;#[][^=]*?)\s*=/.exec(line);
    // the last assignment wins in ini, so it is the line to point at
    if (key) where.set(`${section}\0${key[1]!.replace(/\[\]$/, '')}`, i + 1);
  });
  return where;
}

type Section = Record<string, unknown>;

const KNOWN: Record<string, string[]> = {
  trust: ['keys', 'require_signature', 'device_key'],
  paths: ['state', 'templates', 'socket', 'boot_list'],
  limits: ['max_unpacked_size'],
  download: ['max_size', 'timeout', 'retries'],
  daemon: ['group'],
  lifecycle: ['eu_timeout'],
};

const SIZE_UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parses and checks configuration text; `file` is for messages. */
export function parsePkgConfig(text: string, file: string): PkgConfig {
  let data: Record<string, unknown>;
  try {
    data = ini.parse(text);
  } catch (e) {
    throw new OverlayBootError('PKG_CONFIG_INVALID', `not an ini file: ${(e as Error).message}`, { file, cause: e });
  }
  const lines = lineIndex(text);
  const config = defaultPkgConfig();
  config.file = file;
  const at = (section: string, key?: string): number | undefined =>
    lines.get(key === undefined ? `[${section}]` : `${section}\0${key}`);
  const bad = (section: string, key: string, expected: string, found: unknown): OverlayBootError =>
    new OverlayBootError('PKG_CONFIG_INVALID', `${expected}, found ${JSON.stringify(found)}`, {
      file, line: at(section, key), variable: `${section}.${key}`, expected, found: String(found),
    });
  const where = (line: number | undefined): string => (line === undefined ? file : `${file}:${line}`);

  for (const [name, value] of Object.entries(data)) {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      config.warnings.push(`${where(at('', name))}: unknown key ${name} outside any section (ignored)`);
      continue;
    }
    const known = KNOWN[name];
    if (!known) {
      config.warnings.push(`${where(at(name))}: unknown section [${name}] (ignored)`);
      continue;
    }
    for (const key of Object.keys(value as Section)) {
      if (!known.includes(key)) config.warnings.push(`${where(at(name, key))}: unknown key ${key} in [${name}] (ignored)`);
    }
  }

  const get = (section: string, key: string): unknown => (data[section] as Section | undefined)?.[key];
  const absPath = (section: string, key: string): string | undefined => {
    const v = get(section, key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !path.isAbsolute(v) || v.includes('\0')) throw bad(section, key, 'an absolute path', v);
    return path.normalize(v);
  };

  config.trust.keys = absPath('trust', 'keys') ?? config.trust.keys;
  config.trust.deviceKey = absPath('trust', 'device_key');
  const req = get('trust', 'require_signature');
  if (req !== undefined) {
    // ini turns the words true and false into booleans and leaves anything else a string
    if (typeof req !== 'boolean') throw bad('trust', 'require_signature', 'true or false', req);
    config.trust.requireSignature = req;
  }
  config.paths.state = absPath('paths', 'state') ?? config.paths.state;
  config.paths.templates = absPath('paths', 'templates') ?? config.paths.templates;
  config.paths.socket = absPath('paths', 'socket') ?? config.paths.socket;
  config.paths.bootList = absPath('paths', 'boot_list') ?? config.paths.bootList;
  const size = (section: string, key: string): number | undefined => {
    const v = get(section, key);
    if (v === undefined) return undefined;
    const m = typeof v === 'string' ? /^([0-9]{1,15})([KMG]?)$/.exec(v.trim()) : null;
    const bytes = m ? Number(m[1]) * SIZE_UNITS[m[2]!]! : 0;
    if (!m || bytes <= 0 || !Number.isSafeInteger(bytes)) {
      throw bad(section, key, 'a positive number of bytes, optionally with K, M or G', v);
    }
    return bytes;
  };
  const integer = (section: string, key: string, min: number, max: number): number | undefined => {
    const v = get(section, key);
    if (v === undefined) return undefined;
    const n = typeof v === 'string' && /^[0-9]{1,9}$/.test(v.trim()) ? Number(v.trim()) : NaN;
    if (!(n >= min && n <= max)) throw bad(section, key, `a whole number from ${min} to ${max}`, v);
    return n;
  };
  config.limits.maxUnpackedSize = size('limits', 'max_unpacked_size') ?? config.limits.maxUnpackedSize;
  config.download.maxSize = size('download', 'max_size') ?? config.download.maxSize;
  const timeout = integer('download', 'timeout', 1, 86_400);
  if (timeout !== undefined) config.download.timeoutMs = timeout * 1000;
  config.download.retries = integer('download', 'retries', 0, 100) ?? config.download.retries;
  const group = get('daemon', 'group');
  if (group !== undefined) {
    // a name as useradd(8) accepts it, or a gid; whether it exists is checked by the daemon
    if (typeof group !== 'string' || !/^(?:[a-z_][a-z0-9_-]{0,31}\$?|[0-9]{1,10})$/.test(group)) throw bad('daemon', 'group', 'a group name or gid', group);
    config.daemon.group = group;
  }
  const euTimeout = integer('lifecycle', 'eu_timeout', 1, 3600);
  if (euTimeout !== undefined) config.lifecycle.euTimeoutMs = euTimeout * 1000;
  return config;
}
