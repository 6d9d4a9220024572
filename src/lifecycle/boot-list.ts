/**
 * The boot list (`[paths] boot_list`, default /etc/subhosts.conf): config pathnames, one a
 * line, booted by the `subhosts` init script at host boot. Install registers the DU
 * subhost's config in it, so the DU (and its AutoStart EUs, which are in its START)
 * comes back after a reboot; remove unregisters it. Other lines (the administrator's
 * subhosts, comments) are kept as they are. Rewritten atomically (mode 0644); a file
 * left empty by the removal of the last line is removed, so that install then remove
 * leaves the host as it was.
 */
import { readFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { ensureDir, fsyncDir, writeFileAtomic } from './durable.js';

function readLines(file: string): string[] | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OverlayBootError('PKG_STATE_IO', `cannot read the boot list: ${(e as Error).message}`, { file, cause: e });
  }
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

function writeLines(file: string, lines: string[]): void {
  if (lines.length === 0) {
    try {
      unlinkSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new OverlayBootError('PKG_STATE_IO', `cannot remove the boot list: ${(e as Error).message}`, { file, cause: e });
    }
    fsyncDir(path.dirname(file));
    return;
  }
  ensureDir(path.dirname(file));
  writeFileAtomic(file, lines.map((l) => `${l}\n`).join(''), 0o644);
}

/** Whether `config` is listed in boot list `file`. */
export function isInBootList(file: string, config: string): boolean {
  return (readLines(file) ?? []).some((l) => l.trim() === config);
}

/** Adds `config` (an absolute path) to boot list `file`, creating it; listed already is fine. */
export function addToBootList(file: string, config: string): void {
  const lines = readLines(file) ?? [];
  if (lines.some((l) => l.trim() === config)) return;
  writeLines(file, [...lines, config]);
}

/** Removes every line naming `config` from boot list `file`; absent is fine. */
export function removeFromBootList(file: string, config: string): void {
  const lines = readLines(file);
  if (lines === undefined) return;
  const kept = lines.filter((l) => l.trim() !== config);
  if (kept.length !== lines.length) writeLines(file, kept);
}
