// fetchPackage against real servers on loopback (node:http / node:https started here,
// port 0), real files and a CA made with openssl.
import t, { type Test } from 'tap';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import http, { type IncomingMessage, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { OverlayBootError } from '../../src/errors.js';
import { fetchPackage, type FetchPackageOptions } from '../../src/lifecycle/download.js';
import { faultOf } from '../../src/lifecycle/faults.js';
import { tempState } from './temp.js';

const BODY = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const USER = 'operator';
const PASSWORD = 'Sup3r-s3cret-pw';

interface Server {
  origin: string;
  /** Every request seen: its URL and headers. */
  requests: { url: string; headers: IncomingHttpHeaders }[];
}

type Handler = (req: IncomingMessage, res: ServerResponse, n: number) => void;

/** A server on 127.0.0.1, closed (every connection too) at teardown. */
async function serve(t: Test, handler: Handler, tls?: { key: string; cert: string }): Promise<Server> {
  const requests: Server['requests'] = [];
  const on = (req: IncomingMessage, res: ServerResponse) => {
    requests.push({ url: req.url ?? '', headers: req.headers });
    handler(req, res, requests.length);
  };
  const server = tls ? https.createServer(tls, on) : http.createServer(on);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const { port } = server.address() as net.AddressInfo;
  return { origin: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`, requests };
}

/** Serves `body` whole (200) or from a `Range: bytes=N-` (206), with an ETag. */
function sendFile(req: IncomingMessage, res: ServerResponse, body: Buffer, etag = '"v1"'): void {
  const range = /^bytes=([0-9]+)-$/.exec(req.headers.range ?? '');
  const ifRange = req.headers['if-range'];
  if (range && (ifRange === undefined || ifRange === etag)) {
    const from = Number(range[1]);
    res.writeHead(206, { 'content-range': `bytes ${from}-${body.length - 1}/${body.length}`, 'content-length': body.length - from, etag });
    res.end(body.subarray(from));
    return;
  }
  res.writeHead(200, { 'content-length': body.length, etag });
  res.end(body);
}

/**
 * A connection cut half-way: `send` announces the whole body and sends its first `n`
 * bytes; the connection is reset once the client reports (onProgress) that it has
 * written them, so the resume offset is exactly `n` (a reset while bytes are still
 * buffered on the client loses them, and the client then resumes from fewer).
 */
function cutAt(n: number): { send(res: ServerResponse, body: Buffer, etag?: string): void; onProgress(done: number): void } {
  let pending: ServerResponse | undefined;
  return {
    send(res, body, etag = '"v1"') {
      res.writeHead(200, { 'content-length': body.length, etag });
      res.write(body.subarray(0, n));
      pending = res;
    },
    onProgress(done) {
      if (done < n || pending === undefined) return;
      pending.socket?.destroy();
      pending = undefined;
    },
  };
}

function scratch(t: Test): string {
  return tempState(t, 'ovb-dl-');
}

const fast = (dir: string, more: FetchPackageOptions = {}): FetchPackageOptions => ({ scratchDir: dir, retryDelayMs: 0, ...more });

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, faultCode: number): Promise<OverlayBootError> {
  try {
    await p;
  } catch (e) {
    t.ok(e instanceof OverlayBootError, 'an OverlayBootError');
    const err = e as OverlayBootError;
    t.equal(err.code, code, `code ${code}: ${err.message}`);
    t.equal(faultOf(err).FaultCode, faultCode, `fault ${faultCode}`);
    return err;
  }
  t.fail(`no error; expected ${code}`);
  throw new Error('unreachable');
}

/** The scratch directory holds nothing: a failed download leaves no partial file. */
function empty(t: Test, dir: string): void {
  t.same(readdirSync(dir), [], 'nothing left in the scratch directory');
}

t.test('plain paths and file URLs are used in place', async (t) => {
  const dir = scratch(t);
  const name = 'a b%c#1.ipk';
  const file = path.join(dir, name);
  writeFileSync(file, BODY);
  const abs = await fetchPackage(file);
  t.match(abs, { path: file, downloaded: false, size: BODY.length, sha256: undefined, retried: 0 });
  await abs.cleanup();
  t.equal(readFileSync(file).length, BODY.length, 'cleanup of a local file leaves it alone');
  t.equal((await fetchPackage(name, { cwd: dir })).path, file, 'a relative path, from cwd');
  const url = pathToFileURL(file).href;
  t.match(url, /a%20b%25c%231\.ipk$/, 'the URL is percent-encoded');
  t.equal((await fetchPackage(url)).path, file, 'file:///');
  t.equal((await fetchPackage(url.replace('file://', 'file://localhost'))).path, file, 'file://localhost/');
  t.equal((await fetchPackage(url.replace('file://', 'file:'))).path, file, 'file:/path');
  t.equal((await fetchPackage(url.replace('file://', 'FILE://'))).path, file, 'scheme in capitals');
  await rejectsWith(t, fetchPackage(url.replace('file://', 'file://fileserver')), 'PKG_DOWNLOAD_BAD_URL', 9003);
  await rejectsWith(t, fetchPackage(`file://${dir}/a%2Fb`), 'PKG_DOWNLOAD_BAD_URL', 9003);
  await rejectsWith(t, fetchPackage(path.join(dir, 'missing.ipk')), 'PKG_UNREADABLE', 9016);
  await rejectsWith(t, fetchPackage(`file://${dir}`), 'PKG_UNREADABLE', 9016);
  t.same(readdirSync(dir), [name], 'nothing was copied');
});

t.test('http with basic auth: downloaded, hashed while streaming, removed by cleanup', async (t) => {
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const srv = await serve(t, (req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="pkg"' }).end();
      return;
    }
    sendFile(req, res, BODY);
  });
  const dir = scratch(t);
  const progress: [number, number | undefined][] = [];
  const got = await fetchPackage(`${srv.origin}/pool/web.ipk?token=abc`, fast(dir, {
    username: USER, password: PASSWORD, onProgress: (done, total) => progress.push([done, total]),
  }));
  t.equal(got.downloaded, true);
  t.equal(got.size, BODY.length);
  t.equal(got.sha256, sha(BODY));
  t.equal(got.retried, 0);
  t.equal(got.url, `${srv.origin}/pool/web.ipk?…`, 'the query is not shown');
  t.equal(path.dirname(got.path), dir);
  t.same(readFileSync(got.path), BODY);
  t.ok(progress.length > 0, 'progress reported');
  t.same(progress.at(-1), [BODY.length, BODY.length], 'the last report is the whole file');
  t.ok(progress.every(([d], i) => i === 0 || d > progress[i - 1]![0]), 'done only grows');
  t.equal(srv.requests[0]!.headers['accept-encoding'], 'identity', 'the body is asked for as stored');
  await got.cleanup();
  await got.cleanup();
  empty(t, dir);
});

