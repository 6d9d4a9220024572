// Removal packages and hotfixes: what a package's control makes of its install, read
// from packages built by the project's own builder (buildRemovalPackage) and by hand.
import t from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { isOverlayBootError } from '../../src/errors.js';
import { checkHotfix, classifyPackage, exactDependencies, removalDU, removalTarget } from '../../src/lifecycle/special.js';
import type { DuRecord } from '../../src/lifecycle/store.js';
import { buildPackage, buildRemovalPackage } from '../../src/package/build.js';
import { parseControl } from '../../src/package/control.js';
import { openPackage } from '../../src/package/open.js';
import { tempState } from './temp.js';

const control = (fields: Record<string, string>) => parseControl(Object.entries({ Version: '1', Architecture: 'all', ...fields }).map(([k, v]) => `${k}: ${v}\n`).join(''));

function record(Subhost: string, Name: string, Version: string, ExecutionEnvRef = 'bee'): DuRecord {
  return {
    format: 1, Name, Version, UUID: '00000000-0000-5000-8000-000000000000', DUID: '1', Status: 'Installed', ExecutionEnvRef, Resolved: true,
    Vendor: 'example.org', Description: '', Subhost, EUs: [], package: { sha256: '0'.repeat(64), source: '/x', format: 'ipk', size: 1 },
    layer: '/x', installedAt: '2026-01-01T00:00:00Z',
  };
}

function codeOf(f: () => unknown): { code?: string; variable?: string; message?: string } {
  try {
    f();
  } catch (e) {
    if (!isOverlayBootError(e)) throw e;
    return { code: e.code, variable: e.variable, message: e.message };
  }
  return {};
}

t.test('a removal package made by buildRemovalPackage removes its NAME', async (t) => {
  const dir = tempState(t, 'ovb-special-');
  const built = await buildRemovalPackage('webapp', { outDir: dir, version: '2' });
  const info = await openPackage(built.file);
  t.same(classifyPackage(info.control), { kind: 'remove', target: 'webapp' });
  t.equal(removalTarget(info.control), 'webapp');
  const dus = [record('web', 'webapp', '1.0'), record('web2', 'webapp', '1.0', 'bridge'), record('db', 'db', '3')];
  t.match(codeOf(() => removalDU(dus, 'webapp')), { code: 'USAGE', message: /2 DUs of webapp.*web, web2/ }, 'two: ambiguous');
  t.equal(removalDU(dus, 'webapp', { ee: 'bridge' }).Subhost, 'web2');
  t.equal(removalDU(dus, 'webapp', { name: 'web' }).Subhost, 'web');
  t.equal(removalDU(dus, 'db').Subhost, 'db');
  t.match(codeOf(() => removalDU(dus, 'mail')), { code: 'PKG_UNKNOWN_DU' });
  t.match(codeOf(() => removalDU(dus, 'db', { name: 'web' })), { code: 'PKG_UNKNOWN_DU' });
  t.match(codeOf(() => classifyPackage(control({ Package: 'webapp', Tags: 'remove' }))), { code: 'PKG_BAD_CONTROL', variable: 'Package' });
});

t.test('a hotfix needs its exact version installed', async (t) => {
  const dir = tempState(t, 'ovb-special-');
  const src = path.join(dir, 'src');
  mkdirSync(path.join(src, 'CONTROL'), { recursive: true });
  mkdirSync(path.join(src, 'usr/share/fix'), { recursive: true });
  writeFileSync(path.join(src, 'usr/share/fix/patch'), 'fixed\n');
  writeFileSync(path.join(src, 'CONTROL/control'), 'Package: webapp-fix1\nVersion: 1\nArchitecture: all\nTags: hotfix, security\nDepends: busybox, webapp (= 1.0-2), other | alt (= 3)\n');
  const info = await openPackage((await buildPackage(src, { outDir: dir })).file);
  const c = classifyPackage(info.control);
  t.same(c, { kind: 'hotfix', needs: [{ name: 'webapp', version: '1.0-2' }] });
  if (c.kind !== 'hotfix') return;
  t.same(codeOf(() => checkHotfix(c.needs, [record('web', 'webapp', '1.0-2')], 'webapp-fix1')), {}, 'the exact version: accepted');
  t.same(codeOf(() => checkHotfix(c.needs, [record('web', 'webapp', '1.00-2')], 'webapp-fix1')), {}, 'dpkg-equal is equal');
  t.match(codeOf(() => checkHotfix(c.needs, [record('web', 'webapp', '1.0-3'), record('w2', 'webapp', '0.9')], 'webapp-fix1')),
    { code: 'PKG_HOTFIX_MISMATCH', variable: 'Depends', message: /for webapp 1\.0-2; installed: 1\.0-3 \(web\), 0\.9 \(w2\)/ });
  t.match(codeOf(() => checkHotfix(c.needs, [], 'webapp-fix1')), { code: 'PKG_HOTFIX_MISMATCH', message: /not installed/ });
  t.match(codeOf(() => classifyPackage(control({ Package: 'fix', Tags: 'hotfix', Depends: 'webapp (>= 1)' }))), { code: 'PKG_BAD_CONTROL', variable: 'Depends' });
  t.same(exactDependencies(control({ Package: 'x', Depends: 'a (= 1:2.0~rc1), b:amd64 (= 3)' })), [{ name: 'a', version: '1:2.0~rc1' }, { name: 'b', version: '3' }]);
  t.same(classifyPackage(control({ Package: 'plain', Tags: 'removable, hotfixes' })), { kind: 'plain' }, 'only the exact tags count');
});
