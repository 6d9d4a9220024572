/**
 * The host-wide queue of overlay-pkg operations: one lock per state directory, taken in
 * the order requests arrive; a second request waits its turn and never fails because
 * another one runs (LIFECYCLE.md "Operations on the host are serialised").
 *
 * Node has no flock(2), so the lock is Lamport's bakery algorithm over files in the
 * directory `STATE/lock/`, spawn-free and safe against SIGKILL:
 *
 * 1. A waiter creates `c-PID-START-BOOT` ("choosing"), reads the system-wide monotonic
 *    clock into its ticket, creates `t-TICKET-PID-START-BOOT`, and removes its `c-` file.
 * 2. It waits until no `c-` file of another process is present, then until no `t-` file
 *    sorts before its own. It then holds the lock; release removes its `t-` file.
 *
 * A process that starts choosing after another finished choosing reads a later clock,
 * so it queues behind; one still choosing is waited for. PID, START (the process's
 * start time in clock ticks, /proc/PID/stat field 22) and BOOT (the start of the kernel's
 * boot id) name the owner of every file, so a file whose owner is gone, whose PID now
 * belongs to another process, or that was left before a reboot, is stale and removed by
 * whoever sees it: a SIGKILLed holder or waiter never blocks the queue. Every
 * name is unique to its owner, so removing a stale file cannot remove anyone else's.
 * The processes must share a PID namespace (they all run on the host).
 */
import { closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OverlayBootError } from '../errors.js';
import { stateLayout } from './layout.js';

/** Options of {@link acquireLock}. */
export interface LockOptions {
  /** Give up with PKG_LOCK_FAILED after this many milliseconds. Default: wait as long as it takes. */
  timeoutMs?: number;
  /** Called once when the lock is held by someone else and this request starts waiting. */
  onWait?: () => void;
  /** Longest pause between two looks at the queue, in milliseconds. Default 50. */
  maxPollMs?: number;
}

/** A held lock; {@link release} gives it to the next in the queue. */
export interface HeldLock {
  /** The lock directory. */
  dir: string;
  /** This holder's ticket file. */
  ticket: string;
  /** Releases the lock; calling it again does nothing. */
  release(): void;
}

/** Start time of process `pid` in clock ticks since boot, or undefined when there is no such process. */
export function processStartTime(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // comm (field 2) may hold spaces and parentheses: count fields after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

const OWN_START = processStartTime('self') ?? '0';

/** This boot's id, shortened: the same PID and start time can recur after a reboot. */
function bootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/[^0-9a-f]/g, '').slice(0, 12);
  } catch {
    return '0';
  }
}

const BOOT = bootId();

interface Entry {
  name: string;
  kind: 'c' | 't';
  ticket: bigint;
  pid: number;
  start: string;
  boot: string;
}

function parseEntry(name: string): Entry | undefined {
  const t = /^t-([0-9]{20})-([0-9]+)-([0-9]+)-([0-9a-f]+)$/.exec(name);
  if (t) return { name, kind: 't', ticket: BigInt(t[1]!), pid: Number(t[2]), start: t[3]!, boot: t[4]! };
  const c = /^c-([0-9]+)-([0-9]+)-([0-9a-f]+)$/.exec(name);
  if (c) return { name, kind: 'c', ticket: 0n, pid: Number(c[1]), start: c[2]!, boot: c[3]! };
  return undefined;
}

function isAlive(e: Entry): boolean {
  return e.boot === BOOT && processStartTime(e.pid) === e.start;
}

function lockError(dir: string, what: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_LOCK_FAILED', what, { file: dir, cause });
}

function createExclusive(file: string): void {
  closeSync(openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600));
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

/** Lock directories this process holds a ticket in: the lock is not re-entrant. */
const heldHere = new Set<string>();

/**
 * Takes the lock of state directory `stateDir` (creating `STATE/lock/` as needed),
 * waiting behind every earlier request. Throws PKG_LOCK_FAILED when the directory
 * cannot be used, when this process already holds or awaits it, or on `timeoutMs`.
 */
export async function acquireLock(stateDir: string, opts: LockOptions = {}): Promise<HeldLock> {
  const dir = stateLayout(stateDir).lock;
  if (heldHere.has(dir)) throw lockError(dir, 'this process already holds or awaits this lock');
  const me = `${process.pid}-${OWN_START}-${BOOT}`;
  const choosing = path.join(dir, `c-${me}`);
  let ticketFile: string | undefined;
  heldHere.add(dir);
  try {
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      createExclusive(choosing);
      const ticket = process.hrtime.bigint();
      ticketFile = path.join(dir, `t-${ticket.toString().padStart(20, '0')}-${me}`);
      createExclusive(ticketFile);
      unlinkSync(choosing);
    } catch (e) {
      throw lockError(dir, `cannot queue in the lock directory: ${(e as Error).message}`, e);
    }
    await waitForTurn(dir, path.basename(ticketFile), opts);
  } catch (e) {
    heldHere.delete(dir);
    // Best effort: the error being thrown says what is wrong with the directory.
    for (const f of [choosing, ticketFile]) {
      try {
        if (f !== undefined) removeQuietly(f);
      } catch { /* reported through e */ }
    }
    throw e;
  }
  const held = ticketFile;
  let released = false;
  return {
    dir,
    ticket: held,
    release() {
      if (released) return;
      released = true;
      try {
        removeQuietly(held);
      } finally {
        heldHere.delete(dir);
      }
    },
  };
}

async function waitForTurn(dir: string, mine: string, opts: LockOptions): Promise<void> {
  const own = parseEntry(mine)!;
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const maxPoll = opts.maxPollMs ?? 50;
  let pause = 1;
  let waited = false;
  for (;;) {
    if (blockers(dir, own) === 0) return;
    if (!waited) {
      waited = true;
      opts.onWait?.();
    }
    if (Date.now() >= deadline) throw lockError(dir, `still queued after ${opts.timeoutMs} ms`);
    await sleep(pause);
    pause = Math.min(maxPoll, pause * 2);
  }
}

/** How many live entries stand before `own`: any other chooser, and earlier tickets. Removes stale ones. */
function blockers(dir: string, own: Entry): number {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw lockError(dir, `cannot read the lock directory: ${(e as Error).message}`, e);
  }
  let count = 0;
  for (const name of names) {
    const e = parseEntry(name);
    if (e === undefined || name === own.name) continue;
    const before = e.kind === 'c' || e.ticket < own.ticket || (e.ticket === own.ticket && e.pid < own.pid);
    if (!before) continue;
    if (isAlive(e)) {
      count += 1;
    } else {
      removeQuietly(path.join(dir, name));
    }
  }
  return count;
}

/**
 * Runs `fn` holding the lock of `stateDir`, releasing it however `fn` ends.
 * See {@link acquireLock} for the waiting and its errors.
 */
export async function withLock<T>(stateDir: string, fn: () => Promise<T> | T, opts: LockOptions = {}): Promise<T> {
  const lock = await acquireLock(stateDir, opts);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
