// Hostile clients cannot crash the daemon, stall other clients or grow its memory
// without bound: a 100 MB line, garbage bytes, 2000 connections at once, a subscriber
// that never reads. The daemon runs in this process, so its resident memory is this
// process's (sampled, and compared with the bytes the clients pushed).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { setImmediate as tick } from 'node:timers/promises';
import type { DuStateChange } from '../../src/lifecycle/events.js';
import { RPC_ERRORS } from '../../src/daemon/jsonrpc.js';
import { Client, runChild, startDaemon, until } from './helpers.js';

const MB = 1024 * 1024;

/** Samples this process's RSS every 5 ms until stopped; returns the highest seen. */
function rssPeak(): { stop: () => number } {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage.rss()); }, 5);
  return { stop: () => { clearInterval(timer); return Math.max(peak, process.memoryUsage.rss()); } };
}

t.test('a 100 MB line is cut off at the cap, never held, while another client is served', async (t) => {
  const d = await startDaemon(t);
  const writer = path.join(d.dir, 'writer.mjs');
  // writes 100 MB without a newline, as fast as the socket takes it; reports what came back
  writeFileSync(writer, `import net from 'node:net';
const s = net.connect(process.argv[2]);
const chunk = Buffer.alloc(64 * 1024, 0x61);
let written = 0, out = '', err = '';
function pump() {
  while (written < 100 * 1024 * 1024) {
    written += chunk.length;
    if (!s.write(chunk)) { s.once('drain', pump); return; }
  }
}
s.on('connect', pump);
s.on('data', (d) => { out += d; });
s.on('error', (e) => { err = e.code; });
s.on('close', () => process.stdout.write(JSON.stringify({ written, out, err })));
`);
  const c = await Client.connect(t, d.socket);
  const base = process.memoryUsage.rss();
  const mem = rssPeak();
  const child = runChild(t, process.execPath, [writer, d.socket]);
  let served = 0;
  for (let i = 0; i < 50; i++) if ((await c.call('du.list')).result) served++;
  const r = await child;
  const peak = mem.stop();
  const got = JSON.parse(r.stdout) as { written: number; out: string; err: string };
  t.equal(served, 50, 'the other client was served meanwhile');
  t.match(JSON.parse(got.out.split('\n')[0]!), { id: null, error: { code: RPC_ERRORS.LINE_TOO_LONG } }, 'the writer got -32002');
  t.ok(got.written < 100 * MB, `the connection was closed before the 100 MB were sent (${(got.written / MB).toFixed(1)} MB written)`);
  t.ok(d.logs.some((l) => /closed: line too long/.test(l)), 'logged');
  t.ok(peak - base < 40 * MB, `resident memory grew by ${((peak - base) / MB).toFixed(1)} MB, far below the line`);
  t.same((await c.call('du.list')).result, [], 'still serving');
});

t.test('garbage bytes: each line a parse error, the connection still serves; a garbage line past the cap is cut off', async (t) => {
  const d = await startDaemon(t, { maxLineBytes: 64 * 1024 });
  const c = await Client.connect(t, d.socket);
  // random bytes with a newline at least every 1000 bytes, invalid UTF-8 and NULs included
  const parts: Buffer[] = [];
  for (let i = 0; i < 200; i++) parts.push(Buffer.from(randomBytes(1 + (i * 37) % 999).map((b) => (b === 10 ? 32 : b))), Buffer.from('\n'));
  c.send(Buffer.concat(parts));
  const answer = await c.call('du.list');
  t.same(answer.result, [], 'a request after the garbage is answered');
  const errors = c.received.filter((m) => m.error);
  t.ok(errors.length > 150 && errors.every((m) => m.id === null && (m.error!.code === -32700 || m.error!.code === -32600)), `${errors.length} garbage lines answered -32700 or -32600`);
  c.send(Buffer.from(randomBytes(200 * 1024).map((b) => (b === 10 ? 32 : b))));
  t.ok(await c.waitClosed(), 'closed');
  t.ok(c.received.some((m) => m.error?.code === RPC_ERRORS.LINE_TOO_LONG));
  const other = await Client.connect(t, d.socket);
  t.same((await other.call('du.list')).result, []);
});

