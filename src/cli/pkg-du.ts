/**
 * overlay-pkg's deployment-unit commands: install, update, remove, list. Thin:
 * the library does the work (through overlay-pkgd when it runs: pkg-operation.ts); here options become its options and results become text
 * or `--json` with TR-181 keys plus `Subhost` and `changed`. Exit 0 on success (and for
 * an install of a byte-identical duplicate, `changed: false`), 1 on a fault.
 */
import { duJSON, operationJSON, updateJSON } from '../daemon/results.js';
import { installDU } from '../lifecycle/install.js';
import { listDUs, type ListedDU } from '../lifecycle/list.js';
import type { DuRecord } from '../lifecycle/store.js';
import { uninstallDU } from '../lifecycle/uninstall.js';
import { updateDU } from '../lifecycle/update.js';
import { flagOption, printJSON, stringOption, type PkgCommand, type PkgContext } from './pkg-command.js';
import { absoluteSource, credentials, performOperation, printOutcome, printRecovered, type Outcome } from './pkg-operation.js';

type EuLike = Pick<DuRecord['EUs'][number], 'EUID' | 'Status' | 'ExecutionFaultCode'>;

function euText(eus: EuLike[]): string {
  return eus.length === 0 ? 'no EUs' : eus.map((eu) => `${eu.EUID} ${eu.Status}${eu.ExecutionFaultCode === 'NoFault' ? '' : ` (${eu.ExecutionFaultCode})`}`).join(', ');
}

/** The EUs of an outcome's JSON (duJSON's ExecutionUnit). */
function eusOf(json: Record<string, unknown>): EuLike[] {
  return Array.isArray(json.ExecutionUnit) ? (json.ExecutionUnit as EuLike[]) : [];
}

const field = (json: Record<string, unknown>, k: string) => String(json[k] ?? '');

/** Whether an install outcome is that of a byte-identical duplicate: failed, nothing changed, the installed DU's fields given. */
function identicalInstall(json: Record<string, unknown>): boolean {
  return json.CurrentState === 'Failed' && json.changed === false && json.Name !== undefined;
}

async function install(file: string, ctx: PkgContext): Promise<number> {
  const source = absoluteSource(file);
  const ee = stringOption(ctx, 'ee');
  const name = stringOption(ctx, 'name');
  const key = stringOption(ctx, 'key');
  const auth = credentials(ctx);
  const start = !flagOption(ctx, 'no-start');
  const privileged = flagOption(ctx, 'privileged') || undefined;
  const alone = async (): Promise<Outcome> => {
    const out = await installDU({ config: ctx.config, source, ee, name, secret: key, ...auth, start, privileged, command: ['overlay-pkg', 'install', source].join(' ') });
    return { json: operationJSON(out.entry, out.changed, out.record), warnings: out.warnings, recovered: out.recovered };
  };
  const params = { url: source, ...(ee === undefined ? {} : { ee }), ...(name === undefined ? {} : { name }), ...(key === undefined ? {} : { key }), ...(privileged ? { privileged } : {}), ...auth };
  // the daemon boots every DU with its AutoStart EUs: --no-start runs here
  const out = start ? await performOperation(ctx, 'du.install', params, alone) : await alone();
  const identical = identicalInstall(out.json);
  return printOutcome(ctx, out, out.json.CurrentState !== 'Failed' || identical, (j) => {
    if (identical) return `${field(j, 'Name')} ${field(j, 'Version')} is installed as ${field(j, 'Subhost')} already (same bytes): nothing to do\n`;
    if (j.Name === undefined) return undefined;
    return `installed ${field(j, 'Name')} ${field(j, 'Version')} as subhost ${field(j, 'Subhost')} in ${field(j, 'ExecutionEnvRef')}: ${euText(eusOf(j))}\n`;
  });
}

async function remove(du: string, ctx: PkgContext): Promise<number> {
  const retainData = flagOption(ctx, 'retain-data');
  const out = await performOperation(ctx, 'du.uninstall', { du, ...(retainData ? { retainData } : {}) }, async () => {
    const o = await uninstallDU({ config: ctx.config, du, retainData, command: ['overlay-pkg', 'remove', du].join(' ') });
    return { json: operationJSON(o.entry, o.changed, o.record), recovered: o.recovered };
  });
  return printOutcome(ctx, out, out.json.CurrentState !== 'Failed',
    (j) => `removed ${field(j, 'Name')} ${field(j, 'Version')} (subhost ${field(j, 'Subhost')})${retainData ? ', its data retained' : ''}\n`);
}

async function update(du: string, file: string, ctx: PkgContext): Promise<number> {
  const source = absoluteSource(file);
  const forceDowngrade = flagOption(ctx, 'force-downgrade');
  const key = stringOption(ctx, 'key');
  const auth = credentials(ctx);
  const params = { du, url: source, ...(forceDowngrade ? { forceDowngrade } : {}), ...(key === undefined ? {} : { key }), ...auth };
  const out = await performOperation(ctx, 'du.update', params, async () => {
    const o = await updateDU({ config: ctx.config, du, source, forceDowngrade, secret: key, ...auth, command: ['overlay-pkg', 'update', du, source].join(' ') });
    return { json: updateJSON(o.entry, o.changed, o.record, o.conffilesKept), warnings: o.warnings, recovered: o.recovered };
  });
  return printOutcome(ctx, out, out.json.CurrentState !== 'Failed', (j) => {
    if (j.Name === undefined) return undefined;
    const kept = Array.isArray(j.conffilesKept) ? (j.conffilesKept as string[]) : [];
    return `updated ${field(j, 'Subhost')} to ${field(j, 'Name')} ${field(j, 'Version')}: ${euText(eusOf(j))}\n`
      + kept.map((c) => `kept your ${c}; the new version is ${c}-opkg\n`).join('');
  });
}

/** The human form of list: one row per DU. */
export function formatDUs(dus: ListedDU[]): string {
  const rows = [['SUBHOST', 'NAME', 'VERSION', 'EE', 'STATUS', 'RUNNING', 'EUS'],
    ...dus.map((d) => [d.Subhost, d.Name, d.Version, d.ExecutionEnvRef, d.Status, d.running ? 'yes' : 'no', euText(d.EUs)])];
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

/** Basic auth for an http(s) download: the password from a file or standard input, never from the command line. */
const AUTH_OPTIONS = { username: { type: 'string' }, 'password-file': { type: 'string' } } as const;

/** The DU commands, by name. */
export const DU_COMMANDS: Record<string, PkgCommand> = {
  install: {
    usage: [
      'install FILE|URL [--ee EE] [--name NAME] [--key SECRET] [--no-start] [--privileged]',
      '        [--username USER --password-file FILE|-]',
      '                                         install a package as a DU: its own subhost',
    ],
    options: { ee: { type: 'string' }, name: { type: 'string' }, key: { type: 'string' }, 'no-start': { type: 'boolean' }, privileged: { type: 'boolean' }, ...AUTH_OPTIONS },
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
      'update DU FILE|URL [--force-downgrade] [--key SECRET] [--username USER --password-file FILE|-]',
      '                                         another version of a DU\'s package; rolled back if an EU does not come back',
    ],
    options: { 'force-downgrade': { type: 'boolean' }, key: { type: 'string' }, ...AUTH_OPTIONS },
    args: { min: 2, max: 2, what: 'a DU and a FILE or URL' },
    run: (a, c) => update(a[0]!, a[1]!, c),
  },
  list: {
    usage: ['list                                     the installed DUs'],
    args: { min: 0, max: 0, what: 'no arguments' },
    run: (_a, c) => list(c),
  },
};
