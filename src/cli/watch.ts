import { parseArgs } from 'node:util';
import { pino, type Logger } from 'pino';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_WATCH_DIR, reconcileDir, watch } from '../commands/watch.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-watch [--once] [--debounce-ms MS] [-v] [DIR]
  DIR              directory of subhost configs (*.conf); default ${DEFAULT_WATCH_DIR}
  --once           reconcile DIR once and exit (status 1 if any config failed)
  --debounce-ms MS quiet time before a changed config is acted on (default ${DEFAULT_DEBOUNCE_MS})
  -v, --verbose    log debug lines too
`;

/** JSON lines to stdout; pretty lines when stdout is a terminal (pino-pretty is loaded only then). */
async function makeLogger(io: CliIO, verbose: boolean): Promise<Logger> {
  const level = verbose ? 'debug' : 'info';
  const stream = io.isTTY
    ? (await import('pino-pretty')).default({ colorize: true, destination: 1, sync: true })
    : { write: (line: string) => io.stdout(line) };
  return pino({ name: 'overlay-watch', level }, stream);
}

/**
 * overlay-watch: keep the subhosts of DIR in step with its configs. Exits 0 on
 * SIGTERM or SIGINT (or `signal`, for tests) and leaves every subhost running.
 */
export async function main(argv: string[], io: CliIO = processIO, signal?: AbortSignal): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        once: { type: 'boolean' }, 'debounce-ms': { type: 'string' },
        verbose: { type: 'boolean', short: 'v' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr(`overlay-watch: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length > 1) { io.stderr(USAGE); return EXIT_USAGE; }
  const debounceText = values['debounce-ms'];
  const debounceMs = debounceText === undefined ? undefined : Number(debounceText);
  if (debounceMs !== undefined && !(Number.isInteger(debounceMs) && debounceMs >= 0)) {
    io.stderr(`overlay-watch: --debounce-ms wants a whole number of milliseconds, not ${debounceText}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const dir = positionals[0] ?? DEFAULT_WATCH_DIR;
  const logger = await makeLogger(io, values.verbose ?? false);
  const options = { env: io.env, logger, debounceMs };

  if (values.once) {
    try {
      const report = await reconcileDir(dir, options);
      logger.info({ dir, booted: report.booted.length, restarted: report.restarted.length, stopped: report.stopped.length,
        unchanged: report.unchanged.length, failed: report.failed.length }, `Reconciled ${dir}`);
      return report.failed.length > 0 ? 1 : 0;
    } catch (e) {
      io.stderr(formatError('overlay-watch', e));
      return 1;
    }
  }

  let handle;
  try {
    handle = watch(dir, options);
  } catch (e) {
    io.stderr(formatError('overlay-watch', e));
    return 1;
  }
  let onSignal!: (why: string) => void;
  const stopped = new Promise<string>((resolve) => { onSignal = resolve; });
  const term = () => onSignal('SIGTERM');
  const int = () => onSignal('SIGINT');
  const abort = () => onSignal('abort');
  process.on('SIGTERM', term);
  process.on('SIGINT', int);
  signal?.addEventListener('abort', abort, { once: true });
  if (signal?.aborted) abort();
  const cleanup = () => {
    process.off('SIGTERM', term);
    process.off('SIGINT', int);
    signal?.removeEventListener('abort', abort);
  };
  try {
    await Promise.race([handle.ready, stopped]);
  } catch (e) {
    cleanup();
    await handle.close();
    io.stderr(formatError('overlay-watch', e));
    return 1;
  }
  const why = await stopped;
  logger.info({ dir: handle.dir, signal: why }, 'Exiting; subhosts keep running');
  // Keep the handlers until operations under way are done: a second signal must not cut a boot in half.
  await handle.close();
  cleanup();
  return 0;
}
