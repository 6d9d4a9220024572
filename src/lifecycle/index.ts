/**
 * The lifecycle layer: packages installed as deployment units (DUs), each its own
 * subhost made from an execution environment (EE) template, with execution units (EUs)
 * for its services. Rules: ../shared/LIFECYCLE.md (TR-181 / USP names throughout).
 *
 * Built so far (the foundation): identity (Name, Vendor, UUID, subhost NAME, EUID),
 * templates and `listExecEnvs`, the DU record store, the journal, the queue lock, the
 * history, the fault codes, and {@link transact}, which runs one operation as a
 * transaction (lock → recover what a crash left → begin → act with journalled steps →
 * history → commit, or undo → history with the Fault → abort). Still to build on them,
 * each a `transact` call with its own act, undo and recover (DESIGN.md: every step has
 * its undo):
 *
 * - **install**: verify the package (src/package) → check: architecture, EE known (9023) and enabled
 *   (9024), duplicate Name+Version in that EE (9026; byte-identical, i.e. same
 *   `package.sha256`, is `changed: false`), free space against Installed-Size (9027),
 *   Depends (Resolved) → `journal.begin({kind: 'install', allocateDUID: true})` →
 *   create BASE with {@link MANAGED_DIRS}, write the config ({@link composeDuConfig}
 *   plus `LAYERS=` the layer), step `subhost` → unpack into a staging layer, step
 *   `staged` → run preinst/postinst inside the DU's subhost (PKG_ROOT=/,
 *   PKG_UPGRADE=0), step `scripts` → rename the staged layer into place and write the
 *   record `Installed` ({@link DuStore.put}), step `committed` → act returns and
 *   transact records and commits → boot the subhost and start AutoStart EUs (after the
 *   commit: a failure there is an EU fault, not a failed install). The subhost NAME is
 *   `--name` (checked with {@link isSubhostName}) or {@link deriveSubhostName}, with
 *   `taken` = the records' Subhosts plus every subhost known to the host (runtime
 *   state records, configs). Suggested home of a DU's files, on the state directory's
 *   filesystem so that the trash renames work: `STATE/units/SUBHOST/` holding the
 *   config, BASE and the layer; removed with the DU.
 * - **update**: same name, higher version (9030 lower unless forced, 9032 equal) →
 *   begin with intent `{oldLayer, newLayer, activeEUs, oldVersion}` → stop Active EUs →
 *   stage the new layer and run the upgrade scripts → point the config and record at
 *   the new layer → restart `activeEUs`; any not Active within its timeout: put the old
 *   layer back, restart, history `Failed` (the DU stays Installed at the old version).
 * - **uninstall**: stop EUs, `prerm remove`, move the subhost's directories and layer
 *   into `STATE/trash/ID/` ({@link trashPlace} journalled as step data, then
 *   {@link moveToTrash}), `postrm remove`, remove the record (step `committed`),
 *   {@link emptyTrash} (keep UPPER with RetainData). Undo: {@link restoreFromTrash}.
 * - **recovery**: every command that reads or changes DUs first calls
 *   {@link recoverPending} under the lock (transact does it itself), with a RecoverFn
 *   that dispatches on `op.kind`: roll forward after step `committed`, else roll back
 *   (journal.ts says how per kind).
 *
 * Records persist only DU `Installed` and EU `Idle`/`Active`; the transient states
 * exist in events and in a record only while its operation is in the journal.
 */
export * from './faults.js';
export * from './identity.js';
export * from './layout.js';
export * from './durable.js';
export { corrupt as stateCorrupt, readJsonFile, MAX_STATE_FILE } from './state-file.js';
export * from './store.js';
export * from './journal.js';
export * from './lock.js';
export * from './history.js';
export * from './templates.js';
export * from './events.js';
export * from './transaction.js';
export * from './trash.js';
export * from './download.js';
export * from './depends.js';
export { installDU, hostArchitectures, loadEE, type InstallOptions, type InstallOutcome } from './install.js';
export { uninstallDU, findDU, type UninstallOptions, type UninstallOutcome } from './uninstall.js';
export { listDUs, type ListDUsOptions, type ListDUsResult, type ListedDU } from './list.js';
export { recoverOperation, recoverNow, RECOVERERS, type KindRecoverer } from './recover.js';
export { addToBootList, removeFromBootList, isInBootList } from './boot-list.js';
export { runInStaging, runScript as runMaintainerScript, type ScriptCall, type StagingOptions } from './scripts.js';
export { resolveSource, type ResolvedSource } from './source.js';
export { unitPaths, type UnitPaths } from './unit.js';
