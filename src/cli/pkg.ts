import { parseArgs } from 'node:util';
import { buildPackage, buildRemovalPackage, type BuildResult } from '../package/build.js';
import { readPkgConfig } from '../package/config.js';
import { loadTrustedKeys, type TrustedKey } from '../package/keys.js';
import { openPackage } from '../package/open.js';
import { signPackage } from '../package/sign.js';
import type { DataFile, PackageInfo } from '../package/types.js';
import { verifyPackage } from '../package/verify.js';
import { History, type HistoryEntry } from '../lifecycle/history.js';
import { packageSecret } from '../lifecycle/source.js';
import { listExecEnvs, type ExecEnv } from '../lifecycle/templates.js';
import { processIO, type CliIO } from './io.js';
import { DU_COMMANDS } from './pkg-du.js';
import { EU_COMMANDS } from './pkg-eu.js';
import { WATCH_COMMANDS } from './pkg-watch.js';
import { flagOption, stringOption, UsageError, type OptionSpec, type PkgCommand, type PkgContext } from './pkg-command.js';
import { errorJSON, EXIT_USAGE, formatError } from './report.js';

const TOOL = 'overlay-pkg';

const GLOBAL_OPTIONS: Record<string, OptionSpec> = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'no-daemon': { type: 'boolean' },
};

type Context = PkgContext;

/** The decryption secret: --key, else the device key file named in [trust], read only for an encrypted file. */
async function secretFor(file: string, ctx: Context): Promise<string | undefined> {
  return packageSecret(file, ctx.config, stringOption(ctx, 'key'));
}

function trustedKeys(dir: string, ctx: Context, quietIfMissing: boolean): TrustedKey[] {
  const { keys, warnings } = loadTrustedKeys(dir);
  for (const w of warnings) {
    if (quietIfMissing && keys.length === 0 && /no such directory/.test(w)) continue;
    ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  }
  return keys;
}

/** Counts by type and the total size of the data files. */
export function summarizeFiles(files: DataFile[]): { count: number; size: number; byType: Record<string, number> } {
  const byType: Record<string, number> = {};
  for (const f of files) byType[f.type] = (byType[f.type] ?? 0) + 1;
  return { count: files.length, size: files.reduce((n, f) => n + (f.type === 'file' ? f.size : 0), 0), byType };
}

function signatureText(s: PackageInfo['signature']): string {
  if (!s.signed) return 'not signed';
  if (s.verified) return `signed (${s.kind}), verified with key ${s.keyId}`;
  return `signed (${s.kind}), not verified: ${s.reason ?? 'no trusted keys'}`;
}

/** The human form of info. */
export function formatInfo(info: PackageInfo): string {
  const lines: string[] = [];
  const sum = summarizeFiles(info.files);
  lines.push(`file: ${info.file}`);
  lines.push(`format: ${info.format}${info.container ? ` (${info.container})` : ''}${info.encrypted ? ', encrypted' : ''}`);
  lines.push('control:');
  for (const [k, v] of Object.entries(info.control.fields)) lines.push(`  ${k}: ${v.replace(/\n/g, '\n  ')}`);
  const scripts = Object.keys(info.scripts);
  if (scripts.length) lines.push(`scripts: ${scripts.join(' ')}`);
  if (info.conffiles.length) lines.push(`conffiles: ${info.conffiles.join(' ')}`);
  lines.push('members:');
  for (const m of info.members) lines.push(`  ${m.name}  ${m.size}  sha256:${m.sha256}`);
  const types = Object.entries(sum.byType).map(([t, n]) => `${n} ${t}`).join(', ');
  lines.push(`files: ${sum.count} (${types || 'none'}), ${sum.size} bytes`);
  lines.push(`signature: ${signatureText(info.signature)}`);
  lines.push(info.problems.length ? 'problems:' : 'problems: none');
  for (const p of info.problems) lines.push(`  ${p}`);
  return lines.join('\n') + '\n';
}

function infoJSON(info: PackageInfo): Record<string, unknown> {
  return {
    file: info.file, format: info.format, container: info.container, encrypted: info.encrypted,
    control: info.control, scripts: Object.keys(info.scripts), conffiles: info.conffiles, members: info.members,
    files: info.files, summary: summarizeFiles(info.files), installedSize: info.installedSize,
    signature: info.signature, problems: info.problems,
  };
}

async function info(file: string, ctx: Context): Promise<number> {
  const keys = trustedKeys(ctx.config.trust.keys, ctx, true);
  const pkg = await openPackage(file, { keys, secret: await secretFor(file, ctx), maxUnpackedSize: ctx.config.limits.maxUnpackedSize });
  ctx.io.stdout(flagOption(ctx, 'json') ? JSON.stringify(infoJSON(pkg), null, 2) + '\n' : formatInfo(pkg));
  return pkg.problems.length ? 1 : 0;
}

