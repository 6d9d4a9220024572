// The everyday commands against real running subhosts: stop, go, share, ls.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { stop } from '../../src/commands/stop.js';
import { releaseIdRange, reserveIdRange, slotFile } from '../../src/subhost/idmap.js';
import { main as stopMain } from '../../src/cli/stop.js';
import { main as goMain } from '../../src/cli/go.js';
import { main as shareMain } from '../../src/cli/share.js';
import { main as lsMain } from '../../src/cli/ls.js';
import { capture } from '../helpers/cli.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { forEachMode, giveToSubhostRoot, idmapLeftovers, subhostRootId, type Mode } from '../helpers/mode.js';
import { makeBridge, makeSubhost, stopAtTeardown, tempDir, uniqueName } from '../helpers/subhost.js';
import { makeBusyboxRoot, writeScript } from '../helpers/rootfs.js';

const BIN = (c: string) => fileURLToPath(new URL(`../../bin/overlay-${c}.js`, import.meta.url));

/** A busybox subhost whose START services write timestamped markers into a shared host dir. */
function serviceSubhost(t: Test, name: string, services: Array<{ name: string; ignoreTerm?: boolean }>, extra: string[] = [], mode?: Mode) {
  const lower = makeBusyboxRoot(path.join(tempDir(t, 'ovb-lower-'), 'root'));
  const marks = tempDir(t, 'ovb-marks-');
  for (const s of services) {
    const daemon = s.ignoreTerm ? `trap '' TERM; while :; do sleep 1; done` : 'while :; do sleep 1; done';
    writeScript(path.join(lower, `etc/init.d/${s.name}`), `
case "$1" in
start) (${daemon}) </dev/null >/dev/null 2>&1 & echo $! > /run/${s.name}.pid ;;
stop) echo "${s.name} $(cut -d' ' -f1 /proc/uptime)" >> /marks/stopped; ${s.ignoreTerm ? ':' : `kill $(cat /run/${s.name}.pid)`} ;;
esac
`);
  }
  const sh = makeSubhost(t, name, [`START=${services.map((s) => `/etc/init.d/${s.name}`).join(' ')}`, `SHARE=${marks}:/marks`, ...extra], { lower, mode });
  stopAtTeardown(t, name);
  return { ...sh, marks };
}

forEachMode(t, 'overlay-stop stops services in reverse order, then everything; twice is harmless', async (t, mode) => {
  const name = uniqueName('s');
  const before = snapshotHost({ names: [name] });
  const sh = serviceSubhost(t, name, [{ name: 'alpha' }, { name: 'beta' }, { name: 'gamma' }], [], mode);
  const r = await boot(sh.conf);
  t.ok(r.pid1 > 0);
  const root = giveToSubhostRoot(sh.marks, name);
  const io = capture();
  t.equal(await stopMain([sh.conf], io), 0, io.err);
  t.match(io.out, new RegExp(`^${name} stopped`));
  const lines = readFileSync(path.join(sh.marks, 'stopped'), 'utf8').trim().split('\n').map((l) => l.split(' '));
  t.same(lines.map((l) => l[0]), ['gamma', 'beta', 'alpha'], 'stopped in reverse order');
  const times = lines.map((l) => Number(l[1]));
  t.ok(times[0]! <= times[1]! && times[1]! <= times[2]!, 'timestamps ascend');
  t.equal(statSync(path.join(sh.marks, 'stopped')).uid, root, `the services wrote through SHARE as the host's uid ${root}`);
  t.same(snapshotHost({ names: [name] }), before, 'nothing of it is left');
  const again = capture();
  t.equal(await stopMain([sh.conf], again), 1, 'stopping a stopped subhost exits 1');
  t.equal(again.err, `${name} is not running\n`);
  t.same(snapshotHost({ names: [name] }), before);
});

forEachMode(t, 'a service that ignores TERM is killed after the timeout', async (t, mode) => {
  const name = uniqueName('k');
  const before = snapshotHost({ names: [name] });
  const sh = serviceSubhost(t, name, [{ name: 'stubborn', ignoreTerm: true }], ['STOP_TIMEOUT=1'], mode);
  await boot(sh.conf);
  const io = capture();
  t.equal(await stopMain(['--timeout', '1', sh.conf], io), 0, io.err);
  t.same(snapshotHost({ names: [name] }), before, 'gone, with its stubborn service');
});

