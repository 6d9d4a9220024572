import t, { type Test } from 'tap';
import { tempState } from './temp.js';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { appendLineDurable, isTempName, writeFileAtomic } from '../../src/lifecycle/durable.js';
import { duUuid } from '../../src/lifecycle/identity.js';
import { DuStore, validateRecord, type DuRecord } from '../../src/lifecycle/store.js';

function stateDir(t: Test): string {
  return path.join(tempState(t, 'ovb-store-'), 'state');
}

function record(subhost: string, over: Partial<DuRecord> = {}): DuRecord {
  return {
    format: 1,
    Name: 'hello',
    Version: '1:2.10-3',
    UUID: duUuid('hello', 'example.org'),
    DUID: '1',
    Status: 'Installed',
    ExecutionEnvRef: 'bee',
    Resolved: true,
    Vendor: 'example.org',
    Description: 'says hello',
    Subhost: subhost,
    EUs: [{ EUID: `${subhost}/hello`, Name: 'hello', AutoStart: true, Status: 'Active', ExecutionFaultCode: 'NoFault' }],
    package: { sha256: 'a'.repeat(64), source: '/tmp/hello.ipk', format: 'ipk', size: 1234 },
    layer: `/var/lib/overlay-boot/pkg/layers/${subhost}`,
    installedAt: '2026-11-23T12:00:00.000Z',
    ...over,
  };
}

t.test('put, get, list, find and remove; the directory is left empty', async (t) => {
  const dir = stateDir(t);
  const store = new DuStore(dir);
  t.same(store.list(), []);
  t.equal(store.get('hello'), undefined);
  store.put(record('hello'));
  store.put(record('hello-2', { DUID: '2', ExecutionEnvRef: 'bridge', updatedAt: '2026-11-23T12:30:00Z' }));
  t.same(store.get('hello'), record('hello'));
  t.same(store.list().map((r) => r.Subhost), ['hello', 'hello-2']);
  t.same(readdirSync(path.join(dir, 'du')).sort(), ['hello-2.json', 'hello.json'], 'one file per DU, no temporary left');
  t.same(store.find('hello').map((r) => r.Subhost), ['hello']);
  t.same(store.find(duUuid('hello', 'example.org').toUpperCase()).map((r) => r.Subhost), ['hello', 'hello-2'], 'a UUID finds the DU in every EE');
  t.same(store.find('nothere'), []);
  store.put(record('hello', { Version: '2.0' }));
  t.equal(store.get('hello')?.Version, '2.0', 'put replaces');
  store.remove('hello');
  store.remove('hello');
  store.remove('hello-2');
  t.same(readdirSync(dir), [], 'no du/ left once the last record is gone');
});

t.test('a corrupt or foreign record is PKG_STATE_CORRUPT naming the file and field', async (t) => {
  const dir = stateDir(t);
  const store = new DuStore(dir);
  mkdirSync(path.join(dir, 'du'), { recursive: true });
  const file = path.join(dir, 'du', 'bad.json');
  writeFileSync(file, '{"format": 1, "Name": ');
  t.throws(() => store.get('bad'), { code: 'PKG_STATE_CORRUPT', file });
  t.throws(() => store.list(), { code: 'PKG_STATE_CORRUPT', file }, 'list is exact or fails');
  const cases: [string, Partial<DuRecord> | Record<string, unknown>, string][] = [
    ['Status', { Status: 'Broken' }, 'Status'],
    ['UUID', { UUID: 'nope' }, 'UUID'],
    ['EU status', { EUs: [{ EUID: 'bad/x', Name: 'x', AutoStart: true, Status: 'Up', ExecutionFaultCode: 'NoFault' }] }, 'EUs.0.Status'],
    ['EUID', { EUs: [{ EUID: 'other/x', Name: 'x', AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' }] }, 'EUs.0.EUID'],
    ['sha256', { package: { sha256: 'xyz', source: 's', format: 'ipk', size: 1 } }, 'package.sha256'],
    ['format', { format: 2 }, 'format'],
    ['layer', { layer: 'relative' }, 'layer'],
  ];
  for (const [what, over, field] of cases) {
    writeFileSync(file, JSON.stringify({ ...record('bad'), ...over }));
    t.throws(() => store.get('bad'), { code: 'PKG_STATE_CORRUPT', file, variable: field }, what);
  }
  writeFileSync(file, JSON.stringify(record('other')));
  t.throws(() => store.get('bad'), { code: 'PKG_STATE_CORRUPT', variable: 'Subhost' }, 'a record under another name');
  t.throws(() => store.put(record('bad', { Status: 'Nope' as DuRecord['Status'] })), { code: 'PKG_STATE_CORRUPT' }, 'put refuses what get would');
  t.throws(() => store.get('../etc/x'), { code: 'PKG_STATE_IO' }, 'a DU argument never names another path');
  t.throws(() => validateRecord([], '/f'), { code: 'PKG_STATE_CORRUPT' });
});

t.test('durable writes: atomic replace, appends whole lines, temp names recognised', async (t) => {
  const dir = stateDir(t);
  mkdirSync(dir);
  const file = path.join(dir, 'f.json');
  writeFileAtomic(file, 'one');
  writeFileAtomic(file, Buffer.from('two'));
  t.equal(readFileSync(file, 'utf8'), 'two');
  t.same(readdirSync(dir), ['f.json']);
  t.ok(isTempName(`.f.json.${process.pid}.tmp`));
  t.notOk(isTempName('f.json'));
  t.throws(() => writeFileAtomic(path.join(dir, 'missing', 'f'), 'x'), { code: 'PKG_STATE_IO' });
  t.notOk(existsSync(path.join(dir, 'missing')));
  const log = path.join(dir, 'log');
  appendLineDurable(log, 'a');
  appendLineDurable(log, 'b');
  t.equal(readFileSync(log, 'utf8'), 'a\nb\n');
});
