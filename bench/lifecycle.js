#!/usr/bin/env node
// Lifecycle speed, through the real command (bin/overlay-pkg.js, one child process per
// command, as an operator or Ansible runs it): install of a signed 20 MB package with one
// EU until the EU is Active, update, EU stop and start, remove; the install of the Nth DU
// against the 1st (goal: flat within 1.2x) and `overlay-pkg list` with N DUs installed
// (goal: under 150 ms), N = the largest of BENCH_SCALE (default 100; BENCH_SCALE=10 is a
// quick mode). Then where an install's time goes: verify, unpack, boot, measured alone
// with the library. Medians over BENCH_RUNS runs (default 5). As root; after `npm run build`.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { unpackPackage, verifyPackage, loadTrustedKeys } from '../dist/package/index.js';
import { SERVICE } from './service.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = path.join(ROOT, 'bin', 'overlay-pkg.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SCALE = Math.max(...(process.env.BENCH_SCALE ?? '1,10,50,100').split(',').map(Number));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

const work = mkdtempSync('/tmp/ovb-lcbench-');
chmodSync(work, 0o755);
const state = path.join(work, 'state');
const keys = path.join(work, 'keys');
const templates = path.join(work, 'templates');
mkdirSync(keys, { mode: 0o755 });
mkdirSync(templates, { mode: 0o755 });
const ini = path.join(work, 'pkg.ini');
writeFileSync(ini, `[trust]\nkeys = ${keys}\n[paths]\nstate = ${state}\ntemplates = ${templates}\nboot_list = ${path.join(work, 'subhosts.conf')}\n`, { mode: 0o644 });
const env = { ...process.env, OVERLAY_PKG_CONFIG: ini };
const secret = path.join(work, 'key.pem');
execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', secret], { stdio: 'ignore' });
execFileSync('openssl', ['pkey', '-in', secret, '-pubout', '-out', path.join(keys, 'bench.pem')]);

/** overlay-pkg ARGS --json: its parsed output and how long it took. */
function pkg(args, { allowFail = false } = {}) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [BIN, ...args, '--json'], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
  const took = ms(t0);
  if (r.status !== 0 && !allowFail) throw new Error(`overlay-pkg ${args.join(' ')}: ${r.stderr}`);
  return { out: r.stdout ? JSON.parse(r.stdout) : {}, ms: took };
}

const names = new Set();
function cleanup() {
  for (const n of names) spawnSync(process.execPath, [BIN, 'remove', n], { env, stdio: 'ignore' });
  rmSync(work, { recursive: true, force: true });
}
process.on('SIGINT', () => { cleanup(); process.exit(130); });

/** A signed ipk (OpenWrt form) of `mb` MB of data (half random, half text) and one EU. */
function makePackage(name, version, mb) {
  const dir = path.join(work, `build-${name}-${version}`);
  const data = path.join(dir, 'data');
  const ctl = path.join(dir, 'CONTROL');
  const members = path.join(dir, 'members');
  for (const d of [data, ctl, members, path.join(data, 'etc/init.d'), path.join(data, 'usr/share', name)]) mkdirSync(d, { recursive: true });
  writeFileSync(path.join(data, 'etc/init.d/svc'), SERVICE, { mode: 0o755 });
  for (let i = 0; i < mb; i += 1) {
    writeFileSync(path.join(data, 'usr/share', name, `blob${i}`), i % 2 ? randomBytes(1 << 20) : Buffer.alloc(1 << 20, `line ${i} of ${name}\n`));
  }
  writeFileSync(path.join(ctl, 'control'), `Package: ${name}\nVersion: ${version}\nArchitecture: all\nMaintainer: Bench <bench@example.org>\n`);
  const gnu = ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0'];
  execFileSync('tar', [...gnu, '-czf', path.join(members, 'data.tar.gz'), '-C', data, '.']);
  execFileSync('tar', [...gnu, '-czf', path.join(members, 'control.tar.gz'), '-C', ctl, '.']);
  writeFileSync(path.join(members, 'debian-binary'), '2.0\n');
  writeFileSync(path.join(members, 'checksums'), execFileSync('sha256sum', ['control.tar.gz', 'data.tar.gz'], { cwd: members }));
  execFileSync('openssl', ['pkeyutl', '-sign', '-rawin', '-inkey', secret, '-in', path.join(members, 'checksums'), '-out', path.join(members, 'signature.sig')]);
  const file = path.join(work, `${name}_${version}.ipk`);
  execFileSync('tar', [...gnu, '-czf', file, './debian-binary', './data.tar.gz', './control.tar.gz', './checksums', './signature.sig'], { cwd: members });
  rmSync(dir, { recursive: true });
  return file;
}

