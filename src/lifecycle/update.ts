/**
 * Update: a DU's layer replaced by a newer version of its package, its UPPER (the user's
 * data) kept, one transaction ({@link transact}) with **automatic rollback**
 * (LIFECYCLE.md, "Update"):
 *
 * 1. verify the package, before the lock;
 * 2. under the lock, checks that change nothing: the DU exists (9028), the same Package
 *    (PKG_OTHER_PACKAGE, 9003), a higher version in dpkg's order (lower: PKG_DOWNGRADE,
 *    9030, unless forced; equal: PKG_VERSION_EXISTS, 9032), architecture, EE, free space;
 * 3. journalled steps: `staged` (the new layer `layer-OPID` unpacked beside the old),
 *    `old-scripts` (`prerm upgrade NEW`, `postrm upgrade NEW` inside the DU's subhost,
 *    booted without services for them when it did not run), `eus-stopped` (the Active
 *    EUs, stopped), `stopping` (the subhost stopped), `conffiles` (FILE-opkg beside the
 *    user's changed conffiles), `staging` (`preinst upgrade OLD`, `postinst configure`
 *    in a staging subhost over the new layer, PKG_UPGRADE=1), `config` (the config
 *    rewritten to the new layer), `booting` (the subhost booted without services), each
 *    EU that was Active started again ({@link startEU}), the record written, `committed`;
 * 4. after `committed`: the old layer deleted.
 *
 * Any failure before `committed` (a failing script, an EU that does not become Active
 * within its timeout: PKG_ROLLED_BACK) undoes it all ({@link rollbackUpdate}): the
 * subhost stopped, the old config and record back, the new layer deleted, and, when the
 * subhost ran before, booted again with the EUs that were Active. The result is Failed
 * with the Fault; the DU stays Installed at its old version, running as before. After a
 * crash, recovery does the same before `committed`, and deletes the old layer after it.
 *
 * prerm/postrm of the old version change the DU's UPPER (they run in its own subhost)
 * and are not undone by a rollback, as with dpkg.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { boot } from '../commands/boot.js';
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { controlSynopsis } from '../package/control.js';
import { loadTrustedKeys } from '../package/keys.js';
import type { PackageInfo } from '../package/types.js';
import { compareVersions } from '../package/version.js';
import { DEFAULT_STATE_DIR } from '../subhost/state.js';
import { keepChangedConffiles } from './conffiles.js';
import { crashPoint, journalStep } from './crash.js';
import { composeUnitConfig } from './du-config.js';
import { writeFileAtomic } from './durable.js';
import { euFaultOf, euLiveStatus, startEU, stopEU } from './eu.js';
import { duServices } from './oci.js';
import { duStateChange, type LifecycleEvents } from './events.js';
import type { HistoryEntry } from './history.js';
import { checkArchitecture, checkSpace, loadEE } from './install.js';
import { Journal, type JournalOperation } from './journal.js';
import type { LockOptions } from './lock.js';
import { recoverOperation } from './recover.js';
import { cleanupStaging, runInStaging, runScript, stagingRecords, stopQuietly, type ScriptCall } from './scripts.js';
import { resolveSource, verifySource } from './source.js';
import { OPKG_INFO_DIR, stageLayer, templateLower } from './stage.js';
import { DuStore, validateRecord, type DuRecord, type EuRecord } from './store.js';
import type { TemplateDirs } from './templates.js';
import { transact, type OperationResult } from './transaction.js';
import { findDU, isRunning } from './uninstall.js';
import { layerPath, stagingPath, unitPaths } from './unit.js';

/** Options of {@link updateDU}. */
export interface UpdateOptions {
  config: PkgConfig;
  /** The DU: its subhost NAME or UUID. */
  du: string;
  /** The new package: a path, a `file://` URL or an `http(s)://` URL (downloaded: [download] limits, resumed after a break). */
  source: string;
  /** Basic auth for an http(s) source: never logged, never in an error or the history. */
  username?: string;
  password?: string;
  /** Download progress of an http(s) source: bytes on disk, and the size when the server said it. */
  onProgress?: (done: number, total?: number) => void;
  /** Allow a lower version (9030 otherwise). An equal version is refused all the same (9032). */
  forceDowngrade?: boolean;
  /** The secret of an encrypted package. */
  secret?: string;
  /** How long each EU that was Active may take to be Active again. Default: the configuration's `[lifecycle] eu_timeout`. */
  euTimeoutMs?: number;
  events?: LifecycleEvents;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** The shipped templates directory. Default: the package's `templates/`. */
  shippedTemplates?: string;
  lock?: LockOptions;
  /** The command line, for the history. */
  command?: string;
}

