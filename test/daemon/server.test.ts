// The daemon's transport through its real socket, with a plain node:net client: JSON-RPC
// round trips and errors, the socket's file, mode and owner, a stale socket replaced, a
// live daemon refused, a non-root peer refused by its uid alone, shutdown. As root; no
// namespaces.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PkgDaemon } from '../../src/daemon/server.js';
import { RPC_ERRORS } from '../../src/daemon/jsonrpc.js';
import { Client, runChild, writeClientScript, startDaemon, tempDir, testConfig, until } from './helpers.js';

t.test('round trips, JSON-RPC errors, notifications never answered', async (t) => {
  const d = await startDaemon(t);
  d.daemon.methods.register('test.echo', { params: { text: 'string', n: 'integer?' }, run: ({ text, n }) => ({ text, n: n ?? null }) });
  let notified = 0;
  d.daemon.methods.register('test.count', { params: {}, run: () => { notified++; } });
  const c = await Client.connect(t, d.socket);

  t.same(await c.call('test.echo', { text: 'hi', n: 2 }), { jsonrpc: '2.0', result: { text: 'hi', n: 2 }, id: 1 }, 'a round trip');
  t.same((await c.call('test.count')).result, null, 'undefined is sent as null');
  const unknown = await c.call('no.such');
  t.equal(unknown.error?.code, RPC_ERRORS.METHOD_NOT_FOUND, 'unknown method: -32601');
  t.equal((await c.call('test.echo', {})).error?.code, RPC_ERRORS.INVALID_PARAMS, 'a missing param: -32602');
  t.match((await c.call('test.echo', { text: 1 })).error, { code: -32602, message: /text must be a string/ }, 'a mistyped param');
  t.match((await c.call('test.echo', { text: 'x', colour: 1 })).error, { code: -32602, message: /unknown param "colour"/ }, 'an unknown param');
  t.equal((await c.call('test.echo', ['x'])).error?.code, RPC_ERRORS.INVALID_PARAMS, 'params by position');

  c.send('{"jsonrpc":"2.0","method":\n');
  t.match(await c.waitFor((m) => m.error?.code === -32700), { id: null, error: { code: -32700 } }, 'a parse error: -32700, id null');
  c.send('[{"jsonrpc":"2.0","method":"test.count","id":7}]\n');
  t.match(await c.waitFor((m) => m.error?.code === -32600 && /batch/.test(m.error.message)), { id: null }, 'a batch is refused: -32600');
  c.send('{"jsonrpc":"1.0","method":"test.count","id":"a"}\n');
  t.match(await c.waitFor((m) => m.id === 'a'), { error: { code: -32600 } }, 'jsonrpc not 2.0: -32600 with the id');
  c.send('{"jsonrpc":"2.0","method":"test.count","id":{"x":1}}\n');
  t.match(await c.waitFor((m) => m.error?.code === -32600 && /id must/.test(m.error.message)), { id: null }, 'a bad id: -32600, id null');
  c.send('"just a string"\n\n   \n');
  t.ok(await c.waitFor((m) => m.error?.code === -32600 && /not an object/.test(m.error.message)), 'not an object: -32600; blank lines ignored');

  const before = c.received.length;
  const countBefore = notified;
  c.send('{"jsonrpc":"2.0","method":"test.count"}\n{"jsonrpc":"2.0","method":"no.such"}\n{"jsonrpc":"2.0","method":"test.echo","params":{}}\n');
  t.same((await c.call('test.echo', { text: 'after' })).result, { text: 'after', n: null });
  t.equal(notified, countBefore + 1, 'the notification ran');
  t.equal(c.received.length, before + 1, 'notifications, even failing ones, got no answer');

  c.send('{"jsonrpc":"2.0","method":"test.echo","params":{"text":"crlf"},"id":"r"}\r\n');
  t.match(await c.waitFor((m) => m.id === 'r'), { result: { text: 'crlf' } }, 'a CRLF line');
  const many = Array.from({ length: 200 }, (_, i) => JSON.stringify({ jsonrpc: '2.0', method: 'test.echo', params: { text: String(i) }, id: 1000 + i })).join('\n') + '\n';
  c.send(many);
  await c.waitFor((m) => m.id === 1199);
  const order = c.received.filter((m) => typeof m.id === 'number' && m.id >= 1000).map((m) => m.id);
  t.same(order, Array.from({ length: 200 }, (_, i) => 1000 + i), '200 requests in one write, answered in order');
  t.match(d.logs, [/^listening on /, /^connection 1 from pid \d+ uid 0 gid 0$/], 'one line per connection');
});

