// The error contract under file system failures: a LOG that cannot be written and a full
// state directory give coded errors (never a raw fs error) and leave the host as it was,
// '!' mounts included.
import t, { type Test } from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { OverlayBootError } from '../../src/errors.js';
import { snapshotHost } from '../helpers/host.js';
import { makeSubhost, stopAtTeardown, uniqueName } from '../helpers/subhost.js';

/** A fresh directory with a mount on it; unmounted, then removed, at teardown whatever happens. */
function mountedDir(t: Test, prefix: string, args: string[]): string {
  const dir = mkdtempSync(path.join('/tmp', prefix));
  chmodSync(dir, 0o755);
  t.teardown(() => {
    spawnSync('umount', ['-l', dir]);
    rmSync(dir, { recursive: true, force: true });
  });
  execFileSync('mount', [...args, dir]);
  return dir;
}

async function bootError(conf: string, options: Parameters<typeof boot>[1] = {}): Promise<OverlayBootError> {
  try {
    await boot(conf, options);
  } catch (e) {
    if (e instanceof OverlayBootError) return e;
    throw e;
  }
  throw new Error('the boot did not fail');
}

const mounted = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${dir} `);

t.test('an unwritable LOG: LOG_UNWRITABLE, and the \'!\' mount undone', async (t) => {
  const name = uniqueName('l');
  const sh = makeSubhost(t, name, ['START=none',
    'LIVE=!{ test "$ACTION" != overlay-boot || mount -t tmpfs ovbt livefs; } && mkdir -p livefs/l && echo livefs/l']);
  // LOG (the helper's DIR/log) a regular file of root's, on a read-only bind mount of itself.
  const log = path.join(sh.dir, 'log');
  writeFileSync(log, '');
  execFileSync('mount', ['--bind', log, log]);
  t.teardown(() => { spawnSync('umount', ['-l', log]); });
  execFileSync('mount', ['-o', 'remount,bind,ro', log]);
  const livefs = path.join(sh.base, 'livefs');
  mkdirSync(livefs);
  t.teardown(() => { spawnSync('umount', ['-l', livefs]); });
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const err = await bootError(sh.conf);
  t.equal(err.code, 'LOG_UNWRITABLE', err.message);
  t.equal(err.variable, 'LOG');
  t.match(err.message, /read-only/i, 'the message says why');
  t.notOk(mounted(livefs), 'the \'!\' mount was undone');
  t.same(snapshotHost({ names: [name] }), before, 'host as before');
});

t.test('a full state directory: STATE_UNWRITABLE, nothing left in it or on the host', async (t) => {
  const name = uniqueName('s');
  const stateDir = mountedDir(t, 'ovb-state-', ['-t', 'tmpfs', '-o', 'size=4k', 'ovbstate']);
  // Fill it: a file of a page takes every block there is.
  try {
    writeFileSync(path.join(stateDir, 'filler'), Buffer.alloc(8192));
  } catch (e) {
    t.equal((e as NodeJS.ErrnoException).code, 'ENOSPC', 'the tmpfs is full');
  }
  const sh = makeSubhost(t, name, ['START=none', 'CABLES==']);
  stopAtTeardown(t, name);
  const before = snapshotHost({ names: [name] });
  const err = await bootError(sh.conf, { stateDir });
  t.equal(err.code, 'STATE_UNWRITABLE', err.message);
  t.equal(err.step, 'state', 'the error names the step');
  t.match(err.message, /ENOSPC|no space/i, 'and why');
  t.same(readdirSync(stateDir), ['filler'], 'no record and no temporary file left in the state directory');
  t.same(snapshotHost({ names: [name] }), before, 'host as before');
});
