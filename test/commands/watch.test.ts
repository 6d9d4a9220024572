import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { reconcileDir, watch, type WatchEvent, type WatchHandle } from '../../src/commands/watch.js';
import { main } from '../../src/cli/watch.js';
import { snapshotHost, waitFor } from '../helpers/host.js';
import { subhostTest, uniqueName } from '../helpers/subhost.js';
import { WATCH_BIN, jsonLines, makeConfD, pid1Of, recorder, runWatchBin, writeConf } from '../helpers/watch.js';

const alive = (pid: number | undefined) => pid !== undefined && existsSync(`/proc/${pid}`);

const a = uniqueName('wa');
const b = uniqueName('wb');
subhostTest(t, 'the watcher boots, restarts only on real change, reports bad configs, stops, and lets go', [a, b], async (t) => {
  const d = makeConfD(t);
  const rec = recorder();
  let w: WatchHandle | undefined = watch(d.confd, { debounceMs: 100, onEvent: rec.onEvent });
  t.teardown(() => w?.close());
  await w.ready;
  t.same(rec.events, [], 'an empty DIR: nothing to do');

  // A config appears: its subhost comes up.
  const confA = writeConf(d, a, ['START=none', 'RAM_SIZE=8M']);
  const booted = await rec.next((e) => e.type === 'booted' && e.name === a);
  t.match(booted, { type: 'booted', config: confA, name: a }, 'booted event with the config path');
  const pidA = pid1Of(a);
  t.ok(pidA, 'subhost a runs');
  t.ok(snapshotHost({ names: [a] }).netns.includes(a) && snapshotHost({ names: [a] }).stateRecords.includes(`${a}.json`), 'the narrowed snapshot sees it');
  t.equal(booted && 'pid1' in booted ? booted.pid1 : undefined, pidA, 'event names its pid 1');

  // A comment only: read again, the same digest, nothing restarted.
  let from = rec.events.length;
  writeFileSync(confA, `# a comment\n${[`BASE=../bases/${a}`, `NAME=${a}`, `LOG=${d.log}`, 'START=none', 'RAM_SIZE=8M'].join('\n')}\n`);
  t.match(await rec.next((e) => e.config === confA, from), { type: 'unchanged', reason: 'same-config' }, 'a comment edit is unchanged');
  t.equal(pid1Of(a), pidA, 'pid 1 unchanged');

  // An editor's save: write a temporary file, rename it over the config. It counts once.
  from = rec.events.length;
  const tmp = path.join(d.confd, `.${a}.conf.swp`);
  writeFileSync(tmp, `# saved by an editor\n${[`BASE=../bases/${a}`, `NAME=${a}`, `LOG=${d.log}`, 'START=none', 'RAM_SIZE=8M'].join('\n')}\n`, { mode: 0o644 });
  renameSync(tmp, confA);
  t.ok(await rec.next((e) => e.config === confA, from), 'the rename is seen');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(rec.events.slice(from).filter((e) => e.config === confA).length, 1, 'write-rename counts once');
  t.equal(pid1Of(a), pidA, 'pid 1 still unchanged');

  // RAM_SIZE changes: a restart, with a new pid 1.
  from = rec.events.length;
  writeConf(d, a, ['START=none', 'RAM_SIZE=9M']);
  const restarted = await rec.next((e) => e.config === confA, from);
  t.match(restarted, { type: 'restarted', name: a, previousPid1: pidA }, 'RAM_SIZE change restarts');
  const pidA2 = pid1Of(a);
  t.ok(pidA2 && pidA2 !== pidA, 'a new pid 1');
  t.notOk(alive(pidA), 'the old pid 1 is gone');

  // START changes: a restart too (to a tiny service in the subhost's upper layer).
  from = rec.events.length;
  const svc = path.join(d.bases, a, 'root/usr/local/sbin/wsvc');
  mkdirSync(path.dirname(svc), { recursive: true });
  writeFileSync(svc, '#!/bin/sh\ncase "$1" in\nstart) sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /run/wsvc.pid ;;\nstop) kill $(cat /run/wsvc.pid) ;;\nesac\n', { mode: 0o755 });
  writeConf(d, a, ['START=/usr/local/sbin/wsvc', 'RAM_SIZE=9M']);
  t.match(await rec.next((e) => e.config === confA, from), { type: 'restarted', name: a, previousPid1: pidA2 }, 'START change restarts');
  const pidA3 = pid1Of(a);
  t.ok(pidA3 && pidA3 !== pidA2, 'a new pid 1 again');

  // A bad config beside a good new one: reported with its code; the others run.
  from = rec.events.length;
  const bad = path.join(d.confd, 'bad.conf');
  writeFileSync(bad, 'BASE=../bases/nowhere\nSTART=none\n', { mode: 0o644 });
  const confB = writeConf(d, b, ['START=none']);
  const err = await rec.next((e) => e.config === bad, from);
  t.match(err, { type: 'error', code: 'CONFIG_BAD_PATH', operation: 'read', config: bad }, 'error event with its code');
  t.match(await rec.next((e) => e.config === confB, from), { type: 'booted', name: b }, 'the good one beside it boots');
  const pidB = pid1Of(b);
  t.ok(pidB, 'b runs');
  t.equal(pid1Of(a), pidA3, 'a undisturbed');

  // An explicit reconcile adopts what runs and reports the bad one again.
  const report = await w.reconcile();
  t.same(report.unchanged.sort(), [confA, confB].sort(), 'reconcile: both unchanged');
  t.match(report.failed, [{ config: bad, code: 'CONFIG_BAD_PATH' }]);

  // The config disappears: its subhost stops.
  from = rec.events.length;
  rmSync(confA);
  t.match(await rec.next((e) => e.config === confA, from), { type: 'stopped', name: a }, 'deleting the config stops it');
  t.ok(await waitFor(() => pid1Of(a) === undefined, 5000), 'a no longer runs');
  t.notOk(alive(pidA3), 'its pid 1 is gone');

  // Closing the watcher stops nothing.
  await w.close();
  w = undefined;
  await new Promise((r) => setTimeout(r, 300));
  t.equal(pid1Of(b), pidB, 'b keeps running after close');

  // A new watcher on the same DIR adopts b: no reboot.
  const rec2 = recorder();
  const w2 = watch(d.confd, { debounceMs: 100, onEvent: rec2.onEvent });
  t.teardown(() => w2.close());
  const adopted: WatchEvent[] = [];
  w2.on('unchanged', (e) => adopted.push(e));
  const errors: WatchEvent[] = [];
  w2.on('error', (e) => errors.push(e));
  await w2.ready;
  t.match(adopted, [{ config: confB, name: b, reason: 'adopted', pid1: pidB }], 'b adopted by the new watcher');
  t.match(errors, [{ config: bad, code: 'CONFIG_BAD_PATH' }], 'the bad config reported again (typed error event)');
  t.equal(pid1Of(b), pidB, 'same pid 1');
  await w2.close();

  // Changed while no watcher ran: the next one restarts it at start.
  writeConf(d, b, ['START=none', 'RAM_SIZE=6M']);
  const rec3 = recorder();
  const w3 = watch(d.confd, { debounceMs: 100, onEvent: rec3.onEvent });
  t.teardown(() => w3.close());
  await w3.ready;
  t.match(rec3.events.find((e) => e.config === confB), { type: 'restarted', name: b, previousPid1: pidB }, 'a changed digest restarts at start');
  t.not(pid1Of(b), pidB, 'new pid 1');
  await w3.close();
  t.ok(pid1Of(b), 'b still runs after the watcher closed');
});

