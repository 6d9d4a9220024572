import { parseArgs } from 'node:util';
import { share, unshare } from '../commands/share.js';
import { runningNames } from './go.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-share [--remove] DIR NAME [SUBHOSTDIR]
  Bind-mount the host directory (or file) DIR into the running subhost NAME at
  SUBHOSTDIR (default: the same path). --remove undoes it. Without NAME: list
  the running subhosts.
`;

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      remove: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    io.stderr(`overlay-share: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length === 0 || positionals.length > 3) { io.stderr(USAGE); return EXIT_USAGE; }
  if (positionals.length === 1) { io.stdout(runningNames()); return 0; }
  const [dir, name, sub] = positionals as [string, string, string | undefined];
  try {
    if (values.remove) await unshare(name, sub ?? dir);
    else await share(dir, name, { subhostPath: sub });
    return 0;
  } catch (e) {
    io.stderr(formatError('overlay-share', e));
    return 1;
  }
}
