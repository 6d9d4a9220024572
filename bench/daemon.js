#!/usr/bin/env node
// The lifecycle daemon's speed and memory, through its socket as a management agent
// drives it: overlay-pkgd (bin/overlay-pkgd.js, its own process, socket and state
// directory) idle resident memory; an EU stopped and started again (eu.stop then
// eu.start, each submitted and waited for until its operation.complete) for an init
// script that returns at once (goal: under 50 ms median for the pair); resident memory
// after BENCH_DAEMON_OPS operations (default 1000; goal: idle under 60 MB, growth under
// 5 MB); du.list with 100 DUs installed (goal: under 20 ms median). As root, after
// `npm run build`; under the root lock (it boots subhosts).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PkgDaemonClient } from '../dist/daemon/index.js';
import { SERVICE } from './service.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const OPS = Number(process.env.BENCH_DAEMON_OPS ?? 1000);
const DUS = Number(process.env.BENCH_DAEMON_DUS ?? 100);
const LIST_RUNS = 50;
const middle = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

const work = mkdtempSync('/tmp/ovb-pkgdbench-');
chmodSync(work, 0o755);
const keys = path.join(work, 'keys');
const templates = path.join(work, 'templates');
for (const d of [keys, templates]) mkdirSync(d, { mode: 0o755 });
const socket = path.join(work, 'pkgd.sock');
const pidfile = path.join(work, 'pkgd.pid');
const ini = path.join(work, 'pkg.ini');
writeFileSync(ini, `[trust]\nkeys = ${keys}\n[paths]\nstate = ${path.join(work, 'state')}\ntemplates = ${templates}\nsocket = ${socket}\nboot_list = ${path.join(work, 'subhosts.conf')}\n`);
const secret = path.join(work, 'key.pem');
execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', secret], { stdio: 'ignore' });
execFileSync('openssl', ['pkey', '-in', secret, '-pubout', '-out', path.join(keys, 'bench.pem')]);

/** A signed ipk built by overlay-pkg build: NAME 1.0, with the service above when `withEU`. */
function makePackage(name, withEU) {
  const dir = path.join(work, `src-${name}`);
  mkdirSync(path.join(dir, 'CONTROL'), { recursive: true });
  writeFileSync(path.join(dir, 'CONTROL/control'), `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <bench@example.org>\nDescription: bench\n`);
  mkdirSync(path.join(dir, 'usr/share', name), { recursive: true });
  writeFileSync(path.join(dir, 'usr/share', name, 'hello'), 'hello\n');
  if (withEU) {
    mkdirSync(path.join(dir, 'etc/init.d'), { recursive: true });
    writeFileSync(path.join(dir, 'etc/init.d/svc'), SERVICE, { mode: 0o755 });
  }
  const file = path.join(work, `${name}.ipk`);
  execFileSync(process.execPath, [path.join(ROOT, 'bin/overlay-pkg.js'), 'build', dir, '-o', file, '--sign', secret], { env: { ...process.env, OVERLAY_PKG_CONFIG: ini } });
  return file;
}

