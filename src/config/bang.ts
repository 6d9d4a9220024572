import type { Where } from './where.js';
import { configError } from './where.js';

/** How long a `!` command may run before its whole process group is killed. */
export const DEFAULT_BANG_TIMEOUT_MS = 10_000;

/**
 * The environment variable naming the file a `!` command appends each mount point it
 * makes to, so a boot knows exactly which mounts are its own (overlay-boot.conf(5)).
 */
export const MOUNTS_ENV = 'OVERLAY_BOOT_MOUNTS';

/** A `!` value is a command line; every other value is taken literally. */
export function isBangValue(value: string): boolean {
  return value.startsWith('!');
}

export interface BangOptions {
  /** Directory the command runs in. */
  cwd: string;
  /** Absolute path of the config file, given to the command as `CONFIG`. */
  configFile: string;
  /** Name of the running tool, given to the command as `ACTION`. */
  action: string;
  /** Environment the command starts from; `ACTION` and `CONFIG` are added to it. */
  env: NodeJS.ProcessEnv;
  /**
   * A private file the command may append the mount points it makes to, one absolute
   * path a line, given to it as {@link MOUNTS_ENV} (overlay-diskfile does).
   */
  mountsFile?: string;
  /** Milliseconds before the command's process group is killed. */
  timeoutMs: number;
  /** Where the value came from, for error messages. */
  where: Where;
}

/**
 * Runs the command of a `!` value (without its `!`) through `/bin/sh -c` and returns
 * the first line of its output, trimmed. Only this one value is handed to a shell:
 * that is the documented meaning of `!`.
 */
export async function evaluateBang(value: string, options: BangOptions): Promise<string> {
  const command = value.slice(1);
  // Loaded only when a config has a '!' value: execa takes ~80 ms to import.
  const { execa } = await import('execa');
  const env: NodeJS.ProcessEnv = { ...options.env, ACTION: options.action, CONFIG: options.configFile };
  // Never an inherited one: only the file of this read may collect this read's mounts.
  delete env[MOUNTS_ENV];
  if (options.mountsFile !== undefined) env[MOUNTS_ENV] = options.mountsFile;
  const run = execa('/bin/sh', ['-c', command], {
    cwd: options.cwd,
    env,
    extendEnv: false,
    stdin: 'ignore',
    // Its own process group, so a timeout also kills what the command started:
    // a grandchild holding the output pipe would otherwise keep us waiting.
    detached: true,
    reject: false,
    maxBuffer: 1024 * 1024,
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(run.pid);
    // A descendant that left the group (setsid) may still hold the pipes open.
    run.stdout?.destroy();
    run.stderr?.destroy();
  }, options.timeoutMs);
  const result = await run.finally(() => clearTimeout(timer));
  const where = options.where;
  if (timedOut) {
    throw configError('CONFIG_BANG_TIMEOUT', `'!' command \`${command}\` did not finish within ${options.timeoutMs} ms`, where, {
      expected: `finished within ${options.timeoutMs} ms`,
    });
  }
  if (result.failed) {
    const why = result.exitCode !== undefined ? `exit status ${result.exitCode}` : (result.signal ?? firstLine(result.shortMessage ?? 'spawn failed'));
    const stderr = firstLine(String(result.stderr ?? ''));
    throw configError('CONFIG_BANG_FAILED', `'!' command \`${command}\` failed (${why})${stderr ? `: ${stderr}` : ''}`, where, {
      found: stderr || why,
    });
  }
  const stdout = String(result.stdout ?? '');
  if (stdout.includes('\0')) {
    throw configError('CONFIG_BANG_FAILED', `'!' command \`${command}\` printed a NUL byte`, where);
  }
  const line = firstLine(stdout);
  if (line === '') {
    throw configError('CONFIG_BANG_EMPTY', `'!' command \`${command}\` printed nothing`, where, {
      expected: 'a value on the first line of output',
    });
  }
  return line;
}

function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return (nl === -1 ? text : text.slice(0, nl)).trim();
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone: nothing left to stop.
  }
}
