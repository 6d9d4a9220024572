// The example programs of examples/ run against real subhosts, through the built dist/.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../src/commands/boot.js';
import { makeSubhost, subhostTest, uniqueName } from './helpers/subhost.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const example = (name: string) => path.join(root, 'examples', name);

function runNode(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { timeout: 60000, cwd: root, env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}


t.before(() => {
  if (!existsSync(path.join(root, 'dist/index.js'))) throw new Error('build first: npm run build');
});

const n1 = uniqueName('xc');
subhostTest(t, 'boot-and-probe runs a command inside, prints it, and stops the subhost', [n1], async (t) => {
  const sh = makeSubhost(t, n1, ['START=none']);
  const r = await runNode([example('boot-and-probe.js'), sh.conf, '--', 'cat', '/proc/1/comm', '/proc/sys/kernel/hostname']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^booted ${n1}: pid 1 is \\d+$`, 'm'));
  t.match(r.stdout, /^reaper$/m, 'pid 1 inside is the reaper');
  t.match(r.stdout, new RegExp(`^${n1}$`, 'm'), 'hostname inside is NAME');
  t.match(r.stdout, new RegExp(`^stopped ${n1}$`, 'm'));
  t.notOk(existsSync(`/run/overlay-boot/${n1}.json`), 'no longer running');
});

const n2 = uniqueName('xp');
subhostTest(t, 'boot-and-probe waits for a TCP port to listen inside', [n2], async (t) => {
  const sh = makeSubhost(t, n2, ['START=/usr/local/sbin/xweb']);
  const svc = path.join(sh.base, 'root/usr/local/sbin/xweb');
  mkdirSync(path.dirname(svc), { recursive: true });
  // busybox httpd on the subhost's own loopback; started in the background a moment later,
  // so the probe really waits.
  writeFileSync(svc, `#!/bin/sh
case "$1" in
start) (sleep 0.3; exec /bin/busybox httpd -f -p 127.0.0.1:7788 -h /tmp) </dev/null >/dev/null 2>&1 & echo $! > /run/xweb.pid ;;
stop) kill $(cat /run/xweb.pid) ;;
esac
`, { mode: 0o755 });
  const r = await runNode([example('boot-and-probe.js'), sh.conf, '--port', '7788']);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`port 7788 is listening in ${n2}`));
  t.match(r.stdout, new RegExp(`^stopped ${n2}$`, 'm'));
  const closed = await runNode([example('boot-and-probe.js'), sh.conf, '--port', '7789'], { PROBE_TIMEOUT_MS: '1500' });
  t.equal(closed.code, 1, 'a port that never opens fails');
  t.match(closed.stdout, /port 7789 did not open/);
  t.match(closed.stdout, new RegExp(`^stopped ${n2}$`, 'm'), 'and the subhost is stopped anyway');
});

t.test('boot-and-probe reports a bad config with its code and a bad command line with status 2', async (t) => {
  const sh = makeSubhost(t, uniqueName('xb'), ['START=none', 'RAM_SIZE=lots']);
  const r = await runNode([example('boot-and-probe.js'), sh.conf, '--', 'true']);
  t.equal(r.code, 1);
  t.match(r.stderr, /\[CONFIG_BAD_SIZE\]/);
  t.equal((await runNode([example('boot-and-probe.js')])).code, 2);
});

const n3 = uniqueName('xl');
subhostTest(t, 'list-table prints running subhosts as an aligned table', [n3], async (t) => {
  const sh = makeSubhost(t, n3, ['START=none']);
  const b = await boot(sh.conf);
  const r = await runNode([example('list-table.js')]);
  t.equal(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter(Boolean);
  const header = lines[0]!;
  t.match(header, /^NAME +STATE +PID1 +UPTIME +CABLES +SERVICES +CONFIG$/);
  const row = lines.find((l) => l.startsWith(`${n3} `));
  t.ok(row, 'a row for the subhost');
  t.equal(row!.indexOf(String(b.pid1)), header.indexOf('PID1'), 'PID1 column aligned');
  t.equal(row!.indexOf('running'), header.indexOf('STATE'), 'STATE column aligned');
  t.equal(row!.indexOf(sh.conf), header.indexOf('CONFIG'), 'CONFIG column aligned');
  t.notOk(lines.some((l) => / $/.test(l)), 'no trailing blanks');
});
