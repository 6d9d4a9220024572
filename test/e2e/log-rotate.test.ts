// LOG_MAX_SIZE and LOG_KEEP: the monitor rotates LOG while the subhost runs, under a
// service that writes many MB as fast as it can. Real boots, real gzip.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import { checkConfig } from '../../src/commands/check.js';
import { readConfig } from '../../src/config/read.js';
import { OverlayBootError } from '../../src/errors.js';
import { waitFor } from '../helpers/host.js';
import { makeSubhost, subhostTest, uniqueName } from '../helpers/subhost.js';

const MAX = 64 * 1024;
const KEEP = 4;
const LINES = 60000;

/** The rotated files of LOG beside it: LOG.1.gz ... and a LOG.1 being compressed. */
function rotated(log: string): string[] {
  const base = path.basename(log);
  return readdirSync(path.dirname(log)).filter((f) => f.startsWith(`${base}.`) && /^\.\d+(\.gz)?$/.test(f.slice(base.length)));
}

/** The numbers the service printed, in the order the files hold them. */
function numbers(text: string): number[] {
  const out: number[] = [];
  for (const line of text.split('\n')) {
    const m = /"msg":"n (\d+) /.exec(line);
    if (m) out.push(Number(m[1]));
  }
  return out;
}

const name = uniqueName('lr');
subhostTest(t, 'a fast writer: LOG stays under its size, at most LOG_KEEP gzip pieces, none lost between them', [name], async (t) => {
  // One line of about 150 bytes a number: 60000 lines make some 13 MB of LOG.
  const run = `seq -f 'n %.0f ${'x'.repeat(60)}' 1 ${LINES}; echo written-all; exec sleep 100000`;
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', `LOG_MAX_SIZE=${MAX / 1024}K`, `LOG_KEEP=${KEEP}`, `RUN=${run}`]);
  const log = path.join(sh.dir, 'log');

  const { plan } = await checkConfig(sh.conf);
  t.match(plan.steps.find((s) => s.id === 'log-rotate'), { title: new RegExp(`rotate ${log} before it passes ${MAX} bytes; keep ${KEEP}`), native: [{ op: 'log-rotate', args: [log, String(MAX), String(KEEP)] }] }, '--check shows the rotation');

  await boot(sh.conf);
  let samples = 0;
  let largest = 0;
  let most = 0;
  // LOG is missing for a moment in each rotation (between the rename and the new open).
  const readLog = () => { try { return readFileSync(log, 'utf8'); } catch { return ''; } };
  const done = await waitFor(() => {
    samples++;
    largest = Math.max(largest, statSync(log, { throwIfNoEntry: false })?.size ?? 0);
    most = Math.max(most, rotated(log).length);
    return readLog().includes('written-all');
  }, 120000, 5);
  t.ok(done, 'the service wrote everything');
  t.ok(largest <= MAX, `LOG never passed ${MAX} bytes while it was written (largest seen ${largest}, ${samples} samples)`);
  t.ok(most <= KEEP, `never more than ${KEEP} rotated files (most seen ${most})`);

  await stopByName(name, { timeoutSeconds: 3 });
  const files = rotated(log).sort();
  t.same(files, Array.from({ length: KEEP }, (_, i) => `log.${i + 1}.gz`).sort(), `LOG_KEEP=${KEEP} pieces, all compressed, none left plain`);
  t.notOk(readdirSync(sh.dir).some((f) => f.endsWith('.tmp')), 'no temporary file left');
  t.ok(statSync(log).size <= MAX, 'LOG under its size after the stop');

  // Oldest piece first: LOG.KEEP.gz ... LOG.1.gz, then LOG.
  let text = '';
  for (let k = KEEP; k >= 1; k--) {
    const piece = execFileSync('gunzip', ['-c', path.join(sh.dir, `log.${k}.gz`)], { encoding: 'utf8', maxBuffer: 64 << 20 });
    t.ok(piece.length > 0 && piece.length <= MAX, `log.${k}.gz is valid gzip of at most ${MAX} bytes`);
    t.ok(piece.split('\n').filter(Boolean).every((l) => l.startsWith('{') && l.endsWith('}')), `log.${k}.gz holds whole lines`);
    text += piece;
  }
  text += readFileSync(log, 'utf8');
  const seen = numbers(text);
  t.ok(seen.length > 1000, `the kept pieces hold ${seen.length} of the lines`);
  const first = seen[0]!;
  t.same(seen, Array.from({ length: LINES - first + 1 }, (_, i) => first + i), 'the pieces together hold every line from the oldest kept one on, in order: none lost between them');
  t.ok(first > 1, 'the oldest lines went with the pieces beyond LOG_KEEP');
});

