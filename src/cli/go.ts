import { enter } from '../commands/enter.js';
import { list } from '../commands/list.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-go [NAME [COMMAND [ARG...]]]
  Run COMMAND (default: the subhost's /bin/bash, else /bin/sh) inside every
  namespace, the root and working directory of the running subhost NAME; the
  exit status is the command's. Without NAME: list the running subhosts.
`;

/** The names of running subhosts, one a line (what the shell tool's overlay-go prints without NAME). */
export function runningNames(): string {
  return list().filter((s) => s.state === 'running').map((s) => `${s.name}\n`).join('');
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  if (argv[0] === '-h' || argv[0] === '--help') { io.stdout(USAGE); return 0; }
  if (argv[0]?.startsWith('-')) { io.stderr(USAGE); return EXIT_USAGE; }
  if (!argv.length) { io.stdout(runningNames()); return 0; }
  try {
    return await enter(argv[0]!, argv.slice(1));
  } catch (e) {
    io.stderr(formatError('overlay-go', e));
    return 1;
  }
}
