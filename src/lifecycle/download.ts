/**
 * A package source, as the user gave it, turned into a local file to open
 * (LIFECYCLE.md "Download"): a plain path or a `file://` URL is used in place; an
 * `http://` or `https://` URL is downloaded into a scratch directory the caller names,
 * with basic auth, a size cap, a timeout, bounded redirects and resume with `Range`.
 *
 * Built on `node:http`/`node:https` rather than the global `fetch`, because fetch in
 * Node 20 cannot do three things this needs: trust an extra CA for one request (the
 * `ca` option; fetch only takes the process-wide NODE_EXTRA_CA_CERTS, read at start-up),
 * leave the body as sent (fetch decodes `Content-Encoding`, so byte counts and Range
 * offsets stop matching the server's), and report the socket's own error codes
 * (ECONNREFUSED, ENOTFOUND, certificate errors) without digging through
 * `TypeError: fetch failed` causes, which is how each failure gets its fault code.
 * One connection per request (`agent: false`): nothing is pooled or left open. node:http
 * and node:https are imported when a download starts, not when this module loads.
 *
 * Credentials are never written anywhere but the `Authorization` header of a request
 * to the URL's own origin: not in messages, errors, argv or the returned object. Error
 * messages show URLs without their query (signed URLs carry tokens there).
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OverlayBootError } from '../errors.js';
import { DEFAULT_DOWNLOAD_MAX_SIZE, DEFAULT_DOWNLOAD_RETRIES, DEFAULT_DOWNLOAD_TIMEOUT_MS } from '../package/config.js';

/** Options of {@link fetchPackage}; those of `[download]` come from the configuration. */
export interface FetchPackageOptions {
  /**
   * An existing directory the download is written into (a new file, mode 0600), on a
   * filesystem with room for `maxSize`. Required for http(s) sources; unused otherwise.
   */
  scratchDir?: string;
  /** Where a relative plain path is resolved from; default `process.cwd()`. */
  cwd?: string;
  /** Basic auth user name (without `:`); sent only to the URL's own origin. */
  username?: string;
  /** Basic auth password; never logged, never in an error. */
  password?: string;
  /** Cap on the downloaded bytes; default 2 GiB (`[download] max_size`). */
  maxSize?: number;
  /** The whole transfer, redirects and resumes included, in ms; default 300 000 (`[download] timeout`). */
  timeoutMs?: number;
  /** No byte (nor an answer) for this long is a broken transfer, resumed; default min(30 000, timeoutMs). */
  stallTimeoutMs?: number;
  /** How many times a broken transfer is retried (resumed with Range); default 3 (`[download] retries`). */
  retries?: number;
  /** Pause before each retry, in ms; default 1000. */
  retryDelayMs?: number;
  /** Redirects followed per request; default 10. */
  maxRedirects?: number;
  /**
   * Extra trusted CA certificates (PEM) for https, added to Node's bundled roots for
   * this download only (an operator's private CA; the tests' self-signed one).
   */
  ca?: string | Buffer | readonly (string | Buffer)[];
  /** Called as bytes arrive: bytes on disk, and the full size when the server said it. Exceptions are ignored. */
  onProgress?: (done: number, total?: number) => void;
  /** Cancels the download (PKG_DOWNLOAD_INCOMPLETE, "cancelled"; the partial file is deleted). */
  signal?: AbortSignal;
}

/** A package source as a local file. */
export interface FetchedPackage {
  /** Absolute path of the file to open. */
  path: string;
  /** True when the file was downloaded into the scratch directory (and `cleanup` removes it). */
  downloaded: boolean;
  /** Its size in bytes. */
  size: number;
  /** sha256 (hex) of a download, computed while streaming; undefined for a local file. */
  sha256?: string;
  /** The URL the file finally came from (after redirects), without its query. */
  url?: string;
  /** How many times the transfer was resumed or restarted after breaking. */
  retried: number;
  /** Removes a downloaded file; does nothing for a local one. Safe to call twice. */
  cleanup(): Promise<void>;
}

