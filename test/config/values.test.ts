import t, { type Test } from 'tap';
import { checkName, parseRamSize, parseStart, parseStopTimeout, parseRun } from '../../src/config/values.js';
import { thrown } from '../fixtures/config/helpers.js';

const where = (variable: string) => ({ file: '/v.conf', line: 2, variable });

// Each row: input, and the expected result or the error code.
type Row<T> = [string, T | { code: string }];

function table<T>(t: Test, fn: (v: string, w: ReturnType<typeof where>) => T, variable: string, rows: Array<Row<T>>) {
  for (const [input, expected] of rows) {
    if (expected !== null && typeof expected === 'object' && 'code' in (expected as object)) {
      const e = thrown(t, () => fn(input, where(variable)), (expected as { code: string }).code);
      t.match(e, { line: 2, variable, file: '/v.conf' }, `${variable}=${input}: located`);
    } else {
      t.same(fn(input, where(variable)), expected, `${variable}=${input}`);
    }
  }
}

const bad = (code: string) => ({ code });

t.test('NAME', async (t) => {
  table(t, checkName, 'NAME', [
    ['mail', 'mail'],
    ['a', 'a'],
    ['0x', '0x'],
    ['sub_host-1', 'sub_host-1'],
    ['abcdefghijkl', 'abcdefghijkl'],
    ['abcdefghijklm', bad('CONFIG_BAD_NAME')],
    ['', bad('CONFIG_BAD_NAME')],
    ['-x', bad('CONFIG_BAD_NAME')],
    ['_x', bad('CONFIG_BAD_NAME')],
    ['a.b', bad('CONFIG_BAD_NAME')],
    ['a/b', bad('CONFIG_BAD_NAME')],
    ['a b', bad('CONFIG_BAD_NAME')],
    ['héllo', bad('CONFIG_BAD_NAME')],
    ['$(touch M)', bad('CONFIG_BAD_NAME')],
    ['`id`', bad('CONFIG_BAD_NAME')],
    ['a;b', bad('CONFIG_BAD_NAME')],
    ['"a"', bad('CONFIG_BAD_NAME')],
  ]);
});

t.test('RAM_SIZE', async (t) => {
  table(t, parseRamSize, 'RAM_SIZE', [
    ['none', undefined],
    ['50M', '50M'],
    ['1g', '1g'],
    ['512k', '512k'],
    ['10%', '10%'],
    ['1048576', '1048576'],
    ['NONE', bad('CONFIG_BAD_SIZE')],
    ['50MB', bad('CONFIG_BAD_SIZE')],
    ['1.5G', bad('CONFIG_BAD_SIZE')],
    ['-1M', bad('CONFIG_BAD_SIZE')],
    ['M', bad('CONFIG_BAD_SIZE')],
    ['50M,uid=0', bad('CONFIG_BAD_SIZE')],
    ['$(touch M)', bad('CONFIG_BAD_SIZE')],
  ]);
});

t.test('START', async (t) => {
  table(t, parseStart, 'START', [
    ['none', []],
    ['networking ssh', ['networking', 'ssh']],
    ['  a\tb  c ', ['a', 'b', 'c']],
    ['getty@tty1 php8.2-fpm c++d', ['getty@tty1', 'php8.2-fpm', 'c++d']],
    ['/etc/init.d/x /usr/local/bin/svc', ['/etc/init.d/x', '/usr/local/bin/svc']],
    ['relative/path', bad('CONFIG_BAD_VALUE')],
    ['$(touch M)', bad('CONFIG_BAD_VALUE')],
    ['`touch M`', bad('CONFIG_BAD_VALUE')],
    ['ssh;reboot', bad('CONFIG_BAD_VALUE')],
    ['"ssh"', bad('CONFIG_BAD_VALUE')],
    ["'ssh'", bad('CONFIG_BAD_VALUE')],
    ['ssh|x', bad('CONFIG_BAD_VALUE')],
  ]);
});

t.test('STOP_TIMEOUT', async (t) => {
  table(t, parseStopTimeout, 'STOP_TIMEOUT', [
    ['1', 1],
    ['10', 10],
    ['3600', 3600],
    ['0', bad('CONFIG_BAD_VALUE')],
    ['3601', bad('CONFIG_BAD_VALUE')],
    ['1.5', bad('CONFIG_BAD_VALUE')],
    ['-5', bad('CONFIG_BAD_VALUE')],
    ['10s', bad('CONFIG_BAD_VALUE')],
    ['1e3', bad('CONFIG_BAD_VALUE')],
    ['', bad('CONFIG_BAD_VALUE')],
  ]);
});

t.test('RUN', async (t) => {
  table(t, parseRun, 'RUN', [
    ['/usr/sbin/sshd -D', '/usr/sbin/sshd -D'],
    ['$(touch M)', '$(touch M)'],
    ['', bad('CONFIG_BAD_VALUE')],
  ]);
});
