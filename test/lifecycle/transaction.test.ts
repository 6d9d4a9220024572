import t from 'tap';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { EventEmitter } from 'node:events';
import { OverlayBootError } from '../../src/errors.js';
import type { LifecycleEventMap } from '../../src/lifecycle/events.js';
import { History, historyEntry } from '../../src/lifecycle/history.js';
import { Journal, type JournalOperation } from '../../src/lifecycle/journal.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { recoverPending, transact, type RecoverFn, type TransactOptions } from '../../src/lifecycle/transaction.js';
import { runChild, srcModule } from './child.js';
import { tempState } from './temp.js';

// A toy operation over real files: "install" makes a directory and a file in it, each
// step journalled with what undoing it needs; undo and recovery remove what the steps say.
function undoSteps(op: JournalOperation): void {
  for (const step of [...op.steps].reverse()) rmSync(step.data!.path as string, { recursive: true, force: true });
}

const recoverBack: RecoverFn = async (op) => {
  undoSteps(op);
  return { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: `interrupted ${op.kind} undone` } };
};

function toyInstall(work: string, subhost: string, failAt?: string): TransactOptions {
  return {
    begin: { kind: 'install', subhost, intent: { work }, allocateDUID: true, command: `toy install ${subhost}` },
    act: async (_op, journal) => {
      const dir = path.join(work, subhost);
      mkdirSync(dir);
      journal.step('dir', { path: dir });
      if (failAt === 'file') throw new OverlayBootError('PKG_CORRUPT', 'the data is damaged');
      writeFileSync(path.join(dir, 'file'), 'x');
      journal.step('file', { path: path.join(dir, 'file') });
      return { CurrentState: 'Installed', Version: '1.0' };
    },
    undo: async (op) => undoSteps(op),
    recover: recoverBack,
  };
}

t.test('an operation commits and is recorded; a failing one is undone and recorded with its fault', async (t) => {
  const state = tempState(t, 'ovb-tx-');
  const work = tempState(t, 'ovb-txw-');
  const ok = await transact(state, toyInstall(work, 'a'));
  t.match(ok.entry, { id: 1, OperationPerformed: 'Install', Subhost: 'a', DUID: '1', CurrentState: 'Installed', Version: '1.0', command: 'toy install a' });
  t.equal(ok.error, undefined);
  t.ok(existsSync(path.join(work, 'a', 'file')));
  const bad = await transact(state, toyInstall(work, 'b', 'file'));
  t.match(bad.entry, { id: 2, CurrentState: 'Failed', Fault: { FaultCode: 9018, FaultString: 'PKG_CORRUPT: the data is damaged' } });
  t.match(bad.error, { code: 'PKG_CORRUPT' });
  t.notOk(existsSync(path.join(work, 'b')), 'a failed install leaves nothing');
  t.equal(new Journal(state).pending(), undefined);
  t.same(new History(state).read().entries.map((e) => [e.id, e.CurrentState]), [[1, 'Installed'], [2, 'Failed']]);
  t.same(readdirSync(state).sort(), ['history.jsonl', 'journal.json', 'lock'], 'only the history, the lock and an empty journal');
  t.same(readdirSync(path.join(state, 'lock')), []);
});

