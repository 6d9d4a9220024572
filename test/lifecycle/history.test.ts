import t from 'tap';
import { appendFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fault } from '../../src/lifecycle/faults.js';
import { History, historyEntry } from '../../src/lifecycle/history.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { tempState } from './temp.js';

t.test('operations are appended, one JSON line each, and read back', async (t) => {
  const dir = tempState(t, 'ovb-history-');
  const journal = new Journal(dir);
  const history = new History(dir);
  t.same(history.read(), { entries: [], warnings: [] });
  const install = journal.begin({ kind: 'install', subhost: 'web', intent: {}, allocateDUID: true, command: 'overlay-pkg install web.ipk' });
  history.append(historyEntry(journal.commit(), { CurrentState: 'Installed', UUID: '886313e1-3b8a-5372-9b90-0c9aee199e5d', Version: '1.0' }));
  journal.begin({ kind: 'update', subhost: 'web', intent: {}, command: 'overlay-pkg update web web-0.9.ipk' });
  history.append(historyEntry(journal.abort(), { CurrentState: 'Failed', Fault: fault('DOWNGRADE'), Version: '1.0', recovered: true }));
  const lines = readFileSync(path.join(dir, 'history.jsonl'), 'utf8').split('\n');
  t.equal(lines.length, 3, 'two lines and the final newline');
  const { entries, warnings } = history.read();
  t.same(warnings, []);
  t.match(entries, [
    {
      id: 1, OperationPerformed: 'Install', Subhost: 'web', DUID: '1', Version: '1.0', CurrentState: 'Installed',
      uid: process.getuid!(), pid: process.pid, command: 'overlay-pkg install web.ipk', StartTime: install.startedAt,
    },
    { id: 2, OperationPerformed: 'Update', CurrentState: 'Failed', Fault: { FaultCode: 9030 }, recovered: true },
  ]);
  t.notOk('Fault' in entries[0]!);
  t.ok(entries[0]!.CompleteTime >= entries[0]!.StartTime);
});

t.test('a torn or foreign line is skipped with a warning naming file and line', async (t) => {
  const dir = tempState(t, 'ovb-history-');
  const history = new History(dir);
  const journal = new Journal(dir);
  journal.begin({ kind: 'uninstall', subhost: 'a', intent: {} });
  history.append(historyEntry(journal.commit(), { CurrentState: 'Uninstalled' }));
  appendFileSync(history.file, '{"id": 3}\n');
  appendFileSync(history.file, '{"id": 2, "Operation');
  journal.begin({ kind: 'eu-start', subhost: 'b', intent: {} });
  history.append(historyEntry(journal.commit(), { CurrentState: 'Installed' }));
  const { entries, warnings } = history.read();
  t.same(entries.map((e) => [e.id, e.OperationPerformed]), [[1, 'Uninstall'], [2, 'EUStart']]);
  t.equal(warnings.length, 2);
  t.match(warnings[0], `${history.file}:2: OperationPerformed is not a string`);
  t.match(warnings[1], `${history.file}:3: not JSON`);
  t.match(readFileSync(history.file, 'utf8'), /"Operation\n\{"id":2,/, 'the entry after a torn line starts a line of its own');
});
