/**
 * Typed events of the lifecycle layer (LIFECYCLE.md "Events"): each DU state change and
 * each finished operation, with the fields of USP's `DUStateChange!` plus the operation
 * id, and EU state changes. The daemon of the next issue forwards them to subscribers
 * (lcmd's `pkg.statechange` and `operation.complete` are the same two streams).
 */
import type { EventEmitter } from 'node:events';
import type { HistoryEntry } from './history.js';
import type { DuRecord, DuStatus, EuFaultCode, EuStatus } from './store.js';

/** USP `Device.SoftwareModules.DUStateChange!`, plus the operation id. */
export interface DuStateChange {
  operationId: number;
  UUID: string;
  /** The DU's subhost NAME (the key every command takes). */
  DeploymentUnitRef: string;
  Version: string;
  CurrentState: HistoryEntry['CurrentState'];
  Resolved: boolean;
  /** The DU's EUIDs. */
  ExecutionUnitRefList: string[];
  StartTime: string;
  CompleteTime: string;
  OperationPerformed: string;
  /** FaultCode 0 and an empty FaultString when the operation succeeded, as USP sends them. */
  Fault: { FaultCode: number; FaultString: string };
}

/** A DU passing through a (possibly transient) Status during an operation. */
export interface DuStatusEvent {
  operationId: number;
  Subhost: string;
  Status: DuStatus;
}

/** An EU changing Status. */
export interface EuStatusEvent {
  operationId?: number;
  EUID: string;
  Status: EuStatus;
  ExecutionFaultCode: EuFaultCode;
}

/** The events of an `EventEmitter<LifecycleEventMap>`. */
export interface LifecycleEventMap {
  'du.status': [DuStatusEvent];
  'eu.status': [EuStatusEvent];
  /** A finished operation's DU: after install, update or uninstall, failed or not. */
  'du.statechange': [DuStateChange];
  /** Every finished operation, as recorded in the history. */
  'operation.complete': [HistoryEntry];
}

/** The lifecycle's emitter type. */
export type LifecycleEvents = EventEmitter<LifecycleEventMap>;

/**
 * The DUStateChange of a finished operation: from its history entry and the DU's record
 * after it (before it, for a failed install or an uninstall: the fields the DU had).
 */
export function duStateChange(entry: HistoryEntry, record: DuRecord): DuStateChange {
  return {
    operationId: entry.id,
    UUID: entry.UUID ?? record.UUID,
    DeploymentUnitRef: entry.Subhost,
    Version: entry.Version ?? record.Version,
    CurrentState: entry.CurrentState,
    Resolved: record.Resolved,
    ExecutionUnitRefList: record.EUs.map((eu) => eu.EUID),
    StartTime: entry.StartTime,
    CompleteTime: entry.CompleteTime,
    OperationPerformed: entry.OperationPerformed,
    Fault: entry.Fault ?? { FaultCode: 0, FaultString: '' },
  };
}
