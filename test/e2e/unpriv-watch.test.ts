// overlay-watch with unprivileged subhosts (issue 16): booted, restarted and stopped from
// their config dir like any other; PRIVILEGED flipped is a change that restarts in the other
// mode; a config that cannot run unprivileged is reported with its code, the others run.
import t from 'tap';
import { rmSync, statSync } from 'node:fs';
import { watch, type WatchHandle } from '../../src/commands/watch.js';
import { readStateRecord, statePath } from '../../src/subhost/state.js';
import { idmapLeftovers } from '../helpers/mode.js';
import { subhostTest, uniqueName } from '../helpers/subhost.js';
import { jsonLines, makeConfD, pid1Of, recorder, runWatchBin, writeConf } from '../helpers/watch.js';

/** The host uid pid 1 of NAME runs as, and the range its state record holds (none: privileged). */
function runsAs(name: string): { uid: number; base?: number } {
  const pid1 = pid1Of(name);
  if (pid1 === undefined) throw new Error(`${name} is not running`);
  return { uid: statSync(`/proc/${pid1}`).uid, base: readStateRecord(statePath(name))?.idmap?.base };
}

const n = uniqueName('uw');
const dev = uniqueName('ud');
subhostTest(t, 'the watcher boots an unprivileged subhost, restarts it on a change and across modes, and stops it', [n, dev], async (t) => {
  const d = makeConfD(t);
  const rec = recorder();
  const w: WatchHandle = watch(d.confd, { debounceMs: 100, onEvent: rec.onEvent });
  t.teardown(() => w.close());
  await w.ready;

  const conf = writeConf(d, n, ['START=none', 'CABLES==', 'PRIVILEGED=no']);
  t.match(await rec.next((e) => e.config === conf), { type: 'booted', name: n }, 'a new config: booted');
  const first = runsAs(n);
  t.ok(first.base && first.base > 0, 'with an id range of its own');
  t.equal(first.uid, first.base, 'pid 1 runs as the range\'s first id on the host');
  t.equal(idmapLeftovers(n).length, 2, 'its range is reserved and its user namespace file made');
  const pidFirst = pid1Of(n);

  let from = rec.events.length;
  writeConf(d, n, ['START=none', 'CABLES==', 'PRIVILEGED=no', 'RAM_SIZE=6M']);
  t.match(await rec.next((e) => e.config === conf, from), { type: 'restarted', name: n, previousPid1: pidFirst }, 'RAM_SIZE changed: restarted');
  const second = runsAs(n);
  t.ok(second.base && second.uid === second.base, 'unprivileged again');

  from = rec.events.length;
  writeConf(d, n, ['START=none', 'CABLES==', 'RAM_SIZE=6M']);
  t.match(await rec.next((e) => e.config === conf, from), { type: 'restarted', name: n }, 'PRIVILEGED=no removed: restarted');
  t.same(runsAs(n), { uid: 0, base: undefined }, 'now privileged: pid 1 is the host\'s root');
  t.same(idmapLeftovers(n), [], 'and the range was given back');

  from = rec.events.length;
  writeConf(d, n, ['START=none', 'CABLES==', 'RAM_SIZE=6M', 'PRIVILEGED=no']);
  t.match(await rec.next((e) => e.config === conf, from), { type: 'restarted', name: n }, 'PRIVILEGED=no again: restarted');
  const fourth = runsAs(n);
  t.ok(fourth.base && fourth.uid === fourth.base, 'unprivileged once more');
  const pidFourth = pid1Of(n);

  // Something an unprivileged subhost cannot have: reported with its code, nothing of it made.
  from = rec.events.length;
  const devConf = writeConf(d, dev, ['START=none', 'PRIVILEGED=no', 'SHARE=/dev/null:/mnt/null']);
  t.match(await rec.next((e) => e.config === devConf, from), { type: 'error', code: 'UNPRIV_UNSUPPORTED', operation: 'boot', config: devConf },
    'a device node shared into it: an error event with its code');
  t.equal(pid1Of(dev), undefined, 'it does not run');
  t.same(idmapLeftovers(dev), [], 'and holds no range');
  t.equal(pid1Of(n), pidFourth, 'the other runs on undisturbed');

  from = rec.events.length;
  rmSync(conf);
  t.match(await rec.next((e) => e.config === conf, from), { type: 'stopped', name: n }, 'its config removed: stopped');
  t.equal(pid1Of(n), undefined, 'it runs no more');
  t.same(idmapLeftovers(n), [], 'its range given back, its user namespace file gone');
});

const o = uniqueName('uo');
const bindRoot = uniqueName('ub');
subhostTest(t, 'overlay-watch --once (the real bin) boots an unprivileged subhost, adopts it the next time, reports what cannot run', [o, bindRoot], async (t) => {
  const d = makeConfD(t);
  const conf = writeConf(d, o, ['START=none', 'PRIVILEGED=no']);
  const bind = writeConf(d, bindRoot, ['START=none', 'UPPER=/', 'PRIVILEGED=no']);
  const r1 = await runWatchBin(['--once', d.confd]);
  t.equal(r1.code, 1, 'exit 1: a config failed');
  const lines = jsonLines(r1.stdout);
  t.ok(lines.some((l) => l.msg === `Booted ${o}` && l.config === conf), 'booted the unprivileged one');
  t.ok(lines.some((l) => l.level === 50 && l.code === 'UNPRIV_UNSUPPORTED' && l.config === bind), 'logged the one a user namespace cannot run (a bind root), with its code');
  const pid = pid1Of(o);
  t.ok(pid && runsAs(o).uid === runsAs(o).base, 'it runs unprivileged after the command exited');

  rmSync(bind);
  const r2 = await runWatchBin(['--once', d.confd]);
  t.equal(r2.code, 0, r2.stderr);
  t.ok(jsonLines(r2.stdout).some((l) => l.msg === `Adopted ${o}`), 'the next run adopts it');
  t.equal(pid1Of(o), pid, 'no reboot');
});
