// A conf.d-like directory for overlay-watch, the watcher's events and its real bin (test/commands/watch.test.ts, test/e2e/unpriv-watch.test.ts).
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { status } from '../../src/commands/list.js';
import type { WatchEvent } from '../../src/commands/watch.js';
import { waitFor } from './host.js';
import { tempDir } from './subhost.js';

/** The real overlay-watch command (the two-line stub over its bundle). */
export const WATCH_BIN = fileURLToPath(new URL('../../bin/overlay-watch.js', import.meta.url));

export interface ConfD {
  confd: string;
  bases: string;
  log: string;
}

/** A conf.d-like DIR, with each subhost's BASE in a sibling directory (BASE is relative to the config). */
export function makeConfD(t: Test): ConfD {
  const top = tempDir(t, 'ovb-w-');
  const confd = path.join(top, 'conf.d');
  const bases = path.join(top, 'bases');
  mkdirSync(confd, { mode: 0o755 });
  mkdirSync(bases, { mode: 0o755 });
  return { confd, bases, log: path.join(top, 'log') };
}

/** Write NAME.conf into DIR (creating its BASE layout); `lines` follow BASE, NAME and LOG. */
export function writeConf(d: ConfD, name: string, lines: string[]): string {
  for (const sub of ['root', 'work', 'live']) mkdirSync(path.join(d.bases, name, sub), { recursive: true, mode: 0o755 });
  const conf = path.join(d.confd, `${name}.conf`);
  writeFileSync(conf, [`BASE=../bases/${name}`, `NAME=${name}`, `LOG=${d.log}`, ...lines].join('\n') + '\n', { mode: 0o644 });
  return conf;
}

/** Host pid of pid 1 of the subhost NAME while it runs, else undefined. */
export function pid1Of(name: string): number | undefined {
  try {
    const s = status(name);
    return s.state === 'running' ? s.pid1 : undefined;
  } catch {
    return undefined;
  }
}

/** Collects a watcher's events; `next` waits (bounded) for one that matches. */
export function recorder() {
  const events: WatchEvent[] = [];
  return {
    events,
    onEvent: (e: WatchEvent) => { events.push(e); },
    async next(match: (e: WatchEvent) => boolean, from = 0, timeoutMs = 10000): Promise<WatchEvent | undefined> {
      let found: WatchEvent | undefined;
      await waitFor(() => (found = events.slice(from).find(match)) !== undefined, timeoutMs);
      return found;
    },
  };
}

/** Run the real overlay-watch with ARGS to its end (killed after 60 s). */
export function runWatchBin(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [WATCH_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => { stdout += c; });
    child.stderr.on('data', (c) => { stderr += c; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** The JSON lines overlay-watch logs. */
export const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
