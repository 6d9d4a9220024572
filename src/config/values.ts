import type { Where } from './where.js';
import { configError } from './where.js';

/** Longest NAME: the host end `NAME<i>` (plus `.N` for VLANs) must fit in 15 bytes. */
export const MAX_NAME_LENGTH = 12;
export const DEFAULT_START = ['networking', 'ssh'];
export const DEFAULT_RAM_SIZE = '50M';
export const DEFAULT_STOP_TIMEOUT = 10;
export const MAX_STOP_TIMEOUT = 3600;

/**
 * Checks NAME. It names a netns file, a cgroup directory and interface prefixes, so
 * only `[A-Za-z0-9_-]`, starting alphanumeric (a leading `-` reads as an option to
 * `ip`), at most 12 characters.
 */
export function checkName(name: string, where: Where): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name) || name.length > MAX_NAME_LENGTH) {
    throw configError(
      'CONFIG_BAD_NAME',
      `"${name}" is not a subhost name: use 1 to ${MAX_NAME_LENGTH} of A-Z a-z 0-9 _ -, starting with a letter or digit`,
      where,
      { expected: `1..${MAX_NAME_LENGTH} of [A-Za-z0-9_-], first alphanumeric`, found: name },
    );
  }
  return name;
}

/** RAM_SIZE: `none` (undefined: no tmpfs on /run) or a size tmpfs accepts (`50M`, `1g`, `10%`). */
export function parseRamSize(value: string, where: Where): string | undefined {
  if (value === 'none') return undefined;
  if (!/^[0-9]+[kKmMgG%]?$/.test(value)) {
    throw configError('CONFIG_BAD_SIZE', `"${value}" is not a tmpfs size such as 50M, 1G or 10%, nor "none"`, where, {
      expected: 'none or digits with an optional k, m, g or % suffix',
      found: value,
    });
  }
  return value;
}

/**
 * START: `none` or white-space separated entries, each a service name (run as
 * `service X start`) or an absolute path (run as `/p start`). Anything else could
 * only be a typo or an attempt to smuggle shell syntax into the subhost's init.
 */
export function parseStart(value: string, where: Where): string[] {
  if (value === 'none') return [];
  const entries = value.split(/\s+/).filter((s) => s !== '');
  for (const entry of entries) {
    if (!/^[A-Za-z0-9_.@+-]+$/.test(entry) && !/^\/\S*$/.test(entry)) {
      throw configError('CONFIG_BAD_VALUE', `START entry "${entry}" is neither a service name nor an absolute path`, where, {
        expected: 'service names ([A-Za-z0-9_.@+-]) or absolute paths, or none',
        found: entry,
      });
    }
  }
  return entries;
}

/** STOP_TIMEOUT: whole seconds from 1 to 3600. */
export function parseStopTimeout(value: string, where: Where): number {
  const seconds = /^[0-9]{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(seconds >= 1 && seconds <= MAX_STOP_TIMEOUT)) {
    throw configError('CONFIG_BAD_VALUE', `"${value}" is not a whole number of seconds from 1 to ${MAX_STOP_TIMEOUT}`, where, {
      expected: `1..${MAX_STOP_TIMEOUT}`,
      found: value,
    });
  }
  return seconds;
}

/** PRIVILEGED: yes (the default: root inside is root on the host) or no (a user namespace). */
export function parsePrivileged(value: string, where: Where): boolean {
  if (value === 'yes' || value === 'no') return value === 'yes';
  throw configError('CONFIG_BAD_VALUE', `PRIVILEGED is "${value}"; it is yes or no`, where, { expected: 'yes or no', found: value });
}

/** RUN: a command line for a supervised foreground service; an empty one would spin. */
export function parseRun(value: string, where: Where): string {
  if (value === '') {
    throw configError('CONFIG_BAD_VALUE', 'RUN needs a command line', where, { expected: 'a command line', found: '' });
  }
  return value;
}

/** Highest CPU_MAX: a thousand CPUs' worth, well beyond any host this runs on. */
export const MAX_CPU_PERCENT = 100000;
/** Highest PIDS_MAX: the kernel's PID_MAX_LIMIT. */
export const MAX_PIDS = 4194304;