forEachMode(t, 'two stops at once are safe', async (t, mode) => {
  const name = uniqueName('d');
  const before = snapshotHost({ names: [name] });
  const sh = makeSubhost(t, name, ['START=none'], { mode });
  stopAtTeardown(t, name);
  await boot(sh.conf);
  const codes = await Promise.all([stopMain([sh.conf], capture()), stopMain([sh.conf], capture())]);
  t.ok(codes.includes(0), 'one stop succeeded');
  t.ok(codes.every((c) => c === 0 || c === 1), 'the other succeeded or found it stopped');
  t.same(snapshotHost({ names: [name] }), before);
  t.same(idmapLeftovers(name), [], 'its id range given back once, and its user namespace file gone (unprivileged)');
});

t.test('overlay-stop of an unprivileged subhost that is not running gives back the range a killed boot left, and only that', async (t) => {
  const stateDir = tempDir(t, 'ovb-state-');
  const name = uniqueName('e');
  const sh = makeSubhost(t, name, ['START=none'], { mode: 'unprivileged' });
  // A boot SIGKILLed between reserving its range and its plan's undo holding it: NAME, a pid that has ended.
  const dead = spawnSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim();
  const left = reserveIdRange(name, stateDir), other = reserveIdRange('another', stateDir), booting = reserveIdRange(name, stateDir);
  writeFileSync(slotFile(stateDir, left.slot), `${name} ${dead} 1\n`);
  writeFileSync(slotFile(stateDir, other.slot), `another ${dead} 1\n`);
  t.teardown(() => releaseIdRange(booting, name, stateDir));
  await t.rejects(stop(sh.conf, { stateDir }), { code: 'NOT_RUNNING' });
  t.notOk(existsSync(slotFile(stateDir, left.slot)), 'the range the killed boot left is given back');
  t.ok(existsSync(slotFile(stateDir, other.slot)), 'another subhost\'s left-over is not this stop\'s to give back');
  t.ok(existsSync(slotFile(stateDir, booting.slot)), 'nor a range whose boot is still alive (a boot in progress)');
});

forEachMode(t, 'overlay-go runs commands inside with their exit status, and a shell on a terminal', async (t, mode) => {
  const name = uniqueName('g');
  const sh = makeSubhost(t, name, ['START=none'], { mode });
  stopAtTeardown(t, name);
  const r = await boot(sh.conf);
  const id = spawnSync(process.execPath, [BIN('go'), name, 'id', '-u'], { encoding: 'utf8' });
  t.equal(id.status, 0, id.stderr);
  t.equal(id.stdout, '0\n', 'id -u prints 0');
  // Root either way; unprivileged, that is the root of its user namespace, which overlay-go joined too.
  const uidMap = spawnSync(process.execPath, [BIN('go'), name, 'cat', '/proc/self/uid_map'], { encoding: 'utf8' }).stdout.trim().split(/\s+/).join(' ');
  t.equal(uidMap, mode === 'unprivileged' ? `0 ${subhostRootId(name)} 65536` : '0 0 4294967295', `the command's user namespace maps ${uidMap}`);
  const f = spawnSync(process.execPath, [BIN('go'), name, 'false'], { encoding: 'utf8' });
  t.equal(f.status, 1, 'false exits 1');
  const hn = spawnSync(process.execPath, [BIN('go'), name, 'hostname'], { encoding: 'utf8' });
  t.equal(hn.stdout.trim(), name, 'inside the uts namespace');
  const pid = spawnSync(process.execPath, [BIN('go'), name, 'sh', '-c', 'echo $$; cat /proc/1/comm'], { encoding: 'utf8' });
  const [innerPid, comm] = pid.stdout.trim().split('\n');
  t.ok(Number(innerPid) > 1 && Number(innerPid) < 1000, 'a pid of the subhost pid namespace');
  t.equal(comm, 'reaper', 'pid 1 is the reaper; the command is not it');
  const list = spawnSync(process.execPath, [BIN('go')], { encoding: 'utf8' });
  t.match(list.stdout, new RegExp(`^${name}$`, 'm'), 'without NAME: lists running subhosts');
  // Under a pseudo-terminal (script(1)), as an administrator at a terminal.
  const tty = spawnSync('script', ['-qec', `${process.execPath} ${BIN('go')} ${name} sh -c 'test -t 0 && echo on-a-tty; exit 7'`, '/dev/null'],
    { encoding: 'utf8', timeout: 20000 });
  t.match(tty.stdout, /on-a-tty/, 'the command has a terminal');
  t.equal(tty.status, 7, 'exit status passed back through the pty');
  const missing = capture();
  t.equal(await goMain(['nosuchhost', 'true'], missing), 1);
  t.match(missing.err, /NOT_RUNNING/);
  t.ok(r.pid1);
});

