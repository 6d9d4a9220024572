import path from 'node:path';
import type { OverlayBootError } from '../errors.js';
import type { RootVariant } from './types.js';
import { requireDirectory, resolveExisting, type ExistingPath } from './fspath.js';
import { configError, type Where } from './where.js';

/** A path variable's value (already `!`-evaluated, defaults applied) and where it came from. */
export interface PathValue {
  value: string;
  where: Where;
}

export interface RootLayoutInput {
  base: string;
  live: PathValue;
  upper: PathValue;
  work: PathValue;
  lower: PathValue;
}

export interface RootLayout {
  live: string;
  upper?: string;
  upperProgram?: string;
  work: string;
  lower: string;
  rootVariant: RootVariant;
}

/**
 * LAYERS: white-space separated directories, top first, each resolved against BASE
 * to its real path (so the plan shows what is mounted). A backslash keeps the next
 * character, so `a\ b` names the directory "a b". Gathers every error.
 */
export async function resolveLayers(base: string, layers: PathValue): Promise<{ layers: string[]; errors: OverlayBootError[] }> {
  const errors: OverlayBootError[] = [];
  const out: string[] = [];
  for (const value of splitLayers(layers.value)) {
    try {
      out.push((await existingDirectory(base, { value, where: layers.where })).path);
    } catch (e) {
      errors.push(e as OverlayBootError);
    }
  }
  return { layers: out, errors };
}

/** Splits on unescaped white space; `\x` stands for x (a space, a backslash). */
export function splitLayers(value: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < value.length; i++) {
    let c = value[i]!;
    if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
      continue;
    }
    if (c === '\\' && i + 1 < value.length) c = value[++i]!;
    word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/**
 * Resolves LIVE, UPPER, WORK and LOWER against BASE, checks each is what it must
 * be, and picks the root filesystem variant. Gathers every error rather than
 * stopping at the first.
 */
export async function resolveRootLayout(input: RootLayoutInput): Promise<{ layout: RootLayout; errors: OverlayBootError[] }> {
  const errors: OverlayBootError[] = [];
  const attempt = async <T>(fn: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await fn();
    } catch (e) {
      errors.push(e as OverlayBootError);
      return undefined;
    }
  };
  const lexical = (v: PathValue) => path.resolve(input.base, v.value);
  const live = await attempt(() => existingDirectory(input.base, input.live));
  const lower = await attempt(() => existingDirectory(input.base, input.lower));
  const upper = await attempt(() => resolveExisting(input.base, input.upper.value, input.upper.where));
  const layout: RootLayout = {
    live: live?.path ?? lexical(input.live),
    lower: lower?.path ?? lexical(input.lower),
    work: lexical(input.work),
    rootVariant: 'overlay',
  };
  if (upper !== undefined) {
    await attempt(async () => classifyUpper(upper, input.upper.where, layout));
  } else {
    layout.upper = lexical(input.upper);
  }
  layout.rootVariant = rootVariant(layout);
  if (layout.rootVariant === 'overlay') {
    const work = await attempt(() => existingDirectory(input.base, input.work));
    if (work !== undefined) {
      layout.work = work.path;
      if (upper?.stats.isDirectory() && upper.stats.dev !== work.stats.dev) {
        errors.push(notSameFs(work.path, upper.path, input.work.where));
      }
    }
  } else {
    // Not mounted as an overlay, so WORK is unused; report its real path when it has one.
    const work = await resolveExisting(input.base, input.work.value, input.work.where).catch(() => undefined);
    if (work !== undefined) layout.work = work.path;
  }
  return { layout, errors };
}

/** Variant 1 when LIVE is LOWER, variant 2 when UPPER is LOWER, else an overlay (SPEC "Root filesystem variants"). */
export function rootVariant(layout: Pick<RootLayout, 'live' | 'upper' | 'lower'>): RootVariant {
  if (layout.live === layout.lower) return 'premounted';
  if (layout.upper !== undefined && layout.upper === layout.lower) return 'bind';
  return 'overlay';
}

async function existingDirectory(base: string, v: PathValue): Promise<ExistingPath> {
  const p = await resolveExisting(base, v.value, v.where);
  requireDirectory(p, v.where);
  return p;
}

// UPPER may be a program that prints the real upper directory at boot; it is only
// recognised here, never run: reading a config must not change the host.
function classifyUpper(upper: ExistingPath, where: Where, layout: RootLayout): void {
  if (upper.stats.isDirectory()) {
    layout.upper = upper.path;
  } else if (upper.stats.isFile() && (upper.stats.mode & 0o111) !== 0) {
    layout.upperProgram = upper.path;
  } else {
    layout.upper = upper.path;
    throw configError('CONFIG_BAD_PATH', `${upper.path} is neither a directory nor an executable file`, where, {
      expected: 'a directory or an executable program',
      found: upper.path,
    });
  }
}

function notSameFs(work: string, upper: string, where: Where): OverlayBootError {
  return configError('CONFIG_NOT_SAME_FS', `${work} is not on the same filesystem as UPPER ${upper}; overlayfs needs both on one`, where, {
    expected: `on the filesystem of ${upper}`,
    found: work,
  });
}
