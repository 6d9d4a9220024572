// The state record's file system failures come out as coded errors and leave no
// temporary file behind (the error contract). Pure: plain temp files, no root.
import t from 'tap';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OverlayBootError } from '../../src/errors.js';
import { createStateRecord, readStateRecord, writeFastStopEntry, writeStateRecord, type StateRecord } from '../../src/subhost/state.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ovb-state-unit-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const record: StateRecord = {
  version: 1, name: 'u', config: '/u.conf', configDigest: '', log: '/u.log', phase: 'booting', startedAt: '', cables: [], services: [], teardown: [],
};
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof OverlayBootError ? e.code : `raw ${(e as Error).message}`;
  }
  return 'no error';
};

// A regular file where the state directory should be: every write fails with ENOTDIR.
const notDir = path.join(dir, 'not-a-dir');
writeFileSync(notDir, '');
t.equal(code(() => createStateRecord(path.join(notDir, 'u.json'), record)), 'STATE_UNWRITABLE', 'create');
t.equal(code(() => writeStateRecord(path.join(notDir, 'u.json'), record)), 'STATE_UNWRITABLE', 'update');
t.equal(code(() => writeFastStopEntry(path.join(notDir, 'u.stop'), { config: '/u.conf', name: 'u', pid1: { pid: 1, start: 1 }, monitor: { pid: 2, start: 2 }, stopTimeout: 10 })),
  'STATE_UNWRITABLE', 'the fast-stop line');
// A directory where the record should be: it cannot be read, nor replaced.
const asDir = path.join(dir, 'u.json');
mkdirSync(asDir);
t.equal(code(() => readStateRecord(asDir)), 'STATE_CORRUPT', 'read');
t.equal(code(() => writeStateRecord(asDir, record)), 'STATE_UNWRITABLE', 'replace');
t.equal(code(() => createStateRecord(asDir, record)), 'ALREADY_RUNNING', 'the name is taken: the lock holds');
t.same(readdirSync(dir).sort(), ['not-a-dir', 'u.json'], 'no temporary file left');
t.equal(readStateRecord(path.join(dir, 'missing.json')), undefined, 'a missing record is no error');
