// Hostile input (issue 12): a seeded fuzzer over packages. Real packages of every form
// are mutated (bit flips, truncations, header edits with the tar checksum made right,
// members swapped, duplicated, dropped, renamed, at every layer, recompressed) and read
// with openPackage, verifyPackage and unpackPackage. Every result is a PackageInfo or an
// OverlayBootError with a PKG_ code; never another exception, never a hang, never a
// file outside the destination.
//
//   OVB_FUZZ_SEED=<n>   run seed (default below, printed)
//   OVB_PKG_FUZZ_CASES=<n>  number of cases (default 5000)
//   OVB_FUZZ_ONLY=<i,j> replay only these cases
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../../src/errors.js';
import { parsePublicKey } from '../../src/package/keys.js';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { verifyPackage } from '../../src/package/verify.js';
import { Rng } from '../fixtures/fuzz/prng.js';
import { mutatePackage } from '../fixtures/package/mutate.js';
import { encryptByHand, makeDebByHand, makeIpkByHand, type TreeEntry } from '../helpers/packages.js';
import { keyTemp, opensslKey } from '../helpers/keys.js';
import { tempDir } from '../helpers/subhost.js';

const DEFAULT_SEED = 0x9acca6e;
const SEED = (process.env.OVB_FUZZ_SEED ? Number(process.env.OVB_FUZZ_SEED) : DEFAULT_SEED) >>> 0;
const CASES = process.env.OVB_PKG_FUZZ_CASES ? Number(process.env.OVB_PKG_FUZZ_CASES) : 5000;
const ONLY = process.env.OVB_FUZZ_ONLY?.split(',').filter(Boolean).map(Number);
const CASE_LIMIT_MS = 10_000;
const MAX_REPORTED = 25;
const SECRET = 'fuzz';

const DATA: Record<string, TreeEntry> = {
  'usr/bin/x': { content: '#!/bin/sh\necho x\n', mode: 0o755 },
  'etc/x.conf': 'a=1\n',
  'usr/lib/x/link': { symlink: '../../bin/x' },
  'usr/lib/x/hard': { hardlink: 'etc/x.conf' },
  'var/lib/x': { dir: true, mode: 0o700 },
  'usr/share/x/blob': { content: Buffer.from('0123456789abcdef'.repeat(300)) },
};
const CONTROL = { Package: 'fz', Version: '1:2.0-1', Architecture: 'all', Description: 'fuzz\n more' };
const SCRIPTS = { postinst: '#!/bin/sh\nexit 0\n' };

function seeds(dir: string, key: ReturnType<typeof opensslKey>): Record<string, Buffer> {
  const w = (n: string) => path.join(dir, n);
  const ipk = makeIpkByHand({ work: w('ipk'), control: CONTROL, data: DATA, scripts: SCRIPTS, conffiles: ['/etc/x.conf'] });
  const out: Record<string, string> = {
    ipk,
    'ipk-ar': makeIpkByHand({ work: w('ar'), control: CONTROL, data: DATA, container: 'ar' }),
    'ipk-signed': makeIpkByHand({ work: w('signed'), control: CONTROL, data: DATA, signKey: key }),
    'ipk-ar-signed': makeIpkByHand({ work: w('ar-signed'), control: CONTROL, data: DATA, container: 'ar', signKey: key }),
    'deb-gz': makeDebByHand({ work: w('dgz'), control: CONTROL, data: DATA, scripts: SCRIPTS, compression: 'gzip' }),
    'deb-xz': makeDebByHand({ work: w('dxz'), control: CONTROL, data: DATA, compression: 'xz' }),
    'deb-zst': makeDebByHand({ work: w('dzst'), control: CONTROL, data: DATA, compression: 'zstd' }),
    encrypted: encryptByHand(ipk, SECRET, w('enc.bin')),
    // above the 1 MiB cap the cases run with: every unpack of it stops mid-file
    bomb: makeIpkByHand({ work: w('bomb'), control: CONTROL, data: { zeros: { content: Buffer.alloc(3 << 19) } } }),
  };
  const oci = w('oci');
  mkdirSync(path.join(oci, 'app', 'rootfs', 'bin'), { recursive: true });
  writeFileSync(path.join(oci, 'app', 'rootfs', 'bin', 'tool'), 'tool\n');
  symlinkSync('tool', path.join(oci, 'app', 'rootfs', 'bin', 'sh'));
  writeFileSync(path.join(oci, 'app', 'config.json'), JSON.stringify({ process: { args: ['/bin/sh'] }, annotations: { 'org.opencontainers.image.version': '3' } }));
  execFileSync('tar', ['--numeric-owner', '-cf', w('oci.tar'), 'app'], { cwd: oci });
  execFileSync('tar', ['--numeric-owner', '-czf', w('oci.tar.gz'), 'app'], { cwd: oci });
  out.oci = w('oci.tar');
  out['oci-gz'] = w('oci.tar.gz');
  return Object.fromEntries(Object.entries(out).map(([k, f]) => [k, readFileSync(f)]));
}

