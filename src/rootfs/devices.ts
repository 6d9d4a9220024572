import path from 'node:path';
import { nativeOp as op } from '../plan/program.js';
import type { NativeOp } from '../plan/types.js';

/** Group id of `tty` on Debian; devpts and the tty nodes use it. */
export const TTY_GID = 5;


/**
 * The built-in /dev of a subhost (SPEC boot step 5): a small tmpfs with only the
 * nodes a service needs, so the subhost never sees the host's disks.
 */
export function devOps(live: string, root = 0): NativeOp[] {
  const dev = path.join(live, 'dev');
  const node = (name: string, major: number, minor: number, mode: string, gid = 0) =>
    op('mknod', path.join(dev, name), 'c', major, minor, mode, root, root + gid);
  return [
    op('mkdir', dev, '0755'),
    op('mount', 'dev', dev, 'tmpfs', 'nosuid', `size=50M,mode=755${owner(root)}`),
    node('console', 5, 1, '0622', TTY_GID),
    node('null', 1, 3, '0666'),
    node('zero', 1, 5, '0666'),
    node('ptmx', 5, 2, '0666', TTY_GID),
    node('tty', 5, 0, '0666', TTY_GID),
    node('random', 1, 8, '0444'),
    node('urandom', 1, 9, '0444'),
    op('symlink', '/proc/self/fd', path.join(dev, 'fd')),
    op('symlink', '/proc/self/fd/0', path.join(dev, 'stdin')),
    op('symlink', '/proc/self/fd/1', path.join(dev, 'stdout')),
    op('symlink', '/proc/self/fd/2', path.join(dev, 'stderr')),
    op('symlink', '/proc/kcore', path.join(dev, 'core')),
    op('mkdir', path.join(dev, 'shm'), '1777'),
    op('mkdir', path.join(dev, 'pts'), '0755'),
  ];
}

/**
 * The owner options of a tmpfs for a subhost whose root is host uid `root` (0, or the
 * base of an unprivileged subhost's id range: its root owns its /dev and /run).
 */
function owner(root: number): string {
  return root ? `,uid=${root},gid=${root}` : '';
}

export function devptsOps(live: string, root = 0): NativeOp[] {
  // newinstance: the subhost's ptys are its own, not the host's.
  return [op('mount', 'devpts', path.join(live, 'dev/pts'), 'devpts', 'nosuid,noexec',
    `newinstance,ptmxmode=0666,mode=0620,gid=${root + TTY_GID}`)];
}

/** /sys; read-only for an unprivileged subhost (`readOnly`), whose mounts it cannot change (locked). */
export function sysfsOps(live: string, readOnly = false): NativeOp[] {
  const sys = path.join(live, 'sys');
  return [op('mkdir', sys, '0555'), op('mount', 'sysfs', sys, 'sysfs', `nosuid,nodev,noexec${readOnly ? ',ro' : ''}`, '')];
}

export function runOps(live: string, size: string, root = 0): NativeOp[] {
  const run = path.join(live, 'run');
  return [
    op('mkdir', run, '0755'),
    op('mount', 'tmpfs', run, 'tmpfs', 'nosuid,nodev', `size=${size},mode=755${owner(root)}`),
    op('mkdir', path.join(run, 'lock'), '1777'),
  ];
}

export { op as nativeOp };
