/**
 * Install: a package becomes a deployment unit (DU), its own subhost made from an
 * execution environment's template, one transaction ({@link transact}):
 *
 * 1. verify (intact, signed by a trusted key, every entry safe), before the lock;
 * 2. under the lock, checks that change nothing: architecture (9025), EE known (9023),
 *    enabled (9024) and its template sound, duplicate Name+Version in that EE (9026; a
 *    byte-identical package is `changed: false`), the subhost NAME free, free space
 *    against Installed-Size (9027), Depends;
 * 3. journalled steps: `unit` (the unit directory, about to be made), `retained` (an
 *    UPPER kept by `remove --retain-data` put back), `staged` (the layer unpacked),
 *    `staging` (preinst/postinst inside a staging subhost over the layer), `boot-list`
 *    (the config registered for host boot), `committed` (the record written Installed);
 * 4. after `committed`: the DU subhost boots, starting its AutoStart EUs (a failure
 *    there is the EU's ExecutionFaultCode, not a failed install).
 *
 * Until `committed` a failure (or, after a crash, recovery) undoes every step in reverse,
 * so a failed install leaves nothing: no subhost, directory, record or boot-list line.
 */
import { existsSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import type { PkgConfig } from '../package/config.js';
import { controlField, controlSynopsis } from '../package/control.js';
import { loadTrustedKeys } from '../package/keys.js';
import type { PackageInfo } from '../package/types.js';
import { leaseIdRange, leasedSlots } from '../subhost/idmap.js';
import { DEFAULT_STATE_DIR, listStateRecords, liveness, readStateRecord, statePath, type Liveness } from '../subhost/state.js';
import { addToBootList, removeFromBootList } from './boot-list.js';
import { crashPoint, journalStep } from './crash.js';
import { composeUnitConfig, duPrivileged } from './du-config.js';
import { ensureDir, fsyncDir, removeDirIfEmpty, writeFileAtomic } from './durable.js';
import type { LifecycleEvents } from './events.js';
import { duStateChange } from './events.js';
import type { HistoryEntry } from './history.js';
import { deriveSubhostName, duIdentity, isSubhostName, type DuIdentity } from './identity.js';
import { Journal, type JournalOperation } from './journal.js';
import { stateLayout } from './layout.js';
import type { LockOptions } from './lock.js';
import { recoverOperation } from './recover.js';
import { cleanupStaging, runInStaging, stagingRecords, type ScriptCall } from './scripts.js';
import { checkRelations, readLowerPackages, relationsError } from './depends.js';
import { resolveSource, verifySource, type ResolvedSource } from './source.js';
import { checkHotfix, classifyPackage, removalDU, type PackageClass } from './special.js';
import { uninstallDU } from './uninstall.js';
import { stageLayer, templateLower } from './stage.js';
import { DuStore, type DuRecord, type EuRecord } from './store.js';
import { availableDiskKiB, checkTemplate, DEFAULT_EE, findTemplate, isEnabled, loadTemplate, type Template, type TemplateDirs } from './templates.js';
import { transact, type OperationResult } from './transaction.js';
import { createUnitBase, layerPath, retainedRoot, unitPaths } from './unit.js';
import { bootDu, recordLiveEUs } from './du-boot.js';
import { duServices } from './oci.js';

/** Options of {@link installDU}. */
export interface InstallOptions {
  config: PkgConfig;
  /** A path, a `file://` URL or an `http(s)://` URL (downloaded: [download] limits, resumed after a break). */
  source: string;
  /** Basic auth for an http(s) source: never logged, never in an error or the history. */
  username?: string;
  password?: string;
  /** Download progress of an http(s) source: bytes on disk, and the size when the server said it. */
  onProgress?: (done: number, total?: number) => void;
  /** The EE (template) name. Default `bee`. */
  ee?: string;
  /** The subhost NAME. Default: the package name when free and valid, else a short unique one. */
  name?: string;
  /** The secret of an encrypted package. Default: the device key file when the package is encrypted. */
  secret?: string;
  /** Start the AutoStart EUs when the DU subhost boots. Default true; false boots it without them. */
  start?: boolean;
  /**
   * Run the DU privileged (TR-181 InstallDU `Privileged`): true gives it PRIVILEGED=yes,
   * false PRIVILEGED=no, whatever its EE's template says. Default: the template's (the
   * shipped ones say no). Recorded in the DU; update keeps it.
   */
  privileged?: boolean;
  events?: LifecycleEvents;
  /** The subhosts' runtime state directory. Default /run/overlay-boot. */
  runtimeDir?: string;
  /** The shipped templates directory. Default: the package's `templates/`. */
  shippedTemplates?: string;
  lock?: LockOptions;
  /** The command line, for the history. */
  command?: string;
}

/** What {@link installDU} did. */
export interface InstallOutcome {
  /** Whether anything changed: false for a failure and for a byte-identical duplicate. */
  changed: boolean;
  /** The operation's history entry (CurrentState Installed or Failed, with the Fault). */
  entry: HistoryEntry;
  /** The DU's record after a successful install; the existing DU's for a duplicate. */
  record?: DuRecord;
  /** What failed, as thrown. */
  error?: unknown;
  /** A byte-identical package of the same Name and Version is installed in that EE: fault 9026, but nothing to do. */
  identical?: boolean;
  /** An operation recovered first. */
  recovered?: HistoryEntry;
  /** Warnings (trusted keys skipped). */
  warnings: string[];
}

/** dpkg architecture names of the Node.js architectures, with the opkg names that mean the same. */
const ARCHITECTURES: Record<string, string[]> = {
  x64: ['amd64', 'x86_64', 'x86-64'],
  arm64: ['arm64', 'aarch64'],
  arm: ['armhf', 'armel', 'arm'],
  ia32: ['i386', 'i686', 'x86'],
  riscv64: ['riscv64'],
  ppc64: ['ppc64el', 'ppc64le', 'ppc64'],
  s390x: ['s390x'],
  mips: ['mips'],
  mipsel: ['mipsel'],
  loong64: ['loong64'],
};

/** The Architecture values a package may have to install here: `all`, and the host's names. */
export function hostArchitectures(): string[] {
  return ['all', ...(ARCHITECTURES[process.arch] ?? [process.arch])];
}

/** What install and its recovery read from the intent. */
interface InstallIntent {
  source: string;
  sha256: string;
  ee: string;
  Name: string;
  Version: string;
  unitDir: string;
  configFile: string;
  bootList: string;
  runtimeDir: string;
}

function intentOf(op: JournalOperation): InstallIntent {
  return op.intent as unknown as InstallIntent;
}

/** The subhost NAMEs in use on this host: DU records, unit and retained directories, running subhosts, network namespaces. */
export function takenNames(store: DuStore, runtimeDir: string): Set<string> {
  const ls = (d: string) => (existsSync(d) ? readdirSync(d) : []);
  return new Set([
    ...store.list().map((r) => r.Subhost),
    ...ls(store.layout.units),
    ...listStateRecords(runtimeDir).map((r) => r.record.name),
    ...ls('/run/netns'),
  ]);
}

/** The package's Installed-Size in bytes, as declared (a .deb's is in KiB); 0 when absent or bad. */
function declaredSize(info: PackageInfo): number {
  const text = controlField(info.control.fields, 'Installed-Size')?.trim();
  if (text === undefined || !/^[0-9]{1,15}$/.test(text)) return 0;
  return Number(text) * (info.format === 'deb' ? 1024 : 1);
}

/** Refuses (PKG_ARCHITECTURE, 9025) a package for another architecture than the host's. */
export function checkArchitecture(info: PackageInfo, file: string): void {
  const allowed = hostArchitectures();
  if (!allowed.includes(info.control.architecture)) {
    throw new OverlayBootError('PKG_ARCHITECTURE', `the package is for ${info.control.architecture}, this host runs ${allowed[1]}`, {
      file, member: 'control', variable: 'Architecture', expected: allowed.join(' or '), found: info.control.architecture,
    });
  }
}

/** Refuses (PKG_NO_SPACE, 9027) a package whose Installed-Size (or real size) is more than the state directory's free space. */
export function checkSpace(info: PackageInfo, stateDir: string, file: string): void {
  const need = Math.max(declaredSize(info), info.installedSize);
  const free = availableDiskKiB(stateDir) * 1024;
  if (need > free) {
    throw new OverlayBootError('PKG_NO_SPACE', `the package needs ${need} bytes, ${free} are free on the state directory's filesystem`, {
      file, variable: 'Installed-Size', expected: `at most ${free}`, found: String(need),
    });
  }
}

/** Loads and checks EE `ee`'s template: PKG_TEMPLATE_UNKNOWN (9023), PKG_EE_DISABLED (9024), PKG_TEMPLATE_INVALID. */
export async function loadEE(ee: string, dirs: TemplateDirs): Promise<Template> {
  const ref = findTemplate(ee, dirs);
  if (!isEnabled(ee, dirs)) {
    throw new OverlayBootError('PKG_EE_DISABLED', `execution environment ${ee} is disabled (${path.join(dirs.custom, `${ee}.disabled`)} exists)`, { name: ee, file: ref.file });
  }
  const template = await loadTemplate(ref);
  await checkTemplate(template);
  return template;
}

/** The DU record of a successful install, before its EUs' live status is known. */
function newRecord(op: JournalOperation, id: DuIdentity, info: PackageInfo, intent: InstallIntent, layer: string, eus: EuRecord[], size: number): DuRecord {
  return {
    format: 1, Name: id.Name, Version: info.control.version, UUID: id.UUID, DUID: op.DUID ?? '0', Status: 'Installed',
    ExecutionEnvRef: intent.ee, Resolved: true, Vendor: id.Vendor,
    Description: controlSynopsis(info.control.fields),
    Subhost: op.subhost, EUs: eus,
    package: { sha256: intent.sha256, source: intent.source, format: info.format, size },
    layer, installedAt: new Date().toISOString(),
  };
}

/**
 * Installs a package as a DU (see the module's description). A failed check or step is
 * the result's Fault (the install undone), not a throw; it throws only when the state
 * directory or an undo fails.
 */
export async function installDU(opts: InstallOptions): Promise<InstallOutcome> {
  const config = opts.config;
  const stateDir = config.paths.state;
  const runtimeDir = opts.runtimeDir ?? DEFAULT_STATE_DIR;
  let ee = opts.ee ?? DEFAULT_EE;
  const dirs: TemplateDirs = { custom: config.paths.templates, shipped: opts.shippedTemplates };
  const store = new DuStore(stateDir);
  const { keys, warnings } = loadTrustedKeys(config.trust.keys);
  // Read-only work before the lock, so that the queue does not wait for it. What fails
  // here is the operation's result all the same (in the history), not a throw.
  let src: ResolvedSource | undefined;
  let info: PackageInfo | undefined;
  let verifyError: unknown;
  let secret: string | undefined;
  let sha256 = '0'.repeat(64);
  let size = 0;
  try {
    try {
      src = await resolveSource(opts.source, { config, username: opts.username, password: opts.password, onProgress: opts.onProgress });
      ({ info, secret, sha256, size } = await verifySource(src.file, config, keys, opts.secret));
      // An OCI bundle's rootfs is a whole root: without --ee it goes into the oci EE (empty LOWER).
      if (opts.ee === undefined && info.format === 'oci') ee = 'oci';
    } catch (e) {
      verifyError = e;
    }
    // Removal and hotfix packages (special.ts): installing NAME-remove is the uninstall of
    // NAME's DU; a hotfix is checked against the installed DUs under the lock, in act.
    let special: PackageClass = { kind: 'plain' };
    try {
      if (info) special = classifyPackage(info.control, src?.file);
      if (special.kind === 'remove') {
        const du = removalDU(store.list(), special.target, { ee: opts.ee, name: opts.name }).Subhost;
        const out = await uninstallDU({ config, du, events: opts.events, runtimeDir, lock: opts.lock, command: opts.command });
        return { ...out, warnings };
      }
    } catch (e) {
      verifyError = e; // the install's result (in the history), as a failed verification is
    }
    const id = info ? duIdentity(info.control) : undefined;
    let record: DuRecord | undefined;
    let identical = false;
    const result = await transact(stateDir, {
      lock: opts.lock,
      events: opts.events,
      recover: recoverOperation,
      begin: () => {
        const duplicate = info && store.list().find((r) => r.ExecutionEnvRef === ee && r.Name === info!.control.package && r.Version === info!.control.version);
        const subhost = opts.name ?? duplicate?.Subhost ?? (id ? deriveSubhostName(id.Name, id.UUID, takenNames(store, runtimeDir)) : '-');
        const unit = unitPaths(stateDir, isSubhostName(subhost) ? subhost : 'invalid');
        const intent: InstallIntent = {
          source: opts.source, sha256, ee, Name: info?.control.package ?? '', Version: info?.control.version ?? '',
          unitDir: unit.dir, configFile: unit.config, bootList: config.paths.bootList, runtimeDir,
        };
        return { kind: 'install', subhost, intent: { ...intent }, allocateDUID: true, command: opts.command };
      },
      act: async (op, journal) => {
        if (verifyError !== undefined) throw verifyError;
        const pkg = info!;
        opts.events?.emit('du.status', { operationId: op.id, Subhost: op.subhost, Status: 'Installing' });
        const file = src!.file;
        checkArchitecture(pkg, file);
        if (special.kind === 'hotfix') checkHotfix(special.needs, store.list(), pkg.control.package, file);
        const template = await loadEE(ee, dirs);
        const duplicate = store.list().find((r) => r.ExecutionEnvRef === ee && r.Name === pkg.control.package && r.Version === pkg.control.version);
        if (duplicate) {
          identical = duplicate.package.sha256 === sha256;
          record = identical ? duplicate : undefined;
          throw new OverlayBootError('PKG_DUPLICATE', `${pkg.control.package} ${pkg.control.version} is installed in ${ee} as ${duplicate.Subhost}${identical ? ' from the same bytes' : ' from other bytes'}`, {
            name: duplicate.Subhost, file, found: pkg.control.version,
          });
        }
        if (!isSubhostName(op.subhost)) {
          throw new OverlayBootError('USAGE', `--name ${JSON.stringify(op.subhost)} is not a subhost NAME (at most 12 printable characters, no / or space)`, { name: op.subhost, found: op.subhost });
        }
        if (opts.name !== undefined && takenNames(store, runtimeDir).has(op.subhost)) {
          throw new OverlayBootError('PKG_NAME_TAKEN', `a subhost named ${op.subhost} exists already`, { name: op.subhost });
        }
        checkSpace(pkg, stateDir, file);
        // Depends and Conflicts against the package itself (its Provides) and the dpkg/opkg
        // status of the EE's LOWER; a hotfix's Depends were checked against the DUs above.
        if (special.kind !== 'hotfix') {
          const self = { Package: pkg.control.package, Version: pkg.control.version, Provides: controlField(pkg.control.fields, 'Provides') };
          const lowerDir = templateLower(template, unitPaths(stateDir, op.subhost).base);
          // A LOWER given by a `!` command is known only at boot: its database cannot be read here.
          // The oci EE's LOWER (the unit's empty directory) is made below: nothing installed there.
          const lower = lowerDir === undefined || !existsSync(lowerDir) ? [] : await readLowerPackages(lowerDir);
          const unresolved = relationsError(checkRelations(pkg.control.fields, { layer: [self], lower }), pkg.control.package, file);
          if (unresolved) throw unresolved;
        }
        const intent = intentOf(op);
        const unit = unitPaths(stateDir, op.subhost);
        ensureDir(stateLayout(stateDir).units);
        journalStep(journal, 'unit', { dir: unit.dir });
        createUnitBase(unit);
        if (existsSync(unit.retained)) {
          journalStep(journal, 'retained', { from: unit.retained, to: unit.upper });
          rmSync(unit.upper, { recursive: true, force: true });
          renameSync(unit.retained, unit.upper);
          fsyncDir(unit.base);
          removeDirIfEmpty(retainedRoot(stateDir));
        }
        const layer = layerPath(unit, op.id);
        const privileged = duPrivileged(template, opts.privileged);
        // Unprivileged: one id range for the DU's life, kept by its UPPER (idmap.ts leaseIdRange), freed with it at remove.
        if (!privileged) leaseIdRange(unit.upper, leasedSlots(store.list().filter((r) => r.Subhost !== op.subhost).map((r) => unitPaths(stateDir, r.Subhost).upper)), runtimeDir);
        await stageLayer(file, layer, {
          info: pkg, keys, requireSignature: config.trust.requireSignature, secret, maxUnpackedSize: config.limits.maxUnpackedSize,
          lower: templateLower(template, unit.base),
        });
        journalStep(journal, 'staged', { layer });
        const calls: ScriptCall[] = [];
        if (pkg.scripts.preinst !== undefined) calls.push({ script: 'preinst', args: ['install'] });
        if (pkg.scripts.postinst !== undefined) calls.push({ script: 'postinst', args: ['configure'] });
        await runInStaging({ unit, template, layer, pkg: pkg.control.package, op, journal, runtimeDir, privileged }, calls);
        crashPoint('scripts');
        // oci.ts: the layer's init scripts, or an OCI bundle's process as its RUN= line.
        const { eus, autoStart, run } = duServices(pkg, layer, op.subhost);
        writeFileAtomic(unit.config, composeUnitConfig(template, { subhost: op.subhost, unit, layer, autoStart, run, privileged }), 0o644);
        journalStep(journal, 'boot-list', { file: intent.bootList, config: unit.config });
        addToBootList(intent.bootList, unit.config);
        crashPoint('boot-listed');
        record = { ...newRecord(op, id!, pkg, intent, layer, eus, size), Privileged: privileged };
        store.put(record);
        crashPoint('recorded');
        journalStep(journal, 'committed');
        record = await bootDu(record, unit, { runtimeDir, start: opts.start !== false, store, events: opts.events, operationId: op.id });
        return { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
      },
      undo: async (op) => {
        await rollbackInstall(op);
      },
    });
    const failed = result.entry.CurrentState === 'Failed';
    if (id && opts.events) {
      opts.events.emit('du.statechange', duStateChange(result.entry, record ?? placeholderRecord(result.entry, id, info!, ee)));
    }
    const outcome: InstallOutcome = { changed: !failed, entry: result.entry, warnings };
    if (record) outcome.record = record;
    if (result.error !== undefined) outcome.error = result.error;
    if (failed && identical) outcome.identical = true;
    if (result.recovered) outcome.recovered = result.recovered;
    return outcome;
  } finally {
    await src?.cleanup();
  }
}

/** The fields a DUStateChange of a failed install needs, when there is no record. */
function placeholderRecord(entry: HistoryEntry, id: DuIdentity, info: PackageInfo, ee: string): DuRecord {
  return {
    format: 1, Name: id.Name, Version: info.control.version, UUID: id.UUID, DUID: entry.DUID ?? '0', Status: 'Uninstalled',
    ExecutionEnvRef: ee, Resolved: true, Vendor: id.Vendor, Description: '', Subhost: entry.Subhost, EUs: [],
    package: { sha256: '0'.repeat(64), source: '', format: info.format, size: 0 }, layer: '/', installedAt: entry.StartTime,
  };
}

/**
 * Undoes an install that did not reach `committed`, from its journal: stops any staging
 * subhost, removes the boot-list line and the record, puts a retained UPPER back, and
 * removes the unit directory. Each part is done only when its step says it was begun,
 * so a NAME that turned out to be taken is never touched; each is idempotent, so undo
 * may run again after a crash during undo.
 */
export async function rollbackInstall(op: JournalOperation): Promise<void> {
  const intent = intentOf(op);
  for (const s of stagingRecords(op)) await cleanupStaging(s, intent.runtimeDir);
  const step = (name: string) => op.steps.find((s) => s.name === name);
  const listed = step('boot-list');
  if (listed) removeFromBootList(String(listed.data?.file), String(listed.data?.config));
  if (!step('unit')) return;
  const stateDir = path.dirname(path.dirname(intent.unitDir));
  // A record may have been written just before a crash took the `committed` step.
  new DuStore(stateDir).remove(op.subhost);
  const retained = step('retained');
  if (retained) {
    const from = String(retained.data?.from);
    const to = String(retained.data?.to);
    if (existsSync(to) && !existsSync(from)) {
      ensureDir(path.dirname(from));
      renameSync(to, from);
      fsyncDir(path.dirname(from));
    }
  }
  rmSync(intent.unitDir, { recursive: true, force: true });
  removeDirIfEmpty(path.dirname(intent.unitDir));
}

/**
 * The liveness of subhost `name`, once no boot of it is under way: a boot that a crash
 * interrupted has a monitor that is still undoing it, so this waits (at most 10 s) for
 * that to end. Undefined when it has no state record.
 */
export async function settledLiveness(name: string, runtimeDir: string): Promise<Liveness | undefined> {
  for (let i = 0; ; i++) {
    const record = readStateRecord(statePath(name, runtimeDir));
    const state = record && liveness(record);
    if (state !== 'booting' || i >= 100) return state;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Recovers an install found in the journal: after `committed` it rolls forward (boots
 * the DU subhost when it is not running; CurrentState Installed), before it rolls back
 * ({@link rollbackInstall}; Failed).
 */
export async function recoverInstall(op: JournalOperation): Promise<OperationResult> {
  const intent = intentOf(op);
  if (!Journal.done(op, 'committed')) {
    await rollbackInstall(op);
    return { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'interrupted before it was committed; undone' } };
  }
  const stateDir = path.dirname(path.dirname(intent.unitDir));
  const store = new DuStore(stateDir);
  const record = store.get(op.subhost);
  if (record === undefined) throw new OverlayBootError('PKG_STATE_CORRUPT', `install of ${op.subhost} was committed but its record is missing`, { name: op.subhost });
  for (const s of stagingRecords(op)) await cleanupStaging(s, intent.runtimeDir);
  if ((await settledLiveness(op.subhost, intent.runtimeDir)) !== 'running') {
    // Not running, or a stale record left by a boot the crash interrupted (boot() clears it).
    await bootDu(record, unitPaths(stateDir, op.subhost), { runtimeDir: intent.runtimeDir, start: true, store, operationId: op.id });
  } else {
    // Booted before the crash, perhaps before its EUs' state was recorded.
    await recordLiveEUs(record, { runtimeDir: intent.runtimeDir, store });
  }
  return { CurrentState: 'Installed', UUID: record.UUID, Version: record.Version };
}

