/**
 * A test hook for crash safety: `OVERLAY_PKG_CRASH_AT=POINT` makes the process SIGKILL
 * itself when an operation reaches POINT, the name of a journal step just recorded (see
 * {@link journalStep}) or of a place between two changes ({@link crashPoint}). Tests run
 * a command with it, then one more command, and check that every DU is in its state
 * before or after. Unset (always, outside tests) it costs one lookup.
 */
import type { Journal, JournalOperation } from './journal.js';

/** The environment variable naming the point to crash at. */
export const CRASH_ENV = 'OVERLAY_PKG_CRASH_AT';

/** SIGKILLs this process when {@link CRASH_ENV} is `point`. */
export function crashPoint(point: string): void {
  if (process.env[CRASH_ENV] === point) process.kill(process.pid, 'SIGKILL');
}

/** `journal.step(name, data)`, then {@link crashPoint}(name). */
export function journalStep(journal: Journal, name: string, data?: Record<string, unknown>): JournalOperation {
  const op = journal.step(name, data);
  crashPoint(name);
  return op;
}
