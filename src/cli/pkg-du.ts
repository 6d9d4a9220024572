/** overlay-pkg's deployment-unit commands (install, update, remove, list). */
import type { PkgCommand } from './pkg-command.js';

/** The DU commands, by name. */
export const DU_COMMANDS: Record<string, PkgCommand> = {};
