import { readFileSync } from 'node:fs';

/**
 * Where cgroup v2 is mounted, or undefined. Debian with sysvinit mounts the
 * hybrid layout (v2 at /sys/fs/cgroup/unified); a pure v2 host at /sys/fs/cgroup.
 */
export function findCgroup2Root(mounts = '/proc/self/mounts'): string | undefined {
  let text: string;
  try {
    text = readFileSync(mounts, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f[2] === 'cgroup2' && f[1]) return unescapeMountPath(f[1]);
  }
  return undefined;
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
export function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}
