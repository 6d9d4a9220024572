// Real packages from Debian's archive (fetched by test/fixtures/package/fetch-debs.sh),
// read by us and by dpkg-deb, which must agree.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { describeTree } from '../helpers/packages.js';
import { tempDir } from '../helpers/subhost.js';

const DIR = process.env.OVB_TEST_DEBS ?? '/var/cache/overlay-boot-test/debs';
const debs = existsSync(DIR) ? readdirSync(DIR).filter((f) => f.endsWith('.deb')).map((f) => path.join(DIR, f)) : [];

if (debs.length < 2 && process.env.OVB_ALLOW_NO_DEBS !== '1') {
  t.fail(`real Debian packages missing in ${DIR}: run test/fixtures/package/fetch-debs.sh (or set OVB_ALLOW_NO_DEBS=1)`);
}

for (const deb of debs) {
  t.test(path.basename(deb), async (t) => {
    const info = await openPackage(deb);
    t.equal(info.format, 'deb');
    t.same(info.problems, []);
    // control fields as dpkg-deb reads them
    for (const field of ['Package', 'Version', 'Architecture', 'Maintainer', 'Installed-Size', 'Depends', 'Pre-Depends']) {
      const theirs = execFileSync('dpkg-deb', ['-f', deb, field], { encoding: 'utf8' }).trim();
      t.equal(info.control.fields[field] ?? '', theirs, field);
    }
    t.same(info.members.map((m) => m.name), execFileSync('ar', ['t', deb], { encoding: 'utf8' }).trim().split('\n'));
    // maintainer scripts and conffiles as dpkg-deb -e extracts them
    const ctl = tempDir(t);
    execFileSync('dpkg-deb', ['-e', deb, path.join(ctl, 'DEBIAN')]);
    for (const s of ['preinst', 'postinst', 'prerm', 'postrm'] as const) {
      const p = path.join(ctl, 'DEBIAN', s);
      t.equal(info.scripts[s], existsSync(p) ? readFileSync(p, 'utf8') : undefined, s);
    }
    const cf = path.join(ctl, 'DEBIAN', 'conffiles');
    t.same(info.conffiles, existsSync(cf) ? readFileSync(cf, 'utf8').split('\n').filter(Boolean) : []);
    // unpacked, the tree is the one dpkg-deb -x makes
    const ours = path.join(tempDir(t), 'root');
    const theirs = tempDir(t);
    const r = await unpackPackage(deb, ours);
    execFileSync('dpkg-deb', ['-x', deb, theirs]);
    const a = describeTree(ours);
    const b = describeTree(theirs);
    t.same(a, b, 'same paths, types, modes, owners, link targets and contents as dpkg-deb -x');
    t.equal(r.files, info.files.length);
    t.ok(Object.keys(a).length > 5);
  });
}
