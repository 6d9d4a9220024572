/**
 * Booting a DU's subhost and reading its EUs' state afterwards: what install does after
 * its commit, and recovery when it rolls an install forward. The subhost's START holds
 * the AutoStart EUs' init scripts, so booting it starts them; an EU that is not Active
 * afterwards gets ExecutionFaultCode `FailureOnAutoStart` (the install stands).
 */
import { constants, lstatSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { boot, type BootOptions } from '../commands/boot.js';
import { enter } from '../commands/enter.js';
import type { LifecycleEvents } from './events.js';
import { euid } from './identity.js';
import { initScriptPath } from './du-config.js';
import type { DuRecord, DuStore, EuRecord } from './store.js';
import type { UnitPaths } from './unit.js';

// TODO(H4): discoverEUs and the status probe below are stand-ins until src/lifecycle/eu.ts
// (discoverEUs, euLiveStatus) lands on this branch; then they are imported from there.

/** The EUs a layer ships: every executable regular file in LAYER/etc/init.d (not a link), sorted; AutoStart true. */
export function discoverEUs(layer: string, subhost: string): EuRecord[] {
  const dir = path.join(layer, 'etc/init.d');
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) return [];
  return readdirSync(dir).sort()
    .filter((n) => {
      const f = lstatSync(path.join(dir, n));
      return f.isFile() && (f.mode & constants.S_IXUSR) !== 0;
    })
    .map((Name) => ({ EUID: euid(subhost, Name), Name, AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' }));
}

/** Options of {@link bootDu}. */
export interface BootDuOptions {
  runtimeDir: string;
  /** Start the AutoStart EUs (false: boot with no START, as `install --no-start`). */
  start: boolean;
  store: DuStore;
  events?: LifecycleEvents;
  operationId?: number;
}

/**
 * Boots the DU subhost of `record` and records its EUs' state (Active, or Idle with
 * FailureOnAutoStart for an AutoStart EU that did not come up); returns the record as
 * written. A boot that fails leaves every AutoStart EU Idle with FailureOnAutoStart.
 */
export async function bootDu(record: DuRecord, unit: UnitPaths, opts: BootDuOptions): Promise<DuRecord> {
  const bootOpts: BootOptions & { start?: string[] } = { stateDir: opts.runtimeDir };
  if (!opts.start) bootOpts.start = [];
  let booted = true;
  try {
    await boot(unit.config, bootOpts);
  } catch {
    booted = false;
  }
  const EUs: EuRecord[] = [];
  for (const eu of record.EUs) {
    const active = booted && await isActive(record.Subhost, eu, opts.runtimeDir);
    const next: EuRecord = {
      ...eu, Status: active ? 'Active' : 'Idle',
      ExecutionFaultCode: active || !opts.start || !eu.AutoStart ? 'NoFault' : 'FailureOnAutoStart',
    };
    EUs.push(next);
    opts.events?.emit('eu.status', { operationId: opts.operationId, EUID: next.EUID, Status: next.Status, ExecutionFaultCode: next.ExecutionFaultCode });
  }
  const updated = { ...record, EUs };
  opts.store.put(updated);
  return updated;
}

/** `/etc/init.d/X status` inside the subhost exits 0 (LSB: running). */
async function isActive(subhost: string, eu: EuRecord, runtimeDir: string): Promise<boolean> {
  try {
    return (await enter(subhost, [initScriptPath(eu.Name), 'status'], { stateDir: runtimeDir, stdio: 'ignore' })) === 0;
  } catch {
    return false;
  }
}
