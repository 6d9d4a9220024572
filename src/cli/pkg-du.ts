/**
 * overlay-pkg's deployment-unit commands: install, update, remove, list. Thin:
 * the library does the work; here options become its options and results become text
 * or `--json` with TR-181 keys plus `Subhost` and `changed`. Exit 0 on success (and for
 * an install of a byte-identical duplicate, `changed: false`), 1 on a fault.
 */
import type { Fault } from '../lifecycle/faults.js';
import type { HistoryEntry } from '../lifecycle/history.js';
import { installDU } from '../lifecycle/install.js';
import { listDUs, type ListedDU } from '../lifecycle/list.js';
import type { DuRecord } from '../lifecycle/store.js';
import { uninstallDU } from '../lifecycle/uninstall.js';
import { updateDU } from '../lifecycle/update.js';
import { flagOption, printJSON, stringOption, type PkgCommand, type PkgContext } from './pkg-command.js';

const TOOL = 'overlay-pkg';

/** A DU's TR-181 fields (and Subhost), as every DU command prints them. */
export function duJSON(r: DuRecord): Record<string, unknown> {
  return {
    Subhost: r.Subhost, Name: r.Name, Version: r.Version, UUID: r.UUID, DUID: r.DUID, Status: r.Status,
    ExecutionEnvRef: r.ExecutionEnvRef, Resolved: r.Resolved, Vendor: r.Vendor, Description: r.Description, URL: r.package.source,
    ExecutionUnitList: r.EUs.map((eu) => eu.EUID),
    ExecutionUnit: r.EUs.map((eu) => ({ EUID: eu.EUID, Name: eu.Name, Status: eu.Status, AutoStart: eu.AutoStart, ExecutionFaultCode: eu.ExecutionFaultCode })),
  };
}

/** An operation's result: OperationPerformed, CurrentState, Fault, with the DU's fields. */
function operationJSON(entry: HistoryEntry, changed: boolean, record: DuRecord | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {
    changed, OperationPerformed: entry.OperationPerformed, CurrentState: entry.CurrentState, Subhost: entry.Subhost,
    ...(record ? duJSON(record) : {}),
  };
  if (entry.UUID !== undefined) out.UUID = entry.UUID;
  if (entry.Version !== undefined) out.Version = entry.Version;
  if (entry.DUID !== undefined && record === undefined) out.DUID = entry.DUID;
  if (entry.Fault) out.Fault = entry.Fault;
  return out;
}

function faultLine(f: Fault): string {
  return `${TOOL}: fault ${f.FaultCode}: ${f.FaultString}\n`;
}

function euText(r: DuRecord): string {
  return r.EUs.length === 0 ? 'no EUs' : r.EUs.map((eu) => `${eu.EUID} ${eu.Status}${eu.ExecutionFaultCode === 'NoFault' ? '' : ` (${eu.ExecutionFaultCode})`}`).join(', ');
}

function printRecovered(ctx: PkgContext, recovered: HistoryEntry | undefined): void {
  if (recovered) ctx.io.stderr(`${TOOL}: recovered operation ${recovered.id} (${recovered.OperationPerformed} ${recovered.Subhost}) left by a crash: ${recovered.CurrentState}\n`);
}

async function install(source: string, ctx: PkgContext): Promise<number> {
  const out = await installDU({
    config: ctx.config, source, ee: stringOption(ctx, 'ee'), name: stringOption(ctx, 'name'), secret: stringOption(ctx, 'key'),
    start: !flagOption(ctx, 'no-start'), privileged: flagOption(ctx, 'privileged') || undefined, command: ['overlay-pkg', 'install', source].join(' '),
  });
  for (const w of out.warnings) ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  printRecovered(ctx, out.recovered);
  const ok = out.entry.CurrentState !== 'Failed' || out.identical === true;
  if (flagOption(ctx, 'json')) printJSON(ctx, operationJSON(out.entry, out.changed, out.record));
  else if (out.identical && out.record) ctx.io.stdout(`${out.record.Name} ${out.record.Version} is installed as ${out.record.Subhost} already (same bytes): nothing to do\n`);
  else if (out.record && ok) ctx.io.stdout(`installed ${out.record.Name} ${out.record.Version} as subhost ${out.record.Subhost} in ${out.record.ExecutionEnvRef}: ${euText(out.record)}\n`);
  if (!ok && out.entry.Fault) ctx.io.stderr(faultLine(out.entry.Fault));
  return ok ? 0 : 1;
}

