import t, { type Test } from 'tap';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { acquireLock, processStartTime, withLock } from '../../src/lifecycle/lock.js';
import { runChild, srcModule, startChild } from './child.js';
import { tempState } from './temp.js';

function stateDir(t: Test): string {
  return tempState(t, 'ovb-lock-');
}

t.test('processStartTime names this process and no dead one', async (t) => {
  t.match(processStartTime('self'), /^[0-9]+$/);
  t.equal(processStartTime(process.pid), processStartTime('self'));
  t.equal(processStartTime(2 ** 22 + 7), undefined);
});

t.test('8 processes appending under the lock never interleave, and all get their turn', async (t) => {
  const dir = stateDir(t);
  const out = path.join(dir, 'out');
  writeFileSync(out, '');
  // Each writes its start marker, yields to the event loop several times, then its end
  // marker: without mutual exclusion the markers of two writers interleave.
  const code = `import { appendFileSync } from 'node:fs';
    import { setTimeout as sleep } from 'node:timers/promises';
    import { withLock } from ${srcModule('lifecycle/lock.ts')};
    const [state, out, me] = process.argv.slice(1);
    for (let round = 0; round < 3; round += 1) {
      await withLock(state, async () => {
        appendFileSync(out, 'begin ' + me + '\\n');
        for (let i = 0; i < 5; i += 1) { await sleep(2); appendFileSync(out, 'mid ' + me + '\\n'); }
        appendFileSync(out, 'end ' + me + '\\n');
      }, { timeoutMs: 60000 });
    }`;
  const children = Array.from({ length: 8 }, (_, i) => startChild(code, [dir, out, String(i)]));
  t.teardown(() => { for (const c of children) if (c.exitCode === null) c.kill('SIGKILL'); });
  const codes = await Promise.all(children.map(async (c) => {
    let err = '';
    c.stderr!.on('data', (d) => { err += d; });
    const [status] = await once(c, 'exit');
    return { status, err };
  }));
  for (const [i, r] of codes.entries()) t.equal(r.status, 0, `child ${i}: ${r.err}`);
  const lines = readFileSync(out, 'utf8').trim().split('\n');
  t.equal(lines.length, 8 * 3 * 7, 'every line written');
  let holder: string | undefined;
  let ok = true;
  for (const line of lines) {
    const [what, who] = line.split(' ');
    if (what === 'begin') {
      if (holder !== undefined) ok = false;
      holder = who;
    } else {
      if (holder !== who) ok = false;
      if (what === 'end') holder = undefined;
    }
  }
  t.ok(ok, 'each holder’s lines are contiguous');
  t.same(readdirSync(path.join(dir, 'lock')), [], 'the lock directory is empty afterwards');
});

t.test('a SIGKILLed holder’s lock is taken over; a waiter behind it queues', async (t) => {
  const dir = stateDir(t);
  const code = `import { acquireLock } from ${srcModule('lifecycle/lock.ts')};
    await acquireLock(process.argv[1]);
    process.stdout.write('held\\n');
    setInterval(() => {}, 1000);`;
  const holder = startChild(code, [dir]);
  t.teardown(() => { if (holder.exitCode === null) holder.kill('SIGKILL'); });
  let seen = '';
  await new Promise<void>((resolve, reject) => {
    holder.stdout!.on('data', (d) => { seen += d; if (seen.includes('held')) resolve(); });
    holder.on('exit', () => reject(new Error('holder exited early')));
  });
  let waited = false;
  const attempt = acquireLock(dir, { timeoutMs: 30000, onWait: () => { waited = true; } });
  // The waiter is queued before the holder dies: it must wait, then take over.
  const killed = once(holder, 'exit');
  setTimeout(() => holder.kill('SIGKILL'), 100);
  await killed;
  const lock = await attempt;
  t.ok(waited, 'it waited while the holder lived');
  t.equal(readdirSync(lock.dir).length, 1, 'only our ticket remains: the dead one was removed');
  lock.release();
  lock.release();
  t.same(readdirSync(lock.dir), []);
});

t.test('stale files of dead processes never block; timeouts and re-entry are PKG_LOCK_FAILED', async (t) => {
  const dir = stateDir(t);
  const lockDir = path.join(dir, 'lock');
  mkdirSync(lockDir);
  // A process that has ended: its pid's start time no longer matches (or it has no /proc entry).
  const r = runChild('process.stdout.write(String(process.pid))');
  const dead = Number(r.stdout);
  const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').replace(/[^0-9a-f]/g, '').slice(0, 12);
  writeFileSync(path.join(lockDir, `t-${'0'.repeat(20)}-${dead}-1-${boot}`), '');
  writeFileSync(path.join(lockDir, `c-${dead}-1-${boot}`), '');
  // This very process, but as seen before a reboot (another boot id).
  writeFileSync(path.join(lockDir, `t-${'0'.repeat(20)}-${process.pid}-${processStartTime('self')}-0123456789ab`), '');
  writeFileSync(path.join(lockDir, 'unrelated'), '');
  const result = await withLock(dir, () => 'ran', { timeoutMs: 5000 });
  t.equal(result, 'ran');
  t.same(readdirSync(lockDir), ['unrelated'], 'stale entries removed, other files left alone');

  const held = await acquireLock(dir);
  t.teardown(() => held.release());
  await t.rejects(acquireLock(dir), { code: 'PKG_LOCK_FAILED' }, 'not re-entrant in one process');
  // A live process holding an earlier ticket: this process itself, seen from a child.
  const child = runChild(`import { acquireLock } from ${srcModule('lifecycle/lock.ts')};
    try { await acquireLock(process.argv[1], { timeoutMs: 200 }); console.log('got it'); }
    catch (e) { console.log(e.code); }`, [dir]);
  t.equal(child.stdout.trim(), 'PKG_LOCK_FAILED', child.stderr);
  t.equal(readdirSync(lockDir).filter((n) => n.startsWith('t-')).length, 1, 'the timed-out waiter left no ticket');
  held.release();
  t.ok(existsSync(lockDir));
  await t.rejects(withLock(path.join(lockDir, 'unrelated', 'x'), () => 1), { code: 'PKG_LOCK_FAILED' }, 'an unusable directory');
});