async function verify(file: string, ctx: Context): Promise<number> {
  const keys = trustedKeys(stringOption(ctx, 'keys') ?? ctx.config.trust.keys, ctx, false);
  const requireSignature = ctx.config.trust.requireSignature;
  const pkg = await verifyPackage(file, { keys, requireSignature, secret: await secretFor(file, ctx), maxUnpackedSize: ctx.config.limits.maxUnpackedSize });
  const s = pkg.signature;
  if (flagOption(ctx, 'json')) {
    ctx.io.stdout(JSON.stringify({ ok: true, file, format: pkg.format, container: pkg.container, signature: s, requireSignature }, null, 2) + '\n');
  } else {
    const how = s.verified ? `signed (${s.kind}) by trusted key ${s.keyId}` : `${signatureText(s)} (a signature is not required)`;
    ctx.io.stdout(`${file}: OK: intact, ${how}, every data entry safe\n`);
  }
  return 0;
}

function built(r: BuildResult, signed: boolean, ctx: Context): number {
  if (flagOption(ctx, 'json')) ctx.io.stdout(JSON.stringify({ file: r.file, control: r.control, installedSize: r.installedSize, signed }, null, 2) + '\n');
  else ctx.io.stdout(`${r.file}\n`);
  return 0;
}

async function build(args: string[], ctx: Context): Promise<number> {
  const signKey = stringOption(ctx, 'sign');
  const opts = { output: stringOption(ctx, 'output'), container: flagOption(ctx, 'ar') ? 'ar' as const : 'tar' as const, signKey, env: ctx.io.env };
  const remove = stringOption(ctx, 'remove');
  if (remove !== undefined) {
    if (args.length) throw new UsageError('build --remove NAME takes no DIR');
    return built(await buildRemovalPackage(remove, opts), signKey !== undefined, ctx);
  }
  if (args.length !== 1) throw new UsageError('build takes one DIR');
  return built(await buildPackage(args[0]!, opts), signKey !== undefined, ctx);
}

async function sign(file: string, ctx: Context): Promise<number> {
  const key = stringOption(ctx, 'key');
  if (key === undefined) throw new UsageError('sign needs --key KEY (a PEM private key or signify secret key file)');
  const r = await signPackage(file, key);
  if (flagOption(ctx, 'json')) ctx.io.stdout(JSON.stringify(r, null, 2) + '\n');
  else ctx.io.stdout(r.kind === 'embedded' ? `${file}: signed (checksums + signature.sig)\n` : `${r.written}: detached signature written\n`);
  return 0;
}

