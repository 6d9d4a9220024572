/**
 * Booting a DU's subhost and reading its EUs' state afterwards: what install does after
 * its commit, and recovery when it rolls an install forward. The subhost's START holds
 * the AutoStart EUs' init scripts, so booting it starts them; an AutoStart EU that is
 * not Active within its start timeout gets ExecutionFaultCode `FailureOnAutoStart` (the
 * install stands).
 */
import { boot } from '../commands/boot.js';
import { DEFAULT_EU_TIMEOUT_MS, euLiveStatus } from './eu.js';
import type { LifecycleEvents } from './events.js';
import type { DuRecord, DuStore, EuRecord } from './store.js';
import type { UnitPaths } from './unit.js';

/** Options of {@link bootDu}. */
export interface BootDuOptions {
  runtimeDir: string;
  /** Start the AutoStart EUs (false: boot without them, as `install --no-start`). */
  start: boolean;
  store: DuStore;
  events?: LifecycleEvents;
  operationId?: number;
  /** How long an AutoStart EU has to become Active. Default {@link DEFAULT_EU_TIMEOUT_MS}. */
  timeoutMs?: number;
}

/** Polls the EU's live status until Active or the deadline; whether it became Active. */
async function becomesActive(subhost: string, eu: EuRecord, runtimeDir: string, deadline: number): Promise<boolean> {
  for (let i = 0; i < 10000; i += 1) {
    if ((await euLiveStatus(subhost, eu, { runtimeDir }).catch(() => 'Idle')) === 'Active') return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/**
 * Boots the DU subhost of `record` and records its EUs' state (Active, or Idle with
 * FailureOnAutoStart for an AutoStart EU that did not come up); returns the record as
 * written. A boot that fails leaves every AutoStart EU Idle with FailureOnAutoStart.
 */
export async function bootDu(record: DuRecord, unit: UnitPaths, opts: BootDuOptions): Promise<DuRecord> {
  let booted = true;
  try {
    await boot(unit.config, { stateDir: opts.runtimeDir, ...(opts.start ? {} : { start: [] }) });
  } catch {
    booted = false;
  }
  const deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_EU_TIMEOUT_MS);
  const EUs: EuRecord[] = [];
  for (const eu of record.EUs) {
    const expected = opts.start && eu.AutoStart;
    const active = booted && (expected ? await becomesActive(record.Subhost, eu, opts.runtimeDir, deadline) : (await euLiveStatus(record.Subhost, eu, { runtimeDir: opts.runtimeDir }).catch(() => 'Idle')) === 'Active');
    const next: EuRecord = { ...eu, Status: active ? 'Active' : 'Idle', ExecutionFaultCode: active || !expected ? 'NoFault' : 'FailureOnAutoStart' };
    EUs.push(next);
    opts.events?.emit('eu.status', { operationId: opts.operationId, EUID: next.EUID, Status: next.Status, ExecutionFaultCode: next.ExecutionFaultCode });
  }
  const updated = { ...record, EUs };
  opts.store.put(updated);
  return updated;
}

/**
 * Records the live state of the EUs of a DU whose subhost runs (recovery after a crash
 * between the boot and the record's update): each EU as its status says, faults kept
 * only where the EU is still Idle. Returns the record as written.
 */
export async function recordLiveEUs(record: DuRecord, opts: Pick<BootDuOptions, 'runtimeDir' | 'store'>): Promise<DuRecord> {
  const EUs: EuRecord[] = [];
  for (const eu of record.EUs) {
    const active = (await euLiveStatus(record.Subhost, eu, { runtimeDir: opts.runtimeDir }).catch(() => 'Idle')) === 'Active';
    EUs.push({ ...eu, Status: active ? 'Active' : 'Idle', ExecutionFaultCode: active ? 'NoFault' : eu.ExecutionFaultCode });
  }
  const updated = { ...record, EUs };
  opts.store.put(updated);
  return updated;
}
