// The queued operations by RPC, through the socket with a plain client: the whole
// lifecycle of a signed package (install, eu.stop, eu.start, update, uninstall) submitted
// by one client and watched by a second subscriber, which must see exactly the events
// below; each result is what `overlay-pkg --json` prints. As root, under the root lock.
import t from 'tap';
import { uniqueName } from '../helpers/subhost.js';
import { Client } from './helpers.js';
import { completion, opsDaemon, servicePackage, submit, subscriber } from './ops-helpers.js';

t.test('install, eu.stop, eu.start, update, uninstall by RPC; a second subscriber sees every event', async (t) => {
  const d = await opsDaemon(t);
  const name = uniqueName('op');
  const v1 = servicePackage(d.env, 'opsdemo', '1.0');
  const v2 = servicePackage(d.env, 'opsdemo', '2.0');
  const a = await Client.connect(t, d.socket);
  const watcher = await subscriber(t, d.socket);
  const euid = `${name}/svc`;

  const steps: Array<[string, Record<string, unknown>]> = [
    ['du.install', { url: v1, name }],
    ['eu.stop', { eu: euid }],
    ['eu.start', { eu: euid }],
    ['du.update', { du: name, url: v2 }],
    ['du.uninstall', { du: name }],
  ];
  const ids: number[] = [];
  const results: Array<Record<string, unknown>> = [];
  for (const [method, params] of steps) {
    const id = await submit(t, a, method, params);
    ids.push(id);
    const done = await completion(watcher, id);
    t.ok(done, `${method}: operation.complete ${id} reached the second subscriber`);
    t.match(done, { operationId: id, method, params, Fault: null }, `${method} succeeded: ${JSON.stringify(done?.Fault)}`);
    results.push(done?.result as Record<string, unknown>);
    const got = await a.call('operation.get', { operationId: id });
    t.same(got.result, { operationId: id, method, status: 'done', complete: done }, 'operation.get says the same');
  }
  t.same(ids, ids.map((_, i) => ids[0]! + i), 'operation ids follow each other');

  t.match(results[0], { changed: true, OperationPerformed: 'Install', CurrentState: 'Installed', Subhost: name, Name: 'opsdemo', Version: '1.0', Status: 'Installed', ExecutionUnitList: [euid] });
  t.match(results[1], { changed: true, OperationPerformed: 'EUStop', CurrentState: 'Installed', EUID: euid, Subhost: name, Status: 'Idle', ExecutionFaultCode: 'NoFault' });
  t.match(results[2], { changed: true, OperationPerformed: 'EUStart', CurrentState: 'Installed', EUID: euid, Status: 'Active' });
  t.match(results[3], { changed: true, OperationPerformed: 'Update', CurrentState: 'Installed', Version: '2.0', conffilesKept: [] });
  t.match(results[4], { changed: true, OperationPerformed: 'Uninstall', CurrentState: 'Uninstalled', Subhost: name });
  t.same((await a.call('du.list')).result, [], 'nothing installed at the end');

  // The second subscriber's whole stream, in order (times and ids aside).
  const seen = watcher.received.filter((m) => m.method !== undefined).map((m) => {
    const p = m.params as Record<string, unknown>;
    const what = m.method === 'eu.statechange' ? `${String(p.EUID)} ${String(p.Status)}`
      : m.method === 'du.statechange' ? `${String(p.DeploymentUnitRef)} ${String(p.Status)}${p.CurrentState ? ` ${String(p.CurrentState)}` : ''}`
        : String(p.method);
    return `${String(p.operationId)} ${m.method} ${what}`;
  });
  t.comment(seen.join('\n'));
  const [i, s, st, u, r] = ids;
  t.same(seen, [
    `${i} operation.start du.install`,
    `${i} du.statechange ${name} Installing`,
    `${i} eu.statechange ${euid} Active`,
    `${i} du.statechange ${name} Installed Installed`,
    `${i} operation.complete du.install`,
    `${s} operation.start eu.stop`,
    `${s} eu.statechange ${euid} Stopping`,
    `${s} eu.statechange ${euid} Idle`,
    `${s} operation.complete eu.stop`,
    `${st} operation.start eu.start`,
    `${st} eu.statechange ${euid} Starting`,
    `${st} eu.statechange ${euid} Active`,
    `${st} operation.complete eu.start`,
    `${u} operation.start du.update`,
    `${u} du.statechange ${name} Updating`,
    `${u} du.statechange ${name} Installed Installed`,
    `${u} operation.complete du.update`,
    `${r} operation.start du.uninstall`,
    `${r} du.statechange ${name} Uninstalling`,
    `${r} du.statechange ${name} Uninstalled Uninstalled`,
    `${r} operation.complete du.uninstall`,
  ], 'the exact sequence of events');
});

t.test('refused before anything is queued: userinfo, a relative path, a bad EUID, unknown params', async (t) => {
  const d = await opsDaemon(t);
  const c = await Client.connect(t, d.socket);
  const refused = async (method: string, params: Record<string, unknown>, code: number) => {
    const r = await c.call(method, params);
    t.equal(r.error?.code, code, `${method} ${JSON.stringify(params)}: ${r.error?.message}`);
    return r;
  };
  const r = await refused('du.install', { url: 'http://user:secret@127.0.0.1:1/x.ipk' }, -32000);
  t.match(r.error?.data, { Fault: { FaultCode: 9003 } });
  t.notMatch(JSON.stringify(r), /secret/, 'the password is not echoed');
  await refused('du.install', { url: 'pkg/x.ipk' }, -32000);
  await refused('eu.stop', { eu: 'noslash' }, -32000);
  await refused('du.uninstall', { du: 'x', force: true }, -32602);
  await refused('operation.get', { operationId: 12345 }, -32602);
  t.same((await c.call('operation.list')).result, [], 'nothing was queued');
});
