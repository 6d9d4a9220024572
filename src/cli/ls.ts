import { parseArgs } from 'node:util';
import { list, status, type SubhostStatus } from '../commands/list.js';
import { processIO, type CliIO } from './io.js';
import { errorJSON, EXIT_USAGE, formatError } from './report.js';

const USAGE = `usage: overlay-ls [--json] [NAME]
  List the subhosts overlay-boot started, each checked against the kernel:
  running, booting, or stale (its processes are gone; overlay-stop cleans it).
`;

function uptime(s?: number): string {
  if (s === undefined) return '-';
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d${h}h` : h ? `${h}h${m}m` : m ? `${m}m${s % 60}s` : `${s}s`;
}

/** Rows as an aligned text table. */
export function formatTable(rows: SubhostStatus[]): string {
  const head = ['NAME', 'STATE', 'PID1', 'UPTIME', 'CABLES', 'SERVICES', 'CONFIG'];
  const body = rows.map((r) => [
    r.name, r.state, r.pid1 ? String(r.pid1) : '-', uptime(r.uptimeSeconds),
    r.cables.map((c) => `${c.hostIf}${c.bridge ? `@${c.bridge}` : ''}`).join(',') || '-',
    r.services.join(',') || '-', r.config,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  return [head, ...body].map((cols) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: {
      json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } }));
  } catch (e) {
    io.stderr(`overlay-ls: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) { io.stdout(USAGE); return 0; }
  if (positionals.length > 1) { io.stderr(USAGE); return EXIT_USAGE; }
  try {
    const rows = positionals.length ? [status(positionals[0]!)] : list();
    io.stdout(values.json ? JSON.stringify({ version: 1, subhosts: rows }, null, 2) + '\n' : formatTable(rows));
    return 0;
  } catch (e) {
    if (values.json) io.stdout(JSON.stringify(errorJSON(e)) + '\n');
    else io.stderr(formatError('overlay-ls', e));
    return 1;
  }
}
