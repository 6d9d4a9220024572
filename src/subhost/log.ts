import { closeSync, constants, fstatSync, lstatSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { OverlayBootError } from '../errors.js';

/**
 * Open LOG for appending (created 0640 when missing) without following a link:
 * O_NOFOLLOW, and refused (LOG_UNSAFE) unless it is a regular file owned by root.
 * O_NONBLOCK so that a FIFO put there cannot hang the boot (no effect on a file).
 */
export function openLogFile(file: string): number {
  const { O_WRONLY, O_APPEND, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = constants;
  let fd: number;
  try {
    fd = openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0o640);
  } catch (cause) {
    // ELOOP: a link; EISDIR: a directory; ENXIO: a FIFO nobody reads (O_NONBLOCK)
    const what = { ELOOP: 'a symbolic link', EISDIR: 'a directory', ENXIO: 'not a regular file' }[(cause as NodeJS.ErrnoException).code ?? ''];
    if (!what) throw cause;
    throw new OverlayBootError('LOG_UNSAFE', `LOG ${file} is ${what}; it was not opened`,
      { variable: 'LOG', found: file, expected: 'a regular file owned by root', cause });
  }
  const st = fstatSync(fd);
  if (!st.isFile() || st.uid !== 0) {
    closeSync(fd);
    throw new OverlayBootError('LOG_UNSAFE', `LOG ${file} is ${st.isFile() ? `owned by uid ${st.uid}, not root` : 'not a regular file'}; it was not opened`,
      { variable: 'LOG', found: file, expected: 'a regular file owned by root' });
  }
  return fd;
}

/** Whether fd is the file at path (not a file renamed away from it by a log rotation). */
function isFileAt(fd: number, file: string): boolean {
  const a = fstatSync(fd);
  const b = lstatSync(file, { throwIfNoEntry: false });
  return b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** The part of a pino logger a boot uses; what openSubhostLog returns. */
export interface SubhostLog {
  info(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
  /** Below pino's default level (info): written nowhere, as with pino. */
  debug(fields: Record<string, unknown>, msg: string): void;
  flush(): void;
}

/**
 * What pino's standard `err` serializer makes of an error-like value (one with a
 * string `message`): type, message, stack, then its other enumerable members.
 */
function serializeErr(err: unknown): unknown {
  if (!err || typeof err !== 'object' || typeof (err as { message?: unknown }).message !== 'string') return err;
  const e = err as Record<string, unknown> & { message: string; stack?: unknown; name?: unknown; errors?: unknown };
  const ctor = (e as { constructor?: unknown }).constructor;
  const out: Record<string, unknown> = {
    type: typeof ctor === 'function' ? ctor.name : e.name,
    message: e.message,
    stack: typeof e.stack === 'string' ? e.stack : '',
  };
  if (Array.isArray(e.errors)) out.aggregateErrors = e.errors.map(serializeErr);
  for (const key in e) if (out[key] === undefined) out[key] = e[key];
  return out;
}

/**
 * The subhost's log at LOG: JSON lines in pino's format (`level`, `time`, the
 * bindings, the fields, `msg`), so pino-pretty reads them. Each line is written
 * synchronously, so that it survives a signal that ends the process right after
 * it. With `fd` (from openLogFile) lines go there and LOG is not opened again;
 * without, LOG is opened per line as openLogFile does, so no descriptor outlives
 * the boot. Written
 * without pino, whose import costs a command more than the boot's work. The
 * native monitor appends lines of the same shape for the output of hooks and
 * services.
 */
export function openSubhostLog(file: string, name: string, fd?: number): SubhostLog {
  const bindings = JSON.stringify({ pid: process.pid, hostname: hostname(), subhost: name, source: 'overlay-boot' }).slice(1, -1);
  const write = (level: number, fields: Record<string, unknown>, msg: string): void => {
    let extra = '';
    for (const [k, v] of Object.entries(fields)) {
      const text = JSON.stringify(k === 'err' ? serializeErr(v) : v);
      if (text !== undefined) extra += `,${JSON.stringify(k)}:${text}`;
    }
    const line = `{"level":${level},"time":${Date.now()},${bindings}${extra},"msg":${JSON.stringify(msg)}}\n`;
    // Once the monitor has rotated LOG (LOG_MAX_SIZE), fd is the rotated file: write to LOG itself.
    if (fd !== undefined && isFileAt(fd, file)) {
      writeSync(fd, line);
      return;
    }
    const once = openLogFile(file);
    try { writeSync(once, line); } finally { closeSync(once); }
  };
  return {
    info: (fields, msg) => write(30, fields, msg),
    error: (fields, msg) => write(50, fields, msg),
    debug: () => {},
    flush: () => {},
  };
}
