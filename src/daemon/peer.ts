/**
 * Who is at the other end of a connection to the daemon's socket: SO_PEERCRED (and
 * SO_PEERGROUPS) as the kernel recorded them when the client called connect(2).
 *
 * Node.js has no getsockopt, so the static helper `ovb-launch peercred` asks the kernel:
 * the accepted socket is passed to it as its fd 3 (a net.Socket in spawn's stdio array,
 * which also stops Node reading from it meanwhile) and it prints one line. A spawn of a
 * 75 KB static program costs about a millisecond, once per connection; the alternatives
 * are worse: a native addon needs a compiler and node-gyp at install, /proc/net/unix
 * and sock_diag give inodes, not credentials, and SCM_CREDENTIALS needs the client's help.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { OverlayBootError } from '../errors.js';

/** A peer's credentials at connect time. */
export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
  /** Supplementary groups (empty on kernels before 4.13, which cannot tell). */
  groups: number[];
}

const LINE = /^peercred (\d+) (\d+) (\d+) (-|\d+(?:,\d+)*)\n$/;

/** Parses the line of `ovb-launch peercred`; undefined when it is not one. */
export function parsePeerLine(text: string): PeerCredentials | undefined {
  const m = LINE.exec(text);
  if (!m) return undefined;
  return { pid: Number(m[1]), uid: Number(m[2]), gid: Number(m[3]), groups: m[4] === '-' ? [] : m[4]!.split(',').map(Number) };
}

/**
 * The credentials of `socket`'s peer, from `launcher` (ovb-launch). The socket must be
 * paused (the server's `pauseOnConnect`); it stays paused. Throws STEP_FAILED when the
 * helper fails, prints something else, or takes longer than `timeoutMs`.
 */
export function peerCredentials(socket: Socket, launcher: string, timeoutMs = 5000): Promise<PeerCredentials> {
  return new Promise((resolve, reject) => {
    const failed = (why: string, cause?: unknown) =>
      reject(new OverlayBootError('STEP_FAILED', `cannot read the peer's credentials: ${why}`, { step: 'peercred', cause }));
    let child;
    try {
      child = spawn(launcher, ['peercred'], { stdio: ['ignore', 'pipe', 'pipe', socket], timeout: timeoutMs, killSignal: 'SIGKILL' });
    } catch (e) {
      failed((e as Error).message, e);
      return;
    }
    let out = '';
    let err = '';
    // one short line each; anything longer is not the helper speaking
    child.stdout?.on('data', (d: Buffer) => { if (out.length < 1 << 20) out += d.toString('latin1'); });
    child.stderr?.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString('latin1'); });
    child.on('error', (e) => failed(e.message, e));
    child.on('close', (code, signal) => {
      const peer = code === 0 ? parsePeerLine(out) : undefined;
      if (peer) resolve(peer);
      else failed(signal ? `ovb-launch peercred killed by ${signal}` : err.trim() || `ovb-launch peercred exited with status ${code}: ${JSON.stringify(out.slice(0, 200))}`);
    });
  });
}

/**
 * The gid of group `name` (a name from /etc/group, or a number). Throws
 * PKG_CONFIG_INVALID naming `variable` when there is no such group.
 */
export function resolveGroup(name: string, variable = 'daemon.group', groupFile = '/etc/group'): number {
  if (/^\d+$/.test(name)) return Number(name);
  let text: string;
  try {
    text = readFileSync(groupFile, 'utf8');
  } catch (e) {
    throw new OverlayBootError('PKG_CONFIG_INVALID', `cannot read ${groupFile}: ${(e as Error).message}`, { variable, file: groupFile, cause: e });
  }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined && /^\d+$/.test(f[2])) return Number(f[2]);
  }
  throw new OverlayBootError('PKG_CONFIG_INVALID', `no group ${JSON.stringify(name)} in ${groupFile}`, { variable, expected: 'a group name or gid', found: name });
}

/** Whether `peer` may use the daemon: root, or a member (primary or supplementary) of `gid`. */
export function peerAllowed(peer: PeerCredentials, gid: number | undefined): boolean {
  if (peer.uid === 0) return true;
  return gid !== undefined && (peer.gid === gid || peer.groups.includes(gid));
}
