// The read and watch methods through the socket, with a plain node:net client, against
// real DU records written with the store, and events emitted through the daemon's emitter.
import t from 'tap';
import { EventEmitter } from 'node:events';
import { duStateChange, type LifecycleEvents } from '../../src/lifecycle/events.js';
import { History, type HistoryEntry } from '../../src/lifecycle/history.js';
import { Client, startDaemon, until } from './helpers.js';
import { duRecord, putRecords } from './records.js';

function entry(id: number, over: Partial<HistoryEntry> = {}): HistoryEntry {
  return {
    id, OperationPerformed: 'Install', Subhost: 'web', CurrentState: 'Installed', pid: 1, uid: 0, command: 'test',
    StartTime: '2026-11-23T12:00:00.000Z', CompleteTime: '2026-11-23T12:00:01.000Z', UUID: duRecord('web', '1', []).UUID, Version: '1.0-1', ...over,
  };
}

t.test('ee.list, du.list, du.detail, eu.list, eu.detail, history.list', async (t) => {
  const d = await startDaemon(t);
  const c = await Client.connect(t, d.socket);
  t.match((await c.call('daemon.info')).result, {
    version: /^\d+\.\d+\.\d+/, pid: process.pid,
    methods: ['daemon.info', 'datamodel.get', 'du.detail', 'du.install', 'du.list', 'du.uninstall', 'du.update', 'ee.list', 'eu.detail', 'eu.list',
      'eu.restart', 'eu.start', 'eu.stop', 'events.subscribe', 'events.unsubscribe', 'history.list', 'operation.get', 'operation.list'],
  }, 'daemon.info lists the methods');
  t.same((await c.call('du.list')).result, [], 'no DU yet');
  t.same((await c.call('eu.list')).result, []);

  const ees = (await c.call('ee.list')).result as Array<{ Name: string; Status: string; Enable: boolean }>;
  t.same(ees.map((e) => e.Name), ['bee', 'bridge', 'oci'], 'the shipped EEs');
  t.ok(ees.every((e) => e.Status === 'Up' && e.Enable), 'up and enabled');

  const [web, db] = putRecords(d.config.paths.state, [duRecord('web', '1', ['httpd', 'cron']), duRecord('db', '2', ['postgres'], { ExecutionEnvRef: 'bridge' })]);
  t.same((await c.call('du.list')).result, [db, web], 'the records, sorted by subhost');
  t.same((await c.call('du.detail', { du: 'web' })).result, web, 'by subhost NAME');
  t.same((await c.call('du.detail', { du: web!.UUID.toUpperCase() })).result, web, 'by UUID');
  t.match(await c.call('du.detail', { du: 'nope' }), { error: { code: -32000, data: { Fault: { FaultCode: 9028 } } } }, 'unknown DU: 9028');
  t.equal((await c.call('du.detail')).error?.code, -32602, 'du is required');

  const eus = (await c.call('eu.list')).result as Array<Record<string, unknown>>;
  t.same(eus.map((e) => e.EUID), ['db/postgres', 'web/httpd', 'web/cron']);
  t.match(eus[0], { Name: 'postgres', DeploymentUnitRef: 'db', ExecutionEnvRef: 'bridge', Status: 'Active', AutoStart: true, Version: '1.0-1' });
  t.match((await c.call('eu.detail', { eu: 'web/cron' })).result, { EUID: 'web/cron', Status: 'Idle', DeploymentUnitRef: 'web' });
  t.match(await c.call('eu.detail', { eu: 'web/none' }), { error: { code: -32000, data: { Fault: { FaultCode: 9003 } } } });

  const history = new History(d.config.paths.state);
  for (let i = 1; i <= 5; i++) history.append(entry(i));
  t.same(((await c.call('history.list')).result as { entries: HistoryEntry[] }).entries.map((e) => e.id), [1, 2, 3, 4, 5]);
  t.same(((await c.call('history.list', { after: 2, limit: 2 })).result as { entries: HistoryEntry[] }).entries.map((e) => e.id), [4, 5], 'the newest 2 after id 2');
  t.equal((await c.call('history.list', { limit: 0 })).error?.code, -32602);
});

t.test('events.subscribe: du.statechange and operation.complete to subscribers only; undelivered completions kept', async (t) => {
  const events = new EventEmitter() as LifecycleEvents;
  const d = await startDaemon(t, { events });
  t.equal(d.daemon.events, events, 'the daemon forwards the emitter it was given');
  const early = entry(7, { CurrentState: 'Failed', Fault: { FaultCode: 9018, FaultString: 'corrupt' } });
  events.emit('operation.complete', early); // nobody subscribed: kept

  const a = await Client.connect(t, d.socket);
  const b = await Client.connect(t, d.socket);
  const quiet = await Client.connect(t, d.socket);
  t.same((await a.call('events.subscribe')).result, { subscribed: true });
  t.match(await a.waitFor((m) => m.method === 'operation.complete'), { jsonrpc: '2.0', params: early }, 'the kept completion goes to the first subscriber');
  t.notOk('id' in (a.received.find((m) => m.method === 'operation.complete') ?? {}), 'a notification has no id');
  t.ok((await b.call('events.subscribe')).result);
  t.ok((await quiet.call('du.list')).result);
  t.equal(d.daemon.subscriberCount, 2);

  const record = duRecord('web', '1', ['httpd']);
  const done = entry(8);
  const change = duStateChange(done, record);
  events.emit('du.statechange', change);
  events.emit('operation.complete', done);
  for (const c of [a, b]) {
    t.match(await c.waitFor((m) => m.method === 'operation.complete' && (m.params as HistoryEntry).id === 8), { params: done });
    t.same(c.received.filter((m) => m.method === 'du.statechange').map((m) => m.params), [change], 'each subscriber gets the change once');
  }
  t.notOk(b.received.some((m) => m.method === 'operation.complete' && (m.params as HistoryEntry).id === 7), 'a kept completion is delivered once');
  t.ok((await quiet.call('du.list')).result);
  t.same(quiet.received.filter((m) => m.method), [], 'a connection that did not subscribe gets nothing');

  t.same((await b.call('events.unsubscribe')).result, { subscribed: false });
  events.emit('operation.complete', entry(9));
  t.ok(await a.waitFor((m) => m.method === 'operation.complete' && (m.params as HistoryEntry).id === 9));
  t.ok((await b.call('du.list')).result);
  t.notOk(b.received.some((m) => m.method === 'operation.complete' && (m.params as HistoryEntry).id === 9), 'unsubscribed');

  a.end();
  t.ok(await until(() => d.daemon.subscriberCount === 0), 'a closed subscriber is forgotten');
  await d.daemon.close();
  t.equal(events.listenerCount('operation.complete') + events.listenerCount('du.statechange'), 0, 'close removes its listeners from the emitter');
});