const euActive = (o) => (o.ExecutionUnit ?? []).every((eu) => eu.Status === 'Active') && (o.ExecutionUnit ?? []).length > 0;

try {
  const big1 = makePackage('big', '1.0', 20);
  const big2 = makePackage('big', '2.0', 20);
  const size = statSync(big1).size;
  const samples = { install: [], update: [], 'EU stop': [], 'EU start': [], remove: [] };
  const hasEuCommands = /\n {2}stop /.test(spawnSync(process.execPath, [BIN, '--help'], { env, encoding: 'utf8' }).stdout);
  for (let i = 0; i < RUNS; i += 1) {
    names.add('big');
    const ins = pkg(['install', big1, '--name', 'big']);
    if (!euActive(ins.out)) throw new Error(`install: the EU is not Active: ${JSON.stringify(ins.out.ExecutionUnit)}`);
    samples.install.push(ins.ms);
    const up = pkg(['update', 'big', big2]);
    if (up.out.Version !== '2.0' || !euActive(up.out)) throw new Error(`update: ${JSON.stringify(up.out)}`);
    samples.update.push(up.ms);
    if (hasEuCommands) {
      samples['EU stop'].push(pkg(['stop', 'big/svc']).ms);
      samples['EU start'].push(pkg(['start', 'big/svc']).ms);
    }
    samples.remove.push(pkg(['remove', 'big']).ms);
    names.delete('big');
  }

  // Scale: SCALE small packages (one EU each, no data), each its own DU, installed one after the other.
  const scale = [];
  for (let i = 1; i <= SCALE; i += 1) {
    const file = makePackage(`small${i}`, '1.0', 0);
    names.add(`d${i}`);
    scale.push(pkg(['install', file, '--name', `d${i}`]).ms);
  }
  const listMs = [];
  for (let i = 0; i < RUNS; i += 1) listMs.push(pkg(['list']).ms);
  const removeMs = [];
  for (const n of [...names]) { removeMs.push(pkg(['remove', n]).ms); names.delete(n); }

  // Where an install's time goes: the parts measured alone.
  const { keys: trusted } = loadTrustedKeys(keys);
  const verifyMs = [];
  const unpackMs = [];
  for (let i = 0; i < RUNS; i += 1) {
    let t0 = process.hrtime.bigint();
    await verifyPackage(big1, { keys: trusted, requireSignature: true });
    verifyMs.push(ms(t0));
    const dest = path.join(work, `unpack-${i}`);
    t0 = process.hrtime.bigint();
    await unpackPackage(big1, dest, { keys: trusted, requireSignature: true });
    unpackMs.push(ms(t0));
    rmSync(dest, { recursive: true, force: true });
  }
  const nodeMs = median(Array.from({ length: RUNS }, () => { const t0 = process.hrtime.bigint(); spawnSync(process.execPath, ['-e', '0']); return ms(t0); }));

  const row = (label, xs, note = '') => console.log(`| ${label} | ${xs.length ? median(xs).toFixed(0) : 'n/a'} | ${note} |`);
  console.log(`\nLifecycle: ${(size / 1e6).toFixed(1)} MB signed ipk (20 MB of data, half random) with one EU, ${RUNS} runs, ${os.cpus().length} cores, ${os.release()}\n`);
  console.log('| command (bin/overlay-pkg.js, until it exits) | median ms | note |');
  console.log('| --- | ---: | --- |');
  row('install (EU Active)', samples.install);
  row('update (EU Active again)', samples.update);
  row('EU stop', samples['EU stop'], hasEuCommands ? '' : 'no EU commands in this build');
  row('EU start', samples['EU start'], hasEuCommands ? '' : 'no EU commands in this build');
  row('remove', samples.remove);
  const first = scale[0];
  const last = scale[scale.length - 1];
  console.log(`| install of DU #1 / #${SCALE} | ${first.toFixed(0)} / ${last.toFixed(0)} | ${(last / first).toFixed(2)}x (goal within 1.2x) |`);
  row(`list with ${SCALE} DUs`, listMs, `goal < 150 ms`);
  row(`remove, ${SCALE} DUs one by one`, removeMs);
  console.log('\nWhere an install of the 20 MB package goes (parts measured alone):\n');
  console.log('| part | median ms |');
  console.log('| --- | ---: |');
  console.log(`| Node.js start (node -e 0) | ${nodeMs.toFixed(0)} |`);
  console.log(`| verify (read, hash, signature) | ${median(verifyMs).toFixed(0)} |`);
  console.log(`| verify + unpack (what staging does) | ${median(unpackMs).toFixed(0)} |`);
  console.log(`| the rest: lock, journal fsyncs, config, boot of the DU subhost, EU status | ${(median(samples.install) - median(unpackMs) - nodeMs).toFixed(0)} |`);
} finally {
  cleanup();
}
