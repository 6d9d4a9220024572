import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs';
import { OverlayBootError } from '../errors.js';
import { processAgeSeconds, type ProcessId } from '../subhost/process.js';
import { DEFAULT_STATE_DIR, listStateRecords, liveness, readStateRecord, statePath, type CableRecord, type Liveness, type StateRecord } from '../subhost/state.js';

/**
 * What the reaper reports of itself in /run/overlay-boot-reaper.json inside the subhost,
 * rewritten (temp file + rename) on every change; see reaper(8). Absent for older reapers.
 */
export interface ReaperReport {
  /** NAME, as given to the reaper. */
  name?: string;
  /** `starting` while the init script runs, `running` after, `stopping` from the first stop signal. */
  phase?: 'starting' | 'running' | 'stopping' | string;
  /** Exit status of the init script (128+signal when killed); null while it runs. */
  initStatus?: number | null;
  /** The signal that started the shutdown (`SIGTERM`, ...), null before. */
  stopSignal?: string | null;
  /** The RUN services, in config order. */
  services?: Array<{
    command: string;
    /** Pid inside the subhost's pid namespace; null when not running. */
    pid?: number | null;
    restarts?: number;
    state?: 'running' | 'backoff' | 'failed' | 'stopped' | string;
    /** Last exit status (128+signal when killed); null before the first exit. */
    lastExit?: number | null;
  }>;
  [key: string]: unknown;
}

/** One subhost as `overlay-ls --json` shows it. Stable: fields are only ever added. */
export interface SubhostStatus {
  name: string;
  config: string;
  state: Liveness;
  /** Host pid of the subhost's pid 1. */
  pid1?: number;
  monitorPid?: number;
  /** Seconds since pid 1 started. */
  uptimeSeconds?: number;
  startedAt: string;
  cables: CableRecord[];
  services: string[];
  log: string;
  reaper?: ReaperReport;
  /**
   * PRIVILEGED=no only: ids 0..count-1 inside are base.. on the host (root inside is `base`,
   * the owner a host path needs for the subhost's root to write it through SHARE).
   */
  idmap?: { base: number; count: number };
}

export interface ListOptions {
  /** Directory of runtime state records. Default `/run/overlay-boot`. */
  stateDir?: string;
}

/** Where pid 1's reaper writes its report inside the subhost (seen from the host). */
export function reaperReportPath(pid1: number): string {
  return `/proc/${pid1}/root/run/overlay-boot-reaper.json`;
}

/** The report is at most this large; a bigger file is not the reaper's. */
const MAX_REPORT = 256 * 1024;

/**
 * Read the reaper's report without following a link the subhost planted: `run`
 * opened O_NOFOLLOW|O_DIRECTORY below pid 1's root, then the report O_NOFOLLOW
 * through that descriptor (an absolute link under /proc/PID/root would be
 * resolved against the host's root). Undefined when absent or not a small
 * regular file.
 */
export function readReaperReport(pid1: number): ReaperReport | undefined {
  const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants;
  let dir: number | undefined;
  let fd: number | undefined;
  try {
    dir = openSync(`/proc/${pid1}/root/run`, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    fd = openSync(`/proc/self/fd/${dir}/overlay-boot-reaper.json`, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_REPORT) return undefined;
    return JSON.parse(readFileSync(fd, 'utf8')) as ReaperReport;
  } catch {
    return undefined; // no report (yet): the reaper writes it once it runs
  } finally {
    if (fd !== undefined) closeSync(fd);
    if (dir !== undefined) closeSync(dir);
  }
}

function toStatus(record: StateRecord): SubhostStatus {
  const state = liveness(record);
  const status: SubhostStatus = {
    name: record.name, config: record.config, state, pid1: record.pid1?.pid, monitorPid: record.monitor?.pid,
    startedAt: record.startedAt, cables: record.cables, services: record.services, log: record.log,
    ...(record.idmap ? { idmap: { base: record.idmap.base, count: record.idmap.count } } : {}),
  };
  if (state === 'running' && record.pid1) {
    status.uptimeSeconds = Math.round(processAgeSeconds(record.pid1));
    status.reaper = readReaperReport(record.pid1.pid);
  }
  return status;
}

/** Every subhost that has a state record, each verified against the kernel (pid and start time). */
export function list(options: ListOptions = {}): SubhostStatus[] {
  return listStateRecords(options.stateDir ?? DEFAULT_STATE_DIR).map(({ record }) => toStatus(record));
}

/** One subhost by NAME; throws NOT_RUNNING when it has no record. */
export function status(name: string, options: ListOptions = {}): SubhostStatus {
  const record = readStateRecord(statePath(name, options.stateDir ?? DEFAULT_STATE_DIR));
  if (!record) throw new OverlayBootError('NOT_RUNNING', `${name} is not running`, { name });
  return toStatus(record);
}

/**
 * Pid 1 of a running subhost as the host sees it, with its start time, which
 * ovb-launch checks again after pinning it with a pidfd (share, enter); NOT_RUNNING otherwise.
 */
export function runningPid1(name: string, options: ListOptions = {}): ProcessId {
  const record = readStateRecord(statePath(name, options.stateDir ?? DEFAULT_STATE_DIR));
  if (!record?.pid1 || liveness(record) !== 'running') throw new OverlayBootError('NOT_RUNNING', `${name} is not running`, { name });
  return record.pid1;
}
