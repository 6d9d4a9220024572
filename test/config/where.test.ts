import t from 'tap';
import { configError, throwGathered } from '../../src/config/where.js';
import { thrown } from '../fixtures/config/helpers.js';

t.test('configError carries its location', async (t) => {
  const e = configError('CONFIG_BAD_MAC', 'bad', { file: '/a.conf', line: 3, variable: 'CABLES' }, { found: 'zz' });
  t.match(e, { code: 'CONFIG_BAD_MAC', file: '/a.conf', line: 3, variable: 'CABLES', found: 'zz', message: 'bad' });
  t.equal(e.describe(), '/a.conf:3: CABLES: bad');
});

t.test('throwGathered', async (t) => {
  t.doesNotThrow(() => throwGathered([], '/a.conf'), 'nothing to throw');
  const one = configError('CONFIG_BAD_NAME', 'x', { file: '/a.conf', line: 1, variable: 'NAME' });
  t.equal(thrown(t, () => throwGathered([one], '/a.conf'), 'CONFIG_BAD_NAME'), one, 'a single error is itself');
  const two = configError('CONFIG_BAD_SIZE', 'y', { file: '/a.conf', line: 2, variable: 'RAM_SIZE' });
  const all = thrown(t, () => throwGathered([one, two], '/a.conf'), 'CONFIG_INVALID');
  t.same(all.errors, [one, two]);
  t.equal(all.file, '/a.conf');
  t.match(all.message, /2 errors[\s\S]*\/a\.conf:1: NAME: x[\s\S]*\/a\.conf:2: RAM_SIZE: y/);
});
