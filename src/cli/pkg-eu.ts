/**
 * overlay-pkg's execution-unit commands: eus, start, stop, restart. Thin: the library
 * (src/lifecycle/eu-ops.ts) does the work, through overlay-pkgd when it runs (pkg-operation.ts); `--json` keys are TR-181's plus `Subhost` and
 * `changed`. Exit 0 on success (a stop of an Idle EU too, `changed: false`), 1 on a fault,
 * 2 on bad usage (an EUID without `/`).
 */
import { euRequestJSON } from '../daemon/results.js';
import { isOverlayBootError } from '../errors.js';
import { euRestart, euStart, euStop, listEUs, splitEuid, type EuOutcome, type EuRequestOptions, type ListedEU } from '../lifecycle/eu-ops.js';
import { flagOption, printJSON, UsageError, type PkgCommand, type PkgContext } from './pkg-command.js';
import { performOperation, printOutcome, printRecovered } from './pkg-operation.js';

const TOOL = 'overlay-pkg';

/** The human form of eus: one row per EU. */
export function formatEUs(eus: ListedEU[]): string {
  const rows = [['EUID', 'STATUS', 'AUTOSTART', 'FAULT', 'SUBHOST'],
    ...eus.map((e) => [e.EUID, e.Status, e.AutoStart ? 'yes' : 'no', e.ExecutionFaultCode, e.Subhost])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

async function eus(du: string | undefined, ctx: PkgContext): Promise<number> {
  const { ExecutionUnit, recovered } = await listEUs(ctx.config.paths.state, { timeoutMs: ctx.config.lifecycle.euTimeoutMs, ...(du === undefined ? {} : { du }) });
  printRecovered(ctx, recovered);
  if (flagOption(ctx, 'json')) printJSON(ctx, { changed: false, ExecutionUnit });
  else ctx.io.stdout(ExecutionUnit.length ? formatEUs(ExecutionUnit) : 'no EU\n');
  return 0;
}

const REQUESTS: Record<'start' | 'stop' | 'restart', (o: EuRequestOptions) => Promise<EuOutcome>> = { start: euStart, stop: euStop, restart: euRestart };

async function request(action: 'start' | 'stop' | 'restart', euid: string, ctx: PkgContext): Promise<number> {
  try {
    splitEuid(euid);
  } catch (e) {
    if (isOverlayBootError(e)) throw new UsageError(e.message);
    throw e;
  }
  const method = `eu.${action}` as const;
  const out = await performOperation(ctx, method, { eu: euid }, async () => {
    const o = await REQUESTS[action]({ config: ctx.config, euid, command: [TOOL, action, euid].join(' ') });
    return { json: euRequestJSON(o, euid), recovered: o.recovered };
  });
  return printOutcome(ctx, out, out.json.CurrentState !== 'Failed',
    (j) => `${String(j.EUID)} ${String(j.Status ?? '')}${j.changed ? '' : ' (nothing to do)'}\n`);
}

/** The EU commands, by name. */
export const EU_COMMANDS: Record<string, PkgCommand> = {
  eus: {
    usage: ['eus [DU]                                 the EUs (services) of every DU, or of one, with their live Status'],
    args: { min: 0, max: 1, what: 'at most one DU' },
    run: (a, c) => eus(a[0], c),
  },
  start: {
    usage: ['start EUID                               start an EU (DU/NAME); boots the DU\'s subhost if needed'],
    args: { min: 1, max: 1, what: 'one EUID' },
    run: (a, c) => request('start', a[0]!, c),
  },
  stop: {
    usage: ['stop EUID                                stop an EU; an Idle one is left alone (changed: false)'],
    args: { min: 1, max: 1, what: 'one EUID' },
    run: (a, c) => request('stop', a[0]!, c),
  },
  restart: {
    usage: ['restart EUID                             stop an EU if Active, then start it'],
    args: { min: 1, max: 1, what: 'one EUID' },
    run: (a, c) => request('restart', a[0]!, c),
  },
};
