import { parseArgs } from 'node:util';
import { stop, stopAll } from '../commands/stop.js';
import { isOverlayBootError } from '../errors.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-stop [--timeout SECONDS] CONF | --all
  Stop the subhost of CONF: its START services in reverse order, then TERM to
  every process, KILL after the timeout (default: STOP_TIMEOUT of CONF, 10 s);
  returns when nothing of it is left. Not running: cleans left-overs, exit 1.
  --all stops every running subhost, the last started first.
`;

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      timeout: { type: 'string', short: 't' }, all: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    io.stderr(`overlay-stop: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length !== (values.all ? 0 : 1)) { io.stderr(USAGE); return EXIT_USAGE; }
  const timeout = values.timeout === undefined ? undefined : Number(values.timeout);
  if (timeout !== undefined && !(Number.isInteger(timeout) && timeout >= 0 && timeout <= 3600)) {
    io.stderr(`overlay-stop: --timeout takes whole seconds from 0 to 3600, not ${values.timeout}\n`);
    return EXIT_USAGE;
  }
  if (values.all) {
    const results = await stopAll({ timeoutSeconds: timeout });
    for (const r of results) {
      if (r.error) io.stderr(formatError('overlay-stop', r.error));
      else if (!values.quiet) io.stdout(`${r.name} stopped\n`);
    }
    return results.some((r) => r.error) ? 1 : 0;
  }
  try {
    const r = await stop(positionals[0]!, { env: io.env, timeoutSeconds: timeout });
    if (!values.quiet) io.stdout(`${r.name} stopped${r.killed ? ' (killed after the timeout)' : ''}\n`);
    return 0;
  } catch (e) {
    // SPEC: a stopped subhost says "NAME is not running", exit 1.
    if (isOverlayBootError(e) && e.code === 'NOT_RUNNING') io.stderr(`${e.message}\n`);
    else io.stderr(formatError('overlay-stop', e));
    return 1;
  }
}
