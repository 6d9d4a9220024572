import t from 'tap';
import { duStateChange } from '../../src/lifecycle/events.js';
import { fault } from '../../src/lifecycle/faults.js';
import { historyEntry } from '../../src/lifecycle/history.js';
import type { JournalOperation } from '../../src/lifecycle/journal.js';
import type { DuRecord } from '../../src/lifecycle/store.js';

const op: JournalOperation = {
  id: 7, kind: 'update', subhost: 'web', pid: 1, uid: 0, command: 'overlay-pkg update web w.ipk', startedAt: '2026-11-23T12:00:00.000Z', intent: {}, steps: [],
};
const record: DuRecord = {
  format: 1, Name: 'web', Version: '1.0', UUID: '886313e1-3b8a-5372-9b90-0c9aee199e5d', DUID: '3', Status: 'Installed',
  ExecutionEnvRef: 'bee', Resolved: true, Vendor: 'example.org', Description: '', Subhost: 'web',
  EUs: [{ EUID: 'web/httpd', Name: 'httpd', AutoStart: true, Status: 'Active', ExecutionFaultCode: 'NoFault' }],
  package: { sha256: '1'.repeat(64), source: '/w.ipk', format: 'ipk', size: 10 }, layer: '/l/web', installedAt: '2026-11-23T11:00:00Z',
};

t.test('DUStateChange carries USP fields, FaultCode 0 on success', async (t) => {
  const ok = duStateChange(historyEntry(op, { CurrentState: 'Installed', Version: '2.0' }), record);
  t.match(ok, {
    operationId: 7, UUID: record.UUID, DeploymentUnitRef: 'web', Version: '2.0', CurrentState: 'Installed', Resolved: true,
    ExecutionUnitRefList: ['web/httpd'], StartTime: op.startedAt, OperationPerformed: 'Update', Fault: { FaultCode: 0, FaultString: '' },
  });
  const failed = duStateChange(historyEntry(op, { CurrentState: 'Failed', Fault: fault('DOWNGRADE') }), record);
  t.match(failed, { Version: '1.0', CurrentState: 'Failed', Fault: { FaultCode: 9030 } }, 'the version the DU kept');
});
