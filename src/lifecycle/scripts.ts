/**
 * Maintainer scripts run **inside** a subhost, never on the host (LIFECYCLE.md): through
 * the library's `enter`, so each is a process of the subhost's pid namespace, with its
 * root, hostname and network namespace, and `PKG_ROOT=/`, `PKG_UPGRADE=0|1` in its
 * environment.
 *
 * preinst and postinst run in a **staging subhost**: a temporary subhost whose UPPER is
 * the new layer, so what they change lands in the layer (and vanishes with it); its
 * WORK and LIVE live in `stage-OPID/` in the unit directory. The staging subhost's NAME
 * is journalled (step `staging`) before it boots, so that recovery after a crash can
 * stop it ({@link cleanupStaging}). prerm and postrm run in the DU's own running subhost
 * ({@link runScript}).
 */
import { closeSync, fstatSync, mkdirSync, openSync, readSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { boot } from '../commands/boot.js';
import { enter } from '../commands/enter.js';
import { stopByName } from '../commands/stop.js';
import { OverlayBootError, isOverlayBootError } from '../errors.js';
import type { MaintainerScript } from '../package/types.js';
import { previewIdRange, shiftOwners } from '../subhost/idmap.js';
import { DEFAULT_STATE_DIR, readStateRecord, statePath } from '../subhost/state.js';
import { composeStagingConfig, duPrivileged } from './du-config.js';
import { crashPoint, journalStep } from './crash.js';
import type { Journal, JournalOperation } from './journal.js';
import { OPKG_INFO_DIR } from './stage.js';
import type { Template } from './templates.js';
import { stagingPath, type UnitPaths } from './unit.js';

/** One maintainer script call, e.g. `{ script: 'preinst', args: ['install'] }`. */
export interface ScriptCall {
  script: MaintainerScript;
  args: string[];
}

/** Options of {@link runScript}. */
export interface RunScriptOptions {
  /** PKG_UPGRADE=1 (an update) or 0 (default). */
  upgrade?: boolean;
  /** The runtime state directory of subhosts (boot's `stateDir`). Default /run/overlay-boot. */
  runtimeDir?: string;
}

/** How much of a failed script's output its error quotes. */
const OUTPUT_TAIL = 600;

/** The path of package `pkg`'s script inside its subhost (opkg's database, see stage.ts). */
export function scriptPathInside(pkg: string, script: MaintainerScript): string {
  return `/${OPKG_INFO_DIR}/${pkg}.${script}`;
}

/**
 * Runs package `pkg`'s maintainer script inside running subhost `subhost`; its output
 * goes to a scratch file, quoted (the end of it) in the error. Throws PKG_SCRIPT_FAILED
 * naming the script, its arguments and its exit status when it does not exit 0.
 */
export async function runScript(subhost: string, pkg: string, call: ScriptCall, opts: RunScriptOptions = {}): Promise<void> {
  // The output goes to a file unlinked as soon as it is open, read back through its fd:
  // a SIGKILL while the script runs (the crash tests do that) leaves nothing behind.
  const out = path.join(os.tmpdir(), `ovb-script-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fd = openSync(out, 'wx+', 0o600);
  let status: number;
  let output: string;
  try {
    unlinkSync(out);
    status = await enter(subhost, [scriptPathInside(pkg, call.script), ...call.args], {
      stateDir: opts.runtimeDir,
      stdio: ['ignore', fd, fd],
      env: { PKG_ROOT: '/', PKG_UPGRADE: opts.upgrade ? '1' : '0' },
    });
    const size = fstatSync(fd).size;
    const take = Math.min(size, OUTPUT_TAIL + 1);
    const buf = Buffer.alloc(take);
    readSync(fd, buf, 0, take, size - take);
    output = buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
  if (status !== 0) {
    const tail = output.length > OUTPUT_TAIL ? `...${output.slice(-OUTPUT_TAIL)}` : output;
    throw new OverlayBootError('PKG_SCRIPT_FAILED', `${call.script} ${call.args.join(' ')} exited with status ${status} inside ${subhost}${tail.trim() ? `: ${tail.trim()}` : ''}`, {
      name: subhost, member: call.script, step: call.script, found: String(status), expected: '0',
    });
  }
}

/** What step `staging` records, enough for {@link cleanupStaging}. */
export interface StagingRecord {
  /** The staging subhost's NAME. */
  staging: string;
  /** Its directory (config, WORK, LIVE). */
  stagingDir: string;
}

/** Options of {@link runInStaging}. */
export interface StagingOptions {
  unit: UnitPaths;
  template: Template;
  /** The new layer: the staging subhost's UPPER. */
  layer: string;
  /** The package's name (its scripts' names in opkg's database). */
  pkg: string;
  /** The operation in flight (names the staging directory). */
  op: JournalOperation;
  journal: Journal;
  upgrade?: boolean;
  /** The runtime state directory of subhosts. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** The DU's `--privileged` (du-config.ts duPrivileged); undefined: as the template says. */
  privileged?: boolean;
}

/** Boots of an unprivileged staging subhost tried when another boot takes its range meanwhile. */
const STAGING_RANGE_TRIES = 3;

/** A staging NAME no subhost has: `stg` and 5 random base-36 digits (it matches the leak check's names). */
function stagingName(runtimeDir: string): string {
  for (let i = 0; i < 100; i += 1) {
    const name = `stg${(randomBytes(4).readUInt32BE() % 36 ** 5).toString(36).padStart(5, '0')}`;
    if (!readStateRecord(statePath(name, runtimeDir))) return name;
  }
  throw new OverlayBootError('PKG_STATE_IO', 'no free staging subhost NAME after 100 tries', {});
}

/**
 * Boots a staging subhost over `layer`, runs `calls` in order inside it (the first that
 * fails throws PKG_SCRIPT_FAILED), then stops it and removes its directory, however the
 * calls ended. Journals step `staging` ({@link StagingRecord}) before the boot.
 *
 * Unprivileged (the DU's PRIVILEGED=no), the layer is the staging subhost's UPPER, which
 * is not idmapped: its owners are moved into the range the staging subhost boots with
 * (UPPER's top tells boot which; {@link shiftOwners}), so the scripts own the package's
 * files as root inside, and moved back after it stopped, so that the layer holds host ids
 * again, as the DU's idmapped mount of it expects, whatever range the DU runs with.
 */
export async function runInStaging(opts: StagingOptions, calls: ScriptCall[]): Promise<void> {
  if (calls.length === 0) return;
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const privileged = duPrivileged(opts.template, opts.privileged);
  const record: StagingRecord = { staging: stagingName(runtimeDir), stagingDir: stagingPath(opts.unit, opts.op.id) };
  journalStep(opts.journal, 'staging', { ...record });
  let shifted: number | undefined;
  try {
    mkdirSync(record.stagingDir, { mode: 0o700 });
    for (const d of ['work', 'live']) mkdirSync(path.join(record.stagingDir, d), { mode: 0o755 });
    const config = path.join(record.stagingDir, `${record.staging}.conf`);
    writeFileSync(config, composeStagingConfig(opts.template, {
      name: record.staging, unit: opts.unit, layer: opts.layer, dir: record.stagingDir, log: path.join(record.stagingDir, 'log'), privileged,
    }), { mode: 0o644 });
    for (let tries = 1; ; tries += 1) {
      if (!privileged) {
        shifted = previewIdRange(runtimeDir).base;
        shiftOwners(opts.layer, 0, shifted);
      }
      await boot(config, { stateDir: runtimeDir });
      if (privileged || readStateRecord(statePath(record.staging, runtimeDir))?.idmap?.base === shifted) break;
      // Another boot took that range between the choice and this boot: move back, try another.
      await stopQuietly(record.staging, runtimeDir);
      shiftOwners(opts.layer, shifted!, 0);
      shifted = undefined;
      if (tries === STAGING_RANGE_TRIES) {
        throw new OverlayBootError('IDMAP_EXHAUSTED', `the staging subhost ${record.staging} did not get the id range its layer was given, ${STAGING_RANGE_TRIES} times`, { name: record.staging });
      }
    }
    crashPoint('staging-booted');
    for (const call of calls) await runScript(record.staging, opts.pkg, call, { upgrade: opts.upgrade, runtimeDir });
  } finally {
    await cleanupStaging(record, runtimeDir);
    if (shifted !== undefined) shiftOwners(opts.layer, shifted, 0);
  }
}

/** Stops a staging subhost (not running is fine) and removes its directory: after use, and in recovery. */
export async function cleanupStaging(record: StagingRecord, runtimeDir: string = DEFAULT_STATE_DIR): Promise<void> {
  await stopQuietly(record.staging, runtimeDir);
  rmSync(record.stagingDir, { recursive: true, force: true });
}

/** Stops subhost `name`; one that is not running is fine (its left-overs are cleaned). */
export async function stopQuietly(name: string, runtimeDir: string = DEFAULT_STATE_DIR, timeoutSeconds?: number): Promise<void> {
  try {
    await stopByName(name, { stateDir: runtimeDir, timeoutSeconds });
  } catch (e) {
    if (!isOverlayBootError(e) || e.code !== 'NOT_RUNNING') throw e;
  }
}

/** The staging records journalled in `op`'s steps (normally at most one). */
export function stagingRecords(op: JournalOperation): StagingRecord[] {
  return op.steps.filter((s) => s.name === 'staging' && typeof s.data?.staging === 'string' && typeof s.data.stagingDir === 'string')
    .map((s) => ({ staging: s.data!.staging as string, stagingDir: s.data!.stagingDir as string }));
}