t.test('a wrong password is 9012, and the password is in no error', async (t) => {
  const srv = await serve(t, (_req, res) => res.writeHead(401).end());
  const dir = scratch(t);
  const password = `${PASSWORD}-wrong`;
  const err = await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { username: USER, password })), 'PKG_DOWNLOAD_AUTH', 9012);
  const b64 = Buffer.from(`${USER}:${password}`).toString('base64');
  const texts = [err.message, err.describe(), JSON.stringify(err), JSON.stringify(err.toJSON()), String(err.stack), String(err.cause), faultOf(err).FaultString];
  for (const text of texts) {
    t.notOk(text.includes(password), 'no password');
    t.notOk(text.includes(b64), 'no Authorization value');
  }
  t.equal(srv.requests.length, 1, 'a refusal is not retried');
  empty(t, dir);
  // no credentials at all: also 9012 (403 too)
  const forbidden = await serve(t, (_req, res) => res.writeHead(403).end());
  await rejectsWith(t, fetchPackage(`${forbidden.origin}/x.ipk`, fast(dir)), 'PKG_DOWNLOAD_AUTH', 9012);
});

t.test('404, 410 and other 4xx are 9016; a 5xx is retried, then 9016', async (t) => {
  const srv = await serve(t, (req, res) => {
    const status = Number(req.url!.slice(1));
    res.writeHead(status).end('no');
  });
  const dir = scratch(t);
  for (const status of [404, 410, 400, 204]) {
    const e = await rejectsWith(t, fetchPackage(`${srv.origin}/${status}`, fast(dir)), 'PKG_DOWNLOAD_HTTP', 9016);
    t.match(e.message, String(status));
  }
  const before = srv.requests.length;
  await rejectsWith(t, fetchPackage(`${srv.origin}/503`, fast(dir, { retries: 2 })), 'PKG_DOWNLOAD_HTTP', 9016);
  t.equal(srv.requests.length - before, 3, 'the first try and 2 retries');
  empty(t, dir);
});