function limit<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what} took over ${CASE_LIMIT_MS} ms`)), CASE_LIMIT_MS);
  });
  return Promise.race([p, hang]).finally(() => clearTimeout(timer));
}

t.test('package fuzzer: mutated packages of every form', async (t) => {
  const started = Date.now();
  const dir = tempDir(t, 'ovb-pkgfz-');
  const keyDir = keyTemp(t);
  const key = opensslKey(keyDir, 'ecdsa-p256');
  const keys = [parsePublicKey(readFileSync(key.public), key.public)];
  const base = seeds(path.join(dir, 'seeds'), key);
  const seedNames = Object.keys(base).sort();
  const file = path.join(dir, 'case.pkg');
  const unpackRoot = path.join(dir, 'u');
  const outside = path.join(dir, 'outside');
  mkdirSync(unpackRoot);
  mkdirSync(outside);
  t.comment(`fuzz seed ${SEED} (replay: OVB_FUZZ_SEED=${SEED} OVB_PKG_FUZZ_CASES=${CASES}; one case: OVB_FUZZ_ONLY=<index>)`);

  // control: the unmutated seeds all read, verify (when signed) and unpack
  for (const name of seedNames) {
    writeFileSync(file, base[name]!);
    if (name === 'bomb') {
      await t.rejects(unpackPackage(file, path.join(unpackRoot, 'dest'), { maxUnpackedSize: 1 << 20 }), { code: 'PKG_TOO_LARGE' }, 'seed bomb is stopped');
      continue;
    }
    const info = await openPackage(file, { secret: SECRET });
    t.same(info.problems, [], `seed ${name} reads clean`);
    if (name.includes('signed')) t.equal((await verifyPackage(file, { keys, secret: SECRET })).signature.verified, true, `seed ${name} verifies`);
    await unpackPackage(file, path.join(unpackRoot, 'dest'), { secret: SECRET });
    rmSync(path.join(unpackRoot, 'dest'), { recursive: true });
  }

  const outcomes = new Map<string, number>();
  const failures: string[] = [];
  const bump = (k: string) => outcomes.set(k, (outcomes.get(k) ?? 0) + 1);
  const indices = ONLY ?? Array.from({ length: CASES }, (_, i) => i);
  for (const index of indices) {
    const rng = new Rng(SEED, index);
    const seedName = rng.pick(seedNames);
    const { bytes, kind } = mutatePackage(base[seedName]!, rng);
    writeFileSync(file, bytes);
    const ops: ['open' | 'verify' | 'unpack', () => Promise<unknown>][] = [['open', () => openPackage(file, { secret: SECRET, maxUnpackedSize: 1 << 20 })]];
    if (rng.chance(0.3)) ops.push(['verify', () => verifyPackage(file, { keys, secret: SECRET, requireSignature: rng.chance(0.5), maxUnpackedSize: 1 << 20 })]);
    if (rng.chance(0.25)) ops.push(['unpack', () => unpackPackage(file, path.join(unpackRoot, 'dest'), { secret: SECRET, maxUnpackedSize: 1 << 20 })]);
    for (const [op, run] of ops) {
      const label = `case ${index} (OVB_FUZZ_SEED=${SEED} OVB_FUZZ_ONLY=${index}) seed ${seedName} mutation ${kind} ${op}`;
      try {
        await limit(run(), label);
        bump(`${op}: ok`);
      } catch (e) {
        if (e instanceof OverlayBootError && e.code.startsWith('PKG_')) bump(`${op}: ${e.code}`);
        else failures.push(`${label}: ${e instanceof Error ? e.stack : String(e)}`);
      }
      if (op === 'unpack') {
        const left = readdirSync(unpackRoot);
        if (left.some((n) => n !== 'dest')) failures.push(`case ${index}: unpack left ${left.join(', ')}`);
        rmSync(path.join(unpackRoot, 'dest'), { recursive: true, force: true });
        for (const n of left) rmSync(path.join(unpackRoot, n), { recursive: true, force: true });
      }
    }
    if (readdirSync(outside).length > 0) failures.push(`case ${index}: something was written outside the destination`);
    if (failures.length >= MAX_REPORTED) break;
  }
  for (const f of failures) t.fail(f);
  t.equal(failures.length, 0, 'every case ends in a PackageInfo or a PKG_ error');
  const summary = [...outcomes.entries()].sort().map(([k, v]) => `${k} ${v}`).join(', ');
  t.comment(`outcomes: ${summary}`);
  t.ok((outcomes.get('open: ok') ?? 0) > indices.length / 50 || ONLY !== undefined, 'some mutations still read (the fuzzer reaches past the first check)');
  t.comment(`fuzz seed ${SEED}: ${indices.length} cases in ${((Date.now() - started) / 1000).toFixed(1)} s`);
});