async function remove(du: string, ctx: PkgContext): Promise<number> {
  const out = await uninstallDU({ config: ctx.config, du, retainData: flagOption(ctx, 'retain-data'), command: ['overlay-pkg', 'remove', du].join(' ') });
  printRecovered(ctx, out.recovered);
  const ok = out.entry.CurrentState !== 'Failed';
  if (flagOption(ctx, 'json')) printJSON(ctx, operationJSON(out.entry, out.changed, out.record));
  else if (ok) ctx.io.stdout(`removed ${out.record?.Name ?? ''} ${out.record?.Version ?? ''} (subhost ${out.entry.Subhost})${flagOption(ctx, 'retain-data') ? ', its data retained' : ''}\n`);
  if (!ok && out.entry.Fault) ctx.io.stderr(faultLine(out.entry.Fault));
  return ok ? 0 : 1;
}

async function update(du: string, source: string, ctx: PkgContext): Promise<number> {
  const out = await updateDU({
    config: ctx.config, du, source, forceDowngrade: flagOption(ctx, 'force-downgrade'), secret: stringOption(ctx, 'key'),
    command: ['overlay-pkg', 'update', du, source].join(' '),
  });
  for (const w of out.warnings) ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  printRecovered(ctx, out.recovered);
  const ok = out.entry.CurrentState !== 'Failed';
  if (flagOption(ctx, 'json')) printJSON(ctx, { ...operationJSON(out.entry, out.changed, out.record), conffilesKept: out.conffilesKept });
  else if (ok && out.record) {
    ctx.io.stdout(`updated ${out.record.Subhost} to ${out.record.Name} ${out.record.Version}: ${euText(out.record)}\n`);
    for (const c of out.conffilesKept) ctx.io.stdout(`kept your ${c}; the new version is ${c}-opkg\n`);
  }
  if (!ok && out.entry.Fault) ctx.io.stderr(faultLine(out.entry.Fault));
  return ok ? 0 : 1;
}

/** The human form of list: one row per DU. */
export function formatDUs(dus: ListedDU[]): string {
  const rows = [['SUBHOST', 'NAME', 'VERSION', 'EE', 'STATUS', 'RUNNING', 'EUS'],
    ...dus.map((d) => [d.Subhost, d.Name, d.Version, d.ExecutionEnvRef, d.Status, d.running ? 'yes' : 'no', euText(d)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n') + '\n';
}

async function list(ctx: PkgContext): Promise<number> {
  const { DeploymentUnit, recovered } = await listDUs(ctx.config.paths.state);
  printRecovered(ctx, recovered);
  if (flagOption(ctx, 'json')) printJSON(ctx, { changed: false, DeploymentUnit: DeploymentUnit.map((d) => ({ ...duJSON(d), running: d.running })) });
  else ctx.io.stdout(DeploymentUnit.length ? formatDUs(DeploymentUnit) : 'no DU installed\n');
  return 0;
}

/** The DU commands, by name. */
export const DU_COMMANDS: Record<string, PkgCommand> = {
  install: {
    usage: [
      'install FILE|URL [--ee EE] [--name NAME] [--key SECRET] [--no-start] [--privileged]',
      '                                         install a package as a DU: its own subhost',
    ],
    options: { ee: { type: 'string' }, name: { type: 'string' }, key: { type: 'string' }, 'no-start': { type: 'boolean' }, privileged: { type: 'boolean' } },
    args: { min: 1, max: 1, what: 'one FILE or URL' },
    run: (a, c) => install(a[0]!, c),
  },
  remove: {
    usage: ['remove DU [--retain-data]                remove a DU (subhost NAME or UUID) without a trace'],
    options: { 'retain-data': { type: 'boolean' } },
    args: { min: 1, max: 1, what: 'one DU' },
    run: (a, c) => remove(a[0]!, c),
  },
  update: {
    usage: [
      'update DU FILE|URL [--force-downgrade] [--key SECRET]',
      '                                         another version of a DU\'s package; rolled back if an EU does not come back',
    ],
    options: { 'force-downgrade': { type: 'boolean' }, key: { type: 'string' } },
    args: { min: 2, max: 2, what: 'a DU and a FILE or URL' },
    run: (a, c) => update(a[0]!, a[1]!, c),
  },
  list: {
    usage: ['list                                     the installed DUs'],
    args: { min: 0, max: 0, what: 'no arguments' },
    run: (_a, c) => list(c),
  },
};
