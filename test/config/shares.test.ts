import t from 'tap';
import path from 'node:path';
import { mkdirSync, writeFileSync, symlinkSync, realpathSync } from 'node:fs';
import { resolveShare } from '../../src/config/shares.js';
import { tempDir, rejection } from '../fixtures/config/helpers.js';

t.test('SHARE values', async (t) => {
  const base = realpathSync(tempDir(t));
  mkdirSync(path.join(base, 'dir'));
  writeFileSync(path.join(base, 'file'), '');
  symlinkSync('dir', path.join(base, 'link'));
  mkdirSync(path.join(base, 'lower'));
  const share = (raw: string) => resolveShare({ raw, line: 4, base, lower: path.join(base, 'lower'), file: '/s.conf' });

  const good: Array<[string, string, string, boolean]> = [
    // [raw, hostPath, subhostPath, isDirectory]
    [`${base}/dir`, `${base}/dir`, `${base}/dir`, true],
    ['dir', `${base}/dir`, `${base}/dir`, true],
    ['dir:/srv/data', `${base}/dir`, '/srv/data', true],
    ['file:/etc/motd', `${base}/file`, '/etc/motd', false],
    ['link:/l', `${base}/dir`, '/l', true],
    ['link', `${base}/dir`, `${base}/link`, true],
    ['dir:/a/./b//c/', `${base}/dir`, '/a/b/c', true],
    ['dir:/a/../b', `${base}/dir`, '/b', true],
    ['/proc:/host-proc', '/proc', '/host-proc', true],
  ];
  for (const [raw, hostPath, subhostPath, isDirectory] of good) {
    const { share: s, warning } = await share(raw);
    t.same(s, { hostPath, subhostPath, isDirectory, line: 4, raw }, raw);
    t.equal(warning, undefined);
  }

  const skipped = await share('lower:/x');
  t.equal(skipped.share, undefined, 'LOWER itself is skipped');
  t.match(skipped.warning, { variable: 'SHARE', line: 4, message: /LOWER/ });

  const bad: Array<[string, RegExp]> = [
    ['missing', /does not exist/],
    ['dir:relative', /not absolute/],
    ['dir:', /hostdir:subhostdir/],
    [':/x', /hostdir:subhostdir/],
    ['dir:/../etc', /climbs above/],
    ['dir:/a/../../etc', /climbs above/],
    ['dir:/', /whole root/],
    ['dir:/a/..', /whole root/],
    ['!touch MARKER', /does not exist/],
    ['$(touch MARKER):/x', /does not exist/],
  ];
  for (const [raw, message] of bad) {
    const e = await rejection(t, share(raw), 'CONFIG_BAD_SHARE');
    t.match(e, { variable: 'SHARE', line: 4, file: '/s.conf', message }, raw);
  }
});
