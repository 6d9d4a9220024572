import t from 'tap';
import path from 'node:path';
import { realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { resolveExisting, requireDirectory } from '../../src/config/fspath.js';
import { tempDir, rejection, thrown } from '../fixtures/config/helpers.js';

t.test('resolveExisting and requireDirectory', async (t) => {
  const dir = realpathSync(tempDir(t));
  const where = { file: '/p.conf', line: 2, variable: 'LIVE' };
  writeFileSync(path.join(dir, 'f'), '');
  symlinkSync('f', path.join(dir, 'l'));
  symlinkSync('nowhere', path.join(dir, 'dangling'));
  t.equal((await resolveExisting(dir, 'l', where)).path, path.join(dir, 'f'), 'symlink followed');
  t.equal((await resolveExisting('/unused', dir, where)).path, dir, 'absolute value ignores dir');
  t.match(await rejection(t, resolveExisting(dir, 'dangling', where), 'CONFIG_BAD_PATH'), { line: 2, message: /does not exist/ });
  await rejection(t, resolveExisting(dir, 'x', where, 'CONFIG_BAD_SHARE'), 'CONFIG_BAD_SHARE');
  const file = await resolveExisting(dir, 'f', where);
  thrown(t, () => requireDirectory(file, where), 'CONFIG_BAD_PATH');
  t.doesNotThrow(() => requireDirectory({ path: dir, stats: statSync(dir) }, where));
});
