/**
 * The JSON of an operation's outcome, as `overlay-pkg --json` prints it and as the
 * daemon's `operation.complete` carries it in `result`: one builder per kind of outcome,
 * shared by the CLI and the daemon so that both say exactly the same thing. Keys are
 * TR-181's plus `Subhost` and `changed`.
 */
import type { EuOutcome } from '../lifecycle/eu-ops.js';
import type { HistoryEntry } from '../lifecycle/history.js';
import type { DuRecord } from '../lifecycle/store.js';

/** A DU's TR-181 fields (and Subhost), as every DU command prints them. */
export function duJSON(r: DuRecord): Record<string, unknown> {
  return {
    Subhost: r.Subhost, Name: r.Name, Version: r.Version, UUID: r.UUID, DUID: r.DUID, Status: r.Status,
    ExecutionEnvRef: r.ExecutionEnvRef, Resolved: r.Resolved, Vendor: r.Vendor, Description: r.Description, URL: r.package.source,
    ExecutionUnitList: r.EUs.map((eu) => eu.EUID),
    ExecutionUnit: r.EUs.map((eu) => ({ EUID: eu.EUID, Name: eu.Name, Status: eu.Status, AutoStart: eu.AutoStart, ExecutionFaultCode: eu.ExecutionFaultCode })),
  };
}

/** A DU operation's result (install, update, remove): OperationPerformed, CurrentState, Fault, with the DU's fields. */
export function operationJSON(entry: HistoryEntry, changed: boolean, record: DuRecord | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {
    changed, OperationPerformed: entry.OperationPerformed, CurrentState: entry.CurrentState, Subhost: entry.Subhost,
    ...(record ? duJSON(record) : {}),
  };
  if (entry.UUID !== undefined) out.UUID = entry.UUID;
  if (entry.Version !== undefined) out.Version = entry.Version;
  if (entry.DUID !== undefined && record === undefined) out.DUID = entry.DUID;
  if (entry.Fault) out.Fault = entry.Fault;
  return out;
}

/** An update's result: {@link operationJSON} and the conffiles the user had changed. */
export function updateJSON(entry: HistoryEntry, changed: boolean, record: DuRecord | undefined, conffilesKept: string[]): Record<string, unknown> {
  return { ...operationJSON(entry, changed, record), conffilesKept };
}

/** An EU request's result (start, stop, restart) for EUID `euid` as asked. */
export function euRequestJSON(out: Pick<EuOutcome, 'changed' | 'entry' | 'eu'>, euid: string): Record<string, unknown> {
  const json: Record<string, unknown> = {
    changed: out.changed, OperationPerformed: out.entry.OperationPerformed, CurrentState: out.entry.CurrentState,
    EUID: out.eu?.EUID ?? euid, Subhost: out.entry.Subhost,
  };
  if (out.eu) Object.assign(json, { Status: out.eu.Status, AutoStart: out.eu.AutoStart, ExecutionFaultCode: out.eu.ExecutionFaultCode });
  if (out.entry.Fault) json.Fault = out.entry.Fault;
  return json;
}