t.test('a 5xx that passes is only a retry', async (t) => {
  const srv = await serve(t, (req, res, n) => (n === 1 ? res.writeHead(502).end() : sendFile(req, res, BODY)));
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t)));
  t.equal(got.sha256, sha(BODY));
  t.equal(got.retried, 1);
});

t.test('an unreachable port is 9015', async (t) => {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  const dir = scratch(t);
  const e = await rejectsWith(t, fetchPackage(`http://127.0.0.1:${port}/x.ipk`, fast(dir)), 'PKG_DOWNLOAD_UNREACHABLE', 9015);
  t.match(e.message, 'ECONNREFUSED');
  empty(t, dir);
});

t.test('a server that never answers is 9015 after the stall timeout and the retries', async (t) => {
  const srv = await serve(t, () => {}); // holds every request
  const dir = scratch(t);
  await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { stallTimeoutMs: 150, retries: 1 })), 'PKG_DOWNLOAD_UNREACHABLE', 9015);
  t.equal(srv.requests.length, 2);
  empty(t, dir);
});

t.test('a transfer cut half-way is resumed with Range and If-Range', async (t) => {
  const half = 70_001;
  const cut = cutAt(half);
  const srv = await serve(t, (req, res, n) => (n === 1 ? cut.send(res, BODY) : sendFile(req, res, BODY)));
  const progress: number[] = [];
  const onProgress = (d: number) => {
    progress.push(d);
    cut.onProgress(d);
  };
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t), { onProgress }));
  t.equal(got.size, BODY.length);
  t.equal(got.sha256, sha(BODY), 'the hash covers both parts');
  t.same(readFileSync(got.path), BODY);
  t.equal(got.retried, 1);
  t.equal(srv.requests.length, 2);
  t.equal(srv.requests[0]!.headers.range, undefined);
  t.equal(srv.requests[1]!.headers.range, `bytes=${half}-`, 'resumed where the file ended');
  t.equal(srv.requests[1]!.headers['if-range'], '"v1"', 'only if it is still the same file');
  t.ok(progress.every((d, i) => i === 0 || d > progress[i - 1]!), 'progress never goes back on a resume');
});

t.test('a stalled transfer is resumed', async (t) => {
  const srv = await serve(t, (req, res, n) => {
    if (n > 1) return sendFile(req, res, BODY);
    res.writeHead(200, { 'content-length': BODY.length, 'last-modified': 'Mon, 23 Nov 2026 10:00:00 GMT' });
    res.write(BODY.subarray(0, 1000)); // then nothing
  });
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t), { stallTimeoutMs: 1000 }));
  t.equal(got.sha256, sha(BODY));
  t.equal(srv.requests[1]!.headers.range, 'bytes=1000-');
  t.equal(srv.requests[1]!.headers['if-range'], 'Mon, 23 Nov 2026 10:00:00 GMT', 'Last-Modified when there is no ETag');
});

t.test('a server that ignores Range sends it all again: restarted from 0', async (t) => {
  const cut = cutAt(50_000);
  const srv = await serve(t, (_req, res, n) => {
    if (n === 1) return cut.send(res, BODY);
    res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
  });
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t), { onProgress: cut.onProgress }));
  t.equal(srv.requests[1]!.headers.range, 'bytes=50000-', 'asked for the rest');
  t.equal(got.size, BODY.length, 'not appended twice');
  t.equal(got.sha256, sha(BODY));
});