const SCHEME = /^([A-Za-z][A-Za-z0-9+.-]*):/;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
// Errors of the connection itself (before any answer): the server cannot be contacted.
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'ETIMEDOUT', 'EADDRNOTAVAIL']);
// OpenSSL's certificate verification codes, and Node's host name check. Other handshake
// failures (a plain-http port, say) are a server we could not talk to, not one that lied.
const TLS_ERROR = /CERT|SELF_SIGNED|ISSUER|SIGNATURE/;

/**
 * Turns `source` into a local file: a plain path (relative to `opts.cwd`) or a
 * `file:` URL (`file:///p`, `file://localhost/p`, percent-decoded) is used in place,
 * after checking it is a readable regular file (else PKG_UNREADABLE); an `http:` or
 * `https:` URL is downloaded into `opts.scratchDir`. Credentials go in
 * `opts.username`/`opts.password`; a URL holding them is refused (PKG_DOWNLOAD_BAD_URL,
 * fault 7004), as is a file URL naming another host; another scheme is
 * PKG_DOWNLOAD_PROTOCOL (9013).
 *
 * A download follows at most `maxRedirects` redirects, only to http or https, and sends
 * the credentials only to the origin of `source`. A transfer that breaks (reset, stall,
 * short body, 5xx) is retried `retries` times with `Range: bytes=N-` and `If-Range` (the
 * first answer's strong ETag, else its Last-Modified); a 206 must start at N, and a 200
 * (the server ignored Range, or the file changed) restarts from 0. A length above
 * `maxSize` is refused before the body is read, and a body that grows past it is stopped.
 * On any failure the partial file is deleted and an OverlayBootError is thrown:
 * PKG_DOWNLOAD_AUTH (401/403 → 9012), PKG_DOWNLOAD_TLS (9012), PKG_DOWNLOAD_HTTP (other
 * 4xx, 5xx after the retries, too many redirects → 9016), PKG_DOWNLOAD_UNREACHABLE
 * (refused, unknown name, unreachable, no answer → 9015), PKG_DOWNLOAD_INCOMPLETE
 * (9017), PKG_DOWNLOAD_TIMEOUT (9017), PKG_DOWNLOAD_TOO_LARGE (9027),
 * PKG_DOWNLOAD_NO_SPACE (9027), PKG_DOWNLOAD_SCRATCH.
 */
export async function fetchPackage(source: string, opts: FetchPackageOptions = {}): Promise<FetchedPackage> {
  if (source === '' || source.includes('\0')) throw badUrl('the package source is empty or holds a NUL byte');
  const m = SCHEME.exec(source);
  const scheme = m?.[1]!.toLowerCase();
  const isUrl = m !== null && (source.slice(m[0].length).startsWith('//') || scheme === 'file' || scheme === 'http' || scheme === 'https');
  if (!isUrl) return localFile(path.resolve(opts.cwd ?? process.cwd(), source));
  let url: URL;
  try {
    url = new URL(source);
  } catch (cause) {
    throw badUrl(`${JSON.stringify(redactSource(source))} is not a valid URL`, cause);
  }
  if (url.username !== '' || url.password !== '') {
    throw badUrl(`${displayUrl(url)}: a user name or password inside the URL is refused; give them as the username and password options`);
  }
  if (url.protocol === 'file:') {
    if (url.hostname !== '') throw badUrl(`${displayUrl(url)}: a file URL must name this host (file:///path or file://localhost/path)`);
    let file: string;
    try {
      file = fileURLToPath(url);
    } catch (cause) {
      throw badUrl(`${displayUrl(url)}: ${(cause as Error).message}`, cause);
    }
    if (file.includes('\0')) throw badUrl(`${displayUrl(url)}: the path holds a NUL byte`);
    return localFile(file);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new OverlayBootError('PKG_DOWNLOAD_PROTOCOL', `${url.protocol.slice(0, -1)} URLs are not supported; use file, http or https`, {
      expected: 'file, http or https', found: url.protocol.slice(0, -1),
    });
  }
  return download(url, opts);
}