forEachMode(t, 'overlay-share mounts into the subhost only, and --remove undoes it', async (t, mode) => {
  const name = uniqueName('x');
  const sh = makeSubhost(t, name, ['START=none'], { mode });
  stopAtTeardown(t, name);
  const r = await boot(sh.conf);
  const dir = tempDir(t, 'ovb-sh-');
  writeFileSync(path.join(dir, 'note'), 'shared later\n');
  const hostMountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
  const io = capture();
  t.equal(await shareMain([dir, name, '/srv/late'], io), 0, io.err);
  const cat = spawnSync(process.execPath, [BIN('go'), name, 'cat', '/srv/late/note'], { encoding: 'utf8' });
  t.equal(cat.stdout, 'shared later\n', 'visible to the subhost');
  t.equal(readFileSync('/proc/self/mountinfo', 'utf8'), hostMountsBefore, 'the host mount table is unchanged');
  t.equal(await shareMain(['--remove', dir, name, '/srv/late'], capture()), 0);
  const gone = spawnSync(process.execPath, [BIN('go'), name, 'cat', '/srv/late/note'], { encoding: 'utf8' });
  t.not(gone.status, 0, 'gone after --remove');
  // Same path by default, and a file.
  const file = path.join(dir, 'note');
  t.equal(await shareMain([file, name], capture()), 0);
  const same = spawnSync(process.execPath, [BIN('go'), name, 'cat', file], { encoding: 'utf8' });
  t.equal(same.stdout, 'shared later\n', 'a file at the same path');
  const list = capture();
  t.equal(await shareMain([dir], list), 0);
  t.match(list.out, new RegExp(`^${name}$`, 'm'));
  // A host device node: handed to a privileged subhost's root, never to an unprivileged one's (as SHARE).
  const dev = capture();
  const devCode = await shareMain(['/dev/null', name, '/mnt/null'], dev);
  const isDev = spawnSync(process.execPath, [BIN('go'), name, 'test', '-c', '/mnt/null'], { encoding: 'utf8' });
  if (mode === 'unprivileged') {
    t.equal(devCode, 1, 'a device node is refused');
    t.match(dev.err, /\[UNPRIV_UNSUPPORTED\]/, 'with its code');
    t.not(isDev.status, 0, 'and nothing was mounted');
  } else {
    t.equal(devCode, 0, dev.err);
    t.equal(isDev.status, 0, 'a privileged subhost gets the device node');
  }
  t.ok(r.pid1);
});

