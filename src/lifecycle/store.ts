/**
 * The DU record store: one JSON file per installed deployment unit, `STATE/du/SUBHOST.json`,
 * keyed by the DU's subhost NAME because that is unique on the host while a UUID is not
 * (the same package may be installed into two EEs). Records are written atomically
 * (temporary file, fsync, rename, fsync of the directory) and validated when read.
 * Keys are TR-181 parameter names where TR-181 has one; the others are camelCase.
 * Only the operations (under the lock, with the journal) write records.
 */
import { readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { ensureDir, fsyncDir, isTempName, removeDirIfEmpty, writeFileAtomic } from './durable.js';
import { isSubhostName } from './identity.js';
import { stateLayout, type StateLayout } from './layout.js';
import { corrupt, Fields, readJsonFile } from './state-file.js';

/** DU `Status` (TR-181). Only Installed and Uninstalled persist; the others mark an operation in flight. */
export const DU_STATUSES = ['Installing', 'Installed', 'Updating', 'Uninstalling', 'Uninstalled'] as const;
export type DuStatus = (typeof DU_STATUSES)[number];

/** EU `Status` (TR-181; Restarting is USP's). Only Idle and Active persist. */
export const EU_STATUSES = ['Idle', 'Starting', 'Active', 'Stopping', 'Restarting'] as const;
export type EuStatus = (typeof EU_STATUSES)[number];

/** EU `ExecutionFaultCode` (TR-181). */
export const EU_FAULT_CODES = [
  'NoFault', 'FailureOnStart', 'FailureOnAutoStart', 'FailureOnStop', 'FailureWhileActive', 'DependencyFailure', 'UnStartable',
] as const;
export type EuFaultCode = (typeof EU_FAULT_CODES)[number];

/** One execution unit of a DU, as recorded. */
export interface EuRecord {
  /** `SUBHOST/SCRIPT` (identity.ts euid). */
  EUID: string;
  /** The init script's name, or the OCI bundle's name for its process. */
  Name: string;
  /** `run` for an OCI bundle's process (the subhost's RUN= service); absent for an init script. */
  kind?: 'run';
  AutoStart: boolean;
  /** The last state the manager saw or set; Idle or Active when no operation runs. */
  Status: EuStatus;
  ExecutionFaultCode: EuFaultCode;
}

/** The package a DU was installed or last updated from. */
export interface PackageRef {
  /** SHA-256 of the package file's bytes as given (before decryption): byte-identity for 9026. */
  sha256: string;
  /** Where it came from: the path or URL as given. */
  source: string;
  format: 'ipk' | 'deb' | 'oci';
  size: number;
}

/** One installed DU. */
export interface DuRecord {
  /** The record format; 1. */
  format: 1;
  Name: string;
  Version: string;
  UUID: string;
  /** Unique on this host and never reused (journal.ts allocates it). */
  DUID: string;
  Status: DuStatus;
  /** The EE (template) name the DU was installed into. */
  ExecutionEnvRef: string;
  /** Whether every Depends was satisfied. */
  Resolved: boolean;
  Vendor: string;
  Description: string;
  /** The DU's subhost NAME: the record's key, what commands take as DU. */
  Subhost: string;
  EUs: EuRecord[];
  package: PackageRef;
  /** Absolute path of the DU's layer directory. */
  layer: string;
  /** ISO 8601 UTC times. */
  installedAt: string;
  updatedAt?: string;
  /** Whether the DU's subhost runs privileged (PRIVILEGED=yes); absent in records of older installs (their template's then). */
  Privileged?: boolean;
}

const SHA256 = /^[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Checks a parsed record read from `file`; returns it typed or throws PKG_STATE_CORRUPT naming the field. */
export function validateRecord(value: unknown, file: string): DuRecord {
  const f = Fields.of(file, value);
  if (f.integer('format', 1) !== 1) throw corrupt(file, 'format is not 1: written by a newer overlay-pkg?', 'format');
  const pkg = f.object('package');
  const record: DuRecord = {
    format: 1,
    Name: f.string('Name', /^[a-z0-9][a-z0-9.+-]*$/),
    Version: f.string('Version', /^\S+$/),
    UUID: f.string('UUID', UUID),
    DUID: f.string('DUID', /^[0-9]+$/),
    Status: f.oneOf('Status', DU_STATUSES),
    ExecutionEnvRef: f.string('ExecutionEnvRef', /^[A-Za-z0-9][A-Za-z0-9_.-]*$/),
    Resolved: f.boolean('Resolved'),
    Vendor: f.string('Vendor'),
    Description: f.string('Description'),
    Subhost: f.string('Subhost'),
    EUs: f.array('EUs').map((value, i) => {
      const eu = Fields.of(file, value, `EUs.${i}`);
      const record: EuRecord = {
        EUID: eu.string('EUID'),
        Name: eu.string('Name', /^[^/\0]+$/),
        AutoStart: eu.boolean('AutoStart'),
        Status: eu.oneOf('Status', EU_STATUSES),
        ExecutionFaultCode: eu.oneOf('ExecutionFaultCode', EU_FAULT_CODES),
      };
      if (eu.raw('kind') !== undefined) record.kind = eu.oneOf('kind', ['run'] as const);
      return record;
    }),
    package: {
      sha256: pkg.string('sha256', SHA256),
      source: pkg.string('source'),
      format: pkg.oneOf('format', ['ipk', 'deb', 'oci'] as const),
      size: pkg.integer('size'),
    },
    layer: f.string('layer', /^\//),
    installedAt: f.string('installedAt', ISO_TIME),
  };
  const updatedAt = f.optionalString('updatedAt');
  if (updatedAt !== undefined) record.updatedAt = f.string('updatedAt', ISO_TIME);
  if (f.raw('Privileged') !== undefined) record.Privileged = f.boolean('Privileged');
  if (!isSubhostName(record.Subhost)) throw corrupt(file, `Subhost ${JSON.stringify(record.Subhost)} is not a subhost NAME`, 'Subhost');
  record.EUs.forEach((eu, i) => {
    if (eu.EUID !== `${record.Subhost}/${eu.Name}`) throw corrupt(file, `EUs.${i}.EUID is not ${record.Subhost}/${eu.Name}`, `EUs.${i}.EUID`);
  });
  return record;
}

/** The DU records of one state directory. Not locked by itself: callers hold lock.ts's lock to write. */
export class DuStore {
  readonly layout: StateLayout;

  constructor(stateDir: string) {
    this.layout = stateLayout(stateDir);
  }

  /** The record file of subhost `subhost`. Throws PKG_STATE_IO for a string that is no subhost NAME (it would name another path). */
  fileOf(subhost: string): string {
    if (!isSubhostName(subhost)) throw new OverlayBootError('PKG_STATE_IO', `not a subhost NAME: ${JSON.stringify(subhost)}`, { name: subhost });
    return path.join(this.layout.records, `${subhost}.json`);
  }

  /** The record of subhost `subhost`, or undefined when there is none. */
  get(subhost: string): DuRecord | undefined {
    const file = this.fileOf(subhost);
    const value = readJsonFile(file);
    if (value === undefined) return undefined;
    const record = validateRecord(value, file);
    if (record.Subhost !== subhost) throw corrupt(file, `holds the record of ${record.Subhost}`, 'Subhost');
    return record;
  }

  /** Every record, sorted by Subhost. One corrupt record throws: an inventory must be exact. */
  list(): DuRecord[] {
    let names: string[];
    try {
      names = readdirSync(this.layout.records);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new OverlayBootError('PKG_STATE_IO', `cannot list the records: ${(e as Error).message}`, { file: this.layout.records, cause: e });
    }
    return names
      .filter((n) => n.endsWith('.json') && !isTempName(n))
      .map((n) => this.get(n.slice(0, -'.json'.length)))
      .filter((r): r is DuRecord => r !== undefined)
      .sort((a, b) => (a.Subhost < b.Subhost ? -1 : a.Subhost > b.Subhost ? 1 : 0));
  }

  /** The records of `du` given as a subhost NAME or (any case) a UUID; several for a UUID installed into several EEs. */
  find(du: string): DuRecord[] {
    if (isSubhostName(du)) {
      const r = this.get(du);
      if (r) return [r];
    }
    const uuid = du.toLowerCase();
    return UUID.test(uuid) ? this.list().filter((r) => r.UUID === uuid) : [];
  }

  /** Writes `record` atomically after checking it as a reader would. */
  put(record: DuRecord): void {
    const file = this.fileOf(record.Subhost);
    validateRecord(JSON.parse(JSON.stringify(record)), file);
    ensureDir(this.layout.records);
    writeFileAtomic(file, JSON.stringify(record, null, 2) + '\n');
  }

  /** Removes the record of `subhost` (absent is fine) and the records directory once empty. */
  remove(subhost: string): void {
    const file = this.fileOf(subhost);
    try {
      unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw new OverlayBootError('PKG_STATE_IO', `cannot remove: ${(e as Error).message}`, { file, cause: e });
    }
    fsyncDir(this.layout.records);
    removeDirIfEmpty(this.layout.records);
  }
}
