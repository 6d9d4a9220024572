// The queue's storage across daemon restarts, with a runner the test releases one
// operation at a time (the queue under test is real: its files, its order, its ids):
// a bound on the operations waiting (fault 9027), queued operations surviving a stop and
// running in order in the next daemon, ids continuing, completions nobody received
// delivered to the next daemon's first subscriber and then never again. No subhost is
// booted: no root lock needed.
import t, { type Test } from 'tap';
import { registerOperationMethods } from '../../src/daemon/op-methods.js';
import { registerQueryMethods } from '../../src/daemon/query-methods.js';
import type { OperationComplete, OperationRunner, QueuedOperation } from '../../src/daemon/queue.js';
import { PkgDaemon } from '../../src/daemon/server.js';
import type { PkgConfig } from '../../src/package/config.js';
import { Client, tempDir, testConfig } from './helpers.js';
import { completion, completions, submit, subscriber } from './ops-helpers.js';

/** A runner whose operations end when the test says so: release() ends the one running. */
class GatedRunner implements OperationRunner {
  readonly ran: number[] = [];
  private gate?: () => void;

  run(op: QueuedOperation): Promise<OperationComplete> {
    this.ran.push(op.operationId);
    if (op.params.du === 'boom') return Promise.reject(new Error('the runner broke'));
    return new Promise((resolve) => {
      this.gate = () => resolve(this.done(op));
    });
  }

  recover(op: QueuedOperation): Promise<OperationComplete> {
    return Promise.resolve({ ...this.done(op), CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'recovered' }, result: null });
  }

  /** Ends the operation running; false when none runs. */
  release(): boolean {
    const g = this.gate;
    this.gate = undefined;
    g?.();
    return g !== undefined;
  }

  private done(op: QueuedOperation): OperationComplete {
    const now = new Date().toISOString();
    return { operationId: op.operationId, method: op.method, params: op.params, CurrentState: 'Installed', Fault: null, result: { changed: true }, StartTime: now, CompleteTime: now };
  }
}

async function daemon(t: Test, config: PkgConfig, runner: OperationRunner): Promise<PkgDaemon> {
  const d = new PkgDaemon({ config });
  registerQueryMethods(d);
  registerOperationMethods(d, { runner, maxQueued: 3 });
  t.teardown(() => d.close());
  await d.listen();
  return d;
}

/** Releases operations until `runner` has run `n` in all (bounded). */
async function releaseUntil(runner: GatedRunner, n: number): Promise<void> {
  for (let i = 0; i < 200 && runner.ran.length < n; i++) {
    runner.release();
    await new Promise((r) => setTimeout(r, 5));
  }
}

t.test('bounded, persistent across restarts, ids continue, undelivered completions delivered once', async (t) => {
  const config = testConfig(tempDir(t));
  const r1 = new GatedRunner();
  const d1 = await daemon(t, config, r1);
  const c1 = await Client.connect(t, d1.socketPath);
  const ids = [];
  for (const du of ['a', 'b', 'c', 'd']) ids.push(await submit(t, c1, 'du.uninstall', { du }));
  t.same(ids, [1, 2, 3, 4], 'ids from 1');
  const full = await c1.call('du.uninstall', { du: 'e' });
  t.match(full.error, { code: -32000, data: { Fault: { FaultCode: 9027 } } }, 'one running and 3 waiting: the next is refused (9027)');
  t.same(((await c1.call('operation.list')).result as Array<{ operationId: number; status: string }>).map((o) => [o.operationId, o.status]),
    [[1, 'running'], [2, 'queued'], [3, 'queued'], [4, 'queued']], 'operation.list: the running one, then the queue');

  // nobody subscribed: operation 1's completion is kept; the stop waits for it and leaves 2-4 on disk
  const closed = d1.close();
  r1.release();
  await closed;
  t.same(r1.ran, [1], 'only the running operation ended before the daemon stopped');

  const r2 = new GatedRunner();
  const d2 = await daemon(t, config, r2);
  const c2 = await subscriber(t, d2.socketPath);
  t.match(await completion(c2, 1, 5000), { operationId: 1, method: 'du.uninstall', params: { du: 'a' }, Fault: null }, 'the kept completion reaches the new daemon\'s subscriber');
  const next = await submit(t, c2, 'du.uninstall', { du: 'e' });
  t.equal(next, 5, 'the ids go on after the restart');
  await releaseUntil(r2, 4);
  r2.release();
  t.ok(await completion(c2, 5, 5000), 'operation 5 completed');
  t.same(r2.ran, [2, 3, 4, 5], 'the queued operations ran in order in the new daemon, then the new one');
  t.same((await c2.call('operation.get', { operationId: 1 })).result, { operationId: 1, method: 'du.uninstall', status: 'done', complete: completions(c2)[0] }, 'operation.get knows operations of the old daemon');
  await d2.close();

  const r3 = new GatedRunner();
  const d3 = await daemon(t, config, r3);
  const c3 = await subscriber(t, d3.socketPath);
  t.same(((await c3.call('operation.get', { operationId: 5 })).result as { status?: string }).status, 'done', 'still known by a third daemon');
  // kept completions are sent before the answer to events.subscribe: none came
  t.same(completions(c3), [], 'completions delivered once are not sent again');

  const boom = await submit(t, c3, 'du.uninstall', { du: 'boom' });
  t.match(await completion(c3, boom, 5000), { CurrentState: 'Failed', Fault: { FaultCode: 9001, FaultString: 'the runner broke' }, result: null }, 'a runner that throws: fault 9001');
  const after = await submit(t, c3, 'du.uninstall', { du: 'f' });
  await releaseUntil(r3, 2);
  r3.release();
  t.match(await completion(c3, after, 5000), { Fault: null }, 'and the queue goes on');
});
