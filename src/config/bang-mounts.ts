import { mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { mountPoints } from '../host/links.js';

/**
 * Which host mounts the `!` commands of one config read made. Exact: every `!` command
 * gets a private file (OVERLAY_BOOT_MOUNTS) to append the mount points it makes to, as
 * overlay-diskfile does. Fallback, for commands that mount by other means: mounts that
 * appeared during the read under the config's own directories. The fallback alone can
 * still claim a mount that a simultaneous read of a config sharing those directories
 * made; the report file cannot (overlay-boot.conf(5), "'!' values").
 */
export interface MountWatch {
  /** The file handed to `!` commands; undefined when no private file could be made. */
  readonly file: string | undefined;
  /** The mounts this read made, deepest first; removes the private file. */
  finish(scope: MountScope): string[];
}

/** The config's own directories, within which the fallback attributes new mounts. */
export interface MountScope {
  /** Directory of the config file: a mount exactly on it counts. */
  configDir: string;
  /** BASE: any mount on or below it counts. */
  base?: string;
  /** The absolute path values (LIVE, UPPER, WORK, LOWER): a mount on one of them or above it (not `/`) counts. */
  paths: string[];
}

/** Start watching before the first `!` command runs. */
export function watchBangMounts(): MountWatch {
  const before = mountPoints();
  let dir: string | undefined;
  let file: string | undefined;
  try {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ovb-mounts-'));
    file = path.join(dir, 'mounts');
    writeFileSync(file, '', { mode: 0o600 });
  } catch {
    // No private file (a full or read-only /tmp): only the fallback attributes mounts.
    file = undefined;
  }
  return {
    file,
    finish(scope) {
      let reported: string[] = [];
      if (file !== undefined) {
        try {
          reported = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
        } catch {
          // Removed by a `!` command: nothing was reported.
        }
      }
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      return attributeMounts({ reported: reported.map(realOrSelf), before, after: mountPoints(), scope });
    },
  };
}

function realOrSelf(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

function isUnder(p: string, dir: string): boolean {
  return p === dir || p.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * Pure core of {@link MountWatch.finish}: the reported mount points (real paths) that
 * are new and still mounted, then the new mounts within the scope; deepest first, so
 * they can be unmounted in that order.
 */
export function attributeMounts(input: { reported: string[]; before: Set<string>; after: Set<string>; scope: MountScope }): string[] {
  const { before, after, scope } = input;
  const isNew = (m: string) => after.has(m) && !before.has(m);
  const mine = new Set(input.reported.filter((m) => path.isAbsolute(m) && isNew(m)));
  const inScope = (m: string) => m === scope.configDir
    || (scope.base !== undefined && isUnder(m, scope.base))
    || (m !== '/' && scope.paths.some((p) => isUnder(p, m)));
  for (const m of after) if (isNew(m) && inScope(m)) mine.add(m);
  return [...mine].sort().reverse();
}
