import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
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

/**
 * The subhost's log at LOG: JSON lines, written synchronously so that a line
 * survives a signal that ends the process right after it. The native monitor
 * appends lines of the same shape for the output of hooks and services.
 * With fd (from openLogFile), lines go there and LOG is not opened again.
 */
export function openSubhostLog(file: string, name: string, fd?: number): Logger {
  const dest = pino.destination(fd === undefined ? { dest: file, sync: true, mkdir: true, append: true } : { fd, sync: true });
  return pino({ base: { pid: process.pid, hostname: hostname(), subhost: name, source: 'overlay-boot' } }, dest);
}
