import t, { type Test } from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Journal } from '../../src/lifecycle/journal.js';
import { runChild, srcModule } from './child.js';
import { tempState } from './temp.js';

function stateDir(t: Test): string {
  return tempState(t, 'ovb-journal-');
}

t.test('begin, steps, commit; ids and DUIDs never repeat', async (t) => {
  const dir = stateDir(t);
  const j = new Journal(dir);
  t.equal(j.pending(), undefined, 'no file is an empty journal');
  const op = j.begin({ kind: 'install', subhost: 'web', intent: { source: '/p.ipk', ee: 'bee' }, allocateDUID: true, command: 'overlay-pkg install /p.ipk' });
  t.match(op, { id: 1, kind: 'install', subhost: 'web', DUID: '1', pid: process.pid, command: 'overlay-pkg install /p.ipk', steps: [] });
  t.throws(() => j.begin({ kind: 'uninstall', subhost: 'other', intent: {} }), { code: 'PKG_IN_FLIGHT', subhost: 'web' });
  j.step('subhost', { base: '/x' });
  j.step('staged');
  const pending = new Journal(dir).pending();
  t.same(pending?.steps.map((s) => s.name), ['subhost', 'staged'], 'steps are on disk for a new reader');
  t.same(pending?.steps[0]?.data, { base: '/x' });
  t.ok(Journal.done(pending!, 'staged'));
  t.notOk(Journal.done(pending!, 'committed'));
  t.same(pending?.intent, { source: '/p.ipk', ee: 'bee' });
  const done = j.commit();
  t.equal(done.id, 1);
  t.equal(j.pending(), undefined);
  const second = j.begin({ kind: 'install', subhost: 'web2', intent: {}, allocateDUID: true });
  t.equal(second.id, 2);
  t.equal(second.DUID, '2');
  j.abort();
  const third = j.begin({ kind: 'update', subhost: 'web', intent: { oldLayer: '/a', newLayer: '/b' } });
  t.equal(third.id, 3);
  t.equal(third.DUID, undefined, 'only an install allocates a DUID');
  j.commit();
  t.same(readdirSync(dir), ['journal.json'], 'only the journal file, no temporary');
  const onDisk = JSON.parse(readFileSync(path.join(dir, 'journal.json'), 'utf8'));
  t.same(onDisk, { format: 1, lastOperation: 3, lastDUID: 2, operation: null }, 'the empty journal keeps its counters');
  t.throws(() => j.step('x'), { code: 'INTERNAL' });
  t.throws(() => j.commit(), { code: 'INTERNAL' });
});

t.test('an operation survives the death of the process that began it', async (t) => {
  const dir = stateDir(t);
  const script = `import { Journal } from ${srcModule('lifecycle/journal.ts')};
    const j = new Journal(process.argv[1]);
    j.begin({ kind: 'uninstall', subhost: 'gone', intent: { activeEUs: ['gone/d'] } });
    j.step('trash', { moved: ['/s/base'] });
    process.kill(process.pid, 'SIGKILL');`;
  const r = runChild(script, [dir]);
  t.equal(r.signal, 'SIGKILL', r.stderr);
  const op = new Journal(dir).pending();
  t.match(op, { kind: 'uninstall', subhost: 'gone', intent: { activeEUs: ['gone/d'] }, steps: [{ name: 'trash', data: { moved: ['/s/base'] } }] });
});

t.test('a corrupt journal is PKG_STATE_CORRUPT naming the field', async (t) => {
  const dir = stateDir(t);
  const file = path.join(dir, 'journal.json');
  const j = new Journal(dir);
  writeFileSync(file, 'not json');
  t.throws(() => j.pending(), { code: 'PKG_STATE_CORRUPT', file });
  t.throws(() => j.begin({ kind: 'install', subhost: 'x', intent: {} }), { code: 'PKG_STATE_CORRUPT' }, 'nothing starts over a journal it cannot read');
  writeFileSync(file, JSON.stringify({ format: 1, lastOperation: 1, lastDUID: 0, operation: { id: 1, kind: 'explode', subhost: 'x', pid: 1, uid: 0, command: '', startedAt: '', intent: {}, steps: [] } }));
  t.throws(() => j.pending(), { code: 'PKG_STATE_CORRUPT', variable: 'operation.kind' });
  writeFileSync(file, JSON.stringify({ format: 1, lastOperation: -1, lastDUID: 0, operation: null }));
  t.throws(() => j.pending(), { code: 'PKG_STATE_CORRUPT', variable: 'lastOperation' });
  writeFileSync(file, JSON.stringify({ format: 1, lastOperation: 1, lastDUID: 0, operation: { id: 1, kind: 'install', subhost: 'x', pid: 1, uid: 0, command: '', startedAt: '', intent: [], steps: [] } }));
  t.throws(() => j.pending(), { code: 'PKG_STATE_CORRUPT', variable: 'operation.intent' });
});
