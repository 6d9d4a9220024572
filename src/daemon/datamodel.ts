/**
 * The `Device.SoftwareModules.` object of TR-181 as parameter paths and values: the
 * view a TR-069 ACS or a USP controller reads (`overlay-pkg datamodel`, the RPC
 * `datamodel.get`). Built from the EEs (templates) and the DU records; instance numbers
 * from instances.ts, stable for as long as each object exists.
 */
import type { PkgConfig } from '../package/config.js';
import { DuStore, type DuRecord } from '../lifecycle/store.js';
import { listExecEnvs, type ExecEnv } from '../lifecycle/templates.js';
import { assignInstances, type InstanceTable } from './instances.js';

/** The root of the tree. */
export const SOFTWARE_MODULES = 'Device.SoftwareModules.';

/** A parameter's value, typed as TR-181 types it (string, unsignedInt/int, boolean). */
export type ParameterValue = string | number | boolean;

/** Parameters in order: path → value. */
export type Parameters = Record<string, ParameterValue>;

/** What the tree is made of. */
export interface SoftwareModulesInput {
  ees: ExecEnv[];
  records: DuRecord[];
  /** The instance number of each object, by table and key (see {@link instanceKeys}). */
  instances: Record<InstanceTable, Map<string, number>>;
}

/** The key of each object for instances.ts: EE name, DU DUID, EU `DUID/Name`. */
export function instanceKeys(ees: ExecEnv[], records: DuRecord[]): Record<InstanceTable, string[]> {
  return {
    ExecEnv: ees.map((e) => e.Name),
    DeploymentUnit: records.map((r) => r.DUID),
    ExecutionUnit: records.flatMap((r) => r.EUs.map((eu) => `${r.DUID}/${eu.Name}`)),
  };
}

function numbered<T>(items: T[], table: Map<string, number>, key: (x: T) => string): Array<[number, T]> {
  return items
    .map((x): [number, T] => {
      const n = table.get(key(x));
      if (n === undefined) throw new RangeError(`no instance number for ${key(x)}`);
      return [n, x];
    })
    .sort((a, b) => a[0] - b[0]);
}

/** Renders the tree; pure. */
export function renderSoftwareModules(input: SoftwareModulesInput): Parameters {
  const p: Parameters = {};
  const eePath = (i: number) => `${SOFTWARE_MODULES}ExecEnv.${i}`;
  const duPath = (i: number) => `${SOFTWARE_MODULES}DeploymentUnit.${i}`;
  const euPath = (i: number) => `${SOFTWARE_MODULES}ExecutionUnit.${i}`;
  const ees = numbered(input.ees, input.instances.ExecEnv, (e) => e.Name);
  const dus = numbered(input.records, input.instances.DeploymentUnit, (r) => r.DUID);
  const eus = numbered(input.records.flatMap((r) => r.EUs.map((eu) => ({ r, eu }))), input.instances.ExecutionUnit, (x) => `${x.r.DUID}/${x.eu.Name}`);
  const eeRef = new Map(ees.map(([i, e]) => [e.Name, eePath(i)]));
  const euRef = new Map(eus.map(([i, x]) => [`${x.r.DUID}/${x.eu.Name}`, euPath(i)]));

  p[`${SOFTWARE_MODULES}ExecEnvNumberOfEntries`] = ees.length;
  p[`${SOFTWARE_MODULES}DeploymentUnitNumberOfEntries`] = dus.length;
  p[`${SOFTWARE_MODULES}ExecutionUnitNumberOfEntries`] = eus.length;
  for (const [i, e] of ees) {
    const at = `${eePath(i)}.`;
    const active = eus.filter(([, x]) => x.r.ExecutionEnvRef === e.Name && x.eu.Status === 'Active').map(([n]) => euPath(n));
    Object.assign(p, {
      [`${at}Enable`]: e.Enable,
      // TR-181: Disabled when Enable is false, whatever else is the case
      [`${at}Status`]: e.Enable ? e.Status : 'Disabled',
      [`${at}Name`]: e.Name,
      [`${at}Type`]: e.Type,
      [`${at}Vendor`]: e.Vendor,
      [`${at}Version`]: e.Version,
      [`${at}AvailableDiskSpace`]: e.AvailableDiskSpace,
      [`${at}AvailableMemory`]: e.AvailableMemory,
      [`${at}ActiveExecutionUnits`]: active.join(','),
    });
  }
  for (const [i, r] of dus) {
    const at = `${duPath(i)}.`;
    Object.assign(p, {
      [`${at}UUID`]: r.UUID,
      [`${at}DUID`]: r.DUID,
      [`${at}Name`]: r.Name,
      [`${at}Status`]: r.Status,
      [`${at}Resolved`]: r.Resolved,
      [`${at}URL`]: r.package.source,
      [`${at}Description`]: r.Description,
      [`${at}Vendor`]: r.Vendor,
      [`${at}Version`]: r.Version,
      [`${at}ExecutionUnitList`]: r.EUs.map((eu) => euRef.get(`${r.DUID}/${eu.Name}`)!).join(','),
      // an EE whose template is gone is an empty reference, as TR-181 says for a deleted object
      [`${at}ExecutionEnvRef`]: eeRef.get(r.ExecutionEnvRef) ?? '',
    });
  }
  for (const [i, { r, eu }] of eus) {
    const at = `${euPath(i)}.`;
    Object.assign(p, {
      [`${at}EUID`]: eu.EUID,
      [`${at}Name`]: eu.Name,
      [`${at}ExecEnvLabel`]: eu.Name,
      [`${at}Status`]: eu.Status,
      [`${at}ExecutionFaultCode`]: eu.ExecutionFaultCode,
      [`${at}ExecutionFaultMessage`]: '',
      [`${at}AutoStart`]: eu.AutoStart,
      [`${at}Vendor`]: r.Vendor,
      [`${at}Version`]: r.Version,
      [`${at}Description`]: r.Description,
      [`${at}ExecutionEnvRef`]: eeRef.get(r.ExecutionEnvRef) ?? '',
    });
  }
  return p;
}

/**
 * The parameters a path selects: all for undefined or `Device.SoftwareModules.`, the
 * subtree for a path ending in `.` (`Device.SoftwareModules.DeploymentUnit.2.`), else the
 * one parameter of that exact path. Empty when nothing matches.
 */
export function selectParameters(params: Parameters, path?: string): Parameters {
  if (path === undefined || path === '') return params;
  if (!path.endsWith('.')) return Object.prototype.hasOwnProperty.call(params, path) ? { [path]: params[path]! } : {};
  return Object.fromEntries(Object.entries(params).filter(([k]) => k.startsWith(path)));
}

/** Options of {@link readSoftwareModules}. */
export interface ReadSoftwareModulesOptions {
  /** The shipped templates directory (listExecEnvs). */
  shipped?: string;
}

/** Reads EEs and records, assigns instance numbers (persisted in the state directory), renders the tree. */
export async function readSoftwareModules(config: PkgConfig, opts: ReadSoftwareModulesOptions = {}): Promise<Parameters> {
  const ees = await listExecEnvs(config, { shipped: opts.shipped });
  const records = new DuStore(config.paths.state).list();
  // after the awaits: the read-assign-write below runs without interleaving
  const instances = assignInstances(config.paths.state, instanceKeys(ees, records));
  return renderSoftwareModules({ ees, records, instances });
}
