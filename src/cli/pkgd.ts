import { parseArgs } from 'node:util';
import { createPkgDaemon } from '../daemon/index.js';
import { writePidFile, type PidFile } from '../daemon/pidfile.js';
import { readPkgConfig } from '../package/config.js';
import { processIO, type CliIO } from './io.js';
import { EXIT_USAGE, formatError } from './report.js';

const TOOL = 'overlay-pkgd';

const USAGE = `usage: overlay-pkgd [--config FILE] [--socket PATH] [--pidfile FILE]
  Runs the lifecycle daemon in the foreground: JSON-RPC 2.0 lines on a Unix socket
  ([paths] socket, default /run/overlay-boot/pkgd.sock), for root and [daemon] group.
  --pidfile: its pid is written to FILE once the socket accepts connections (ready).
  SIGTERM or SIGINT: close the socket, remove it (and FILE), exit 0. See overlay-pkgd(8).
`;

/**
 * overlay-pkgd: listens until SIGTERM or SIGINT, logging one line per connection,
 * refusal and failure to stderr. Exit 0 after a signal, 1 when it cannot start, 2 for usage.
 */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values: { config?: string; socket?: string; pidfile?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { config: { type: 'string' }, socket: { type: 'string' }, pidfile: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: false,
    }));
  } catch (e) {
    io.stderr(`${TOOL}: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    io.stdout(USAGE);
    return 0;
  }
  const log = (line: string) => io.stderr(`${new Date().toISOString()} ${TOOL}: ${line}\n`);
  let stop: (signal: NodeJS.Signals) => void = () => {};
  const stopped = new Promise<NodeJS.Signals>((resolve) => { stop = resolve; });
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  let pidFile: PidFile | undefined;
  try {
    const config = readPkgConfig({ file: values.config, env: io.env });
    for (const w of config.warnings) io.stderr(`${TOOL}: warning: ${w}\n`);
    const daemon = createPkgDaemon({ config, socketPath: values.socket, log });
    await daemon.listen();
    try {
      if (values.pidfile !== undefined) pidFile = writePidFile(values.pidfile);
    } catch (e) {
      await daemon.close();
      throw e;
    }
    const signal = await stopped;
    log(`${signal}: stopping`);
    await daemon.close();
    log('stopped');
    return 0;
  } catch (e) {
    io.stderr(formatError(TOOL, e));
    return 1;
  } finally {
    pidFile?.remove();
    process.off('SIGTERM', stop);
    process.off('SIGINT', stop);
  }
}
