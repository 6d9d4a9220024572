import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';

/**
 * The subhost's log at LOG: JSON lines, written synchronously so that a line
 * survives a signal that ends the process right after it. The native monitor
 * appends lines of the same shape for the output of hooks and services.
 */
export function openSubhostLog(file: string, name: string): Logger {
  const dest = pino.destination({ dest: file, sync: true, mkdir: true, append: true });
  return pino({ base: { pid: process.pid, hostname: hostname(), subhost: name, source: 'overlay-boot' } }, dest);
}
