// Boot-time start of overlay-pkgd: the LSB init script for real (start, the daemon
// answers, start again, status, stop, nothing left: no process, socket or pid file),
// and the systemd unit checked by systemd-analyze verify (or parsed, where it is absent).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTestIni } from './cli-helpers.js';
import { Client, tempDir } from './helpers.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INIT = path.join(ROOT, 'init/overlay-pkgd');
const UNIT = path.join(ROOT, 'init/overlay-pkgd.service');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

t.test('the init script starts the daemon ready, reports it, stops it and leaves nothing', async (t) => {
  const dir = tempDir(t);
  const { config, ini } = writeTestIni(dir);
  const pidfile = path.join(dir, 'run', 'pkgd.pid');
  const log = path.join(dir, 'log', 'overlay-pkgd.log');
  const env = { ...process.env, OVERLAY_BOOT_BIN: path.join(ROOT, 'bin'), OVERLAY_PKGD_PIDFILE: pidfile, OVERLAY_PKGD_LOG: log, OVERLAY_PKG_CONFIG: ini };
  const init = (action: string) => spawnSync('sh', [INIT, action], { env, encoding: 'utf8', timeout: 60_000 });
  let pid = 0;
  t.teardown(() => { if (pid && alive(pid)) process.kill(pid, 'SIGKILL'); });

  const before = init('status');
  t.equal(before.status, 3, 'not running: LSB status 3');
  const start = init('start');
  t.equal(start.status, 0, start.stderr);
  t.match(start.stdout, /^overlay-pkgd: started \(pid \d+\)$/m);
  pid = Number(readFileSync(pidfile, 'utf8'));
  t.ok(alive(pid), 'the pid file names a live process');
  t.ok(existsSync(config.paths.socket), 'the socket is there as soon as start returns');
  const c = await Client.connect(t, config.paths.socket);
  const info = await c.call('daemon.info');
  t.equal((info.result as { pid: number }).pid, pid, 'the daemon that answers is the one of the pid file');
  c.end();

  const again = init('start');
  t.equal(again.status, 0);
  t.match(again.stdout, new RegExp(`already running \\(pid ${pid}\\)`));
  const status = init('status');
  t.equal(status.status, 0);
  t.match(status.stdout, new RegExp(`running \\(pid ${pid}\\)`));

  const stop = init('stop');
  t.equal(stop.status, 0, stop.stderr);
  t.match(stop.stdout, new RegExp(`stopped \\(pid ${pid}\\)`));
  t.notOk(alive(pid), 'the daemon is gone');
  t.notOk(existsSync(config.paths.socket), 'its socket is removed');
  t.notOk(existsSync(pidfile), 'its pid file is removed');
  t.match(readFileSync(log, 'utf8'), /overlay-pkgd: listening on .*\n[^]*SIGTERM: stopping/, 'the log has its lines');
  t.equal(init('status').status, 3);
  const stopAgain = init('stop');
  t.equal(stopAgain.status, 0, 'stopping a stopped daemon is fine');
  t.match(stopAgain.stdout, /not running/);
});

t.test('a daemon that cannot start: start fails, saying why', async (t) => {
  const dir = tempDir(t);
  const env = {
    ...process.env, OVERLAY_BOOT_BIN: path.join(ROOT, 'bin'), OVERLAY_PKGD_PIDFILE: path.join(dir, 'pkgd.pid'), OVERLAY_PKGD_LOG: path.join(dir, 'pkgd.log'),
    OVERLAY_PKG_CONFIG: path.join(dir, 'missing.ini'), OVERLAY_PKGD_READY_TENTHS: '20',
  };
  const r = spawnSync('sh', [INIT, 'start'], { env, encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 1);
  t.match(r.stderr, /not ready within 2 s[^]*PKG_CONFIG_INVALID/);
  t.notOk(existsSync(path.join(dir, 'pkgd.pid')));
});

t.test('the LSB header orders it before the subhosts script', async (t) => {
  const text = readFileSync(INIT, 'utf8');
  t.match(text, /^# Provides: +overlay-pkgd$/m);
  t.match(text, /^# X-Start-Before: +subhosts$/m);
  t.match(text, /^# X-Stop-After: +subhosts$/m);
  t.match(readFileSync(path.join(ROOT, 'init/subhosts'), 'utf8'), /^# Provides: +subhosts$/m, 'the name it refers to');
});

const KNOWN: Record<string, string[]> = {
  Unit: ['Description', 'Documentation', 'After', 'Before'],
  Service: ['Type', 'PIDFile', 'ExecStartPre', 'ExecStart', 'ExecStartPost', 'TimeoutStopSec', 'KillMode', 'Restart', 'RestartSec'],
  Install: ['WantedBy'],
};

t.test('the systemd unit', async (t) => {
  const text = readFileSync(UNIT, 'utf8');
  const sections: Record<string, Record<string, string>> = {};
  let at = '';
  for (const line of text.split('\n')) {
    if (/^\s*(#|$)/.test(line)) continue;
    const s = /^\[(\w+)\]$/.exec(line);
    if (s) { at = s[1]!; sections[at] = {}; continue; }
    const kv = /^(\w+)=(.*)$/.exec(line);
    t.ok(kv && at, `a key=value line in a section: ${line}`);
    if (kv && at) sections[at]![kv[1]!] = kv[2]!;
  }
  for (const [section, keys] of Object.entries(sections)) {
    for (const k of Object.keys(keys)) t.ok(KNOWN[section]?.includes(k), `[${section}] ${k} is a key this test knows`);
  }
  t.equal(sections.Service?.Type, 'simple', 'simple: the daemon does not speak sd_notify');
  t.match(sections.Service?.ExecStart, /--pidfile \/run\/overlay-boot\/pkgd\.pid$/);
  t.equal(sections.Service?.PIDFile, '/run/overlay-boot/pkgd.pid', 'PIDFile is the file the daemon writes');
  t.match(sections.Service?.ExecStartPost, /pkgd\.pid/, 'start waits for the pid file, written when ready');
  t.equal(sections.Service?.KillMode, 'process', 'a stop does not kill the DU subhosts it booted');
  t.equal(sections.Unit?.Before, 'subhosts.service');

  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.error) {
    t.comment('systemd-analyze is absent: the unit was parsed only');
    return;
  }
  const dir = tempDir(t);
  const unit = path.join(dir, 'overlay-pkgd.service');
  writeFileSync(unit, text.replaceAll('@SBINDIR@/overlay-pkgd', path.join(ROOT, 'bin/overlay-pkgd.js')));
  const v = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8', timeout: 60_000 });
  t.equal(v.status, 0, v.stderr);
  t.equal(v.stderr.trim(), '', 'systemd-analyze verify has nothing to say');
});
