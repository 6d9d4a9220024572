// The id ranges of unprivileged subhosts (src/subhost/idmap.ts): reserved exclusively,
// never shared, taken over only from a boot that died without a subhost. Pure: a temp state dir.
import t, { type Test } from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_POOL, IDS_PER_SUBHOST, idPool, previewIdRange, releaseIdRange, reserveIdRange, slotFile } from '../../src/subhost/idmap.js';
import { createStateRecord, statePath, type StateRecord } from '../../src/subhost/state.js';
import { tempDir } from '../helpers/subhost.js';

t.test('each subhost gets a range of its own, the lowest free one', async (t) => {
  const dir = tempDir(t);
  const a = reserveIdRange('a', dir), b = reserveIdRange('b', dir);
  t.same([a.slot, b.slot], [0, 1]);
  t.equal(a.base, DEFAULT_POOL.start);
  t.equal(b.base, DEFAULT_POOL.start + IDS_PER_SUBHOST, 'ranges never overlap');
  t.equal(previewIdRange(dir).slot, 2, '--check shows the next free one');
  releaseIdRange(a, 'a', dir);
  t.notOk(existsSync(slotFile(dir, 0)), 'a boot that failed gives its range back');
  t.equal(reserveIdRange('c', dir).slot, 0, 'and it is reused');
  releaseIdRange(b, 'someone-else', dir);
  t.ok(existsSync(slotFile(dir, 1)), 'but never a range another boot holds');
});

/** n processes reserving at once, each holding its range (alive) until all have one, as booting subhosts do. */
async function reserveInProcesses(t: Test, dir: string, n: number): Promise<number[]> {
  const mod = path.resolve('src/subhost/idmap.ts');
  const script = `import { reserveIdRange } from ${JSON.stringify(mod)};
    process.stdout.write(String(reserveIdRange(process.argv[1], ${JSON.stringify(dir)}).slot) + '\\n');
    process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
  const loader = path.resolve('node_modules/@tapjs/typescript/dist/esm/import.mjs');
  const kids = Array.from({ length: n }, (_, i) => spawn(process.execPath, [`--import=${loader}`, '--input-type=module', '-e', script, `n${i}`],
    { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' } }));
  t.teardown(() => { for (const k of kids) k.kill('SIGKILL'); });
  const slots = await Promise.all(kids.map((k) => new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('no slot in time')), 60000);
    k.stdout!.on('data', (b: Buffer) => { out += b.toString(); if (out.includes('\n')) { clearTimeout(timer); resolve(Number(out.trim())); } });
  })));
  for (const k of kids) k.stdin!.end();
  return slots.sort((x, y) => x - y);
}

t.test('simultaneous boots in separate processes never share a range', async (t) => {
  t.setTimeout(120000);
  t.same(await reserveInProcesses(t, tempDir(t), 6), [0, 1, 2, 3, 4, 5], 'six boots, six ranges');
});

t.test('nor when they all find left-over ranges to take over', async (t) => {
  t.setTimeout(120000);
  const dir = tempDir(t);
  const dead = Number(execFileSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
  for (let i = 0; i < 6; i++) reserveIdRange(`old${i}`, dir);
  for (let i = 0; i < 6; i++) writeFileSync(slotFile(dir, i), `old${i} ${dead} 1\n`);
  const slots = await reserveInProcesses(t, dir, 6);
  t.equal(new Set(slots).size, 6, `six distinct ranges (${slots.join(' ')})`);
});

t.test('a range left by a boot that died is taken over; a running subhost\'s is not', async (t) => {
  const dir = tempDir(t);
  // A pid that has ended: a finished child's.
  const dead = Number(execFileSync('/bin/sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
  reserveIdRange('gone', dir);
  writeFileSync(slotFile(dir, 0), `gone ${dead} 1\n`);
  writeFileSync(slotFile(dir, 1), `live ${dead} 1\n`);
  const record = { version: 1, name: 'live', config: '/c', configDigest: '', log: '/l', phase: 'running', startedAt: '', cables: [], services: [], teardown: [],
    idmap: { base: DEFAULT_POOL.start + IDS_PER_SUBHOST, count: IDS_PER_SUBHOST, slot: 1 } } as StateRecord;
  createStateRecord(statePath('live', dir), record);
  const r = reserveIdRange('new', dir);
  t.equal(r.slot, 0, 'the dead boot\'s range is reused');
  t.match(readFileSync(slotFile(dir, 0), 'utf8'), /^new /);
  t.equal(reserveIdRange('next', dir).slot, 2, 'the range a subhost\'s record holds is not');
});

t.test('the pool comes from /etc/subuid and /etc/subgid when both name overlay-boot', async (t) => {
  const dir = tempDir(t);
  const files = { subuid: path.join(dir, 'subuid'), subgid: path.join(dir, 'subgid') };
  t.same(idPool(files), DEFAULT_POOL, 'none: the default pool');
  writeFileSync(files.subuid, 'alice:100000:65536\noverlay-boot:1000000000:655360\n');
  writeFileSync(files.subgid, 'overlay-boot:1000000000:655360\n');
  t.same(idPool(files), { start: 1000000000, count: 655360 });
  writeFileSync(files.subgid, 'overlay-boot:2000000000:655360\n');
  t.same(idPool(files), DEFAULT_POOL, 'different starts: the default pool');
});