forEachMode(t, 'overlay-ls --json matches what the kernel shows', async (t, mode) => {
  const name = uniqueName('l');
  const br = makeBridge(t, `${name}b`);
  const sh = makeSubhost(t, name, ['START=none', `CABLES=${br}=02:00:00:00:00:2a`], { mode });
  stopAtTeardown(t, name);
  const r = await boot(sh.conf);
  const io = capture();
  t.equal(await lsMain(['--json'], io), 0, io.err);
  const doc = JSON.parse(io.out);
  t.equal(doc.version, 1);
  const me = doc.subhosts.find((s: { name: string }) => s.name === name);
  t.ok(me, 'listed');
  t.equal(me.state, 'running');
  t.equal(me.pid1, r.pid1);
  t.equal(me.config, sh.conf);
  t.ok(existsSync(`/proc/${me.pid1}`), 'pid 1 exists');
  t.equal(readFileSync(`/proc/${me.pid1}/comm`, 'utf8').trim(), 'reaper', 'and is the reaper');
  t.equal(readFileSync(`/proc/${me.monitorPid}/comm`, 'utf8').trim(), 'ovb-launch', 'the monitor is ours');
  t.same(me.cables, [{ hostIf: `${name}0`, subhostIf: 'eth0', bridge: br, mac: '02:00:00:00:00:2a' }]);
  t.ok(existsSync(`/sys/class/net/${name}0`), 'the host end exists');
  t.ok(me.uptimeSeconds >= 0);
  if (mode === 'unprivileged') {
    t.same(me.idmap, { base: statSync(`/proc/${me.pid1}`).uid, count: 65536 }, 'its id range: pid 1 runs as its first id on the host');
  } else {
    t.equal(me.idmap, undefined, 'no id range: root inside is the host\'s');
  }
  const table = capture();
  t.equal(await lsMain([], table), 0);
  t.match(table.out, new RegExp(`^${name}\\s+running\\s+${r.pid1}\\s`, 'm'));
  // A record whose processes are gone is stale, and overlay-stop cleans it.
  process.kill(me.monitorPid, 'SIGKILL');
  process.kill(me.pid1, 'SIGKILL');
  t.ok(await waitFor(() => !existsSync(`/proc/${me.pid1}`), 3000));
  const stale = capture();
  await lsMain(['--json', name], stale);
  t.equal(JSON.parse(stale.out).subhosts[0].state, 'stale', 'shown as stale');
  const s = capture();
  t.equal(await stopMain([sh.conf], s), 1);
  t.equal(s.err, `${name} is not running\n`);
  t.notOk(existsSync(`/run/overlay-boot/${name}.json`), 'stale record cleaned');
  t.notOk(existsSync(`/sys/class/net/${name}0`), 'its cable end deleted');
  t.notOk(existsSync(`/run/netns/${name}`), 'its namespace deleted');
  t.same(idmapLeftovers(name), [], 'nor its user namespace file and id range (unprivileged)');
});

forEachMode(t, 'overlay-boot --foreground stays until the subhost ends; the log reads with pino-pretty', async (t, mode) => {
  const name = uniqueName('f');
  const sh = makeSubhost(t, name, ['START=none'], { mode });
  stopAtTeardown(t, name);
  const { spawn } = await import('node:child_process');
  const fg = spawn(process.execPath, [BIN('boot'), '--foreground', sh.conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  fg.stdout!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => fg.once('close', (c) => r(c)));
  t.ok(await waitFor(() => out.includes('started'), 10000), 'it reports the start');
  t.equal(fg.exitCode, null, 'and is still there');
  const rel = spawnSync(process.execPath, [BIN('go'), name, 'sh', '-c', 'echo x > /run/dummy_service'], { encoding: 'utf8' });
  // Its write ends the subhost, whose end may KILL the command before it exits: either outcome, no race.
  t.ok(rel.status === 0 || rel.status === 137, `released the dummy service: ${rel.status} ${rel.stderr}`);
  t.equal(await exited, 0, 'it exits 0 when the subhost has ended');
  t.match(out, new RegExp(`${name} ended`));
  t.notOk(existsSync(`/run/overlay-boot/${name}.json`), 'and everything was torn down before');
  t.same(idmapLeftovers(name), [], 'its id range and user namespace file too (unprivileged)');
  const pretty = spawnSync(fileURLToPath(new URL('../../node_modules/.bin/pino-pretty', import.meta.url)), ['--colorize', 'false'],
    { input: readFileSync(path.join(sh.dir, 'log')), encoding: 'utf8' });
  t.equal(pretty.status, 0);
  t.match(pretty.stdout, new RegExp(`INFO.*Exited ${name}`), 'pino-pretty shows the monitor\'s lines');
  t.match(pretty.stdout, new RegExp(`INFO.*Booting ${name}`), 'and the library\'s');
});
