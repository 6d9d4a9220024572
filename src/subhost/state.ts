import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import type { NativeOp } from '../plan/types.js';
import type { IdRange } from './idmap.js';
import { isAlive, type ProcessId } from './process.js';

/** Where state records live; OVERLAY_BOOT_STATE_DIR moves them (tests, several independent sets). */
export const DEFAULT_STATE_DIR = process.env.OVERLAY_BOOT_STATE_DIR || '/run/overlay-boot';

export interface CableRecord {
  hostIf: string;
  subhostIf: string;
  bridge?: string;
  mac?: string;
  vlan?: number;
}

/**
 * What overlay-boot knows of a subhost it started: written before the first
 * host change, so a crash at any point leaves enough to undo it.
 */
export interface StateRecord {
  version: 1;
  name: string;
  config: string;
  /** configDigest() of the config the subhost was booted with. */
  configDigest: string;
  log: string;
  /** The boot command, while it runs. */
  boot?: ProcessId;
  /** The small native monitor that waits on pid 1 and tears down. */
  monitor?: ProcessId;
  /** Pid 1 of the subhost, as the host sees it. */
  pid1?: ProcessId;
  phase: 'booting' | 'running';
  startedAt: string;
  cables: CableRecord[];
  services: string[];
  /** Teardown program (native ops) that undoes every host change of this subhost. */
  teardown: NativeOp[];
  /** PRIVILEGED=no: the host ids its user namespace maps (0..count-1 inside). */
  idmap?: IdRange;
}

export type Liveness = 'booting' | 'running' | 'stale';

export function statePath(name: string, dir = DEFAULT_STATE_DIR): string {
  return path.join(dir, `${name}.json`);
}

/**
 * Create the record, failing if one exists: O_EXCL makes this the lock that lets
 * exactly one of several simultaneous boots of a NAME go on.
 */
export function createStateRecord(file: string, record: StateRecord): void {
  // Written whole under a private name, then linked into place: link(2) fails
  // if the name exists, and a crash can never leave an empty record behind.
  const tmp = `${file}.${process.pid}.new`;
  let linking = false;
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(tmp, JSON.stringify(record, null, 1) + '\n', { mode: 0o644 });
    linking = true;
    linkSync(tmp, file);
  } catch (cause) {
    // Only link(2)'s EEXIST is the lock taken; mkdir's means a file stands where the directory belongs.
    if (linking && (cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new OverlayBootError('ALREADY_RUNNING', `${record.name} is already running (state record ${file})`,
        { name: record.name, cause });
    }
    throw unwritable(file, record.name, cause);
  } finally {
    removeQuietly(tmp);
  }
}

/** Replace the record atomically, so readers never see half of it. */
export function writeStateRecord(file: string, record: StateRecord): void {
  replaceFile(file, JSON.stringify(record, null, 1) + '\n', record.name);
}

/** Write `content` to `file` through a private temporary file and rename(2): all or nothing. */
function replaceFile(file: string, content: string, name: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, content);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  } catch (cause) {
    removeQuietly(tmp);
    throw unwritable(file, name, cause);
  }
}

function unwritable(file: string, name: string, cause: unknown): OverlayBootError {
  const why = (cause as NodeJS.ErrnoException).code ?? String(cause);
  return new OverlayBootError('STATE_UNWRITABLE', `cannot write the state of ${name} in ${path.dirname(file)}: ${(cause as Error).message}`,
    { name, found: why, cause });
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Never made, or already gone.
  }
}

export function readStateRecord(file: string): StateRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OverlayBootError('STATE_CORRUPT', `state record ${file} cannot be read: ${(cause as Error).message}`, { file, cause });
  }
  try {
    const record = JSON.parse(text) as StateRecord;
    if (record.version !== 1 || typeof record.name !== 'string' || !Array.isArray(record.teardown)) throw new Error('bad shape');
    return record;
  } catch (cause) {
    throw new OverlayBootError('STATE_CORRUPT', `state record ${file} is unreadable`, { file, cause });
  }
}

export function removeStateRecord(file: string): void {
  for (const f of [file, fastStopPath(file)]) {
    try {
      unlinkSync(f);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw unwritable(file, path.basename(file, '.json'), cause);
    }
  }
}

/** Beside NAME.json: the one line `ovb-launch stop` reads (overlay-stop without Node.js). */
export function fastStopPath(recordFile: string): string {
  return recordFile.replace(/\.json$/, '.stop');
}

/**
 * Write the fast-stop line `file` (fastStopPath of the record) for a running subhost (src/native/fast-stop.c): the
 * config's real path, NAME, pid 1 and the monitor with their start times, and
 * STOP_TIMEOUT, tab-separated. Paths with tabs or newlines get no line (and take
 * the full overlay-stop).
 */
export function writeFastStopEntry(file: string, e: { config: string; name: string; pid1: ProcessId; monitor: ProcessId; stopTimeout: number }): void {
  if (/[\t\n]/.test(e.config)) return;
  replaceFile(file, [e.config, e.name, e.pid1.pid, e.pid1.start, e.monitor.pid, e.monitor.start, e.stopTimeout].join('\t') + '\n', e.name);
}

/** Every record in the state directory, corrupt ones skipped. */
export function listStateRecords(dir = DEFAULT_STATE_DIR): Array<{ file: string; record: StateRecord }> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: Array<{ file: string; record: StateRecord }> = [];
  for (const n of names.filter((x) => x.endsWith('.json')).sort()) {
    const file = path.join(dir, n);
    try {
      const record = readStateRecord(file);
      if (record) out.push({ file, record });
    } catch {
      // A corrupt record is reported by status for its own name; listing goes on.
    }
  }
  return out;
}

/**
 * Judge a record against the kernel: never by command lines, always by pid and start
 * time. `alive` tells whether a process still runs (default: the kernel's answer).
 */
export function liveness(record: StateRecord, alive: (p: ProcessId | undefined) => boolean = isAlive): Liveness {
  if (record.phase === 'running') {
    return alive(record.monitor) || alive(record.pid1) ? 'running' : 'stale';
  }
  if (alive(record.boot)) return 'booting';
  // The boot command died: a monitor that still lives is ending the subhost (it aborts
  // when the library goes away before ready), or pid 1 lives on without it.
  return alive(record.monitor) || alive(record.pid1) ? 'booting' : 'stale';
}

/**
 * Remove the temporary files a killed overlay-boot may have left beside the
 * record (`NAME.json.PID.tmp` / `.new`, `NAME.stop.PID.tmp`), when process PID is gone.
 */
export function removeOrphanTemps(name: string, dir = DEFAULT_STATE_DIR): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const re = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(json|stop)\\.(\\d+)\\.(tmp|new)$`);
  for (const n of names) {
    const m = re.exec(n);
    if (!m) continue;
    try {
      process.kill(Number(m[2]), 0);
    } catch {
      try { unlinkSync(path.join(dir, n)); } catch { /* gone */ }
    }
  }
}