function badUrl(message: string, cause?: unknown): OverlayBootError {
  // the cause of a URL parse error quotes the input, which may hold a password
  return new OverlayBootError('PKG_DOWNLOAD_BAD_URL', message, { cause: cause === undefined ? undefined : (cause as Error).name });
}

/** A source that did not parse, with anything that could be userinfo masked. */
function redactSource(source: string): string {
  return source.replace(/\/\/[^/?#]*@/, '//***@');
}

/** A URL as messages show it: no userinfo (refused anyway) and no query. */
function displayUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}${url.search === '' ? '' : '?…'}`;
}

async function localFile(file: string): Promise<FetchedPackage> {
  let size: number;
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a regular file');
    size = st.size;
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new OverlayBootError('PKG_UNREADABLE', `cannot use ${file} as a package: ${why}`, { file, cause: e });
  }
  return { path: file, downloaded: false, size, retried: 0, cleanup: async () => {} };
}

/** What one download keeps across its attempts. */
interface Transfer {
  readonly origin: string;
  readonly auth?: string;
  readonly file: string;
  readonly fh: FileHandle;
  readonly maxSize: number;
  readonly stallMs: number;
  readonly deadline: number;
  readonly maxRedirects: number;
  readonly requestOptions: RequestOptions;
  readonly onProgress?: (done: number, total?: number) => void;
  readonly signal?: AbortSignal;
  done: number;
  total?: number;
  hash: Hash;
  /** Strong ETag or Last-Modified of the answer the bytes on disk came from, for If-Range. */
  validator?: string;
  etag?: string;
  /** Whether the server has ever answered (decides 9015 against 9017). */
  answered: boolean;
  lastStatus?: number;
}

type Outcome = { complete: true; url: URL } | { complete: false; why: string };

function hasControl(s: string): boolean {
  return [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

function basicAuth(username: string | undefined, password: string | undefined): string | undefined {
  if (username === undefined && password === undefined) return undefined;
  const user = username ?? '';
  // RFC 7617: no colon in the user-id; no control characters in either (header injection)
  if (user.includes(':') || hasControl(user)) throw badUrl('the username holds a colon or a control character');
  if (hasControl(password ?? '')) throw badUrl('the password holds a control character');
  return `Basic ${Buffer.from(`${user}:${password ?? ''}`, 'utf8').toString('base64')}`;
}

async function download(url: URL, opts: FetchPackageOptions): Promise<FetchedPackage> {
  if (opts.scratchDir === undefined) throw new OverlayBootError('INTERNAL', 'fetchPackage: a download needs opts.scratchDir');
  const auth = basicAuth(opts.username, opts.password);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS;
  const retries = opts.retries ?? DEFAULT_DOWNLOAD_RETRIES;
  const retryDelayMs = opts.retryDelayMs ?? 1000;
  const file = path.join(path.resolve(opts.scratchDir), `download-${randomBytes(8).toString('hex')}`);
  let fh: FileHandle;
  try {
    fh = await open(file, 'wx', 0o600);
  } catch (e) {
    throw scratchError(e, file);
  }
  const extraCa = opts.ca === undefined ? [] : Array.isArray(opts.ca) ? opts.ca : [opts.ca];
  const ca = extraCa.length > 0 ? [...(await import('node:tls')).rootCertificates, ...extraCa.map(String)] : undefined;
  const t: Transfer = {
    origin: url.origin, auth, file, fh,
    maxSize: opts.maxSize ?? DEFAULT_DOWNLOAD_MAX_SIZE,
    stallMs: Math.min(opts.stallTimeoutMs ?? 30_000, timeoutMs),
    deadline: Date.now() + timeoutMs,
    maxRedirects: opts.maxRedirects ?? 10,
    requestOptions: { method: 'GET', agent: false, ...(ca ? { ca } : {}) },
    onProgress: opts.onProgress, signal: opts.signal,
    done: 0, hash: createHash('sha256'), answered: false,
  };
  try {
    for (let retried = 0; ; retried += 1) {
      const outcome = await attempt(t, url);
      if (outcome.complete) {
        await fh.close();
        return {
          path: file, downloaded: true, size: t.done, sha256: t.hash.digest('hex'), url: displayUrl(outcome.url), retried,
          cleanup: () => rm(file, { force: true }),
        };
      }
      if (retried >= retries) throw gaveUp(t, url, outcome.why, retried);
      const left = t.deadline - Date.now();
      if (left <= 0) throw timedOut(t, url);
      await pause(Math.min(retryDelayMs, left), t.signal);
      if (t.signal?.aborted) throw cancelled(t, url);
    }
  } catch (e) {
    await fh.close().catch(() => {});
    await rm(file, { force: true });
    throw e;
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

function cancelled(t: Transfer, url: URL): OverlayBootError {
  return new OverlayBootError('PKG_DOWNLOAD_INCOMPLETE', `${displayUrl(url)}: cancelled at byte ${t.done}`);
}

function gaveUp(t: Transfer, url: URL, why: string, retried: number): OverlayBootError {
  const tries = `${retried} ${retried === 1 ? 'retry' : 'retries'}`;
  if (!t.answered) return new OverlayBootError('PKG_DOWNLOAD_UNREACHABLE', `${displayUrl(url)}: ${why} (${tries})`);
  if (t.done === 0 && t.lastStatus !== undefined && t.lastStatus >= 500) {
    return new OverlayBootError('PKG_DOWNLOAD_HTTP', `${displayUrl(url)}: ${why} (${tries})`, { found: String(t.lastStatus) });
  }
  const of = t.total === undefined ? '' : ` of ${t.total}`;
  return new OverlayBootError('PKG_DOWNLOAD_INCOMPLETE', `${displayUrl(url)}: the transfer broke off at byte ${t.done}${of}: ${why} (${tries})`);
}

function timedOut(t: Transfer, url: URL): OverlayBootError {
  if (!t.answered) return new OverlayBootError('PKG_DOWNLOAD_UNREACHABLE', `${displayUrl(url)}: no answer within the timeout`);
  return new OverlayBootError('PKG_DOWNLOAD_TIMEOUT', `${displayUrl(url)}: not complete within the timeout (${t.done}${t.total === undefined ? '' : ` of ${t.total}`} bytes)`);
}

function scratchError(e: unknown, file: string): OverlayBootError {
  const code = (e as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new OverlayBootError(full ? 'PKG_DOWNLOAD_NO_SPACE' : 'PKG_DOWNLOAD_SCRATCH', `cannot write the download: ${code ?? (e as Error).message}`, { file, cause: e });
}

type StopReason = 'stall' | 'deadline' | 'cancel';

/**
 * The watchdog of one attempt: a stall timer refreshed by progress, the overall
 * deadline and the caller's signal, each ending the request in flight.
 */
function watchdog(t: Transfer): { reason?: StopReason; watch(r: ClientRequest): void; kick(): void; stop(): void } {
  let current: ClientRequest | undefined;
  const dog: ReturnType<typeof watchdog> = {
    watch: (r) => {
      current = r;
      if (dog.reason !== undefined) r.destroy(new Error(dog.reason));
    },
    kick: () => stall.refresh(),
    stop: () => {
      clearTimeout(stall);
      clearTimeout(deadline);
      t.signal?.removeEventListener('abort', cancel);
    },
  };
  const fire = (reason: StopReason) => () => {
    dog.reason ??= reason;
    current?.destroy(new Error(reason));
  };
  const stall = setTimeout(fire('stall'), t.stallMs);
  const deadline = setTimeout(fire('deadline'), Math.max(0, t.deadline - Date.now()));
  const cancel = fire('cancel');
  if (t.signal?.aborted) cancel();
  else t.signal?.addEventListener('abort', cancel, { once: true });
  return dog;
}

async function restart(t: Transfer): Promise<void> {
  try {
    await t.fh.truncate(0);
  } catch (e) {
    throw scratchError(e, t.file);
  }
  t.done = 0;
  t.total = undefined;
  t.hash = createHash('sha256');
  t.validator = undefined;
  t.etag = undefined;
}

/**
 * One request (with its redirects): appends what arrives to the file. Resolves
 * complete, or broken with the reason (retried by the caller); throws what no retry cures.
 */
async function attempt(t: Transfer, start: URL): Promise<Outcome> {
  const dog = watchdog(t);
  let url = start;
  try {
    for (let hops = 0; ; hops += 1) {
      const res = await send(t, url, dog);
      t.answered = true;
      t.lastStatus = res.statusCode;
      dog.kick();
      const status = res.statusCode ?? 0;
      if (REDIRECTS.has(status) && res.headers.location !== undefined) {
        res.destroy();
        url = redirectTarget(url, res.headers.location, hops, t.maxRedirects);
        continue;
      }
      if (status === 401 || status === 403) {
        res.destroy();
        const given = t.auth !== undefined && url.origin === t.origin;
        throw new OverlayBootError('PKG_DOWNLOAD_AUTH', `${displayUrl(url)}: the server answered ${status} ${given ? 'to the credentials given' : 'and no credentials were sent to it'}`, { found: String(status) });
      }
      if (status === 416 && t.done > 0) {
        res.destroy();
        if (t.total !== undefined && t.done === t.total) return { complete: true, url };
        await restart(t);
        return { complete: false, why: 'the server refused the range; starting again from 0' };
      }
      if (status >= 500) {
        res.destroy();
        return { complete: false, why: `the server answered ${status} ${res.statusMessage ?? ''}`.trimEnd() };
      }
      if (status !== 200 && status !== 206) {
        res.destroy();
        throw new OverlayBootError('PKG_DOWNLOAD_HTTP', `${displayUrl(url)}: the server answered ${status} ${res.statusMessage ?? ''}`.trimEnd(), { found: String(status) });
      }
      const broken = status === 206 ? await acceptPartial(t, res) : await acceptWhole(t, res);
      if (broken !== undefined) {
        res.destroy();
        return { complete: false, why: broken };
      }
      if (t.total !== undefined && t.total > t.maxSize) {
        res.destroy();
        throw tooLarge(t, url, `the server announces ${t.total} bytes`);
      }
      const end = await receive(t, url, res, dog);
      if (t.total !== undefined ? t.done < t.total : t.done < end) return { complete: false, why: `the body ended early at byte ${t.done}` };
      return { complete: true, url };
    }
  } catch (e) {
    if (e instanceof OverlayBootError) throw e;
    if (dog.reason === 'cancel') throw cancelled(t, url);
    if (dog.reason === 'deadline') throw timedOut(t, url);
    if (dog.reason === 'stall') return { complete: false, why: `nothing received for ${t.stallMs} ms` };
    const code = (e as NodeJS.ErrnoException).code ?? '';
    if (TLS_ERROR.test(code)) {
      throw new OverlayBootError('PKG_DOWNLOAD_TLS', `${displayUrl(url)}: the server's certificate does not verify: ${code}`, { found: code, cause: code });
    }
    if (!t.answered && UNREACHABLE.has(code)) {
      throw new OverlayBootError('PKG_DOWNLOAD_UNREACHABLE', `${displayUrl(url)}: cannot contact the server: ${code}`, { found: code, cause: code });
    }
    return { complete: false, why: code || (e as Error).message };
  } finally {
    dog.stop();
  }
}