const n1 = uniqueName('wn');
const n2 = uniqueName('wm');
subhostTest(t, 'NAME edited: the old subhost goes, the new one comes', [n1, n2], async (t) => {
  const d = makeConfD(t);
  const conf = writeConf(d, n1, ['START=none']);
  const r1 = await reconcileDir(d.confd);
  t.same(r1.booted, [conf]);
  const old = pid1Of(n1);
  mkdirSync(path.join(d.bases, n2));
  writeFileSync(conf, [`BASE=../bases/${n1}`, `NAME=${n2}`, `LOG=${d.log}`, 'START=none'].join('\n') + '\n');
  const r2 = await reconcileDir(d.confd);
  t.match(r2.events, [{ type: 'restarted', name: n2, previousName: n1, previousPid1: old }]);
  t.equal(pid1Of(n1), undefined, 'old name stopped');
  t.ok(pid1Of(n2), 'new name runs');
});

const n_wx = uniqueName('wx');
subhostTest(t, 'a subhost started elsewhere under the same NAME is reported, not taken over', [n_wx], async (t) => {
  const n = n_wx;
  const d1 = makeConfD(t);
  const d2 = makeConfD(t);
  const c1 = writeConf(d1, n, ['START=none']);
  const c2 = writeConf(d2, n, ['START=none']);
  t.same((await reconcileDir(d1.confd)).booted, [c1]);
  const pid = pid1Of(n);
  const r = await reconcileDir(d2.confd);
  t.match(r.failed, [{ config: c2, code: 'ALREADY_RUNNING' }]);
  t.equal(pid1Of(n), pid, 'the running one untouched');
});

