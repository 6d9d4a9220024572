import t from 'tap';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseConfigText, readConfigFile, MAX_CONFIG_BYTES, trimBlanks } from '../../src/config/parse.js';
import { tempDir, writeConf, rejection, thrown } from '../fixtures/config/helpers.js';

const parse = (text: string | Buffer) => parseConfigText(Buffer.isBuffer(text) ? text : Buffer.from(text), '/x.conf');
const values = (text: string | Buffer) => parse(text).assignments.map((a) => [a.variable, a.value, a.line]);

t.test('which lines are assignments', async (t) => {
  const cases: Array<[string, string, Array<[string, string, number]>]> = [
    ['plain', 'NAME=x\n', [['NAME', 'x', 1]]],
    ['value trimmed both ends', 'NAME=  x y \t\n', [['NAME', 'x y', 1]]],
    ['empty value kept as empty', 'CABLES=\n', [['CABLES', '', 1]]],
    ['no trailing newline', 'NAME=x', [['NAME', 'x', 1]]],
    ['comment ignored', '# NAME=x\nNAME=y\n', [['NAME', 'y', 2]]],
    ['indented line ignored', '  NAME=x\nNAME=y', [['NAME', 'y', 2]]],
    ['space before = ignored', 'NAME =x\nNAME=y', [['NAME', 'y', 2]]],
    ['blank lines counted', '\n\n\nNAME=x', [['NAME', 'x', 4]]],
    ['value may hold =', 'START=a=b', [['START', 'a=b', 1]]],
    ['free text ignored', 'hello world\nexport NAME=x\n', []],
    ['CRLF stripped', 'NAME=x\r\nBASE=b\r\n', [['NAME', 'x', 1], ['BASE', 'b', 2]]],
    ['NBSP is not trimmed', 'NAME=\u00a0x\u00a0', [['NAME', '\u00a0x\u00a0', 1]]],
    ['UTF-8 value kept', 'LOG=/tmp/bjö€.log', [['LOG', '/tmp/bjö€.log', 1]]],
    ['first assignment wins', 'NAME=a\nNAME=b\n', [['NAME', 'a', 1]]],
    ['SHARE repeats', 'SHARE=/a\nSHARE=/b\n', [['SHARE', '/a', 1], ['SHARE', '/b', 2]]],
    ['RUN repeats', 'RUN=x\nRUN=y\n', [['RUN', 'x', 1], ['RUN', 'y', 2]]],
    ['shell syntax kept literally', "START=$(touch M) `x` ; 'q' \"d\"", [['START', "$(touch M) `x` ; 'q' \"d\"", 1]]],
  ];
  for (const [what, text, expected] of cases) t.same(values(text), expected, what);
});

t.test('warnings: unknown variables and repeated ones, naming both lines', async (t) => {
  const { warnings, assignments } = parse('FOO=1\nname=x\nNAME=a\n#\nNAME=b\n');
  t.equal(assignments.length, 1);
  t.match(warnings, [
    { variable: 'FOO', line: 1, message: /unknown variable FOO/ },
    { variable: 'name', line: 2 },
    { variable: 'NAME', line: 5, message: /again on line 5.*line 3/ },
  ]);
  t.equal(warnings.length, 3);
  t.same(parse('SHARE=/a\nSHARE=/b\nRUN=x\nRUN=y').warnings, [], 'no warning for SHARE and RUN repeats');
});

t.test('invalid UTF-8', async (t) => {
  const bad = Buffer.concat([Buffer.from('# comment \xff ok\nNAME=ok\nLOG=/tmp/'), Buffer.from([0xc3, 0x28]), Buffer.from('\n')]);
  const e = thrown(t, () => parse(bad), 'CONFIG_BAD_VALUE');
  t.equal(e.line, 3);
  t.equal(e.variable, 'LOG');
  t.equal(e.file, '/x.conf');
  const two = Buffer.concat([Buffer.from('NAME='), Buffer.from([0xff]), Buffer.from('\nBASE='), Buffer.from([0xfe])]);
  const all = thrown(t, () => parse(two), 'CONFIG_INVALID');
  t.same(all.errors?.map((x) => [x.code, x.line, x.variable]), [['CONFIG_BAD_VALUE', 1, 'NAME'], ['CONFIG_BAD_VALUE', 2, 'BASE']]);
  const unknown = parse(Buffer.concat([Buffer.from('FOO='), Buffer.from([0xff])]));
  t.equal(unknown.warnings.length, 1, 'bytes in an unknown variable only warn');
  const comment = parse(Buffer.concat([Buffer.from('#'), Buffer.from([0xff, 0xfe]), Buffer.from('\nNAME=x')]));
  t.same(comment.assignments.map((a) => a.value), ['x'], 'comments may hold any bytes');
});

t.test('a NUL byte means binary, with its line', async (t) => {
  const e = thrown(t, () => parse(Buffer.from('NAME=x\n# a\0b\n')), 'CONFIG_BINARY');
  t.equal(e.line, 2);
});

t.test('100 000 lines parse fast', async (t) => {
  const lines: string[] = ['NAME=big', 'BASE=b'];
  for (let i = 0; i < 100_000; i++) lines.push(i % 2 ? `# comment ${i}` : `SHARE=/srv/d${i}`);
  const text = Buffer.from(lines.join('\r\n'));
  const t0 = performance.now();
  const { assignments } = parse(text);
  const ms = performance.now() - t0;
  t.equal(assignments.length, 50_002);
  t.equal(assignments.at(-1)?.value, '/srv/d99998');
  // Speed is measured, not asserted (npm run bench): a loaded machine must not fail this.
  t.comment(`took ${ms.toFixed(0)} ms`);
});

t.test('a long run of blanks is trimmed in linear time', async (t) => {
  const text = `NAME=${' '.repeat(500_000)}x${' '.repeat(500_000)}y`;
  const t0 = performance.now();
  t.same(values(text), [['NAME', `x${' '.repeat(500_000)}y`, 1]]);
  t.ok(performance.now() - t0 < 1000);
  t.equal(trimBlanks(' \t\v\f\rx\r '), 'x');
});

t.test('readConfigFile', async (t) => {
  const dir = tempDir(t);
  t.test('reads a file', async (t) => {
    const f = writeConf(dir, 'ok.conf', 'NAME=x\n');
    t.equal((await readConfigFile(f)).toString(), 'NAME=x\n');
  });
  t.test('exactly the limit is accepted', async (t) => {
    const f = writeConf(dir, 'limit.conf', Buffer.alloc(MAX_CONFIG_BYTES, 0x23));
    t.equal((await readConfigFile(f)).length, MAX_CONFIG_BYTES);
  });
  t.test('a 10 MB file is refused', async (t) => {
    const f = writeConf(dir, 'big.conf', Buffer.alloc(10 * 1024 * 1024, 0x23));
    const e = await rejection(t, readConfigFile(f), 'CONFIG_TOO_LARGE');
    t.equal(e.file, f);
  });
  t.test('missing', async (t) => {
    await rejection(t, readConfigFile(path.join(dir, 'none.conf')), 'CONFIG_UNREADABLE');
  });
  t.test('a directory', async (t) => {
    mkdirSync(path.join(dir, 'd.conf'));
    await rejection(t, readConfigFile(path.join(dir, 'd.conf')), 'CONFIG_UNREADABLE');
  });
  t.test('a FIFO does not hang', async (t) => {
    const fifo = path.join(dir, 'f.conf');
    execFileSync('mkfifo', [fifo]);
    await rejection(t, readConfigFile(fifo), 'CONFIG_UNREADABLE');
  });
});
