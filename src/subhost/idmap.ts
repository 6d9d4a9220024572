import { chmodSync, closeSync, existsSync, lchownSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
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
 * Reserve a range of the pool for subhost `name`: the one UPPER's top directory belongs to
 * when it is free (`upper`: the range the subhost's files in UPPER were written with, which
 * its boot gave UPPER's top; so a subhost keeps its range from boot to boot), else the
 * lowest free one. The file `idmap/<slot>` is created with O_EXCL, so two boots never get
 * the same range whatever their NAMEs. It holds `NAME PID START` (the boot process); a file
 * whose boot died and whose subhost has no state record is left over from a crash and is
 * taken over (reclaim). The plan's undo removes the file.
 */
export function reserveIdRange(name: string, stateDir: string, pool = idPool(), upper?: string): IdRange {
  const slots = Math.floor(pool.count / IDS_PER_SUBHOST);
  mkdirSync(path.join(stateDir, 'idmap'), { recursive: true, mode: 0o755 });
  const take = (slot: number) => tryCreate(slotFile(stateDir, slot), name) || reclaim(slotFile(stateDir, slot), name, stateDir);
  const range = (slot: number): IdRange => ({ base: pool.start + slot * IDS_PER_SUBHOST, count: IDS_PER_SUBHOST, slot });
  const owned = upper === undefined ? undefined : slotOf(ownerOf(upper), pool);
  if (owned !== undefined && take(owned)) return range(owned);
  for (let slot = 0; slot < slots; slot++) {
    if (take(slot)) return range(slot);
  }
  throw new OverlayBootError('IDMAP_EXHAUSTED', `no free id range for ${name}: all ${slots} ranges of the pool are taken`,
    { name, expected: `a free range of ${IDS_PER_SUBHOST} ids from ${pool.start}` });
}

function ownerOf(file: string): number | undefined {
  try { return statSync(file).uid; } catch { return undefined; }
}

/** The slot of the range that starts at host id `base`, when the pool has one. */
export function slotOf(base: number | undefined, pool = idPool()): number | undefined {
  if (base === undefined || base < pool.start || (base - pool.start) % IDS_PER_SUBHOST !== 0) return undefined;
  const slot = (base - pool.start) / IDS_PER_SUBHOST;
  return slot < Math.floor(pool.count / IDS_PER_SUBHOST) ? slot : undefined;
}

/**
 * Moves the owners of everything in the tree `dir` (itself included, links not followed)
 * from the range at `from` to the range at `to`: uid and gid `from + k` (k < 65536) become
 * `to + k`; ids outside the range are left. A setuid or setgid bit, which the kernel drops
 * on chown, is put back. For a tree no process uses meanwhile (a layer before or after its
 * staging subhost); a hard-linked file is moved once (its second name is outside `from`).
 */
export function shiftOwners(dir: string, from: number, to: number): void {
  const shift = (id: number) => (id >= from && id < from + IDS_PER_SUBHOST ? id - from + to : id);
  const visit = (p: string): void => {
    const st = lstatSync(p);
    const uid = shift(st.uid), gid = shift(st.gid);
    if (uid !== st.uid || gid !== st.gid) {
      lchownSync(p, uid, gid);
      if (st.isFile() && (st.mode & 0o6000) !== 0) chmodSync(p, st.mode & 0o7777);
    }
    if (st.isDirectory()) for (const e of readdirSync(p)) visit(path.join(p, e));
  };
  visit(dir);
}

/**
 * Gives the directory `upper` (a long-lived subhost's UPPER: a DU's) a range of its own for
 * its life: its top directory is chowned to the range's first id, which every boot of it then
 * reserves first ({@link reserveIdRange}). An UPPER that has one already, not among `leased`
 * (other subhosts' ranges), keeps it; else the highest slot neither leased nor reserved now
 * is taken (boots without one take the lowest free, so the two meet only in a full pool), and
 * UPPER's files move to it from the range they had ({@link shiftOwners}). Returns the range.
 */
export function leaseIdRange(upper: string, leased: ReadonlySet<number>, stateDir: string, pool = idPool()): IdRange {
  const range = (slot: number): IdRange => ({ base: pool.start + slot * IDS_PER_SUBHOST, count: IDS_PER_SUBHOST, slot });
  const had = slotOf(ownerOf(upper), pool);
  if (had !== undefined && !leased.has(had)) return range(had);
  for (let slot = Math.floor(pool.count / IDS_PER_SUBHOST) - 1; slot >= 0; slot--) {
    if (leased.has(slot) || existsSync(slotFile(stateDir, slot))) continue;
    shiftOwners(upper, had === undefined ? 0 : range(had).base, range(slot).base);
    return range(slot);
  }
  throw new OverlayBootError('IDMAP_EXHAUSTED', `no id range left to give ${upper} for its life`, { file: upper, expected: `a free range of ${IDS_PER_SUBHOST} ids from ${pool.start}` });
}

/** The slots of the ranges the directories `uppers` belong to (see {@link leaseIdRange}). */
export function leasedSlots(uppers: Iterable<string>, pool = idPool()): Set<number> {
  const out = new Set<number>();
  for (const u of uppers) {
    const slot = slotOf(ownerOf(u), pool);
    if (slot !== undefined) out.add(slot);
  }
  return out;
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
