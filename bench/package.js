#!/usr/bin/env node
// Package layer speed and memory: info, verify and unpack of a ~50 MB ipk, side by
// side with `tar -xzf` of the same data.tar.gz on the same disk in the same run.
// Each measurement runs in a child process so its peak RSS is its own. Medians over
// BENCH_RUNS runs (default 5). Run after `npm run build`: node bench/package.js
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = path.join(ROOT, 'dist', 'package', 'index.js');
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };

const work = mkdtempSync(path.join(process.env.BENCH_DIR ?? os.tmpdir(), 'ovb-pkgbench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
process.on('SIGINT', () => process.exit(130));

/** A data tree of ~40 MB random (incompressible) and ~60 MB text-like (compressible) files. */
function makeTree(dir) {
  const words = 'lorem ipsum dolor sit amet overlay boot subhost package verify unpack stream '.split(' ');
  for (let i = 0; i < 40; i += 1) {
    const d = path.join(dir, 'usr/lib/bench', `r${i % 8}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, `blob${i}.bin`), randomBytes(1 << 20));
  }
  for (let i = 0; i < 250; i += 1) {
    const d = path.join(dir, 'usr/share/bench', `t${i % 20}`);
    mkdirSync(d, { recursive: true });
    const lines = [];
    for (let n = 0; n < 2400; n += 1) lines.push(`${n} ${words[(n * 7 + i) % words.length]} ${randomBytes(12).toString('hex')} ${words[(n + i) % words.length]}`);
    writeFileSync(path.join(d, `doc${i}.txt`), lines.join('\n'));
  }
}

/** The ipk as OpenWrt's ipkg-build makes it, signed with checksums + signature.sig (openssl, P-256). */
function makePackage() {
  const members = path.join(work, 'members');
  const data = path.join(work, 'data');
  const ctl = path.join(work, 'CONTROL');
  mkdirSync(members);
  mkdirSync(ctl);
  makeTree(data);
  writeFileSync(path.join(ctl, 'control'), 'Package: bench\nVersion: 1.0\nArchitecture: all\n');
  const gnu = ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0'];
  execFileSync('tar', [...gnu, '-czf', path.join(members, 'data.tar.gz'), '-C', data, '.']);
  execFileSync('tar', [...gnu, '-czf', path.join(members, 'control.tar.gz'), '-C', ctl, '.']);
  writeFileSync(path.join(members, 'debian-binary'), '2.0\n');
  const key = path.join(work, 'key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', path.join(work, 'key.pub')]);
  writeFileSync(path.join(members, 'checksums'), execFileSync('sha256sum', ['control.tar.gz', 'data.tar.gz'], { cwd: members }));
  execFileSync('openssl', ['dgst', '-sha256', '-sign', key, '-out', path.join(members, 'signature.sig'), path.join(members, 'checksums')]);
  const file = path.join(work, 'bench.ipk');
  execFileSync('tar', [...gnu, '-czf', file, './debian-binary', './data.tar.gz', './control.tar.gz', './checksums', './signature.sig'], { cwd: members });
  rmSync(data, { recursive: true });
  return { file, dataTar: path.join(members, 'data.tar.gz'), pub: path.join(work, 'key.pub') };
}

// One measurement in a child: prints {ms, maxRssKb}.
const CHILD = `
const [op, file, pub, dest] = process.argv.slice(1);
const lib = await import(${JSON.stringify(DIST)});
const { readFileSync } = await import('node:fs');
const keys = pub ? [lib.parsePublicKey(readFileSync(pub), pub)] : undefined;
const t0 = process.hrtime.bigint();
if (op === 'info') await lib.openPackage(file);
else if (op === 'verify') await lib.verifyPackage(file, { keys });
else if (op === 'unpack') await lib.unpackPackage(file, dest);
else if (op === 'verify+unpack') await lib.unpackPackage(file, dest, { keys });
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
process.stdout.write(JSON.stringify({ ms, maxRssKb: process.resourceUsage().maxRSS }));
`;

function child(op, file, pub, dest) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, op, file, pub ?? '', dest ?? ''], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${op}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** tar -xzf timed from here; its peak RSS from /usr/bin/time when present. */
function tarX(dataTar, dest) {
  mkdirSync(dest);
  const time = spawnSync('sh', ['-c', 'command -v /usr/bin/time'], { encoding: 'utf8' }).status === 0;
  const t0 = process.hrtime.bigint();
  const r = time
    ? spawnSync('/usr/bin/time', ['-f', '%M', 'tar', '-xzf', dataTar, '-C', dest], { encoding: 'utf8' })
    : spawnSync('tar', ['-xzf', dataTar, '-C', dest], { encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`tar: ${r.stderr}`);
  return { ms, maxRssKb: time ? Number(r.stderr.trim().split('\n').pop()) : NaN };
}

const pkg = makePackage();
const size = statSync(pkg.file).size;
const ops = ['info', 'verify', 'unpack', 'verify+unpack', 'tar -xzf'];
const samples = Object.fromEntries(ops.map((o) => [o, []]));
const baseline = child('none', pkg.file);
for (let i = 0; i < RUNS; i += 1) {
  for (const op of ops) {
    const dest = path.join(work, `out-${i}-${op.replace(/\W/g, '')}`);
    execFileSync('sync');
    samples[op].push(op === 'tar -xzf' ? tarX(pkg.dataTar, dest) : child(op, pkg.file, op.startsWith('verify') ? pkg.pub : undefined, dest));
    rmSync(dest, { recursive: true, force: true });
  }
}
const tarMs = median(samples['tar -xzf'].map((s) => s.ms));
const mb = (kb) => (Number.isNaN(kb) ? 'n/a' : (kb / 1024).toFixed(1));
console.log(`\nPackage layer: ${(size / 1e6).toFixed(1)} MB ipk (OpenWrt form, signed), ${RUNS} runs, ${os.cpus().length} cores, ${os.release()}\n`);
console.log('| operation | median ms | vs tar -xzf | peak RSS MB (node alone: ' + mb(baseline.maxRssKb) + ') |');
console.log('| --- | ---: | ---: | ---: |');
for (const op of ops) {
  const m = median(samples[op].map((s) => s.ms));
  const rss = Math.max(...samples[op].map((s) => s.maxRssKb));
  console.log(`| ${op} | ${m.toFixed(0)} | ${(m / tarMs).toFixed(2)}x | ${mb(rss)} |`);
}