/** The human form of ees: a table, then why each EE in Error is. */
export function formatExecEnvs(ees: ExecEnv[]): string {
  const rows = [['NAME', 'STATUS', 'ENABLE', 'ORIGIN', 'SOURCE'], ...ees.map((e) => [e.Name, e.Status, e.Enable ? 'yes' : 'no', e.origin, e.Source])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  for (const e of ees) {
    if (e.reason) lines.push(`${e.Name}: ${e.reason}`);
    for (const w of e.warnings) lines.push(`${e.Name}: warning: ${w}`);
  }
  const first = ees[0];
  if (first) lines.push(`${first.Vendor} ${first.Version}; available: ${first.AvailableDiskSpace} KiB disk, ${first.AvailableMemory} KiB memory`);
  return lines.join('\n') + '\n';
}

async function ees(ctx: Context): Promise<number> {
  const list = await listExecEnvs(ctx.config);
  ctx.io.stdout(flagOption(ctx, 'json') ? JSON.stringify({ changed: false, ExecEnv: list }, null, 2) + '\n' : formatExecEnvs(list));
  return 0;
}

/** One line of history's human form. */
export function formatHistoryEntry(e: HistoryEntry): string {
  const what = [e.OperationPerformed, e.Subhost, e.Version].filter((x) => x !== undefined).join(' ');
  const fault = e.Fault ? ` ${e.Fault.FaultCode} ${e.Fault.FaultString}` : '';
  const recovered = e.recovered ? ' (recovered after a crash)' : '';
  return `${e.CompleteTime}  #${e.id}  ${what}: ${e.CurrentState}${fault}${recovered}  [uid ${e.uid}, pid ${e.pid}: ${e.command}]`;
}

async function history(ctx: Context): Promise<number> {
  const { entries, warnings } = new History(ctx.config.paths.state).read();
  for (const w of warnings) ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  if (flagOption(ctx, 'json')) ctx.io.stdout(JSON.stringify({ changed: false, operations: entries }, null, 2) + '\n');
  else ctx.io.stdout(entries.map((e) => formatHistoryEntry(e) + '\n').join(''));
  return 0;
}

const ONE_FILE = { min: 1, max: 1, what: 'one FILE' };
const NONE = { min: 0, max: 0, what: 'no arguments' };

/** The package commands of this file. */
const PACKAGE_COMMANDS: Record<string, PkgCommand> = {
  info: { usage: ['info FILE [--key SECRET]                 format, control, members, files, signature, problems'], options: { key: { type: 'string' } }, args: ONE_FILE, run: (a, c) => info(a[0]!, c) },
  verify: {
    usage: ['verify FILE [--keys DIR] [--key SECRET]  exit 0 when intact, signed by a trusted key and safe'],
    options: { keys: { type: 'string' }, key: { type: 'string' } }, args: ONE_FILE, run: (a, c) => verify(a[0]!, c),
  },
  build: {
    usage: [
      "build DIR [-o FILE] [--ar] [--sign KEY]  an ipk from DIR in opkg-build's layout",
      'build --remove NAME [-o FILE] [--ar] [--sign KEY]',
      '                                         a removal package for NAME',
    ],
    options: { output: { type: 'string', short: 'o' }, ar: { type: 'boolean' }, sign: { type: 'string' }, remove: { type: 'string' } },
    args: { min: 0, max: 1, what: 'one DIR' }, run: build,
  },
  sign: { usage: ['sign FILE --key KEY                      add checksums + signature.sig (FILE.sig for deb/OCI)'], options: { key: { type: 'string' } }, args: ONE_FILE, run: (a, c) => sign(a[0]!, c) },
  ees: { usage: ['ees                                      execution environments (templates) with their TR-181 fields'], args: NONE, run: (_a, c) => ees(c) },
  history: { usage: ['history                                  the operations recorded, oldest first'], args: NONE, run: (_a, c) => history(c) },
};

/** Every command: this file's, then the DU and EU commands. */
export const COMMANDS: Record<string, PkgCommand> = { ...PACKAGE_COMMANDS, ...DU_COMMANDS, ...EU_COMMANDS, ...WATCH_COMMANDS };

/** Every option any command takes, with the global ones; a name two commands declare differently is a bug. */
function allOptions(): Record<string, OptionSpec> {
  const all: Record<string, OptionSpec> = { ...GLOBAL_OPTIONS };
  for (const [name, cmd] of Object.entries(COMMANDS)) {
    for (const [opt, spec] of Object.entries(cmd.options ?? {})) {
      const seen = all[opt];
      if (seen && (seen.type !== spec.type || seen.short !== spec.short)) throw new Error(`option --${opt} of ${name} is declared differently elsewhere`);
      all[opt] = spec;
    }
  }
  return all;
}

const USAGE = `usage: overlay-pkg [--config FILE] [--json] [--no-daemon] COMMAND ...
${Object.values(COMMANDS).flatMap((c) => c.usage).map((l) => `  ${l}`).join('\n')}
Global options may stand before or after the command. When overlay-pkgd answers on its
socket, install, update, remove, start, stop, restart and datamodel go through it
(--no-daemon: run here all the same). See overlay-pkg(8).
`;

function parse(argv: string[]): { values: PkgContext['values']; command: string; args: string[] } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: allOptions() });
  const [command, ...args] = positionals;
  if (values.help) return { values, command: 'help', args };
  if (command === undefined) throw new UsageError('no command given');
  const cmd = COMMANDS[command];
  if (!cmd) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  for (const name of Object.keys(values)) {
    if (!(name in (cmd.options ?? {})) && !(name in GLOBAL_OPTIONS)) throw new UsageError(`${command} does not take --${name}`);
  }
  if (args.length < cmd.args.min || args.length > cmd.args.max) throw new UsageError(`${command} takes ${cmd.args.what}`);
  return { values, command, args };
}

/** overlay-pkg: 0 success, 1 failure (with the reason), 2 usage. */
export async function main(argv: string[], io: CliIO = processIO): Promise<number> {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (e) {
    io.stderr(`${TOOL}: ${(e as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { values, command, args } = parsed;
  if (command === 'help') { io.stdout(USAGE); return 0; }
  try {
    const config = readPkgConfig({ file: typeof values.config === 'string' ? values.config : undefined, env: io.env });
    for (const w of config.warnings) io.stderr(`${TOOL}: warning: ${w}\n`);
    return await COMMANDS[command]!.run(args, { values, config, io });
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr(`${TOOL}: ${e.message}\n${USAGE}`);
      return EXIT_USAGE;
    }
    if (values.json) io.stdout(JSON.stringify({ ok: false, ...errorJSON(e) }) + '\n');
    io.stderr(formatError(TOOL, e));
    return 1;
  }
}
