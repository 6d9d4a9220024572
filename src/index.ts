/**
 * overlay-boot: run Linux subhosts from code.
 *
 * Everything the commands do is here; no function prints or exits. Errors are
 * OverlayBootError with a stable `code` (see ERROR_CODES and overlay-boot(8)).
 */
export { OverlayBootError, ERROR_CODES, isOverlayBootError, type ErrorCode, type ErrorContext } from './errors.js';
export * from './config/index.js';
export { boot, planBoot, type BootOptions, type BootResult } from './commands/boot.js';
export { checkConfig, type CheckOptions, type CheckResult } from './commands/check.js';
export { buildBootPlan, defaultInterfaces, type BuildPlanOptions } from './plan/build.js';
export { formatPlan } from './plan/format.js';
export type { BootEvent, BootEventListener } from './plan/events.js';
export type { BootPlan, PlanStep, NativeOp, HostAction, StepPlace } from './plan/types.js';
export {
  listStateRecords, readStateRecord, liveness, statePath, DEFAULT_STATE_DIR,
  type StateRecord, type CableRecord, type Liveness,
} from './subhost/state.js';
export { findNative, type NativePaths } from './subhost/native.js';
export { stop, stopAll, stopByName, type StopOptions, type StopResult } from './commands/stop.js';
export { list, status, reaperReportPath, type SubhostStatus, type ListOptions, type ReaperReport } from './commands/list.js';
export { share, unshare, type ShareOptions, type ShareResult } from './commands/share.js';
export { enter, enterArgv, subhostShell, type EnterOptions } from './commands/enter.js';
export {
  watch, reconcileDir, DEFAULT_WATCH_DIR, DEFAULT_DEBOUNCE_MS,
  type WatchOptions, type WatchHandle, type WatchEvent, type WatchEventType, type WatchEventMap, type WatchLogger,
  type ReconcileReport, type UnchangedReason,
} from './commands/watch.js';
export { diskfileMount, splitMountPath } from './commands/diskfile.js';
export { readPartitionTable } from './host/partitions.js';
export * from './package/index.js';
export * from './lifecycle/index.js';
