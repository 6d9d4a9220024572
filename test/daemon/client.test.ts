// The library's client against the real daemon: calls, errors as RpcError, notifications,
// no daemon (PKG_DAEMON_UNAVAILABLE), the daemon going away, a refusal.
import t from 'tap';
import path from 'node:path';
import { PkgDaemonClient } from '../../src/daemon/client.js';
import { RpcError } from '../../src/daemon/jsonrpc.js';
import type { HistoryEntry } from '../../src/lifecycle/history.js';
import { startDaemon, tempDir } from './helpers.js';

t.test('calls, errors, notifications, the end of the daemon', async (t) => {
  const d = await startDaemon(t);
  const c = await PkgDaemonClient.connect(d.socket);
  t.teardown(() => c.close());
  t.same(await c.call('du.list'), []);
  const [a, b] = await Promise.all([c.call('du.list'), c.call<{ methods: string[] }>('daemon.info')]);
  t.same(a, []);
  t.ok(b.methods.includes('du.list'), 'concurrent calls matched by id');
  await t.rejects(c.call('du.detail', { du: 'nope' }), { name: 'RpcError', code: -32000, data: { Fault: { FaultCode: 9028 } } });
  const err = await c.call('no.such').catch((e: unknown) => e);
  t.ok(err instanceof RpcError && err.code === -32601);

  const got: Array<[string, unknown]> = [];
  c.on('notification', (m, p) => got.push([m, p]));
  await c.call('events.subscribe');
  const entry = { id: 1, OperationPerformed: 'Install', Subhost: 'web', CurrentState: 'Installed', pid: 1, uid: 0, command: 'x', StartTime: 'a', CompleteTime: 'b' } satisfies HistoryEntry;
  d.daemon.events.emit('operation.complete', entry);
  await c.call('du.list'); // answered after the notification was written
  t.same(got, [['operation.complete', entry]]);

  const closed = new Promise((resolve) => c.once('close', resolve));
  const hanging = c.call('du.list');
  await d.daemon.close();
  t.match(await closed, { code: 'PKG_DAEMON_UNAVAILABLE' }, 'close says why');
  await t.rejects(hanging.then(() => c.call('du.list')), { code: 'PKG_DAEMON_UNAVAILABLE' });
});

t.test('no daemon: PKG_DAEMON_UNAVAILABLE', async (t) => {
  const dir = tempDir(t);
  await t.rejects(PkgDaemonClient.connect(path.join(dir, 'none.sock')), { code: 'PKG_DAEMON_UNAVAILABLE' });
});

t.test('a refusal ends the client with the reason', async (t) => {
  const d = await startDaemon(t, { idleTimeoutMs: 200 });
  const c = await PkgDaemonClient.connect(d.socket);
  t.teardown(() => c.close());
  const closed = new Promise((resolve) => c.once('close', resolve));
  t.match(await closed, { code: 'PKG_DAEMON_UNAVAILABLE', message: /refused: no request for 200 ms.*-32004/ });
});
