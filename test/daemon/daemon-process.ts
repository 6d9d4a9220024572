// The daemon as a child process, for tests that kill it: test/daemon/daemon-child.ts
// bundled once by esbuild (a start costs ~0.2 s, not the seconds of the TypeScript
// loader) into ROOT/.tap/pkgd-PID/, two levels below the root as dist/bin is, so that the
// native helpers and shipped templates are found from it as from the sources.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Test } from 'tap';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Bundles the daemon child (removed when `t` ends); returns the file to run with node. */
export async function bundleDaemon(t: Test): Promise<string> {
  const dir = path.join(ROOT, '.tap', `pkgd-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const outfile = path.join(dir, 'daemon.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'test/daemon/daemon-child.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20',
    outfile, external: ['execa', 'pino', 'pino-pretty', 'chokidar'], logLevel: 'error',
    // a bundle of ESM code that requires node built-ins
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return outfile;
}

/** A daemon process. */
export interface DaemonProcess {
  child: ChildProcess;
  /** Resolves with how it ended. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** What it logged so far. */
  log(): string;
}

/** Whether something accepts connections on `socket`. */
function accepts(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect(socket);
    c.once('connect', () => { c.destroy(); resolve(true); });
    c.once('error', () => resolve(false));
  });
}

/**
 * Starts the bundled daemon on `socket` with `env`, and waits (at most 20 s) until it
 * accepts connections. Its output goes to a file, not a pipe: the subhosts it boots
 * inherit it and outlive it. Killed (SIGKILL, by pid) when `t` ends if still running.
 */
export async function startDaemonProcess(t: Test, bundle: string, configFile: string, socket: string, env: NodeJS.ProcessEnv, logFile: string): Promise<DaemonProcess> {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [bundle, configFile, socket], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL');
  });
  let gone = false;
  void exited.then(() => { gone = true; });
  for (let i = 0; i < 400 && !gone; i++) {
    if (await accepts(socket)) break;
    await sleep(50);
  }
  return { child, exited, log: () => readFileSync(logFile, 'utf8') };
}