t.test('method errors: a library error is -32000 with its code and Fault; an unexpected one is -32603 and logged', async (t) => {
  const d = await startDaemon(t);
  const { OverlayBootError } = await import('../../src/errors.js');
  d.daemon.methods.register('test.lib', { params: {}, run: () => { throw new OverlayBootError('PKG_TEMPLATE_UNKNOWN', 'no such EE', { name: 'x' }); } });
  d.daemon.methods.register('test.bug', { params: {}, run: async () => { throw new TypeError('secret detail'); } });
  const c = await Client.connect(t, d.socket);
  t.match(await c.call('test.lib'), { error: { code: -32000, message: /PKG_TEMPLATE_UNKNOWN/, data: { code: 'PKG_TEMPLATE_UNKNOWN', Fault: { FaultCode: 9023 } } } });
  const bug = await c.call('test.bug');
  t.same(bug.error, { code: -32603, message: 'internal error (see the daemon log)' }, 'nothing of the failure goes to the client');
  t.ok(d.logs.some((l) => /test\.bug failed: TypeError: secret detail/.test(l)), 'it is in the log');
  t.throws(() => d.daemon.methods.register('rpc.x', { params: {}, run: () => 1 }), RangeError, 'rpc. is reserved');
});

t.test('the socket: mode 0600 owned by root, directory 0755; removed at close', async (t) => {
  const dir = tempDir(t);
  const d = await startDaemon(t, { dir });
  const st = lstatSync(d.socket);
  t.ok(st.isSocket());
  t.equal(st.mode & 0o777, 0o600);
  t.equal(st.uid, 0);
  t.equal(lstatSync(path.dirname(d.socket)).mode & 0o777, 0o755, 'the directory it made');
  t.same(readdirSync(path.dirname(d.socket)), ['pkgd.sock'], 'no temporary name left');
  const c = await Client.connect(t, d.socket);
  t.ok((await c.call('events.subscribe')).result);
  await d.daemon.close();
  t.notOk(existsSync(d.socket), 'the socket file is removed');
  t.ok(await c.waitClosed(), 'clients are disconnected');
  await d.daemon.close();
});

t.test('[daemon] group: mode 0660 and that group', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  config.daemon.group = 'nogroup';
  const d = await startDaemon(t, { dir, config });
  const st = lstatSync(d.socket);
  t.equal(st.mode & 0o777, 0o660);
  t.equal(st.gid, 65534);
  config.daemon.group = 'no-such-group-here';
  const other = new PkgDaemon({ config, socketPath: path.join(dir, 'other.sock') });
  await t.rejects(other.listen(), { code: 'PKG_CONFIG_INVALID', variable: 'daemon.group' });
});

