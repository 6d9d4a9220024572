// conffiles on update, on real directories: UPPER, the old layer and the new layer as an
// update finds them (the DU's subhost stopped).
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { keepChangedConffiles } from '../../src/lifecycle/conffiles.js';
import { describeTree, writeTree, type TreeEntry } from '../helpers/packages.js';
import { tempState } from './temp.js';

function world(t: Test, upper: Record<string, TreeEntry>) {
  const dir = tempState(t, 'ovb-conf-');
  const dirs = {
    upper: writeTree(path.join(dir, 'upper'), upper),
    oldLayer: writeTree(path.join(dir, 'old'), { 'etc/app.conf': 'port=1\n', 'etc/other.conf': 'a=1\n', 'usr/bin/app': 'v1' }),
    newLayer: writeTree(path.join(dir, 'new'), { 'etc/app.conf': { content: 'port=1\nnew=2\n', mode: 0o640 }, 'etc/other.conf': 'a=2\n', 'usr/bin/app': 'v2' }),
  };
  return { dir, dirs, conffiles: ['/etc/app.conf', '/etc/other.conf', '/etc/gone.conf'] };
}

t.test('a conffile the user changed is kept, the new version beside it as FILE-opkg with its mode', async (t) => {
  const { dirs, conffiles } = world(t, { 'etc/app.conf': 'port=8080\n' });
  const upperBefore = describeTree(dirs.upper);
  t.same(keepChangedConffiles({ conffiles, ...dirs }), { kept: ['/etc/app.conf'], refreshed: [] });
  t.equal(readFileSync(path.join(dirs.newLayer, 'etc/app.conf-opkg'), 'utf8'), 'port=1\nnew=2\n');
  t.equal(lstatSync(path.join(dirs.newLayer, 'etc/app.conf-opkg')).mode & 0o777, 0o640);
  t.same(describeTree(dirs.upper), upperBefore, 'UPPER (the user\'s copy) is untouched');
  t.notOk(existsSync(path.join(dirs.newLayer, 'etc/other.conf-opkg')), 'one the user did not touch gets none');
});

t.test('a chmod is a change; a copy-up identical to the old version is removed so the new one shows', async (t) => {
  const { dirs, conffiles } = world(t, { 'etc/app.conf': { content: 'port=1\n', mode: 0o600 }, 'etc/other.conf': 'a=1\n' });
  t.same(keepChangedConffiles({ conffiles, ...dirs }), { kept: ['/etc/app.conf'], refreshed: ['/etc/other.conf'] });
  t.ok(existsSync(path.join(dirs.upper, 'etc/app.conf')));
  t.notOk(existsSync(path.join(dirs.upper, 'etc/other.conf')), 'the unchanged copy-up is gone from UPPER');
});

t.test('a deleted conffile (whiteout) stays deleted, a conffile the new version dropped gets nothing', async (t) => {
  const { dirs, conffiles } = world(t, { 'etc/gone.conf': 'mine\n' });
  execFileSync('mknod', [path.join(dirs.upper, 'etc/app.conf'), 'c', '0', '0']);
  t.same(keepChangedConffiles({ conffiles, ...dirs }), { kept: [], refreshed: [] });
  t.notOk(existsSync(path.join(dirs.newLayer, 'etc/app.conf-opkg')));
  t.notOk(existsSync(path.join(dirs.newLayer, 'etc/gone.conf-opkg')));
});

t.test('links planted in UPPER or the new layer are never followed', async (t) => {
  const { dir, dirs, conffiles } = world(t, {});
  const host = writeTree(path.join(dir, 'host'), { 'app.conf': 'HOST\n', 'app.conf-opkg': 'HOST FILE\n' });
  const hostBefore = describeTree(host);
  symlinkSync(host, path.join(dirs.upper, 'etc'));
  t.same(keepChangedConffiles({ conffiles, ...dirs }), { kept: [], refreshed: [] }, 'UPPER/etc a link to a host dir: not a conffile of the DU');
  // A user's conffile that is a link counts as changed; the new layer's FILE-opkg link is replaced, not written through.
  const { dirs: d2 } = world(t, {});
  mkdirSync(path.join(d2.upper, 'etc'), { recursive: true });
  symlinkSync(path.join(host, 'app.conf'), path.join(d2.upper, 'etc/app.conf'));
  symlinkSync(path.join(host, 'app.conf-opkg'), path.join(d2.newLayer, 'etc/app.conf-opkg'));
  t.same(keepChangedConffiles({ conffiles, ...d2 }).kept, ['/etc/app.conf']);
  t.ok(lstatSync(path.join(d2.newLayer, 'etc/app.conf-opkg')).isFile(), 'a regular file now');
  t.same(describeTree(host), hostBefore, 'the host directory never changed');
});
