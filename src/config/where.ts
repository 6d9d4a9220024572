import { OverlayBootError, type ErrorCode, type ErrorContext } from '../errors.js';

/** Where a config problem sits: the file, the 1-based line, the variable. */
export interface Where {
  file?: string;
  line?: number;
  variable?: string;
}

/**
 * Builds a config error carrying its location. The message itself never repeats the
 * file and line: `OverlayBootError.describe()` prefixes them, as compilers do.
 */
export function configError(
  code: ErrorCode,
  message: string,
  where: Where,
  extra: Omit<ErrorContext, 'file' | 'line' | 'variable'> = {},
): OverlayBootError {
  return new OverlayBootError(code, message, { ...extra, ...where });
}

/**
 * Throws nothing when `errors` is empty, the error itself when there is one, and a
 * CONFIG_INVALID listing them all otherwise, so that an administrator fixes every
 * mistake in one round instead of one per run.
 */
export function throwGathered(errors: OverlayBootError[], file: string): void {
  if (errors.length === 0) return;
  if (errors.length === 1) throw errors[0];
  const lines = errors.map((e) => `  ${e.describe()}`).join('\n');
  throw new OverlayBootError('CONFIG_INVALID', `${errors.length} errors in configuration:\n${lines}`, {
    file,
    errors,
  });
}
