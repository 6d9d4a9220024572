/**
 * overlay-pkgd's pid file (`--pidfile`): written once the socket accepts connections, so
 * that its presence means "ready" to an init script or systemd's `PIDFile=` (Node.js
 * cannot send sd_notify's datagram, so the unit is `Type=simple` and its start waits for
 * this file), and removed when the daemon stops, unless another daemon's pid is in it.
 */
import { mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { writeFileAtomic } from '../lifecycle/durable.js';

/** A pid file this process wrote. */
export interface PidFile {
  file: string;
  /** Removes the file when it still holds this process's pid; calling it again does nothing. */
  remove(): void;
}

/**
 * Writes this process's pid (a decimal and a newline, mode 0644) to `file` atomically,
 * creating its directory (0755). Throws PKG_DAEMON_PIDFILE when it cannot.
 */
export function writePidFile(file: string, pid = process.pid): PidFile {
  const abs = path.resolve(file);
  try {
    mkdirSync(path.dirname(abs), { recursive: true, mode: 0o755 });
    writeFileAtomic(abs, `${pid}\n`, 0o644);
  } catch (e) {
    throw new OverlayBootError('PKG_DAEMON_PIDFILE', `cannot write the pid file: ${(e as Error).message}`, { file: abs, cause: e });
  }
  let removed = false;
  return {
    file: abs,
    remove() {
      if (removed) return;
      removed = true;
      try {
        // a daemon started after this one may have written its own pid here
        if (readFileSync(abs, 'utf8').trim() === String(pid)) unlinkSync(abs);
      } catch { /* already gone */ }
    },
  };
}
