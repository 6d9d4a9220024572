import { statSync } from 'node:fs';
import path from 'node:path';
import type { Share, Warning } from './types.js';
import { resolveExisting } from './fspath.js';
import { configError, type Where } from './where.js';

export interface ShareInput {
  raw: string;
  line: number;
  base: string;
  lower: string;
  file: string;
}

/**
 * Reads one SHARE value: `dir` (shared at the same path) or `hostdir:subhostdir`.
 * The host side is relative to BASE and resolved to its real path; it is skipped
 * (with a warning) when it is LOWER itself, which the subhost already sees.
 * Never `!`-evaluated: a SHARE value is always a path.
 */
export async function resolveShare(input: ShareInput): Promise<{ share?: Share; warning?: Warning }> {
  const where: Where = { file: input.file, line: input.line, variable: 'SHARE' };
  const { hostSide, subhostSide } = splitShare(input.raw, where);
  const host = await resolveExisting(input.base, hostSide, where, 'CONFIG_BAD_SHARE');
  if (host.path === input.lower) {
    return { warning: { message: `SHARE ${input.raw} is LOWER itself (${host.path}) and is skipped`, line: input.line, variable: 'SHARE' } };
  }
  const subhostPath = subhostSide === undefined ? path.resolve(input.base, hostSide) : subhostAbsolute(subhostSide, where);
  if (subhostPath === '/') {
    throw configError('CONFIG_BAD_SHARE', `SHARE ${input.raw} would cover the subhost's whole root`, where, { found: input.raw });
  }
  return {
    share: { hostPath: host.path, subhostPath, isDirectory: host.stats.isDirectory(), line: input.line, raw: input.raw },
  };
}

function splitShare(raw: string, where: Where): { hostSide: string; subhostSide?: string } {
  const colon = raw.indexOf(':');
  const hostSide = colon === -1 ? raw : raw.slice(0, colon);
  const subhostSide = colon === -1 ? undefined : raw.slice(colon + 1);
  if (hostSide === '' || subhostSide === '') {
    throw configError('CONFIG_BAD_SHARE', `"${raw}" is not dir or hostdir:subhostdir`, where, {
      expected: 'dir or hostdir:subhostdir',
      found: raw,
    });
  }
  return subhostSide === undefined ? { hostSide } : { hostSide, subhostSide };
}

/**
 * The subhost side must be absolute, and a `..` must not climb above the subhost's
 * root: path.posix.normalize would silently clamp `/../etc` to `/etc`, hiding a mistake.
 */
function subhostAbsolute(p: string, where: Where): string {
  if (!p.startsWith('/')) {
    throw configError('CONFIG_BAD_SHARE', `subhost path "${p}" is not absolute`, where, { expected: 'an absolute path', found: p });
  }
  let depth = 0;
  for (const part of p.split('/')) {
    if (part === '..') depth -= 1;
    else if (part !== '' && part !== '.') depth += 1;
    if (depth < 0) {
      throw configError('CONFIG_BAD_SHARE', `subhost path "${p}" climbs above the subhost's root`, where, { found: p });
    }
  }
  return path.posix.normalize(p).replace(/(.)\/+$/, '$1');
}

/**
 * Whether PATH is a character or block device node of the host (false when it does not
 * exist). SHARE and overlay-share never hand one to an unprivileged subhost, whose root is
 * not the host's.
 */
export function isDeviceNode(file: string): boolean {
  try {
    const st = statSync(file);
    return st.isCharacterDevice() || st.isBlockDevice();
  } catch {
    return false;
  }
}
