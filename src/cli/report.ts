import { ERROR_CODES, isOverlayBootError } from '../errors.js';

/** Exit status for a usage error, as most tools use. */
export const EXIT_USAGE = 2;

/**
 * The one place where errors become messages: `tool: file:line: VAR: message [CODE]`,
 * one line per error, so an administrator can jump to the line.
 */
export function formatError(tool: string, e: unknown): string {
  if (!isOverlayBootError(e)) return `${tool}: ${(e as Error)?.message ?? String(e)}\n`;
  const list = e.code === 'CONFIG_INVALID' && e.errors?.length ? e.errors : [e];
  const lines = list.map((x) => `${tool}: ${x.describe()} [${x.code}]`);
  if (list.length > 1) lines.unshift(`${tool}: ${e.file ?? 'config'}: ${list.length} errors`);
  return lines.join('\n') + '\n';
}

export function errorJSON(e: unknown): Record<string, unknown> {
  if (isOverlayBootError(e)) return { error: e.toJSON() };
  return { error: { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) } };
}

export function codeTable(): string {
  return Object.entries(ERROR_CODES).map(([c, m]) => `${c}\t${m}`).join('\n') + '\n';
}
