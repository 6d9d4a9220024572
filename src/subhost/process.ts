import { readFileSync } from 'node:fs';

/** A process named by pid and start time, so a reused pid is never mistaken for it. */
export interface ProcessId {
  pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks after boot. */
  start: number;
}

export function processStartTime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm (field 2) may hold spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[19]);
  } catch {
    return undefined;
  }
}

export function processId(pid: number): ProcessId | undefined {
  const start = processStartTime(pid);
  return start === undefined ? undefined : { pid, start };
}

/** True when that very process still exists (and is not a zombie). */
export function isAlive(id: ProcessId | undefined): boolean {
  if (!id) return false;
  try {
    const stat = readFileSync(`/proc/${id.pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[0] !== 'Z' && Number(rest[19]) === id.start;
  } catch {
    return false;
  }
}

/** Uptime of a process in seconds, from its start time. */
export function processAgeSeconds(id: ProcessId): number {
  const uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  return Math.max(0, uptime - id.start / 100);
}
