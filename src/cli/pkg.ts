import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { OverlayBootError } from '../errors.js';
import { buildPackage, buildRemovalPackage, type BuildResult } from '../package/build.js';
import { readPkgConfig, type PkgConfig } from '../package/config.js';
import { isEncrypted } from '../package/encrypted.js';
import { loadTrustedKeys, type TrustedKey } from '../package/keys.js';
import { openPackage } from '../package/open.js';
import { readHead } from '../package/read.js';
import { signPackage } from '../package/sign.js';
import type { DataFile, PackageInfo } from '../package/types.js';
import { verifyPackage } from '../package/verify.js';
import { History, type HistoryEntry } from '../lifecycle/history.js';
import { listExecEnvs, type ExecEnv } from '../lifecycle/templates.js';
import { processIO, type CliIO } from './io.js';
import { errorJSON, EXIT_USAGE, formatError } from './report.js';

const TOOL = 'overlay-pkg';

const USAGE = `usage: overlay-pkg [--config FILE] [--json] COMMAND ...
  info FILE [--key SECRET]                 format, control, members, files, signature, problems
  verify FILE [--keys DIR] [--key SECRET]  exit 0 when intact, signed by a trusted key and safe
  build DIR [-o FILE] [--ar] [--sign KEY]  an ipk from DIR in opkg-build's layout
  build --remove NAME [-o FILE] [--ar] [--sign KEY]
                                           a removal package for NAME
  sign FILE --key KEY                      add checksums + signature.sig (FILE.sig for deb/OCI)
  ees                                      execution environments (templates) with their TR-181 fields
  history                                  the operations recorded, oldest first
Global options may stand before or after the command. See overlay-pkg(8).
`;

const OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  key: { type: 'string' },
  keys: { type: 'string' },
  output: { type: 'string', short: 'o' },
  ar: { type: 'boolean' },
  sign: { type: 'string' },
  remove: { type: 'string' },
} as const;

type Values = { [K in keyof typeof OPTIONS]?: (typeof OPTIONS)[K]['type'] extends 'string' ? string : boolean };

/** Which options each command takes besides the global ones. */
const COMMAND_OPTIONS: Record<string, (keyof Values)[]> = {
  info: ['key'],
  verify: ['keys', 'key'],
  build: ['output', 'ar', 'sign', 'remove'],
  sign: ['key'],
  ees: [],
  history: [],
};
/** Commands that take no FILE. */
const NO_ARGUMENT = new Set(['ees', 'history']);
const GLOBAL_OPTIONS: (keyof Values)[] = ['config', 'json', 'help'];

class UsageError extends Error {}

interface Context {
  values: Values;
  config: PkgConfig;
  io: CliIO;
}

/** The decryption secret: --key, else the device key file named in [trust], read only for an encrypted file. */
async function secretFor(file: string, ctx: Context): Promise<string | undefined> {
  if (ctx.values.key !== undefined) return ctx.values.key;
  const deviceKey = ctx.config.trust.deviceKey;
  if (deviceKey === undefined || !isEncrypted(await readHead(file, 16))) return undefined;
  try {
    return readFileSync(deviceKey, 'utf8').trim();
  } catch (e) {
    throw new OverlayBootError('PKG_DECRYPT', `cannot read the device key: ${(e as Error).message}`, { file: deviceKey, variable: 'trust.device_key', cause: e });
  }
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
  ctx.io.stdout(ctx.values.json ? JSON.stringify(infoJSON(pkg), null, 2) + '\n' : formatInfo(pkg));
  return pkg.problems.length ? 1 : 0;
}

async function verify(file: string, ctx: Context): Promise<number> {
  const keys = trustedKeys(ctx.values.keys ?? ctx.config.trust.keys, ctx, false);
  const requireSignature = ctx.config.trust.requireSignature;
  const pkg = await verifyPackage(file, { keys, requireSignature, secret: await secretFor(file, ctx), maxUnpackedSize: ctx.config.limits.maxUnpackedSize });
  const s = pkg.signature;
  if (ctx.values.json) {
    ctx.io.stdout(JSON.stringify({ ok: true, file, format: pkg.format, container: pkg.container, signature: s, requireSignature }, null, 2) + '\n');
  } else {
    const how = s.verified ? `signed (${s.kind}) by trusted key ${s.keyId}` : `${signatureText(s)} (a signature is not required)`;
    ctx.io.stdout(`${file}: OK: intact, ${how}, every data entry safe\n`);
  }
  return 0;
}