t.test('watch refuses a DIR that is not a directory', async (t) => {
  t.throws(() => watch('/nonexistent/conf.d'), { code: 'CONFIG_BAD_PATH' });
  await t.rejects(reconcileDir('/nonexistent/conf.d'), { code: 'CONFIG_BAD_PATH' });
});

const n_wo = uniqueName('wo');
subhostTest(t, 'overlay-watch --once (the real bin) reconciles and exits, leaving subhosts running', [n_wo], async (t) => {
  const n = n_wo;
  const d = makeConfD(t);
  const conf = writeConf(d, n, ['START=none']);
  writeFileSync(path.join(d.confd, 'bad.conf'), 'START=none\n', { mode: 0o644 });
  writeFileSync(path.join(d.confd, 'notes.txt'), 'not a config\n');
  const r1 = await runWatchBin(['--once', d.confd]);
  t.equal(r1.code, 1, 'exit 1: a config failed');
  const lines1 = jsonLines(r1.stdout);
  t.ok(lines1.some((l) => l.msg === `Booted ${n}` && l.config === conf), 'logged the boot as a JSON line');
  t.ok(lines1.some((l) => l.level === 50 && l.code === 'CONFIG_BASE_MISSING'), 'logged the bad config with its code');
  t.notOk(r1.stdout.includes('notes.txt'), 'other files ignored');
  const pid = pid1Of(n);
  t.ok(pid, 'the subhost runs after the command exited');

  rmSync(path.join(d.confd, 'bad.conf'));
  const r2 = await runWatchBin(['--once', d.confd]);
  t.equal(r2.code, 0, 'exit 0 when all is well');
  t.ok(jsonLines(r2.stdout).some((l) => l.msg === `Adopted ${n}`), 'adopted');
  t.equal(pid1Of(n), pid, 'no reboot');

  const r3 = await runWatchBin(['--once', '/nonexistent/conf.d']);
  t.equal(r3.code, 1);
  t.match(r3.stderr, /CONFIG_BAD_PATH/);
  t.equal((await runWatchBin(['--bogus'])).code, 2, 'usage error');
});

const n_ws = uniqueName('ws');
subhostTest(t, 'overlay-watch (the real bin) exits 0 on SIGTERM and leaves subhosts running', [n_ws], async (t) => {
  const n = n_ws;
  const d = makeConfD(t);
  writeConf(d, n, ['START=none']);
  const child = spawn(process.execPath, [WATCH_BIN, '--debounce-ms', '50', d.confd], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  t.ok(await waitFor(() => out.includes(`Watching ${d.confd}`), 20000), 'watching');
  const pid = pid1Of(n);
  t.ok(pid, 'booted at start');
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 10000))]);
  t.equal(code, 0, 'exit 0 on SIGTERM');
  t.ok(out.includes('Exiting; subhosts keep running'));
  t.equal(pid1Of(n), pid, 'the subhost keeps running');
});

const n_wi = uniqueName('wi');
subhostTest(t, 'main() in-process: abort signal ends it with status 0', [n_wi], async (t) => {
  const n = n_wi;
  const d = makeConfD(t);
  writeConf(d, n, ['START=none']);
  let out = '';
  const ac = new AbortController();
  const done = main([d.confd], { stdout: (s) => { out += s; }, stderr: (s) => { out += s; }, env: process.env, isTTY: false }, ac.signal);
  t.ok(await waitFor(() => out.includes('Watching'), 20000));
  t.ok(pid1Of(n));
  ac.abort();
  t.equal(await done, 0);
  t.ok(pid1Of(n), 'still running');
  const help: string[] = [];
  t.equal(await main(['--help'], { stdout: (s) => help.push(s), stderr: () => {}, env: process.env }), 0);
  t.match(help.join(''), /overlay-watch \[--once\]/);
  t.equal(await main(['--debounce-ms', 'x'], { stdout: () => {}, stderr: () => {}, env: process.env }), 2);
});
