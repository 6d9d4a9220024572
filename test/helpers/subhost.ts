import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { Test } from 'tap';
import { stopByName } from '../../src/commands/stop.js';
import { snapshotHost, waitFor } from './host.js';
import { modeLines, type Mode } from './mode.js';

let counter = 0;

/** A short unique subhost name (NAME is at most 12 characters; VLAN names need fewer). */
export function uniqueName(prefix = 't'): string {
  counter += 1;
  return `${prefix}${(process.pid % 10000).toString(36)}${counter.toString(36)}`.slice(0, 8);
}

/** A root-owned temporary directory (mode 0755), removed at teardown after unmounting anything left. */
export function tempDir(t: Test, prefix = 'ovb-'): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface SubhostDir {
  dir: string;
  conf: string;
  base: string;
}

/**
 * A subhost directory in the shell tool's layout: CONF beside BASE with root,
 * work and live. `lines` are the config lines after BASE; `mode` adds PRIVILEGED=no for an
 * unprivileged subhost.
 */
export function makeSubhost(t: Test, name: string, lines: string[], opts: { lower?: string; mode?: Mode } = {}): SubhostDir {
  const dir = tempDir(t);
  const base = path.join(dir, name);
  for (const d of ['root', 'work', 'live']) mkdirSync(path.join(base, d), { recursive: true, mode: 0o755 });
  const conf = path.join(dir, `${name}.conf`);
  const all = [`BASE=${name}`, `NAME=${name}`, `LOG=${path.join(dir, 'log')}`];
  if (opts.lower) all.push(`LOWER=${opts.lower}`);
  if (opts.mode) all.push(...modeLines(opts.mode));
  writeFileSync(conf, [...all, ...lines].join('\n') + '\n', { mode: 0o644 });
  return { dir, conf, base };
}

/** A bridge on the host made by the test, deleted at teardown. */
export function makeBridge(t: Test, name: string): string {
  execFileSync('ip', ['link', 'add', name, 'type', 'bridge']);
  t.teardown(() => { try { execFileSync('ip', ['link', 'del', name], { stdio: 'ignore' }); } catch { /* gone */ } });
  execFileSync('ip', ['link', 'set', name, 'up']);
  return name;
}

/** Read the JSON-lines log into messages. */
export function logMessages(file: string, read: (f: string) => string): string[] {
  return read(file).split('\n').filter(Boolean).map((l) => {
    try { return String(JSON.parse(l).msg); } catch { return l; }
  });
}

/** Stop a subhost at teardown, whether or not the test got that far (not running is fine). */
export function stopAtTeardown(t: Test, name: string, timeoutSeconds = 2): void {
  t.teardown(async () => {
    try { await stopByName(name, { timeoutSeconds }); } catch { /* not running */ }
  });
}

/**
 * A test of subhosts NAMES: they are stopped in the inner test's teardown,
 * whether or not it got that far; then the host must be as it was before.
 */
export function subhostTest(parent: Test, title: string, names: string[], fn: (t: Test) => Promise<void>) {
  return parent.test(title, async (outer) => {
    const before = snapshotHost({ names });
    await outer.test('run', async (t) => {
      for (const name of names) stopAtTeardown(t, name, 3);
      await fn(t);
    });
    await waitFor(() => JSON.stringify(snapshotHost({ names })) === JSON.stringify(before), 5000);
    outer.same(snapshotHost({ names }), before, 'host as before');
  });
}