t.test('2000 connections at once: 64 served, the rest refused; the daemon survives and serves', async (t) => {
  const d = await startDaemon(t);
  const sockets: net.Socket[] = [];
  // each asks for du.list at once: an accepted one is answered, a refused one gets -32003
  const outcome = await Promise.all(Array.from({ length: 2000 }, () => new Promise<string>((resolve) => {
    const s = net.connect(d.socket);
    sockets.push(s);
    let data = '';
    s.setEncoding('utf8');
    s.on('connect', () => s.write('{"jsonrpc":"2.0","method":"du.list","id":1}\n'));
    s.on('data', (x: string) => {
      data += x;
      if (data.includes('\n')) resolve('result' in JSON.parse(data.split('\n')[0]!) ? 'served' : data.includes(String(RPC_ERRORS.TOO_MANY_CONNECTIONS)) ? 'busy' : data);
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(`error ${e.code}`));
    s.on('close', () => resolve(`closed ${data}`));
  })));
  t.teardown(() => { for (const s of sockets) s.destroy(); });
  const count = (what: string) => outcome.filter((o) => o === what).length;
  const kernel = outcome.filter((o) => o.startsWith('error EAGAIN')).length;
  t.equal(count('served'), 64, 'the cap is served');
  t.equal(count('busy') + kernel, 2000 - 64, `the rest refused with -32003 (${count('busy')}) or, beyond the listen backlog, by the kernel (${kernel})`);
  t.ok(count('busy') > 0);
  t.equal(d.daemon.connectionCount, 64);
  t.ok(await until(() => d.logs.some((l) => l.startsWith('refused '))));
  const refusals = d.logs.map((l) => /^refused (\d+) connection\(s\)/.exec(l)).filter(Boolean);
  t.equal(refusals.reduce((n, m) => n + Number(m![1]), 0), count('busy'), 'refusals are logged as counts, not one line each');
  for (const s of sockets) s.destroy();
  t.ok(await until(() => d.daemon.connectionCount === 0), 'all gone');
  const c = await Client.connect(t, d.socket);
  t.same((await c.call('du.list')).result, [], 'served after the storm');
});

t.test('a subscriber that never reads is cut off; a reading one gets every event; memory stays bounded', async (t) => {
  const d = await startDaemon(t);
  // the reader counts lines and keeps nothing, so that this process's memory is the daemon's
  const reader = await Client.connect(t, d.socket);
  t.ok((await reader.call('events.subscribe')).result);
  reader.socket.removeAllListeners('data');
  let readerLines = 0;
  reader.socket.on('data', (x: string) => { for (let i = x.indexOf('\n'); i !== -1; i = x.indexOf('\n', i + 1)) readerLines++; });
  const stalled = await Client.connect(t, d.socket);
  t.ok((await stalled.call('events.subscribe')).result);
  stalled.socket.pause();
  const padding = 'x'.repeat(20 * 1024);
  const base = process.memoryUsage.rss();
  const mem = rssPeak();
  const N = 2000; // 40 MB of notifications
  for (let i = 0; i < N; i++) {
    const e = { operationId: i, UUID: '', DeploymentUnitRef: 'web', Version: padding, CurrentState: 'Installed', Resolved: true, ExecutionUnitRefList: [], StartTime: '', CompleteTime: '', OperationPerformed: 'Install', Fault: { FaultCode: 0, FaultString: '' } } satisfies DuStateChange;
    d.daemon.events.emit('du.statechange', e);
    await tick();
  }
  t.ok(await until(() => readerLines === N), `the reader got all ${N}`);
  const peak = mem.stop();
  t.ok(d.logs.some((l) => /closed: the client does not read/.test(l)), 'the stalled one was cut off');
  t.equal(d.daemon.subscriberCount, 1);
  t.ok(peak - base < 20 * MB, `resident memory grew by ${((peak - base) / MB).toFixed(1)} MB while 40 MB were sent`);
  stalled.socket.resume();
  t.ok(await stalled.waitClosed(), 'closed from the daemon side');
  t.ok(stalled.received.filter((m) => m.method).length < N / 10, 'it got only the beginning');
});
