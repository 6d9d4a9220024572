import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { configError, type Where } from './where.js';

/** An existing path, symlinks resolved, with what it is. */
export interface ExistingPath {
  path: string;
  stats: Stats;
}

/**
 * Resolves `value` against `dir` and then to its real path, so that the plan shows
 * what will really be mounted, not a symlink that may point elsewhere.
 * Throws CONFIG_BAD_PATH when nothing is there.
 */
export async function resolveExisting(dir: string, value: string, where: Where, code: 'CONFIG_BAD_PATH' | 'CONFIG_BAD_SHARE' = 'CONFIG_BAD_PATH'): Promise<ExistingPath> {
  const lexical = path.resolve(dir, value);
  try {
    const real = await realpath(lexical);
    return { path: real, stats: await stat(real) };
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be reached: ${(cause as Error).message}`;
    throw configError(code, `${lexical} ${why}`, where, { cause, found: lexical });
  }
}

/** Throws CONFIG_BAD_PATH unless `p` is a directory. */
export function requireDirectory(p: ExistingPath, where: Where): void {
  if (!p.stats.isDirectory()) {
    throw configError('CONFIG_BAD_PATH', `${p.path} is not a directory`, where, { expected: 'a directory', found: p.path });
  }
}