const moved = uniqueName('lm');
subhostTest(t, 'a LOG replaced by a link while the subhost runs is not rotated through it', [moved], async (t) => {
  const run = `while :; do if [ -e /go ]; then rm /go; seq -f 'm %.0f ${'y'.repeat(40)}' 1 200; fi; sleep 0.05; done`;
  const sh = makeSubhost(t, moved, ['START=none', 'CABLES=', 'RAM_SIZE=none', 'LOG_MAX_SIZE=4K', 'LOG_KEEP=2', `RUN=${run}`]);
  const log = path.join(sh.dir, 'log');
  const r = await boot(sh.conf);
  const victim = path.join(sh.dir, 'victim');
  writeFileSync(victim, 'victim\n');
  renameSync(log, `${log}.moved`);
  symlinkSync(victim, log);
  execFileSync('nsenter', ['-t', String(r.pid1), '-m', '-p', '-r', '-w', '/bin/sh', '-c', 'touch /go']);
  const readMoved = () => readFileSync(`${log}.moved`, 'utf8');
  t.ok(await waitFor(() => readMoved().includes('"m 200 '), 30000), 'the service wrote its lines');
  t.match(readMoved(), /log rotation: LOG is no longer the file being written/, 'the monitor says why it stops rotating');
  t.equal(readFileSync(victim, 'utf8'), 'victim\n', 'the file the link names is untouched');
  t.same(rotated(log), [], 'nothing was rotated');
  t.ok(lstatSync(log).isSymbolicLink(), 'the link is left as it is');
});

t.test('LOG_MAX_SIZE and LOG_KEEP values', async (t) => {
  const conf = async (lines: string[]) => readConfig(makeSubhost(t, uniqueName('lv'), lines).conf);
  t.match(await conf(['LOG_MAX_SIZE=500K']), { logMaxSize: 512000, logKeep: 10 }, 'LOG_KEEP defaults to 10');
  t.match(await conf(['LOG_MAX_SIZE=2M', 'LOG_KEEP=3']), { logMaxSize: 2 * 1024 * 1024, logKeep: 3 });
  const none = await conf(['LOG_MAX_SIZE=none']);
  t.equal(none.logMaxSize, undefined, 'none: no rotation');
  const keepOnly = await conf(['LOG_KEEP=4']);
  t.equal(keepOnly.logMaxSize, undefined);
  t.match(keepOnly.warnings, [{ variable: 'LOG_KEEP', message: /no effect without LOG_MAX_SIZE/ }], 'LOG_KEEP alone warns');
  const bad: Array<[string[], 'LOG_MAX_SIZE' | 'LOG_KEEP', number]> = [
    [['LOG_MAX_SIZE=12X'], 'LOG_MAX_SIZE', 4],
    [['LOG_MAX_SIZE=100'], 'LOG_MAX_SIZE', 4],
    [['LOG_MAX_SIZE=1M', 'LOG_KEEP=0'], 'LOG_KEEP', 5],
    [['LOG_MAX_SIZE=1M', 'LOG_KEEP=ten'], 'LOG_KEEP', 5],
  ];
  for (const [lines, variable, line] of bad) {
    const sh = makeSubhost(t, uniqueName('lv'), lines);
    const err = await readConfig(sh.conf).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof OverlayBootError, `${lines.join(' ')} refused`);
    t.match(err, { code: 'CONFIG_BAD_VALUE', variable, line, file: sh.conf }, `${lines.join(' ')}: coded, naming file, line and variable`);
  }
});
