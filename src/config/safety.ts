import { stat, realpath } from 'node:fs/promises';
import path from 'node:path';
import { configError } from './where.js';

export interface SafetyOptions {
  /** The uid besides root that may own the file and its directories. Default: the process's uid. */
  uid?: number;
}

const GROUP_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/**
 * Refuses a config file that someone other than root (or the invoking user) could
 * change, as sshd and sudo refuse theirs: its `!` values and hooks run as root, so
 * whoever can write the file, or replace it through a directory on its path, owns
 * the host. Both the path as given and its real path are checked, since either a
 * symlink's directory or the target's directory may be the weak one.
 */
export async function checkConfigSafety(file: string, options: SafetyOptions = {}): Promise<void> {
  const uid = options.uid ?? process.getuid?.() ?? 0;
  const given = path.resolve(file);
  let real: string;
  try {
    real = await realpath(given);
  } catch (cause) {
    throw configError('CONFIG_UNREADABLE', `cannot resolve: ${(cause as Error).message}`, { file }, { cause });
  }
  await checkFile(real, uid, file);
  const dirs = new Set([...ancestors(path.dirname(given)), ...ancestors(path.dirname(real))]);
  for (const dir of dirs) await checkDirectory(dir, uid, file);
}

async function checkFile(real: string, uid: number, file: string): Promise<void> {
  const st = await stat(real);
  if ((st.mode & GROUP_OTHER_WRITE) !== 0) {
    throw unsafe(file, `${real} is writable by group or others (mode ${octal(st.mode)})`);
  }
  if (st.uid !== 0 && st.uid !== uid) {
    throw unsafe(file, `${real} is owned by uid ${st.uid}, not by root${uid !== 0 ? ` or uid ${uid}` : ''}`);
  }
}

async function checkDirectory(dir: string, uid: number, file: string): Promise<void> {
  const st = await stat(dir);
  // A sticky directory (such as /tmp) lets others create files but not replace ours.
  if ((st.mode & GROUP_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0) {
    throw unsafe(file, `directory ${dir} is writable by group or others (mode ${octal(st.mode)})`);
  }
  if (st.uid !== 0 && st.uid !== uid) {
    throw unsafe(file, `directory ${dir} is owned by uid ${st.uid}, not by root${uid !== 0 ? ` or uid ${uid}` : ''}`);
  }
}

/** `dir` and every directory above it up to `/`. */
function ancestors(dir: string): string[] {
  const list = [dir];
  while (dir !== path.dirname(dir)) {
    dir = path.dirname(dir);
    list.push(dir);
  }
  return list;
}

function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

function unsafe(file: string, why: string) {
  return configError('CONFIG_UNSAFE', `refusing a configuration others could change: ${why}`, { file }, {
    expected: 'owned by root, not writable by group or others, in directories likewise',
    found: why,
  });
}
