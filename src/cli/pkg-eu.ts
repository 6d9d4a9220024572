/** overlay-pkg's execution-unit commands (eus, start, stop, restart). */
import type { PkgCommand } from './pkg-command.js';

/** The EU commands, by name. */
export const EU_COMMANDS: Record<string, PkgCommand> = {};