function rssKB(pid) {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

// run as the init script and the unit run it: through its stub's #! line and the runtime flags there
const daemon = spawn(path.join(ROOT, 'bin/overlay-pkgd.js'), ['--config', ini, '--pidfile', pidfile], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
daemon.stderr.on('data', (d) => { log += d; });
const exited = new Promise((resolve) => daemon.on('close', resolve));
let client;
const installed = new Set();

/** Waits for the operation.complete of each id in `ids` (the client subscribed before submitting). */
const done = new Map();
const waiters = new Map();
function completion(id) {
  if (done.has(id)) return Promise.resolve(done.get(id));
  return new Promise((resolve) => waiters.set(id, resolve));
}

/** Submits `method` and waits for its end; throws when it failed. */
async function operation(method, params) {
  const { operationId } = await client.call(method, params);
  const c = await completion(operationId);
  if (!c) throw new Error(`${method}: the daemon closed the connection: ${log}`);
  if (c.Fault) throw new Error(`${method} ${JSON.stringify(params)}: ${c.Fault.FaultCode} ${c.Fault.FaultString}`);
  return c;
}

try {
  const svcFile = makePackage('benchsvc', true);
  const smallFiles = Array.from({ length: DUS - 1 }, (_, i) => makePackage(`benchdu${i}`, false));
  for (let i = 0; i < 300 && !existsSync(pidfile); i += 1) await sleep(100);
  if (!existsSync(pidfile)) throw new Error(`the daemon did not start: ${log}`);
  await sleep(1000);
  const idleKB = rssKB(daemon.pid);

  client = await PkgDaemonClient.connect(socket);
  client.on('notification', (method, params) => {
    if (method !== 'operation.complete') return;
    done.set(params.operationId, params);
    waiters.get(params.operationId)?.(params);
    waiters.delete(params.operationId);
  });
  client.on('close', () => {
    for (const w of waiters.values()) w(undefined);
    waiters.clear();
  });
  await client.call('events.subscribe');
  await operation('du.install', { url: svcFile, name: 'bsvc' });
  installed.add('bsvc');

  // resident memory once the code of the operations is loaded and compiled: after a tenth of them
  let warmKB = 0;
  const pairs = [];
  const stops = [];
  const starts = [];
  for (let i = 0; i < OPS / 2; i += 1) {
    const t0 = process.hrtime.bigint();
    if (i === OPS / 20) warmKB = rssKB(daemon.pid);
    await operation('eu.stop', { eu: 'bsvc/svc' });
    const t1 = process.hrtime.bigint();
    await operation('eu.start', { eu: 'bsvc/svc' });
    pairs.push(since(t0));
    stops.push(Number(t1 - t0) / 1e6);
    starts.push(since(t1));
  }
  await sleep(1000);
  const afterKB = rssKB(daemon.pid);

  // DUS DUs: the service's and DUS - 1 small ones without EUs, queued at once
  const ids = [];
  for (const [i, file] of smallFiles.entries()) {
    ids.push((await client.call('du.install', { url: file, name: `bdu${i}` })).operationId);
    installed.add(`bdu${i}`);
  }
  for (const id of ids) {
    const c = await completion(id);
    if (!c || c.Fault) throw new Error(`install: ${c ? c.Fault.FaultString : 'the daemon closed the connection'}`);
  }
  const listMs = [];
  let count = 0;
  for (let i = 0; i < LIST_RUNS; i += 1) {
    const t0 = process.hrtime.bigint();
    count = (await client.call('du.list')).length;
    listMs.push(since(t0));
  }
  const withDusKB = rssKB(daemon.pid);

  const mb = (kb) => `${(kb / 1024).toFixed(1)} MB`;
  console.log(`\nDaemon (overlay-pkgd through its socket), ${os.cpus().length} cores, ${os.release()}, ${new Date().toISOString()}\n`);
  console.log('| figure | median | goal |');
  console.log('| --- | ---: | --- |');
  console.log(`| resident memory, idle | ${mb(idleKB)} | < 60 MB |`);
  console.log(`| resident memory after an install and ${OPS / 10} operations (warm) | ${mb(warmKB)} | |`);
  console.log(`| resident memory after ${OPS} operations (eu.stop/eu.start) | ${mb(afterKB)}: ${mb(afterKB - idleKB)} over idle, ${mb(afterKB - warmKB)} over warm | growth < 5 MB |`);
  console.log(`| eu.stop + eu.start, each until its operation.complete | ${middle(pairs).toFixed(1)} ms | < 50 ms |`);
  console.log(`| eu.stop / eu.start alone | ${middle(stops).toFixed(1)} / ${middle(starts).toFixed(1)} ms | |`);
  console.log(`| du.list with ${count} DUs | ${middle(listMs).toFixed(2)} ms | < 20 ms |`);
  console.log(`| resident memory with ${count} DUs installed | ${mb(withDusKB)} | |`);
} finally {
  for (const name of installed) {
    try {
      if (client) await operation('du.uninstall', { du: name });
    } catch (e) {
      console.error(`bench: cannot remove ${name}: ${e.message}`);
    }
  }
  client?.close();
  if (daemon.exitCode === null) daemon.kill('SIGTERM');
  await exited;
  // whatever a failure left running: the subhosts of this state directory
  for (const name of installed) spawnSync(path.join(ROOT, 'bin/overlay-stop'), ['-q', name], { stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