function built(r: BuildResult, signed: boolean, ctx: Context): number {
  if (ctx.values.json) ctx.io.stdout(JSON.stringify({ file: r.file, control: r.control, installedSize: r.installedSize, signed }, null, 2) + '\n');
  else ctx.io.stdout(`${r.file}\n`);
  return 0;
}

async function build(args: string[], ctx: Context): Promise<number> {
  const v = ctx.values;
  const opts = { output: v.output, container: v.ar ? 'ar' as const : 'tar' as const, signKey: v.sign, env: ctx.io.env };
  if (v.remove !== undefined) {
    if (args.length) throw new UsageError('build --remove NAME takes no DIR');
    return built(await buildRemovalPackage(v.remove, opts), v.sign !== undefined, ctx);
  }
  if (args.length !== 1) throw new UsageError('build takes one DIR');
  return built(await buildPackage(args[0]!, opts), v.sign !== undefined, ctx);
}

async function sign(file: string, ctx: Context): Promise<number> {
  if (ctx.values.key === undefined) throw new UsageError('sign needs --key KEY (a PEM private key or signify secret key file)');
  const r = await signPackage(file, ctx.values.key);
  if (ctx.values.json) ctx.io.stdout(JSON.stringify(r, null, 2) + '\n');
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
  ctx.io.stdout(ctx.values.json ? JSON.stringify({ changed: false, ExecEnv: list }, null, 2) + '\n' : formatExecEnvs(list));
  return 0;
}

/** One line of history's human form. */
export function formatHistoryEntry(e: HistoryEntry): string {
  const what = [e.OperationPerformed, e.Subhost, e.Version].filter((x) => x !== undefined).join(' ');
  const fault = e.Fault ? ` ${e.Fault.FaultCode} ${e.Fault.FaultString}` : '';
  const recovered = e.recovered ? ' (recovered after a crash)' : '';
  return `${e.CompleteTime}  #${e.id}  ${what}: ${e.CurrentState}${fault}${recovered}  [uid ${e.uid}, pid ${e.pid}: ${e.command}]`;
}

function history(ctx: Context): number {
  const { entries, warnings } = new History(ctx.config.paths.state).read();
  for (const w of warnings) ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  if (ctx.values.json) ctx.io.stdout(JSON.stringify({ changed: false, operations: entries }, null, 2) + '\n');
  else ctx.io.stdout(entries.map((e) => formatHistoryEntry(e) + '\n').join(''));
  return 0;
}

function parse(argv: string[]): { values: Values; command: string; args: string[] } {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: OPTIONS });
  const [command, ...args] = positionals;
  if (values.help) return { values, command: 'help', args };
  if (command === undefined) throw new UsageError('no command given');
  const allowed = COMMAND_OPTIONS[command];
  if (!allowed) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  for (const name of Object.keys(values) as (keyof Values)[]) {
    if (!allowed.includes(name) && !GLOBAL_OPTIONS.includes(name)) throw new UsageError(`${command} does not take --${name}`);
  }
  if (NO_ARGUMENT.has(command)) {
    if (args.length) throw new UsageError(`${command} takes no arguments`);
  } else if (command !== 'build' && args.length !== 1) {
    throw new UsageError(`${command} takes one FILE`);
  }
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
    const config = readPkgConfig({ file: values.config, env: io.env });
    for (const w of config.warnings) io.stderr(`${TOOL}: warning: ${w}\n`);
    const ctx: Context = { values, config, io };
    switch (command) {
      case 'info': return await info(args[0]!, ctx);
      case 'verify': return await verify(args[0]!, ctx);
      case 'build': return await build(args, ctx);
      case 'ees': return await ees(ctx);
      case 'history': return history(ctx);
      default: return await sign(args[0]!, ctx);
    }
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