t.test('an operation killed mid-way is undone by the next one, which then runs', async (t) => {
  const state = tempState(t, 'ovb-tx-');
  const work = tempState(t, 'ovb-txw-');
  const code = `import { mkdirSync } from 'node:fs';
    import { transact } from ${srcModule('lifecycle/transaction.ts')};
    const [state, work] = process.argv.slice(1);
    await transact(state, {
      begin: { kind: 'install', subhost: 'k', intent: {}, allocateDUID: true },
      act: async (_op, journal) => {
        mkdirSync(work + '/k');
        journal.step('dir', { path: work + '/k' });
        process.kill(process.pid, 'SIGKILL');
        return { CurrentState: 'Installed' };
      },
      undo: async () => {}, recover: async () => ({ CurrentState: 'Failed' }),
    });`;
  const r = runChild(code, [state, work]);
  t.equal(r.signal, 'SIGKILL', r.stderr);
  // As a crash in the middle of an atomic write leaves them:
  writeFileSync(path.join(state, '.journal.json.99999.tmp'), '{"format": 1, "la');
  mkdirSync(path.join(state, 'du'));
  writeFileSync(path.join(state, 'du', '.k.json.99999.tmp'), '');
  t.ok(existsSync(path.join(work, 'k')), 'the killed operation left its directory');
  t.equal(new Journal(state).pending()?.subhost, 'k');
  const events = new EventEmitter<LifecycleEventMap>();
  const completed: number[] = [];
  events.on('operation.complete', (e) => completed.push(e.id));
  const next = await transact(state, { ...toyInstall(work, 'n'), events });
  t.same(completed, [1, 2], 'operation.complete for the recovered operation, then this one');
  t.match(next.recovered, { id: 1, Subhost: 'k', CurrentState: 'Failed', recovered: true, Fault: { FaultString: 'interrupted install undone' } });
  t.notOk(existsSync(path.join(work, 'k')), 'recovery removed what the steps recorded');
  t.match(next.entry, { id: 2, Subhost: 'n', DUID: '2', CurrentState: 'Installed' }, 'the DUID of the undone install is not reused');
  t.same(new History(state).read().entries.map((e) => e.id), [1, 2]);
  t.notOk(existsSync(path.join(state, 'du')), 'temporary files of the crash removed, and du/ with them');
  t.notOk(existsSync(path.join(state, '.journal.json.99999.tmp')));
});

t.test('a crash after the result was recorded only clears the journal', async (t) => {
  const state = tempState(t, 'ovb-tx-');
  const journal = new Journal(state);
  const op = journal.begin({ kind: 'uninstall', subhost: 'z', intent: {} });
  new History(state).append(historyEntry(op, { CurrentState: 'Uninstalled' }));
  let called = false;
  const entry = await recoverPending(state, async () => { called = true; return { CurrentState: 'Failed' }; });
  t.notOk(called, 'not recovered twice');
  t.match(entry, { id: 1, CurrentState: 'Uninstalled' });
  t.equal(journal.pending(), undefined);
  t.equal(new History(state).read().entries.length, 1, 'not recorded twice');
  t.equal(await recoverPending(state, async () => ({ CurrentState: 'Failed' })), undefined, 'nothing in flight');
});

t.test('with the DU store: install then remove leaves only the history, the lock and an empty journal', async (t) => {
  const state = tempState(t, 'ovb-tx-');
  const store = new DuStore(state);
  const none: RecoverFn = async () => ({ CurrentState: 'Failed' });
  const record = (subhost: string, DUID: string) => ({
    format: 1 as const, Name: 'toy', Version: '1', UUID: '886313e1-3b8a-5372-9b90-0c9aee199e5d', DUID, Status: 'Installed' as const,
    ExecutionEnvRef: 'bee', Resolved: true, Vendor: 'unknown', Description: '', Subhost: subhost, EUs: [],
    package: { sha256: '0'.repeat(64), source: '/toy.ipk', format: 'ipk' as const, size: 1 }, layer: `/layers/${subhost}`,
    installedAt: new Date().toISOString(),
  });
  for (const subhost of ['p', 'q']) {
    await transact(state, {
      begin: { kind: 'install', subhost, intent: {}, allocateDUID: true },
      act: async (op, journal) => { store.put(record(subhost, op.DUID!)); journal.step('committed'); return { CurrentState: 'Installed' }; },
      undo: async () => store.remove(subhost),
      recover: none,
    });
  }
  t.same(store.list().map((r) => [r.Subhost, r.DUID]), [['p', '1'], ['q', '2']]);
  for (const subhost of ['p', 'q']) {
    await transact(state, {
      begin: { kind: 'uninstall', subhost, intent: {} },
      act: async () => { store.remove(subhost); return { CurrentState: 'Uninstalled' }; },
      undo: async () => {},
      recover: none,
    });
  }
  t.same(readdirSync(state).sort(), ['history.jsonl', 'journal.json', 'lock']);
  t.equal(new History(state).read().entries.length, 4);
});
