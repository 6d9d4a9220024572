import { existsSync, readFileSync } from 'node:fs';
import { unescapeMountPath } from './cgroup.js';

/** Does a network interface of that name exist in the host's namespace? */
export function linkExists(name: string): boolean {
  return existsSync(`/sys/class/net/${name}`);
}

export function isBridge(name: string): boolean {
  return existsSync(`/sys/class/net/${name}/bridge`);
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

/** Mount points of this mount namespace (field 5 of mountinfo). */
export function mountPoints(): Set<string> {
  const set = new Set<string>();
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f[4]) set.add(unescapeMountPath(f[4]));
  }
  return set;
}