/** What {@link updateDU} did. */
export interface UpdateOutcome {
  changed: boolean;
  /** The history entry: CurrentState Installed, or Failed with the Fault (the old version still Installed). */
  entry: HistoryEntry;
  /** The DU's record afterwards (the new version, or the old one after a failure). */
  record?: DuRecord;
  error?: unknown;
  recovered?: HistoryEntry;
  /** Conffiles the user changed, now with `-opkg` beside them. */
  conffilesKept: string[];
  warnings: string[];
}

/** What rollback and recovery read from the intent. */
interface UpdateIntent {
  stateDir: string;
  runtimeDir: string;
  source: string;
  /** The record before the update (put back by a rollback). */
  old?: DuRecord;
  /** The config text before the update. */
  oldConfig?: string;
  /** Whether the DU subhost ran. */
  wasRunning: boolean;
  euTimeoutMs: number;
}

function intentOf(op: JournalOperation): UpdateIntent {
  return op.intent as unknown as UpdateIntent;
}

/** The version checks of an update: same Package, newer (or forced lower), never equal. */
export function checkUpdateVersion(record: DuRecord, info: PackageInfo, force: boolean, file: string): void {
  const name = info.control.package;
  const version = info.control.version;
  if (name !== record.Name) {
    throw new OverlayBootError('PKG_OTHER_PACKAGE', `${file} is package ${name}, DU ${record.Subhost} is ${record.Name}: an update must be the same package`, {
      name: record.Subhost, file, variable: 'Package', expected: record.Name, found: name,
    });
  }
  const order = compareVersions(version, record.Version);
  if (order === 0) {
    throw new OverlayBootError('PKG_VERSION_EXISTS', `${name} ${version} is the version installed as ${record.Subhost}`, {
      name: record.Subhost, file, variable: 'Version', expected: `other than ${record.Version}`, found: version,
    });
  }
  if (order < 0 && !force) {
    throw new OverlayBootError('PKG_DOWNGRADE', `${name} ${version} is older than the installed ${record.Version} (use --force-downgrade to install it anyway)`, {
      name: record.Subhost, file, variable: 'Version', expected: `newer than ${record.Version}`, found: version,
    });
  }
}

/** Whether the layer has package `pkg`'s maintainer script `script` in opkg's database. */
function layerHasScript(layer: string, pkg: string, script: string): boolean {
  return existsSync(`${layer}/${OPKG_INFO_DIR}/${pkg}.${script}`);
}

/** The EUs of the old record that are Active now (live status; Idle when the subhost does not run). */
async function activeEUs(record: DuRecord, runtimeDir: string): Promise<EuRecord[]> {
  const out: EuRecord[] = [];
  for (const eu of record.EUs) if (await euLiveStatus(record.Subhost, eu, { runtimeDir }) === 'Active') out.push(eu);
  return out;
}

/**
 * Updates a DU to the package at `source` (see the module's description). A failed check
 * or step is the result's Fault with the DU as before, not a throw; it throws only when
 * the state directory or the rollback fails.
 */
