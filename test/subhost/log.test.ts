// The subhost log is written without pino; its lines must be the ones pino writes.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { OverlayBootError } from '../../src/errors.js';
import { openSubhostLog } from '../../src/subhost/log.js';
import { tempDir } from '../helpers/subhost.js';

t.test('openSubhostLog writes the lines pino writes, byte for byte but the time', (t) => {
  const dir = tempDir(t, 'ovb-logfmt-');
  const theirs = path.join(dir, 'pino.log'), ours = path.join(dir, 'ours.log');
  const name = 'web"1\u00e9';
  const reference = pino({ base: { pid: process.pid, hostname: hostname(), subhost: name, source: 'overlay-boot' } },
    pino.destination({ dest: theirs, sync: true, mkdir: true, append: true }));
  const log = openSubhostLog(ours, name);
  const cause = new Error('ip: RTNETLINK answers: File exists');
  const failed = new OverlayBootError('INTERNAL', 'the cable failed', { step: 'cable-0', file: '/etc/x.conf', line: 3, cause });
  const lines: Array<['info' | 'error' | 'debug', Record<string, unknown>, string]> = [
    ['info', { config: '/srv/web.conf' }, 'Booting web'],
    ['debug', { step: 'netns', ms: 3.4 }, 'network namespace'],
    ['error', { step: 'cable-0', ms: 2.5 }, 'step cable-0 failed: \u0001 "quoted" \\ back\nnext \ud800 lone'],
    ['error', { err: failed.toJSON() }, 'Boot of web failed'],
    ['error', { err: 'Error: a plain one' }, 'Boot of web failed'],
    ['info', { pid1: 1234 }, 'Started web'],
    ['info', { pid1: undefined, list: [1, undefined, NaN], nested: { gone: undefined, n: -0 } }, 'odd values'],
  ];
  for (const [level, fields, msg] of lines) {
    reference[level](fields, msg);
    log[level](fields, msg);
  }
  log.flush();
  const norm = (f: string) => readFileSync(f, 'utf8').replace(/"time":\d+,/g, '"time":0,');
  t.equal(norm(ours), norm(theirs));
  t.match(readFileSync(ours, 'utf8'), /^\{"level":30,"time":\d{13},"pid":\d+,/, 'time is epoch milliseconds, as pino writes it');
  t.end();
});
