import t from 'tap';
import path from 'node:path';
import { existsSync, realpathSync } from 'node:fs';
import { evaluateBang, isBangValue, type BangOptions } from '../../src/config/bang.js';
import { tempDir, rejection } from '../fixtures/config/helpers.js';

function options(dir: string, extra: Partial<BangOptions> = {}): BangOptions {
  return {
    cwd: dir,
    configFile: path.join(dir, 'x.conf'),
    action: 'overlay-test',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    timeoutMs: 5000,
    where: { file: path.join(dir, 'x.conf'), line: 7, variable: 'LOWER' },
    ...extra,
  };
}

t.test('isBangValue', async (t) => {
  const cases: Array<[string, boolean]> = [['!echo', true], ['!', true], ['echo !', false], [' !x', false], ['', false]];
  for (const [value, expected] of cases) t.equal(isBangValue(value), expected, JSON.stringify(value));
});

t.test('the first line of output, trimmed, is the value', async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, string]> = [
    ['!echo hello', 'hello'],
    ['!printf "  a b  \\nsecond\\n"', 'a b'],
    ['!printf "no newline"', 'no newline'],
    ['!echo "$ACTION"', 'overlay-test'],
    ['!echo "$CONFIG"', path.join(dir, 'x.conf')],
    ['!pwd', realpathSync(dir)],
    ['!echo "${HOME:-unset}"', 'unset'],
    ['!echo é€', 'é€'],
  ];
  for (const [value, expected] of cases) t.equal(await evaluateBang(value, options(dir)), expected, value);
});

t.test('it really runs through sh -c, side effects and all', async (t) => {
  const dir = tempDir(t);
  const marker = path.join(dir, 'MARKER');
  t.equal(await evaluateBang(`!touch ${marker}; echo done`, options(dir)), 'done');
  t.ok(existsSync(marker), 'the command ran');
});

t.test('failures', async (t) => {
  const dir = tempDir(t);
  const failed = await rejection(t, evaluateBang('!echo broken thing >&2; echo more >&2; exit 3', options(dir)), 'CONFIG_BANG_FAILED');
  t.match(failed.message, /failed \(exit status 3\): broken thing$/);
  t.notMatch(failed.message, /: more/, 'only the first line of stderr');
  t.equal(failed.line, 7);
  t.equal(failed.variable, 'LOWER');
  await rejection(t, evaluateBang('!true', options(dir)), 'CONFIG_BANG_EMPTY');
  await rejection(t, evaluateBang('!echo; echo late', options(dir)), 'CONFIG_BANG_EMPTY');
  await rejection(t, evaluateBang('!', options(dir)), 'CONFIG_BANG_EMPTY');
  await rejection(t, evaluateBang('!printf "a\\0b"', options(dir)), 'CONFIG_BANG_FAILED');
  await rejection(t, evaluateBang('!kill -9 $$', options(dir)), 'CONFIG_BANG_FAILED');
  await rejection(t, evaluateBang('!echo x', options(path.join(dir, 'missing'))), 'CONFIG_BANG_FAILED');
});

t.test('timeouts kill the whole process group, and come quickly', async (t) => {
  const dir = tempDir(t);
  const cases = [
    '!sleep 30',
    // A background grandchild holding stdout would keep a naive wait hanging.
    '!sleep 30 & echo early; wait',
    // One that left the process group still cannot hold us.
    '!setsid sleep 5',
  ];
  for (const value of cases) {
    const t0 = Date.now();
    const e = await rejection(t, evaluateBang(value, options(dir, { timeoutMs: 300 })), 'CONFIG_BANG_TIMEOUT');
    t.ok(Date.now() - t0 < 3000, `${value}: returned in ${Date.now() - t0} ms`);
    t.match(e.message, /300 ms/);
  }
});
