import { chmodSync, mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

/**
 * A minimal root with no glibc and no Node.js: busybox-static and its applets.
 * Debian's busybox-static package provides /bin/busybox.
 */
export function makeBusyboxRoot(dir: string): string {
  for (const d of ['bin', 'sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'etc/init.d', 'root', 'usr/bin', 'usr/sbin']) {
    mkdirSync(path.join(dir, d), { recursive: true, mode: 0o755 });
  }
  chmodSync(path.join(dir, 'tmp'), 0o1777);
  copyFileSync('/bin/busybox', path.join(dir, 'bin/busybox'));
  chmodSync(path.join(dir, 'bin/busybox'), 0o755);
  const applets = execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const a of applets) {
    if (a === 'busybox') continue;
    try {
      symlinkSync('busybox', path.join(dir, 'bin', a));
    } catch {
      // an applet listed twice
    }
  }
  writeFileSync(path.join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(path.join(dir, 'etc/group'), 'root:x:0:\ntty:x:5:\n');
  return dir;
}

/** An executable script file. */
export function writeScript(file: string, body: string): string {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, body.startsWith('#!') ? body : `#!/bin/sh\n${body}`);
  chmodSync(file, 0o755);
  return file;
}
