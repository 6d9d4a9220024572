/**
 * The shape of one overlay-pkg subcommand, so that each group of commands (packages,
 * DUs, EUs) lives in its own file and src/cli/pkg.ts only parses and dispatches.
 */
import type { PkgConfig } from '../package/config.js';
import type { CliIO } from './io.js';

/** An option of parseArgs. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

/** The options given, by long name. */
export type OptionValues = Record<string, string | boolean | undefined>;

/** What a command runs with. */
export interface PkgContext {
  values: OptionValues;
  config: PkgConfig;
  io: CliIO;
}

/** One subcommand. */
export interface PkgCommand {
  /** Usage lines (without the leading two spaces), the first starting with the command's name. */
  usage: string[];
  /** Options besides the global ones (--config, --json, --help). */
  options?: Record<string, OptionSpec>;
  /** How many positional arguments it takes, and what to call them in a usage error. */
  args: { min: number; max: number; what: string };
  /** Runs it: 0 success, 1 fault; throws UsageError for bad usage (exit 2). */
  run(args: string[], ctx: PkgContext): Promise<number>;
}

/** Bad usage: exit status 2 with the usage text. */
export class UsageError extends Error {}

/** A string option's value. */
export function stringOption(ctx: PkgContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

/** A boolean option's value. */
export function flagOption(ctx: PkgContext, name: string): boolean {
  return ctx.values[name] === true;
}

/** Prints `value` as JSON (one document, pretty) on stdout. */
export function printJSON(ctx: PkgContext, value: unknown): void {
  ctx.io.stdout(JSON.stringify(value, null, 2) + '\n');
}
