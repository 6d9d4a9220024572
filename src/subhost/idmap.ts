import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { isAlive, processId } from './process.js';
import { readStateRecord, statePath } from './state.js';

/** The ids a user namespace maps: 0..count-1 inside are base..base+count-1 on the host. */
export interface IdRange {
  base: number;
  count: number;
  /** Index of the range in the pool: the reservation file `idmap/<slot>` beside the state records. */
  slot: number;
}

/** ids per subhost: 0..65535, what a distribution's users and groups need. */
export const IDS_PER_SUBHOST = 65536;
/** The default pool: from 0x10000000 on, far above any /etc/subuid range useradd hands out. */
export const DEFAULT_POOL = { start: 0x10000000, count: 4096 * IDS_PER_SUBHOST };

/**
 * The pool of host ids for unprivileged subhosts: the `overlay-boot` lines of /etc/subuid
 * and /etc/subgid when both have one with the same start and at least one range's
 * worth, else DEFAULT_POOL.
 */
export function idPool(files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): { start: number; count: number } {
  const entry = (file: string) => {
    let text: string;
    try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
    const m = /^overlay-boot:(\d+):(\d+)\s*$/m.exec(text);
    return m ? { start: Number(m[1]), count: Number(m[2]) } : undefined;
  };
  const u = entry(files.subuid), g = entry(files.subgid);
  if (u && g && u.start === g.start && u.start > 0 && Math.min(u.count, g.count) >= IDS_PER_SUBHOST) {
    return { start: u.start, count: Math.min(u.count, g.count) };
  }
  return DEFAULT_POOL;
}

export function slotFile(stateDir: string, slot: number): string {
  return path.join(stateDir, 'idmap', String(slot));
}

/**
 * Reserve the lowest free range of the pool for subhost `name`: the file `idmap/<slot>` is
 * created with O_EXCL, so two boots never get the same range whatever their NAMEs. It holds
 * `NAME PID START` (the boot process); a file whose boot died and whose subhost has no state record
 * is left over from a crash and is taken over (reclaim). The plan's undo removes the file.
 */
export function reserveIdRange(name: string, stateDir: string, pool = idPool()): IdRange {
  const slots = Math.floor(pool.count / IDS_PER_SUBHOST);
  mkdirSync(path.join(stateDir, 'idmap'), { recursive: true, mode: 0o755 });
  for (let slot = 0; slot < slots; slot++) {
    const file = slotFile(stateDir, slot);
    if (tryCreate(file, name) || reclaim(file, name, stateDir)) {
      return { base: pool.start + slot * IDS_PER_SUBHOST, count: IDS_PER_SUBHOST, slot };
    }
  }
  throw new OverlayBootError('IDMAP_EXHAUSTED', `no free id range for ${name}: all ${slots} ranges of the pool are taken`,
    { name, expected: `a free range of ${IDS_PER_SUBHOST} ids from ${pool.start}` });
}

/** The range a boot would reserve now (for --check: nothing is reserved). */
export function previewIdRange(stateDir: string, pool = idPool()): IdRange {
  const slots = Math.floor(pool.count / IDS_PER_SUBHOST);
  let slot = 0;
  while (slot < slots - 1 && existsSync(slotFile(stateDir, slot))) slot++;
  return { base: pool.start + slot * IDS_PER_SUBHOST, count: IDS_PER_SUBHOST, slot };
}

/** Give the range back, when the file is still this boot's (a failed boot before its plan took it over). */
export function releaseIdRange(range: IdRange, name: string, stateDir: string): void {
  const file = slotFile(stateDir, range.slot);
  if (owner(file)?.join(' ') === token(name)) removed(file);
}

/**
 * Take over a left-over range. One reclaimer at a time (the O_EXCL file `idmap/.reclaim`):
 * two of them could otherwise each remove the file, the second removing the first's new
 * reservation. A plain reservation needs no lock: it only creates, and a left-over file is
 * removed by a reclaimer alone (no record holds it, its boot is gone). Busy: the next slot.
 */
function reclaim(file: string, name: string, stateDir: string): boolean {
  const lock = path.join(stateDir, 'idmap', '.reclaim');
  try {
    closeSync(openSync(lock, 'wx', 0o644));
  } catch {
    // A reclaimer that died holding it: its lock goes after a minute.
    try { if (Date.now() - statSync(lock).mtimeMs > 60000) removed(lock); } catch { /* gone */ }
    return false;
  }
  try {
    return isLeftOver(file, stateDir) && removed(file) && tryCreate(file, name);
  } finally {
    removed(lock);
  }
}

function tryCreate(file: string, name: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new OverlayBootError('STATE_UNWRITABLE', `cannot reserve an id range in ${path.dirname(file)}: ${(e as Error).message}`, { name, cause: e });
  }
  try { writeSync(fd, `${token(name)}\n`); } finally { closeSync(fd); }
  return true;
}

/** `NAME PID START`: the subhost and the boot process that reserved the range. */
function token(name: string): string {
  const me = processId(process.pid);
  return `${name} ${process.pid} ${me?.start ?? 0}`;
}

function owner(file: string): [string, string, string] | undefined {
  try {
    const [name, pid, start] = readFileSync(file, 'utf8').trim().split(' ');
    return name && pid && start ? [name, pid, start] : undefined;
  } catch {
    return undefined;
  }
}

function isLeftOver(file: string, stateDir: string): boolean {
  const o = owner(file);
  if (!o) return false;
  if (isAlive({ pid: Number(o[1]), start: Number(o[2]) })) return false;
  let record;
  try { record = readStateRecord(statePath(o[0], stateDir)); } catch { return false; }
  return record?.idmap?.slot !== Number(file.slice(file.lastIndexOf('/') + 1));
}

function removed(file: string): boolean {
  try {
    unlinkSync(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Give back the ranges still reserved for `name` by boots that died before their plan's undo
 * held the range (a SIGKILL between the reservation and the user namespace step): overlay-stop
 * of a subhost that is not running calls it, so nothing of it is left. Under the reclaimers'
 * lock, so a range another boot takes over meanwhile is never removed; while that lock is busy
 * the ranges stay, and the next reservation takes them over.
 */
export function releaseLeftOverRanges(name: string, stateDir: string): void {
  const dir = path.join(stateDir, 'idmap');
  const lock = path.join(dir, '.reclaim');
  try { closeSync(openSync(lock, 'wx', 0o644)); } catch { return; }
  try {
    for (const slot of readdirSync(dir).filter((f) => /^\d+$/.test(f))) {
      const file = path.join(dir, slot);
      if (owner(file)?.[0] === name && isLeftOver(file, stateDir)) removed(file);
    }
  } finally {
    removed(lock);
  }
}
