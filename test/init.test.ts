// Boot-time start: the init script over a subhosts.conf, and make install/uninstall.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopByName } from '../src/commands/stop.js';
import { snapshotHost } from './helpers/host.js';
import { makeSubhost, tempDir, uniqueName } from './helpers/subhost.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const INIT = path.join(ROOT, 'init/subhosts');

t.test('the init script starts the listed subhosts, refuses restart, and stops them', async (t) => {
  const a = uniqueName('ia');
  const b = uniqueName('ib');
  const before = snapshotHost({ names: [a, b] });
  const sa = makeSubhost(t, a, ['START=none']);
  const sb = makeSubhost(t, b, ['START=none']);
  const list = path.join(tempDir(t, 'ovb-init-'), 'subhosts.conf');
  writeFileSync(list, `# the test's subhosts\n${sa.conf}\n\n   ${sb.conf}  \n# ${sa.conf} (commented out twice)\n`);
  // A state directory of its own: `stop` stops every running subhost, and only ours are in it.
  const stateDir = tempDir(t, 'ovb-state-');
  const env = { ...process.env, SUBHOSTS_CONF: list, OVERLAY_BOOT_BIN: path.join(ROOT, 'bin'), OVERLAY_BOOT_STATE_DIR: stateDir };
  t.teardown(async () => {
    for (const n of [a, b]) { try { await stopByName(n, { timeoutSeconds: 2, stateDir }); } catch { /* stopped */ } }
  });
  const start = spawnSync('sh', [INIT, 'start'], { env, encoding: 'utf8' });
  t.equal(start.status, 0, start.stderr);
  t.match(start.stdout, new RegExp(`started ${sa.conf}`));
  t.match(start.stdout, new RegExp(`started ${sb.conf}`));
  const again = spawnSync('sh', [INIT, 'start'], { env, encoding: 'utf8' });
  t.equal(again.status, 0, 'starting again is fine');
  t.match(again.stdout, /already running/);
  const status = spawnSync('sh', [INIT, 'status'], { env, encoding: 'utf8' });
  t.match(status.stdout, new RegExp(`^${a}\\s+running`, 'm'));
  t.match(status.stdout, new RegExp(`^${b}\\s+running`, 'm'));
  const restart = spawnSync('sh', [INIT, 'restart'], { env, encoding: 'utf8' });
  t.equal(restart.status, 1);
  t.match(restart.stderr, /use stop and start/);
  const stop = spawnSync('sh', [INIT, 'stop'], { env, encoding: 'utf8' });
  t.equal(stop.status, 0, stop.stderr);
  t.notOk(existsSync(`${stateDir}/${a}.json`) || existsSync(`${stateDir}/${b}.json`), 'both stopped');
  t.same(snapshotHost({ names: [a, b] }), before, 'nothing left');
});

t.test('make install puts everything in place; uninstall removes it but keeps subhosts.conf', async (t) => {
  const dest = tempDir(t, 'ovb-dest-');
  mkdirSync(path.join(dest, 'etc'), { recursive: true });
  writeFileSync(path.join(dest, 'etc/subhosts.conf'), '/srv/mine.conf\n');
  const r = spawnSync('make', ['-s', 'install', `DESTDIR=${dest}`, 'PREFIX=/usr/local'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  const sbin = path.join(dest, 'usr/local/sbin');
  for (const c of ['overlay-boot', 'overlay-stop', 'overlay-go', 'overlay-share', 'overlay-ls']) {
    t.ok(lstatSync(path.join(sbin, c)).isSymbolicLink(), `${c} installed`);
    // overlay-stop is a small sh wrapper: its fast path needs no Node.js.
    t.equal(readlinkSync(path.join(sbin, c)), `/usr/local/lib/overlay-boot/bin/${c}${c === 'overlay-stop' ? '' : '.js'}`);
  }
  t.ok(existsSync(path.join(dest, 'usr/local/lib/overlay-boot/src/native/build/reaper')), 'native helpers');
  t.ok(existsSync(path.join(dest, 'usr/local/share/man/man5/overlay-boot.conf.5')), 'man 5');
  t.ok(existsSync(path.join(dest, 'usr/local/share/man/man8/overlay-boot.8')), 'man 8');
  t.notOk(existsSync(path.join(dest, 'usr/local/lib/overlay-boot/node_modules/tap')), 'no dev dependencies');
  t.ok(existsSync(path.join(dest, 'usr/local/lib/overlay-boot/node_modules/execa')), 'runtime dependencies');
  const init = readFileSync(path.join(dest, 'etc/init.d/subhosts'), 'utf8');
  t.match(init, /OVERLAY_BOOT_BIN:-\/usr\/local\/sbin/, 'init script points at the commands');
  t.match(readFileSync(path.join(dest, 'etc/systemd/system/subhosts@.service'), 'utf8'), /ExecStart=\/usr\/local\/sbin\/overlay-boot -q --pidfile/);
  t.equal(readFileSync(path.join(dest, 'etc/subhosts.conf'), 'utf8'), '/srv/mine.conf\n', 'an existing subhosts.conf is never overwritten');
  t.ok(existsSync(path.join(dest, 'etc/overlay-boot/conf.d')), 'the watcher\'s directory');
  // The installed copy runs on its own.
  const check = spawnSync(process.execPath, [path.join(dest, 'usr/local/lib/overlay-boot/bin/overlay-boot.js'), '--help'], { encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  const u = spawnSync('make', ['-s', 'uninstall', `DESTDIR=${dest}`, 'PREFIX=/usr/local'], { cwd: ROOT, encoding: 'utf8' });
  t.equal(u.status, 0, u.stderr);
  t.notOk(existsSync(path.join(sbin, 'overlay-boot')), 'commands removed');
  t.notOk(existsSync(path.join(dest, 'usr/local/lib/overlay-boot')), 'library removed');
  t.notOk(existsSync(path.join(dest, 'etc/init.d/subhosts')), 'init script removed');
  t.notOk(existsSync(path.join(dest, 'etc/overlay-boot')), 'an empty conf.d removed');
  t.equal(readFileSync(path.join(dest, 'etc/subhosts.conf'), 'utf8'), '/srv/mine.conf\n', 'subhosts.conf kept');
  // A fresh install creates an empty list.
  const dest2 = tempDir(t, 'ovb-dest-');
  t.equal(spawnSync('make', ['-s', 'install', `DESTDIR=${dest2}`], { cwd: ROOT }).status, 0);
  t.match(readFileSync(path.join(dest2, 'etc/subhosts.conf'), 'utf8'), /^# \/etc\/subhosts.conf/);
  void execFileSync;
});