t.test('a stale socket is replaced; a live daemon is refused; a file that is no socket is left alone', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  mkdirSync(path.dirname(config.paths.socket), { recursive: true });
  // a socket file nobody listens on: what a SIGKILLed daemon leaves
  const killed = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))`, config.paths.socket]);
  t.equal(killed.signal, 'SIGKILL');
  t.ok(lstatSync(config.paths.socket).isSocket(), 'a stale socket file');
  const d = await startDaemon(t, { dir, config });
  t.ok(d.logs.some((l) => l.startsWith('replacing the stale socket')), 'logged');
  const c = await Client.connect(t, d.socket);
  t.ok((await c.call('du.list')).result, 'the new daemon serves');

  const second = new PkgDaemon({ config });
  await t.rejects(second.listen(), { code: 'PKG_DAEMON_RUNNING', file: config.paths.socket });
  t.ok((await c.call('du.list')).result, 'the first still serves');

  const plain = path.join(dir, 'plain');
  writeFileSync(plain, 'x');
  const third = new PkgDaemon({ config, socketPath: plain });
  await t.rejects(third.listen(), { code: 'PKG_DAEMON_SOCKET' });
  t.ok(existsSync(plain), 'not removed');
});

t.test('a non-root peer is refused by its uid, the socket being open to all', async (t) => {
  const d = await startDaemon(t, { socketMode: 0o666 });
  t.equal(lstatSync(d.socket).mode & 0o777, 0o666, 'anyone may connect');
  const script = writeClientScript(d.dir);
  const r = await runChild(t, 'setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, d.socket]);
  t.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { uid: number; out: string };
  t.equal(got.uid, 65534, 'the client ran as nobody');
  // the request it sent was never read: closing over it may reset the connection
  const lines = got.out.trim().split('\n').filter((l) => l !== 'ERROR ECONNRESET');
  t.equal(lines.length, 1, 'one line, then closed');
  t.match(JSON.parse(lines[0]!), { jsonrpc: '2.0', id: null, error: { code: RPC_ERRORS.PEER_REFUSED, message: /root only/ } }, 'refused with -32001');
  t.ok(d.logs.some((l) => /^connection \d+ refused: pid \d+ uid 65534 gid 65534 \(root only\)$/.test(l)), 'logged with its uid');

  // the same client as root is served
  const ok = await runChild(t, process.execPath, [script, d.socket]);
  t.match(JSON.parse((JSON.parse(ok.stdout) as { out: string }).out.trim()), { id: 1, result: [] });
});

t.test('a member of [daemon] group is served; its supplementary groups count', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  config.daemon.group = 'nogroup';
  const d = await startDaemon(t, { dir, config, socketMode: 0o666 });
  const script = writeClientScript(dir);
  const primary = await runChild(t, 'setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, script, d.socket]);
  t.match(JSON.parse((JSON.parse(primary.stdout) as { out: string }).out.split('\n')[0]!), { id: 1, result: [] }, 'primary gid');
  const supplementary = await runChild(t, 'setpriv', ['--reuid=65534', '--regid=100', '--groups=65534', process.execPath, script, d.socket]);
  t.match(JSON.parse((JSON.parse(supplementary.stdout) as { out: string }).out.split('\n')[0]!), { id: 1, result: [] }, 'supplementary gid');
  const none = await runChild(t, 'setpriv', ['--reuid=65534', '--regid=100', '--clear-groups', process.execPath, script, d.socket]);
  t.match(JSON.parse((JSON.parse(none.stdout) as { out: string }).out.split('\n')[0]!), { error: { code: RPC_ERRORS.PEER_REFUSED, message: /group nogroup/ } }, 'not a member');
});

t.test('idle connections are closed; subscribers are not', async (t) => {
  const d = await startDaemon(t, { idleTimeoutMs: 300 });
  const idle = await Client.connect(t, d.socket);
  const sub = await Client.connect(t, d.socket);
  t.ok((await sub.call('events.subscribe')).result);
  t.ok(await idle.waitClosed(), 'the idle one is closed');
  t.match(idle.received, [{ id: null, error: { code: RPC_ERRORS.IDLE_TIMEOUT } }], 'with -32004');
  await until(() => false, 600);
  t.notOk(sub.closed, 'the subscriber stays');
  t.ok((await sub.call('du.list')).result);
});

t.test('a client that shuts down its side is answered, then closed, a subscriber too', async (t) => {
  const d = await startDaemon(t);
  const c = await Client.connect(t, d.socket);
  // as `printf ... | socat - UNIX-CONNECT:SOCKET` does; the last line has no newline
  c.socket.end('{"jsonrpc":"2.0","method":"du.list","id":1}\n{"jsonrpc":"2.0","method":"daemon.info","id":2}');
  t.ok(await c.waitClosed(), 'closed once answered');
  t.match(c.received, [{ id: 1, result: [] }, { id: 2, result: { methods: Array } }], 'both answered');
  t.ok(d.logs.some((l) => /closed: the client ended its side and was answered/.test(l)));

  const watcher = await Client.connect(t, d.socket);
  t.ok((await watcher.call('events.subscribe')).result);
  watcher.socket.end();
  t.ok(await watcher.waitClosed(), 'closed: EOF may mean the client is gone');
  t.equal(d.daemon.subscriberCount, 0, 'its slot is free');
});

t.test('two daemons starting at once: one serves, the other is refused', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  const a = new PkgDaemon({ config });
  const b = new PkgDaemon({ config });
  t.teardown(async () => { await a.close(); await b.close(); });
  const results = await Promise.allSettled([a.listen(), b.listen()]);
  t.same(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  t.match(results.find((r) => r.status === 'rejected'), { reason: { code: 'PKG_DAEMON_RUNNING' } });
  const c = await Client.connect(t, config.paths.socket);
  t.equal((await c.call('du.list')).error?.code, RPC_ERRORS.METHOD_NOT_FOUND, 'the winner answers (a bare PkgDaemon has no methods)');
  t.same(readdirSync(path.dirname(config.paths.socket)), ['pkgd.sock'], 'no temporary name left');
});
