// du.install of http URLs through the daemon, from an HTTP server this test starts on
// 127.0.0.1: basic auth (the right password installs, a wrong one is fault 9012), a
// connection cut half-way (resumed with Range, installed from the right bytes), a 404
// (9016), a port nobody listens on (9015); du.statechange carries the download's
// progress; the password is nowhere but in the request. As root, under the root lock.
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { DuStore } from '../../src/lifecycle/store.js';
import { buildDu } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';
import type { Client } from './helpers.js';
import { completion, opsDaemon, submit, subscriber } from './ops-helpers.js';

const USER = 'fleet';
const PASSWORD = 'dl-Zq81-secret-pw';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

/** An HTTP server on 127.0.0.1 serving `files` by path (basic auth on `/auth/`), closed at teardown. */
async function serve(t: Test, files: Record<string, Buffer>): Promise<{ origin: string; requests: Array<{ url: string; headers: IncomingHttpHeaders }> }> {
  const requests: Array<{ url: string; headers: IncomingHttpHeaders }> = [];
  let cut = false;
  const server = http.createServer((req, res) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    const url = req.url ?? '';
    const body = files[path.basename(url)];
    if (url.startsWith('/auth/') && req.headers.authorization !== AUTH) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="pkg"' }).end();
      return;
    }
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    const range = /^bytes=([0-9]+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const from = Number(range[1]);
      res.writeHead(206, { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}`, 'content-length': body.length - from, etag: '"v1"' });
      res.end(body.subarray(from));
      return;
    }
    res.writeHead(200, { 'content-length': body.length, etag: '"v1"' });
    if (url.startsWith('/cut/') && !cut) {
      // half the body, then the connection breaks (once the half has left, so that the client has some to resume from)
      cut = true;
      res.write(body.subarray(0, body.length >> 1), () => setTimeout(() => res.socket?.destroy(), 200));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { origin: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, requests };
}

/** A port on 127.0.0.1 nobody listens on (one the kernel just gave and took back). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as net.AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Every file below `dir` holding `text`. */
function filesHolding(dir: string, text: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile() && readFileSync(f, 'latin1').includes(text));
}

async function install(t: Test, c: Client, params: Record<string, unknown>): Promise<Record<string, unknown>> {
  const id = await submit(t, c, 'du.install', params);
  return (await completion(c, id)) ?? {};
}

t.test('http downloads by the daemon: auth, wrong password, a broken transfer resumed, 404, unreachable', async (t) => {
  const d = await opsDaemon(t);
  // incompressible data, so the package is large enough to be cut half-way
  const pkg = (name: string) => readFileSync(buildDu(d.env, { name, data: { [`usr/share/${name}/blob`]: { content: randomBytes(400_000) } } }));
  const files = { 'a.ipk': pkg('dla'), 'b.ipk': pkg('dlb') };
  const srv = await serve(t, files);
  const c = await subscriber(t, d.socket);
  const [na, nb] = [uniqueName('da'), uniqueName('db')];

  const wrong = await install(t, c, { url: `${srv.origin}/auth/a.ipk`, name: na, username: USER, password: 'not-it' });
  t.match(wrong, { CurrentState: 'Failed', Fault: { FaultCode: 9012 }, result: { changed: false } }, 'a wrong password is fault 9012');

  const ok = await install(t, c, { url: `${srv.origin}/auth/a.ipk`, name: na, username: USER, password: PASSWORD });
  t.match(ok, { CurrentState: 'Installed', Fault: null, result: { changed: true, Subhost: na, URL: `${srv.origin}/auth/a.ipk` } }, `with the password it installs: ${JSON.stringify(ok.Fault)}`);
  t.equal(new DuStore(d.config.paths.state).get(na)?.package.sha256, sha(files['a.ipk']), 'from the bytes served');
  const progress = c.received.filter((m) => m.method === 'du.statechange' && (m.params as { bytesDone?: number }).bytesDone !== undefined)
    .map((m) => m.params as Record<string, unknown>).filter((p) => p.operationId === ok.operationId);
  t.ok(progress.length >= 1, `progress events (${progress.length})`);
  t.match(progress.at(-1), { DeploymentUnitRef: na, Status: 'Installing', bytesDone: files['a.ipk'].length, bytesTotal: files['a.ipk'].length }, 'the last says every byte arrived');

  const resumed = await install(t, c, { url: `${srv.origin}/cut/b.ipk`, name: nb });
  t.match(resumed, { CurrentState: 'Installed', Fault: null }, `a transfer cut half-way is resumed: ${JSON.stringify(resumed.Fault)}`);
  const ranges = srv.requests.filter((r) => r.url === '/cut/b.ipk').map((r) => r.headers.range);
  t.match(ranges, [undefined, /^bytes=[1-9][0-9]*-$/], 'the second request asks for the rest with Range');
  t.equal(new DuStore(d.config.paths.state).get(nb)?.package.sha256, sha(files['b.ipk']), 'installed from the right bytes (checksum)');

  const missing = await install(t, c, { url: `${srv.origin}/none.ipk` });
  t.match(missing, { CurrentState: 'Failed', Fault: { FaultCode: 9016 } }, '404 is fault 9016');
  const unreachable = await install(t, c, { url: `http://127.0.0.1:${await closedPort()}/a.ipk` });
  t.match(unreachable, { CurrentState: 'Failed', Fault: { FaultCode: 9015 } }, 'a port nobody listens on is fault 9015');

  t.same(filesHolding(d.config.paths.state, PASSWORD), [], 'the password is in no file of the state directory');
  t.notMatch(d.logs.join('\n'), PASSWORD, 'nor in the daemon\'s log');
  t.notMatch(JSON.stringify(c.received), PASSWORD, 'nor in any notification');
  for (const du of [na, nb]) t.match((await completion(c, await submit(t, c, 'du.uninstall', { du }))), { CurrentState: 'Uninstalled' }, `${du} removed`);
});