async function send(t: Transfer, url: URL, dog: ReturnType<typeof watchdog>): Promise<IncomingMessage> {
  const headers: Record<string, string> = { 'accept-encoding': 'identity', 'user-agent': 'overlay-boot' };
  // Only the origin the user gave the credentials for sees them; a redirect elsewhere does not.
  if (t.auth !== undefined && url.origin === t.origin) headers.authorization = t.auth;
  if (t.done > 0) {
    headers.range = `bytes=${t.done}-`;
    if (t.validator !== undefined) headers['if-range'] = t.validator;
  }
  // loaded when a download happens: a command that only reads local packages does not pay for them
  const mod = url.protocol === 'https:' ? await import('node:https') : await import('node:http');
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { ...t.requestOptions, headers }, resolve);
    req.on('error', reject);
    dog.watch(req);
    req.end();
  });
}

function redirectTarget(from: URL, location: string, hops: number, max: number): URL {
  if (hops >= max) throw new OverlayBootError('PKG_DOWNLOAD_HTTP', `${displayUrl(from)}: more than ${max} redirects`);
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw new OverlayBootError('PKG_DOWNLOAD_HTTP', `${displayUrl(from)}: the server redirects to an invalid URL`);
  }
  if (next.protocol !== 'http:' && next.protocol !== 'https:') {
    throw new OverlayBootError('PKG_DOWNLOAD_PROTOCOL', `${displayUrl(from)}: the server redirects to a ${next.protocol.slice(0, -1)} URL; only http and https are followed`, {
      expected: 'http or https', found: next.protocol.slice(0, -1),
    });
  }
  if (next.username !== '' || next.password !== '') {
    throw new OverlayBootError('PKG_DOWNLOAD_HTTP', `${displayUrl(from)}: the server redirects to a URL holding credentials`);
  }
  return next;
}

