// Real DU records for the daemon tests, written with the store into a state directory.
import { duUuid } from '../../src/lifecycle/identity.js';
import { DuStore, type DuRecord } from '../../src/lifecycle/store.js';

/** A valid record of DU `subhost` with one EU per name in `eus`. */
export function duRecord(subhost: string, DUID: string, eus: string[], over: Partial<DuRecord> = {}): DuRecord {
  return {
    format: 1,
    Name: subhost.replace(/[^a-z0-9.+-]/g, ''),
    Version: '1.0-1',
    UUID: duUuid(subhost, 'example.org'),
    DUID,
    Status: 'Installed',
    ExecutionEnvRef: 'bee',
    Resolved: true,
    Vendor: 'example.org',
    Description: `the ${subhost} package`,
    Subhost: subhost,
    EUs: eus.map((name, i) => ({ EUID: `${subhost}/${name}`, Name: name, AutoStart: i === 0, Status: i === 0 ? 'Active' : 'Idle', ExecutionFaultCode: 'NoFault' })),
    package: { sha256: 'b'.repeat(64), source: `/srv/pkgs/${subhost}.ipk`, format: 'ipk', size: 4096 },
    layer: `/var/lib/overlay-boot/pkg/units/${subhost}/layer`,
    installedAt: '2026-11-23T12:00:00.000Z',
    ...over,
  };
}

/** Writes `records` into the state directory `state`; returns them. */
export function putRecords(state: string, records: DuRecord[]): DuRecord[] {
  const store = new DuStore(state);
  for (const r of records) store.put(r);
  return records;
}
