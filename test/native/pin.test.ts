// Issue 11: processes are pinned, not named by pid. ovb-launch kill|enter|share|unshare
// take PID and its start time, open a pidfd first and then compare the start time, so a
// pid that another process took over is never signalled, entered or mounted into.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pinnedHelperError } from '../../src/subhost/native.js';
import { processStartTime } from '../../src/subhost/process.js';
import { LAUNCH, alive, build, isRoot } from './fixtures/helpers.js';

t.test('a PROCESS_CHANGED fail line becomes that coded error; another fail line STEP_FAILED', async (t) => {
  const changed = pinnedHelperError('fail enter 0 PROCESS_CHANGED: pid 7 is not the process that started at 9 (it ended)\n', 'enter', 'web');
  t.equal(changed?.code, 'PROCESS_CHANGED');
  t.match(changed?.message, /^enter web: pid 7 is not the process that started at 9/);
  t.equal(pinnedHelperError('fail share 2 share /x: No such file or directory\n', 'share into', 'web')?.code, 'STEP_FAILED');
  t.equal(pinnedHelperError('', 'enter', 'web'), undefined, 'no fail line: no error');
});

if (!isRoot) {
  t.test('needs root', async (t) => { t.pass('skipped: needs root'); });
} else {
  const err = build();
  if (err) throw new Error(err);

  t.test('a wrong start time is refused: nothing signalled, entered or mounted', async (t) => {
    const child = spawn('sleep', ['100'], { stdio: 'ignore' });
    t.teardown(() => { child.kill('SIGKILL'); });
    const pid = child.pid!;
    const start = processStartTime(pid)!;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ovb-pin-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const marker = path.join(dir, 'entered');
    const wrong = String(start + 1);
    const runs: Array<[string, string[]]> = [
      ['kill', ['kill', String(pid), wrong, '9']],
      ['enter', ['enter', String(pid), wrong, '--', 'touch', marker]],
      ['share', ['share', String(pid), wrong, dir, path.join(dir, 'mnt')]],
      ['unshare', ['unshare', String(pid), wrong, dir]],
    ];
    for (const [what, args] of runs) {
      const r = spawnSync(LAUNCH, args, { encoding: 'utf8' });
      t.equal(r.status, 1, `${what}: exit 1`);
      t.match(r.stderr, new RegExp(`^fail ${what} 0 PROCESS_CHANGED: pid ${pid} is not the process that started at ${wrong}`), `${what}: the coded refusal`);
    }
    t.ok(alive(pid), 'the process was not signalled');
    t.notOk(existsSync(marker), 'the command did not run');
    t.notOk(existsSync(path.join(dir, 'mnt')), 'nothing was created for a mount');

    const enter = spawnSync(LAUNCH, ['enter', String(pid), String(start), '--', 'touch', marker], { encoding: 'utf8' });
    t.equal(enter.status, 0, `with the right start time the command runs: ${enter.stderr}`);
    t.ok(existsSync(marker));
    const status = spawnSync(LAUNCH, ['enter', String(pid), String(start), '--', 'sh', '-c', 'exit 7']);
    t.equal(status.status, 7, 'its exit status is passed back');
    const kill = spawnSync(LAUNCH, ['kill', String(pid), String(start), '15'], { encoding: 'utf8' });
    t.equal(kill.status, 0, kill.stderr);
    await new Promise((r) => child.once('exit', r));
    t.equal(child.signalCode, 'SIGTERM', 'and the right start time signals it');
    const gone = spawnSync(LAUNCH, ['kill', String(pid), String(start), '9'], { encoding: 'utf8' });
    t.equal(gone.status, 1, 'a process that ended is refused too');
  });
}