const CONTENT_RANGE = /^bytes ([0-9]{1,15})-([0-9]{1,15})\/([0-9]{1,15}|\*)$/;

/** A 206: the part must continue exactly where the file ends, of the same file. */
async function acceptPartial(t: Transfer, res: IncomingMessage): Promise<string | undefined> {
  const m = CONTENT_RANGE.exec(res.headers['content-range'] ?? '');
  const total = m?.[3] === '*' ? undefined : Number(m?.[3]);
  let why: string | undefined;
  if (!m) why = 'a partial answer without a valid Content-Range';
  else if (Number(m[1]) !== t.done) why = `the server resumed at byte ${m[1]}, not ${t.done}`;
  else if (t.etag !== undefined && res.headers.etag !== undefined && res.headers.etag !== t.etag) why = 'the file changed on the server (ETag)';
  else if (t.total !== undefined && total !== undefined && total !== t.total) why = 'the file changed size on the server';
  if (why !== undefined) {
    await restart(t);
    return `${why}; starting again from 0`;
  }
  t.total = total ?? t.total;
  return undefined;
}

/** A 200: the whole file, from byte 0 (a server that ignored Range, or a changed file, starts again). */
async function acceptWhole(t: Transfer, res: IncomingMessage): Promise<undefined> {
  if (t.done > 0) await restart(t);
  const length = res.headers['content-length'];
  t.total = length !== undefined && /^[0-9]{1,15}$/.test(length) ? Number(length) : undefined;
  const etag = res.headers.etag;
  t.etag = etag;
  // If-Range takes only a strong validator (RFC 9110 13.1.5)
  t.validator = etag !== undefined && !etag.startsWith('W/') ? etag : res.headers['last-modified'];
  return undefined;
}

