// The daemon's queue: 20 operations sent at once by 5 clients run one at a time, in the
// order of their ids (no operation.start before the previous operation.complete, every
// event in between tagged with the running one, history times in sequence), each
// reported exactly once; the library run by another process meanwhile (as overlay-pkg
// from a shell) takes its turn between two of them through the lock; a request's
// password is kept only in a 0600 file until its operation ends, and is nowhere else.
// As root, under the root lock.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { History } from '../../src/lifecycle/history.js';
import { installDU } from '../../src/lifecycle/install.js';
import { queueDir } from '../../src/daemon/queue.js';
import { uniqueName } from '../helpers/subhost.js';
import { srcModule, startChild } from '../lifecycle/child.js';
import { Client } from './helpers.js';
import { completion, completions, opsDaemon, servicePackage, submit, subscriber } from './ops-helpers.js';

const PASSWORD = 'pw-Q7xk-never-written';

/** Every file below `dir`, with its content. */
function filesBelow(dir: string): Array<[string, string]> {
  return readdirSync(dir, { recursive: true }).map(String).map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile()).map((f) => [f, readFileSync(f, 'latin1')]);
}

t.test('20 operations from 5 clients at once: one at a time, in order, each reported once', async (t) => {
  const d = await opsDaemon(t);
  const name = uniqueName('qu');
  const installed = await installDU({ config: d.config, source: servicePackage(d.env, 'queued', '1.0'), name });
  t.equal(installed.entry.CurrentState, 'Installed', 'set-up install');
  const watcher = await subscriber(t, d.socket);
  // another process with the library, ready to restart the EU when told (SIGUSR1)
  const shell = startChild(`
    import { euRestart } from ${srcModule('lifecycle/eu-ops.js')};
    import { readPkgConfig } from ${srcModule('package/config.js')};
    process.once('SIGUSR1', async () => {
      const out = await euRestart({ config: readPkgConfig({ file: process.argv[1] }), euid: process.argv[2], command: 'shell restart' });
      process.stdout.write(JSON.stringify(out.entry) + '\\n');
      process.exit(0);
    });
    process.stdout.write('ready\\n');
    setTimeout(() => {}, 60000);
  `, [d.env.configFile, `${name}/svc`]);
  t.teardown(() => { if (shell.exitCode === null && shell.pid) process.kill(shell.pid, 'SIGKILL'); });
  let shellOut = '';
  shell.stdout?.on('data', (b: Buffer) => { shellOut += b.toString(); });
  for (let i = 0; i < 600 && !shellOut.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
  t.match(shellOut, 'ready', 'the other process is ready');
  const clients = await Promise.all([0, 1, 2, 3, 4].map(() => Client.connect(t, d.socket)));
  const actions = ['eu.stop', 'eu.start', 'eu.restart', 'eu.stop'];
  // all 20 written before any answer is read
  const answers = await Promise.all(clients.flatMap((c) => actions.map((method) => submit(t, c, method, { eu: `${name}/svc` }))));
  const ids = [...answers].sort((a, b) => a - b);
  t.equal(new Set(ids).size, 20, '20 distinct operation ids');
  // while the first runs, the other process queues for the lock
  await watcher.waitFor((m) => m.method === 'operation.start');
  shell.kill('SIGUSR1');

  // queued behind the 20: its secret waits on disk, 0600, and only there
  const secretOp = await submit(t, clients[0]!, 'du.install', { url: 'http://127.0.0.1:1/never.ipk', username: 'someone', password: PASSWORD });
  const dir = queueDir(d.config.paths.state);
  const secretFile = path.join(dir, `${String(secretOp).padStart(10, '0')}.secret`);
  t.equal(statSync(secretFile).mode & 0o777, 0o600, 'the password waits in a 0600 file');
  t.notMatch(readFileSync(path.join(dir, `${String(secretOp).padStart(10, '0')}.json`), 'utf8'), PASSWORD, 'not in the operation file');
  const listed = (await clients[1]!.call('operation.list')).result as Array<{ operationId: number; params: Record<string, unknown> }>;
  t.ok(listed.some((o) => o.operationId === secretOp && o.params.username === 'someone' && !('password' in o.params)), 'operation.list shows it without the password');

  const last = await completion(watcher, secretOp, 120_000);
  t.match(last, { CurrentState: 'Failed', Fault: { FaultCode: 9015 }, params: { username: 'someone' } }, 'the unreachable server is fault 9015');
  t.notOk(readdirSync(dir).some((f) => f.endsWith('.secret')), 'the secret file is gone once the operation ended');

  const done = completions(watcher);
  for (const id of [...ids, secretOp]) t.equal(done.filter((c) => c.operationId === id).length, 1, `operation ${id}: one operation.complete`);
  t.ok(done.filter((c) => ids.includes(c.operationId as number)).every((c) => c.Fault === null), 'the 20 succeeded');

  // The stream: start(a) ... complete(a) start(b) ..., ids in order, events in between a's own.
  let running: number | undefined;
  const order: number[] = [];
  let foreign = 0;
  for (const m of watcher.received) {
    if (m.method === undefined) continue;
    const id = (m.params as { operationId: number }).operationId;
    if (m.method === 'operation.start') {
      t.equal(running, undefined, `operation ${id} starts after the previous one completed`);
      running = id;
      order.push(id);
    } else if (m.method === 'operation.complete') {
      t.equal(id, running, `operation ${id} completes while it is the one running`);
      running = undefined;
    } else if (id !== running) {
      foreign += 1;
    }
  }
  t.equal(foreign, 0, 'every event between a start and its completion is that operation\'s');
  t.same(order, [...ids, secretOp], 'they ran in the order of their ids');

  for (let i = 0; i < 600 && !shellOut.includes('}'); i++) await new Promise((r) => setTimeout(r, 50));
  const all = new History(d.config.paths.state).read().entries.filter((e) => e.command.startsWith('overlay-pkgd operation ') || e.command === 'shell restart');
  const entries = all.filter((e) => e.command.startsWith('overlay-pkgd operation '));
  t.equal(entries.length, 21, 'each is in the history once');
  const at = all.findIndex((e) => e.command === 'shell restart');
  t.ok(at > 0 && at < 20, `the other process's restart took its turn between two of the daemon's operations (after ${at})`);
  t.match(JSON.parse(shellOut.slice(shellOut.indexOf('{'))), { OperationPerformed: 'EURestart', CurrentState: 'Installed' }, 'and succeeded');
  for (let i = 1; i < all.length; i++) t.ok(all[i - 1]!.CompleteTime <= all[i]!.StartTime, `history: ${all[i]!.command.split(':')[0]} began after the one before ended`);
  t.same(filesBelow(d.config.paths.state).filter(([, text]) => text.includes(PASSWORD)).map(([f]) => f), [], 'the password is in no file of the state directory');
  t.notMatch(d.logs.join('\n'), PASSWORD, 'nor in the daemon\'s log');
  t.notMatch(JSON.stringify(watcher.received), PASSWORD, 'nor in any notification');
  t.same((await clients[2]!.call('operation.list')).result, [], 'nothing is left queued');
});