t.test('a file that changed between the attempts is fetched whole (If-Range)', async (t) => {
  const v2 = Buffer.concat([BODY, Buffer.from('v2')]);
  const cut = cutAt(60_000);
  const srv = await serve(t, (req, res, n) => (n === 1 ? cut.send(res, BODY) : sendFile(req, res, v2, '"v2"')));
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t), { onProgress: cut.onProgress }));
  t.equal(srv.requests[1]!.headers['if-range'], '"v1"');
  t.equal(got.sha256, sha(v2), 'the new file, not a mix');
});

t.test('a 206 starting elsewhere than asked restarts from 0', async (t) => {
  const cut = cutAt(40_000);
  const srv = await serve(t, (req, res, n) => {
    if (n === 1) return cut.send(res, BODY);
    if (n === 2) {
      res.writeHead(206, { 'content-range': `bytes 10-${BODY.length - 1}/${BODY.length}`, 'content-length': BODY.length - 10 });
      return res.end(BODY.subarray(10));
    }
    sendFile(req, res, BODY);
  });
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(scratch(t), { onProgress: cut.onProgress }));
  t.equal(srv.requests[1]!.headers.range, 'bytes=40000-');
  t.equal(srv.requests[2]!.headers.range, undefined, 'the third request is for the whole file');
  t.equal(got.sha256, sha(BODY));
  t.equal(got.retried, 2);
});

t.test('a transfer that keeps breaking is 9017 after the retries', async (t) => {
  const srv = await serve(t, (req, res) => {
    const from = Number(/^bytes=([0-9]+)-$/.exec(req.headers.range ?? '')?.[1] ?? 0);
    res.writeHead(from ? 206 : 200, { 'content-length': BODY.length - from, ...(from ? { 'content-range': `bytes ${from}-${BODY.length - 1}/${BODY.length}` } : {}) });
    res.write(BODY.subarray(from, from + 1000), () => res.socket?.destroy());
  });
  const dir = scratch(t);
  const e = await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { retries: 2 })), 'PKG_DOWNLOAD_INCOMPLETE', 9017);
  t.equal(srv.requests.length, 3);
  t.match(e.message, `of ${BODY.length}`);
  empty(t, dir);
});

t.test('the size cap: by Content-Length before reading, and while streaming', async (t) => {
  const srv = await serve(t, (req, res) => {
    if (req.url === '/announced') return sendFile(req, res, BODY);
    // chunked: no length announced, the body just keeps coming
    res.writeHead(200, { 'transfer-encoding': 'chunked' });
    let sent = 0;
    const more = (): void => {
      if (sent >= 4 * BODY.length || res.destroyed) return void res.end();
      sent += BODY.length;
      res.write(BODY, more);
    };
    more();
  });
  const dir = scratch(t);
  const seen: number[] = [];
  await rejectsWith(t, fetchPackage(`${srv.origin}/announced`, fast(dir, { maxSize: 1000, onProgress: (d) => seen.push(d) })), 'PKG_DOWNLOAD_TOO_LARGE', 9027);
  t.same(seen, [], 'not a byte read');
  const e = await rejectsWith(t, fetchPackage(`${srv.origin}/chunked`, fast(dir, { maxSize: BODY.length + 5, onProgress: (d) => seen.push(d) })), 'PKG_DOWNLOAD_TOO_LARGE', 9027);
  t.ok(seen.every((d) => d <= BODY.length + 5), 'never more than the cap on disk');
  t.match(e.message, `${BODY.length + 5}`);
  empty(t, dir);
  // exactly the cap is allowed
  t.equal((await fetchPackage(`${srv.origin}/announced`, fast(dir, { maxSize: BODY.length }))).size, BODY.length);
});

