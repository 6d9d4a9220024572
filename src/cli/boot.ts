import { parseArgs } from 'node:util';
import { boot } from '../commands/boot.js';
import { checkConfig } from '../commands/check.js';
import { formatPlan } from '../plan/format.js';
import { processIO, type CliIO } from './io.js';
import { errorJSON, EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-boot [--check [--json]] [--foreground] CONF
  CONF           the subhost's configuration file (see overlay-boot.conf(5))
  --check        read and check CONF and print the boot plan; change nothing
  --json         with --check: print the plan (or the errors) as one JSON document
  --foreground   stay until the subhost ends (for supervisors such as systemd)
  --pidfile FILE write the pid of the subhost's monitor to FILE (systemd PIDFile=)
  -q, --quiet    print nothing on success
`;

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true,
      options: {
        check: { type: 'boolean' }, json: { type: 'boolean' }, foreground: { type: 'boolean' }, pidfile: { type: 'string' },
        quiet: { type: 'boolean', short: 'q' }, help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    io.stderr(`overlay-boot: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length !== 1) { io.stderr(USAGE); return EXIT_USAGE; }
  const conf = positionals[0]!;

  if (values.check) {
    try {
      const { config, plan } = await checkConfig(conf, { env: io.env });
      if (values.json) io.stdout(JSON.stringify({ valid: true, config, plan }, null, 2) + '\n');
      else io.stdout(formatPlan(config, plan));
      return 0;
    } catch (e) {
      if (values.json) io.stdout(JSON.stringify({ valid: false, ...errorJSON(e) }, null, 2) + '\n');
      else io.stderr(formatError('overlay-boot', e));
      return 1;
    }
  }

  try {
    const r = await boot(conf, { env: io.env, foreground: values.foreground, pidFile: values.pidfile });
    if (!values.quiet) io.stdout(`${r.name} started: pid 1 is ${r.pid1}, log ${r.log}\n`);
    if (r.ended) {
      const code = await r.ended;
      if (!values.quiet) io.stdout(`${r.name} ended\n`);
      return code ?? 1;
    }
    return 0;
  } catch (e) {
    io.stderr(formatError('overlay-boot', e));
    return 1;
  }
}