export async function updateDU(opts: UpdateOptions): Promise<UpdateOutcome> {
  const config = opts.config;
  const stateDir = config.paths.state;
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  const euTimeoutMs = opts.euTimeoutMs ?? config.lifecycle.euTimeoutMs;
  const dirs: TemplateDirs = { custom: config.paths.templates, shipped: opts.shippedTemplates };
  const store = new DuStore(stateDir);
  const { keys, warnings } = loadTrustedKeys(config.trust.keys);
  const src = await resolveSource(opts.source, { config, username: opts.username, password: opts.password, onProgress: opts.onProgress });
  let record: DuRecord | undefined;
  let before: DuRecord | undefined;
  let conffilesKept: string[] = [];
  try {
    let info: PackageInfo | undefined;
    let verifyError: unknown;
    let secret: string | undefined;
    let sha256 = '0'.repeat(64);
    let size = 0;
    try {
      ({ info, secret, sha256, size } = await verifySource(src.file, config, keys, opts.secret));
    } catch (e) {
      verifyError = e;
    }
    const result = await transact(stateDir, {
      lock: opts.lock,
      events: opts.events,
      recover: recoverOperation,
      begin: () => {
        const found = store.find(opts.du);
        // A missing or ambiguous DU is refused in act, so that the refusal is in the history.
        before = found.length === 1 ? found[0] : undefined;
        const subhost = before?.Subhost ?? opts.du;
        const configFile = unitPaths(stateDir, before?.Subhost ?? 'invalid').config;
        const intent: UpdateIntent = {
          stateDir, runtimeDir, source: src.source, euTimeoutMs,
          wasRunning: before !== undefined && isRunning(subhost, runtimeDir),
        };
        if (before && existsSync(configFile)) {
          intent.old = before;
          intent.oldConfig = readFileSync(configFile, 'utf8');
        }
        return { kind: 'update', subhost, intent: { ...intent }, command: opts.command };
      },
      act: async (op, journal) => {
        const old = findDU(store, opts.du);
        if (verifyError !== undefined) throw verifyError;
        const pkg = info!;
        checkUpdateVersion(old, pkg, opts.forceDowngrade === true, src.file);
        checkArchitecture(pkg, src.file);
        const template = await loadEE(old.ExecutionEnvRef, dirs);
        // The new layer is made beside the old one, so it needs its whole size free.
        checkSpace(pkg, stateDir, src.file);
        opts.events?.emit('du.status', { operationId: op.id, Subhost: old.Subhost, Status: 'Updating' });
        const unit = unitPaths(stateDir, old.Subhost);
        const layer = layerPath(unit, op.id);
        journalStep(journal, 'staged', { layer });
        await stageLayer(src.file, layer, {
          info: pkg, keys, requireSignature: config.trust.requireSignature, secret, maxUnpackedSize: config.limits.maxUnpackedSize,
          lower: templateLower(template, unit.base),
        });
        crashPoint('unpacked');
        const active = await activeEUs(old, runtimeDir);
        const oldCalls: ScriptCall[] = (['prerm', 'postrm'] as const)
          .filter((s) => layerHasScript(old.layer, old.Name, s)).map((script) => ({ script, args: ['upgrade', pkg.control.version] }));
        if (oldCalls.length > 0) {
          journalStep(journal, 'old-scripts');
          // The reaper ends the subhost with its last service, perhaps right now (an EU just
          // stopped): stopped for certain and booted without services, so the scripts never
          // race its end, as uninstall does. The Active EUs are started again after the switch.
          await stopQuietly(old.Subhost, runtimeDir);
          await boot(unit.config, { stateDir: runtimeDir, start: [] });
          for (const call of oldCalls) await runScript(old.Subhost, old.Name, call, { upgrade: true, runtimeDir });
        }
        journalStep(journal, 'eus-stopped', { active: active.map((eu) => eu.Name) });
        for (const eu of [...active].reverse()) await stopEU(old.Subhost, eu, { runtimeDir, timeoutMs: euTimeoutMs });
        journalStep(journal, 'stopping');
        await stopQuietly(old.Subhost, runtimeDir);
        journalStep(journal, 'conffiles');
        conffilesKept = keepChangedConffiles({ conffiles: pkg.conffiles, upper: unit.upper, oldLayer: old.layer, newLayer: layer }).kept;
        const calls: ScriptCall[] = [];
        if (pkg.scripts.preinst !== undefined) calls.push({ script: 'preinst', args: ['upgrade', old.Version] });
        if (pkg.scripts.postinst !== undefined) calls.push({ script: 'postinst', args: ['configure'] });
        await runInStaging({ unit, template, layer, pkg: pkg.control.package, op, journal, runtimeDir, upgrade: true, privileged: old.Privileged }, calls);
        crashPoint('scripts');
        // An EU the old version had keeps its AutoStart setting.
        const { eus, autoStart, run } = duServices(pkg, layer, old.Subhost, (eu) => old.EUs.find((o) => o.Name === eu.Name)?.AutoStart ?? eu.AutoStart);
        journalStep(journal, 'config');
        writeFileAtomic(unit.config, composeUnitConfig(template, { subhost: old.Subhost, unit, layer, autoStart, run, privileged: old.Privileged }), 0o644);
        journalStep(journal, 'booting');
        const wanted = eus.filter((eu) => active.some((a) => a.Name === eu.Name));
        if (intentOf(op).wasRunning || wanted.length > 0) {
          await boot(unit.config, { stateDir: runtimeDir, start: [] });
          for (const eu of wanted) {
            try {
              await startEU(old.Subhost, eu, { runtimeDir, timeoutMs: euTimeoutMs, configPath: unit.config });
            } catch (e) {
              throw new OverlayBootError('PKG_ROLLED_BACK', `${eu.EUID} was Active before the update and did not become Active with ${pkg.control.version}: ${(e as Error).message}; ${old.Version} is back`, {
                name: old.Subhost, step: 'start', expected: 'Active', found: eu.EUID, cause: e,
              });
            }
          }
        }
        record = {
          ...old, Version: pkg.control.version, Status: 'Installed',
          Description: controlSynopsis(pkg.control.fields),
          EUs: eus.map((eu) => ({ ...eu, Status: wanted.some((w) => w.Name === eu.Name) ? 'Active' : 'Idle' })),
          package: { sha256, source: src.source, format: pkg.format, size },
          layer, updatedAt: new Date().toISOString(),
        };
        store.put(record);
        crashPoint('recorded');
        journalStep(journal, 'committed');
        finishUpdate(journal.pending() ?? op);
        return { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
      },
      undo: async (op) => {
        await rollbackUpdate(op);
      },
    });
    const failed = result.entry.CurrentState === 'Failed';
    if (failed) record = store.get(before?.Subhost ?? opts.du);
    if (before && opts.events) opts.events.emit('du.statechange', duStateChange(result.entry, record ?? before));
    const outcome: UpdateOutcome = { changed: !failed, entry: result.entry, conffilesKept: failed ? [] : conffilesKept, warnings };
    if (record) outcome.record = record;
    if (result.error !== undefined) outcome.error = result.error;
    if (result.recovered) outcome.recovered = result.recovered;
    return outcome;
  } finally {
    await src.cleanup();
  }
}

/** After `committed`: the old layer deleted (idempotent). */
export function finishUpdate(op: JournalOperation): void {
  const old = intentOf(op).old;
  const current = new DuStore(intentOf(op).stateDir).get(op.subhost);
  if (old && current && old.layer !== current.layer) rmSync(old.layer, { recursive: true, force: true });
}

/**
 * Undoes an update that did not reach `committed`, from its journal (idempotent, so it
 * may run again after a crash during it): any staging subhost stopped; when the DU
 * subhost was touched (stopped, or booted on the new layer) it is stopped; the old
 * config and record put back; the new layer deleted; and when the subhost ran before,
 * it is booted again and the EUs that were Active started.
 */
export async function rollbackUpdate(op: JournalOperation): Promise<void> {
  const intent = intentOf(op);
  const step = (name: string) => op.steps.find((s) => s.name === name);
  for (const s of stagingRecords(op)) await cleanupStaging(s, intent.runtimeDir);
  if (!intent.old || !intent.oldConfig) return; // refused before anything changed
  const unit = unitPaths(intent.stateDir, op.subhost);
  const touched = step('old-scripts') !== undefined || step('eus-stopped') !== undefined;
  if (touched) await stopQuietly(op.subhost, intent.runtimeDir);
  if (step('config')) writeFileAtomic(unit.config, intent.oldConfig, 0o644);
  const store = new DuStore(intent.stateDir);
  if (store.get(op.subhost)?.layer !== intent.old.layer) store.put(validateRecord(intent.old, 'journal'));
  rmSync(layerPath(unit, op.id), { recursive: true, force: true });
  rmSync(stagingPath(unit, op.id), { recursive: true, force: true });
  if (!touched || !intent.wasRunning) return;
  await boot(unit.config, { stateDir: intent.runtimeDir, start: [] });
  const active = (step('eus-stopped')?.data?.active as string[] | undefined) ?? intent.old.EUs.filter((eu) => eu.Status === 'Active').map((eu) => eu.Name);
  // An old EU that does not come back is recorded Idle with its fault rather than thrown:
  // a rollback that throws stays in the journal, and would be retried by every command.
  const EUs: EuRecord[] = [];
  for (const eu of intent.old.EUs) {
    if (!active.includes(eu.Name)) {
      EUs.push({ ...eu, Status: 'Idle' });
      continue;
    }
    try {
      await startEU(op.subhost, eu, { runtimeDir: intent.runtimeDir, timeoutMs: intent.euTimeoutMs, configPath: unit.config });
      EUs.push({ ...eu, Status: 'Active', ExecutionFaultCode: 'NoFault' });
    } catch (e) {
      EUs.push({ ...eu, Status: 'Idle', ExecutionFaultCode: euFaultOf(e) ?? 'FailureOnStart' });
    }
  }
  store.put({ ...validateRecord(intent.old, 'journal'), EUs });
}

/** Recovers an update: forward after `committed` (the old layer deleted; Installed), else back (Failed). */
export async function recoverUpdate(op: JournalOperation): Promise<OperationResult> {
  const intent = intentOf(op);
  if (Journal.done(op, 'committed')) {
    for (const s of stagingRecords(op)) await cleanupStaging(s, intent.runtimeDir);
    finishUpdate(op);
    const record = new DuStore(intent.stateDir).get(op.subhost);
    return { CurrentState: 'Installed', UUID: record?.UUID, Version: record?.Version };
  }
  await rollbackUpdate(op);
  return { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'interrupted before it was committed; undone' } };
}