t.test('a close-delimited body (no length) over the cap is stopped', async (t) => {
  const srv = net.createServer((sock) => {
    sock.on('error', () => {}); // the client resets it at the cap
    sock.once('data', () => {
      sock.write('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n');
      sock.write(BODY);
      sock.end(BODY);
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => srv.close(() => resolve())));
  const { port } = srv.address() as net.AddressInfo;
  const dir = scratch(t);
  await rejectsWith(t, fetchPackage(`http://127.0.0.1:${port}/x`, fast(dir, { maxSize: BODY.length })), 'PKG_DOWNLOAD_TOO_LARGE', 9027);
  empty(t, dir);
  const got = await fetchPackage(`http://127.0.0.1:${port}/x`, fast(dir, { maxSize: 2 * BODY.length }));
  t.equal(got.sha256, sha(Buffer.concat([BODY, BODY])), 'without a length, the end of the connection ends the file');
});

t.test('credentials in the URL and other protocols are refused before any request', async (t) => {
  const srv = await serve(t, (req, res) => sendFile(req, res, BODY));
  const dir = scratch(t);
  const withUser = srv.origin.replace('//', `//${USER}:${PASSWORD}@`);
  const e = await rejectsWith(t, fetchPackage(`${withUser}/x.ipk`, fast(dir)), 'PKG_DOWNLOAD_BAD_URL', 9003);
  t.equal(faultOf(e).FaultCode, 9003, 'USP 7004');
  t.notOk(JSON.stringify(e).includes(PASSWORD));
  t.notOk(e.describe().includes(PASSWORD));
  await rejectsWith(t, fetchPackage(srv.origin.replace('//', `//${USER}@`) + '/x', fast(dir)), 'PKG_DOWNLOAD_BAD_URL', 9003);
  const unparsable = await rejectsWith(t, fetchPackage(`http://${USER}:${PASSWORD}@[bad/x`, fast(dir)), 'PKG_DOWNLOAD_BAD_URL', 9003);
  t.notOk(JSON.stringify(unparsable).includes(PASSWORD), 'not even in a URL that does not parse');
  await rejectsWith(t, fetchPackage(`${srv.origin}/x`, fast(dir, { username: 'a:b', password: 'c' })), 'PKG_DOWNLOAD_BAD_URL', 9003);
  await rejectsWith(t, fetchPackage(`${srv.origin}/x`, fast(dir, { username: 'a', password: 'c\r\nX-Evil: 1' })), 'PKG_DOWNLOAD_BAD_URL', 9003);
  await rejectsWith(t, fetchPackage('ftp://127.0.0.1/x.ipk', fast(dir)), 'PKG_DOWNLOAD_PROTOCOL', 9013);
  await rejectsWith(t, fetchPackage('tftp://127.0.0.1/x.ipk', fast(dir)), 'PKG_DOWNLOAD_PROTOCOL', 9013);
  t.equal(srv.requests.length, 0, 'no request was made');
  empty(t, dir);
});

t.test('redirects: auth only to the first origin, only http(s), bounded', async (t) => {
  const other = await serve(t, (req, res) => sendFile(req, res, BODY));
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  const first = await serve(t, (req, res) => {
    if (req.headers.authorization !== expected) return void res.writeHead(401).end();
    if (req.url === '/same') return void res.writeHead(302, { location: '/file' }).end();
    if (req.url === '/away') return void res.writeHead(307, { location: `${other.origin}/file` }).end();
    if (req.url === '/ftp') return void res.writeHead(301, { location: 'ftp://127.0.0.1/file' }).end();
    if (req.url!.startsWith('/loop')) return void res.writeHead(302, { location: `/loop${req.url!.length}` }).end();
    sendFile(req, res, BODY);
  });
  const dir = scratch(t);
  const opts = fast(dir, { username: USER, password: PASSWORD });
  const same = await fetchPackage(`${first.origin}/same`, opts);
  t.equal(same.sha256, sha(BODY));
  t.equal(first.requests.at(-1)!.headers.authorization, expected, 'the same origin gets the credentials again');
  t.equal(same.url, `${first.origin}/file`);
  const away = await fetchPackage(`${first.origin}/away`, opts);
  t.equal(away.sha256, sha(BODY));
  t.equal(away.url, `${other.origin}/file`);
  t.equal(other.requests.length, 1);
  t.equal(other.requests[0]!.headers.authorization, undefined, 'another origin never sees them');
  await rejectsWith(t, fetchPackage(`${first.origin}/ftp`, opts), 'PKG_DOWNLOAD_PROTOCOL', 9013);
  await rejectsWith(t, fetchPackage(`${first.origin}/loop`, { ...opts, maxRedirects: 3 }), 'PKG_DOWNLOAD_HTTP', 9016);
  t.equal(first.requests.filter((r) => r.url.startsWith('/loop')).length, 4, 'the first request and 3 redirects');
  await away.cleanup();
  await same.cleanup();
  empty(t, dir);
});

/** A CA and a certificate for 127.0.0.1 signed by it, made by openssl. */
function makeCa(t: Test): { ca: string; key: string; cert: string } {
  const dir = tempState(t, 'ovb-dl-ca-');
  const f = (n: string) => path.join(dir, n);
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-subj', '/CN=ovb test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  run(['req', ...ec, '-keyout', f('srv.key'), '-out', f('srv.csr'), '-subj', '/CN=127.0.0.1']);
  writeFileSync(f('ext'), 'subjectAltName=IP:127.0.0.1\n');
  run(['x509', '-req', '-in', f('srv.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('srv.pem'), '-days', '2', '-extfile', f('ext')]);
  return { ca: readFileSync(f('ca.pem'), 'utf8'), key: readFileSync(f('srv.key'), 'utf8'), cert: readFileSync(f('srv.pem'), 'utf8') };
}

t.test('https: trusted through opts.ca for this download only; otherwise 9012', async (t) => {
  const { ca, key, cert } = makeCa(t);
  const cut = cutAt(30_000);
  const srv = await serve(t, (req, res, n) => (n === 1 ? cut.send(res, BODY) : sendFile(req, res, BODY)), { key, cert });
  const dir = scratch(t);
  const got = await fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { ca, onProgress: cut.onProgress }));
  t.equal(got.sha256, sha(BODY), 'downloaded and resumed over TLS');
  t.equal(srv.requests[1]!.headers.range, 'bytes=30000-');
  await got.cleanup();
  const e = await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir)), 'PKG_DOWNLOAD_TLS', 9012);
  t.match(e.message, /certificate/);
  empty(t, dir);
});

