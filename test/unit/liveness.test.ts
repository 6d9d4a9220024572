// A state record judged against processes that are, or are not, alive: the liveness
// rules without /proc (the alive test is injected). Pure.
import t from 'tap';
import { liveness, type StateRecord } from '../../src/subhost/state.js';
import type { ProcessId } from '../../src/subhost/process.js';

const boot = { pid: 10, start: 1 };
const monitor = { pid: 11, start: 2 };
const pid1 = { pid: 12, start: 3 };
const record = (phase: StateRecord['phase'], ids: Partial<StateRecord>): StateRecord => ({
  version: 1, name: 'x', config: '/x.conf', configDigest: '', log: '/x.log', phase, startedAt: '', cables: [], services: [], teardown: [], ...ids,
});
const aliveOf = (...alive: ProcessId[]) => (p: ProcessId | undefined) => p !== undefined && alive.some((a) => a.pid === p.pid && a.start === p.start);

const cases: Array<[string, StateRecord, ProcessId[], string]> = [
  ['running, all there', record('running', { monitor, pid1 }), [monitor, pid1], 'running'],
  ['running, monitor killed', record('running', { monitor, pid1 }), [pid1], 'running'],
  ['running, pid 1 ended, monitor tearing down', record('running', { monitor, pid1 }), [monitor], 'running'],
  ['running, nothing left', record('running', { monitor, pid1 }), [], 'stale'],
  ['running, pids reused by other processes', record('running', { monitor, pid1 }), [{ pid: 11, start: 99 }, { pid: 12, start: 98 }], 'stale'],
  ['booting, boot command alive', record('booting', { boot }), [boot], 'booting'],
  ['booting, boot command died, monitor undoing', record('booting', { boot, monitor }), [monitor], 'booting'],
  ['booting, boot command died, pid 1 lives on', record('booting', { boot, monitor, pid1 }), [pid1], 'booting'],
  ['booting, all gone', record('booting', { boot, monitor, pid1 }), [], 'stale'],
  ['booting, no pids at all', record('booting', {}), [], 'stale'],
];

for (const [title, r, alive, expected] of cases) {
  t.equal(liveness(r, aliveOf(...alive)), expected, title);
}