/** `max` (or an empty value, handled by the reader) leaves a resource unlimited. */
function unlimited(value: string): boolean {
  return value === 'max';
}

/** Bytes of a size such as `500K`, `256M` or `2G` (K, M, G, T: powers of 1024); NaN when it is none. */
function sizeBytes(value: string): number {
  const m = /^([0-9]{1,15})([kKmMgGtT]?)$/.exec(value);
  const power = m ? ' kmgt'.indexOf(m[2]!.toLowerCase() || ' ') : 0;
  const bytes = m ? Number(m[1]) * 1024 ** power : NaN;
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : NaN;
}

/** MEMORY_MAX: `max`, or bytes with an optional K, M, G or T suffix (powers of 1024). */
export function parseMemoryMax(value: string, where: Where): number | undefined {
  if (unlimited(value)) return undefined;
  const bytes = sizeBytes(value);
  if (Number.isNaN(bytes)) {
    throw configError('CONFIG_BAD_VALUE', `MEMORY_MAX "${value}" is not a size such as 256M or 2G, nor "max"`, where, {
      expected: 'max, or a positive number with an optional K, M, G or T suffix',
      found: value,
    });
  }
  return bytes;
}

/** Smallest LOG_MAX_SIZE: a few log lines; below it every line would start a new file. */
export const MIN_LOG_MAX_SIZE = 1024;
/** Default LOG_KEEP when LOG_MAX_SIZE is set. */
export const DEFAULT_LOG_KEEP = 10;
/** Most rotated logs LOG_KEEP may keep. */
export const MAX_LOG_KEEP = 1000;

/** LOG_MAX_SIZE: the size (as MEMORY_MAX's, at least 1K) past which LOG is rotated; `none`: never. */
export function parseLogMaxSize(value: string, where: Where): number | undefined {
  if (value === 'none') return undefined;
  const bytes = sizeBytes(value);
  if (!(bytes >= MIN_LOG_MAX_SIZE)) {
    throw configError('CONFIG_BAD_VALUE', `LOG_MAX_SIZE "${value}" is not a size of at least 1K such as 500K or 10M, nor "none"`, where, {
      expected: `none, or ${MIN_LOG_MAX_SIZE} or more bytes with an optional K, M, G or T suffix`,
      found: value,
    });
  }
  return bytes;
}

/** LOG_KEEP: how many rotated, compressed logs to keep, 1 to 1000. */
export function parseLogKeep(value: string, where: Where): number {
  const n = /^[0-9]{1,4}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_LOG_KEEP)) {
    throw configError('CONFIG_BAD_VALUE', `LOG_KEEP "${value}" is not a whole number from 1 to ${MAX_LOG_KEEP}`, where, {
      expected: `1..${MAX_LOG_KEEP}`,
      found: value,
    });
  }
  return n;
}

/** CPU_MAX: `max`, or a whole percent of one CPU (`50`, `50%`; `200` is two CPUs). */
export function parseCpuMax(value: string, where: Where): number | undefined {
  if (unlimited(value)) return undefined;
  const m = /^([0-9]{1,6})%?$/.exec(value);
  const percent = m ? Number(m[1]) : NaN;
  if (!(percent >= 1 && percent <= MAX_CPU_PERCENT)) {
    throw configError('CONFIG_BAD_VALUE', `CPU_MAX "${value}" is not a percent of one CPU from 1 to ${MAX_CPU_PERCENT}, nor "max"`, where, {
      expected: `max, or 1..${MAX_CPU_PERCENT} with an optional %`,
      found: value,
    });
  }
  return percent;
}

/** PIDS_MAX: `max`, or how many processes and threads the subhost may have at once. */
export function parsePidsMax(value: string, where: Where): number | undefined {
  if (unlimited(value)) return undefined;
  const n = /^[0-9]{1,7}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= MAX_PIDS)) {
    throw configError('CONFIG_BAD_VALUE', `PIDS_MAX "${value}" is not a whole number from 1 to ${MAX_PIDS}, nor "max"`, where, {
      expected: `max, or 1..${MAX_PIDS}`,
      found: value,
    });
  }
  return n;
}