t.test('a scratch directory that does not exist is PKG_DOWNLOAD_SCRATCH, before any request', async (t) => {
  const srv = await serve(t, (req, res) => sendFile(req, res, BODY));
  const dir = scratch(t);
  await rejectsWith(t, fetchPackage(`${srv.origin}/x`, fast(path.join(dir, 'missing'))), 'PKG_DOWNLOAD_SCRATCH', 9001);
  t.equal(srv.requests.length, 0);
});

t.test('the overall timeout: 9017 once the server answered, and the partial file is gone', async (t) => {
  const srv = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    // a byte every 20 ms: never a stall, never done
    const drip = setInterval(() => (res.destroyed ? clearInterval(drip) : res.write(BODY.subarray(0, 1))), 20);
    res.on('close', () => clearInterval(drip));
  });
  const dir = scratch(t);
  const e = await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { timeoutMs: 600, stallTimeoutMs: 500 })), 'PKG_DOWNLOAD_TIMEOUT', 9017);
  t.match(e.message, `of ${BODY.length} bytes`);
  t.equal(srv.requests.length, 1, 'a timeout is not retried');
  empty(t, dir);
});

t.test('a download is cancelled by its signal', async (t) => {
  const ac = new AbortController();
  const srv = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': BODY.length });
    res.write(BODY.subarray(0, 100), () => ac.abort()); // and never more
  });
  const dir = scratch(t);
  const e = await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { signal: ac.signal })), 'PKG_DOWNLOAD_INCOMPLETE', 9017);
  t.match(e.message, 'cancelled');
  empty(t, dir);
  await rejectsWith(t, fetchPackage(`${srv.origin}/x.ipk`, fast(dir, { signal: ac.signal })), 'PKG_DOWNLOAD_INCOMPLETE', 9017);
  empty(t, dir);
});

t.test('a file URL with an encoded NUL is refused', async (t) => {
  await rejectsWith(t, fetchPackage('file:///tmp/x%00y.ipk'), 'PKG_DOWNLOAD_BAD_URL', 9003);
  await rejectsWith(t, fetchPackage('/tmp/x\0y.ipk'), 'PKG_DOWNLOAD_BAD_URL', 9003);
});