function tooLarge(t: Transfer, url: URL, why: string): OverlayBootError {
  return new OverlayBootError('PKG_DOWNLOAD_TOO_LARGE', `${displayUrl(url)}: ${why}, more than the cap of ${t.maxSize}`, {
    expected: `at most ${t.maxSize} bytes`,
  });
}

/** Streams the body to the file at the current end; returns the byte the part should have ended at. */
async function receive(t: Transfer, url: URL, res: IncomingMessage, dog: ReturnType<typeof watchdog>): Promise<number> {
  const cr = CONTENT_RANGE.exec(res.headers['content-range'] ?? '');
  const length = res.headers['content-length'];
  const end = cr ? Number(cr[2]) + 1 : length !== undefined && /^[0-9]{1,15}$/.test(length) ? t.done + Number(length) : 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    if (t.done + chunk.length > t.maxSize) {
      res.destroy();
      throw tooLarge(t, url, 'the body grows');
    }
    try {
      await t.fh.write(chunk, 0, chunk.length, t.done);
    } catch (e) {
      res.destroy();
      throw scratchError(e, t.file);
    }
    t.hash.update(chunk);
    t.done += chunk.length;
    dog.kick();
    try {
      t.onProgress?.(t.done, t.total);
    } catch {
      // a progress callback's failure is the caller's, not the download's
    }
  }
  return end;
}
