import t from 'tap';
import path from 'node:path';
import { chmodSync, chownSync, mkdirSync, symlinkSync } from 'node:fs';
import { checkConfigSafety } from '../../src/config/safety.js';
import { tempDir, writeConf, rejection } from '../fixtures/config/helpers.js';

// Tests run as root, so files and directories here are really root-owned and the
// other owners are set with chown, not simulated.

t.test('a root-owned 0644 file in 0755 directories under sticky /tmp is safe', async (t) => {
  const dir = tempDir(t);
  const file = writeConf(dir, 'ok.conf', 'BASE=.\n');
  await checkConfigSafety(file);
  chmodSync(file, 0o600);
  await checkConfigSafety(file);
  t.pass('accepted');
});

t.test('unsafe files and directories', async (t) => {
  type Setup = (dir: string, file: string) => void;
  const cases: Array<[string, Setup, RegExp]> = [
    ['file writable by others', (_d, f) => chmodSync(f, 0o646), /writable by group or others \(mode 0646\)/],
    ['file writable by group', (_d, f) => chmodSync(f, 0o664), /writable by group or others/],
    ['file owned by another user', (_d, f) => chownSync(f, 1234, 0), /owned by uid 1234/],
    ['directory writable by others', (d) => chmodSync(d, 0o757), /directory .* writable/],
    ['directory writable by group', (d) => chmodSync(d, 0o775), /directory .* writable/],
    ['directory owned by another user', (d) => chownSync(d, 1234, 0), /directory .* owned by uid 1234/],
  ];
  for (const [what, setup, message] of cases) {
    const top = tempDir(t);
    const dir = path.join(top, 'sub');
    mkdirSync(dir, { mode: 0o755 });
    const file = writeConf(dir, 'x.conf', 'BASE=.\n');
    setup(dir, file);
    const e = await rejection(t, checkConfigSafety(file), 'CONFIG_UNSAFE');
    t.match(e.message, message, what);
    t.equal(e.file, file);
  }
});

t.test('a writable directory higher up is refused too, unless sticky', async (t) => {
  const top = tempDir(t);
  const deep = path.join(top, 'a', 'b');
  mkdirSync(deep, { recursive: true, mode: 0o755 });
  const file = writeConf(deep, 'x.conf', '');
  chmodSync(path.join(top, 'a'), 0o777);
  await rejection(t, checkConfigSafety(file), 'CONFIG_UNSAFE');
  chmodSync(path.join(top, 'a'), 0o1777);
  await checkConfigSafety(file);
  t.pass('a sticky world-writable directory is accepted, as /tmp is');
});

t.test('both the symlink path and the real path are checked', async (t) => {
  const top = tempDir(t);
  mkdirSync(path.join(top, 'open'), { mode: 0o755 });
  mkdirSync(path.join(top, 'closed'), { mode: 0o755 });
  const real = writeConf(path.join(top, 'closed'), 'x.conf', '');
  const link = path.join(top, 'open', 'x.conf');
  symlinkSync(real, link);
  await checkConfigSafety(link);
  chmodSync(path.join(top, 'open'), 0o777);
  await rejection(t, checkConfigSafety(link), 'CONFIG_UNSAFE');
  chmodSync(path.join(top, 'open'), 0o755);
  chmodSync(real, 0o666);
  await rejection(t, checkConfigSafety(link), 'CONFIG_UNSAFE');
});

t.test('for a non-root user, files of that user are accepted', async (t) => {
  const top = tempDir(t);
  const dir = path.join(top, 'home');
  mkdirSync(dir, { mode: 0o755 });
  const file = writeConf(dir, 'x.conf', '');
  chownSync(dir, 1234, 1234);
  chownSync(file, 1234, 1234);
  await checkConfigSafety(file, { uid: 1234 });
  await rejection(t, checkConfigSafety(file, { uid: 4321 }), 'CONFIG_UNSAFE');
  t.pass();
});

t.test('a missing file is unreadable, not unsafe', async (t) => {
  const top = tempDir(t);
  await rejection(t, checkConfigSafety(path.join(top, 'none.conf')), 'CONFIG_UNREADABLE');
});
