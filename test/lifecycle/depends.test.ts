// Relations against real status databases: this machine's own dpkg status, and opkg
// status files written here; the install order of nested packages.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  checkRelations, findConflicts, formatGroup, hasTag, orderNestedPackages, parseRelations, parseStatusDatabase,
  readLowerPackages, relationsError, resolveDepends, type AvailablePackage, type NestedPackage,
} from '../../src/lifecycle/depends.js';
import { faultOf } from '../../src/lifecycle/faults.js';
import { tempState } from './temp.js';

const DPKG_STATUS = '/var/lib/dpkg/status';
const hasDpkg = existsSync(DPKG_STATUS);

/** A LOWER root holding the given files (relative path → content). */
function lowerRoot(t: Parameters<typeof tempState>[0], files: Record<string, string>): string {
  const root = tempState(t, 'ovb-lower-');
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    writeFileSync(path.join(root, rel), text);
  }
  return root;
}

const OPKG_STATUS = [
  'Package: libc',
  'Version: 1.2.4-4',
  'Depends: libgcc1',
  'Status: install user installed',
  'Architecture: x86_64',
  'Installed-Time: 1700000000',
  '',
  'Package: busybox',
  'Version: 1.36.1-1',
  'Provides: sh, ash (= 1.36.1)',
  'Status: install ok installed',
  'Architecture: x86_64',
  '',
  'Package: removed-one',
  'Version: 1.0',
  'Status: deinstall ok not-installed',
  '',
  'Package: broken-one',
  'Version: 2.0',
  'Status: install reinstreq installed',
  '',
  'Package: held',
  'Version: 3.0',
  'Status: hold ok installed',
  '',
].join('\n');

t.test('parsing relations: groups, alternatives, versions, arch qualifiers', async (t) => {
  const groups = parseRelations('libc6 (>= 2.30), python3:any | python3.11 (<<3.12~), \n foo (= 1:2.0-1),, bar (< 2), baz (> 1)');
  t.same(groups, [
    [{ name: 'libc6', op: '>=', version: '2.30' }],
    [{ name: 'python3', arch: 'any' }, { name: 'python3.11', op: '<<', version: '3.12~' }],
    [{ name: 'foo', op: '=', version: '1:2.0-1' }],
    [{ name: 'bar', op: '<=', version: '2' }],
    [{ name: 'baz', op: '>=', version: '1' }],
  ]);
  t.equal(formatGroup(groups[1]!), 'python3:any | python3.11 (<< 3.12~)');
  t.same(parseRelations(''), []);
  for (const bad of ['foo (>= )', 'foo (~= 1)', 'foo [amd64]', 'foo <!nocheck>', 'a | | b', 'foo (>= 1.0) (<< 2)', 'foo (>= a1)', '-foo']) {
    t.throws(() => parseRelations(bad, { file: '/x.ipk' }), { code: 'PKG_BAD_CONTROL', variable: 'Depends', file: '/x.ipk' }, bad);
  }
  t.throws(() => parseRelations('x (', { field: 'Conflicts' }), { code: 'PKG_BAD_CONTROL', variable: 'Conflicts' });
});

t.test("this machine's dpkg status database", { skip: !hasDpkg && 'no /var/lib/dpkg/status' }, async (t) => {
  const lower = await readLowerPackages('/');
  const libc = lower.find((p) => p.Package === 'libc6');
  t.ok(libc, 'libc6 is installed here');
  const installed = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libc6'], { encoding: 'utf8' });
  if (installed.status === 0) t.equal(libc!.Version, installed.stdout, 'the version dpkg-query reports');
  t.equal(libc!.source, 'LOWER dpkg');
  t.same(resolveDepends('libc6 (>= 2.30)', { lower }), { resolved: true, missing: [] });
  const no = resolveDepends('libc6 (>> 99)', { lower });
  t.equal(no.resolved, false);
  t.same(no.missing, [`libc6 (>> 99) [found libc6 ${libc!.Version} in LOWER dpkg]`]);
  t.same(resolveDepends(`libc6 (= ${libc!.Version})`, { lower }).resolved, true, 'exact version');
  t.same(resolveDepends(`libc6 (<< ${libc!.Version})`, { lower }).resolved, false, '<< is strict');
  t.same(resolveDepends(`libc6 (<= ${libc!.Version})`, { lower }).resolved, true);
  t.same(resolveDepends('no-such-package-xyz', { lower }).missing, ['no-such-package-xyz'], 'nothing found: just the relation');
  t.same(resolveDepends('no-such-package-xyz | libc6:any', { lower }).resolved, true, 'an alternative');
  // every installed package the status file lists satisfies a relation on its exact version
  const count = lower.filter((p) => resolveDepends(`${p.Package} (= ${p.Version})`, { lower }).resolved).length;
  t.equal(count, lower.length);
  // virtual packages: on Debian, something provides a virtual name (e.g. awk, by mawk)
  const provider = lower.find((p) => p.Provides !== undefined);
  if (provider) {
    const virtual = parseRelations(provider.Provides!, { field: 'Provides' })[0]![0]!;
    t.ok(resolveDepends(virtual.name, { lower }).resolved, `${virtual.name}, provided by ${provider.Package}`);
  }
  // the count of installed stanzas matches dpkg-query's view of "installed"
  const q = spawnSync('dpkg-query', ['-W', '-f', '${db:Status-Status}\n'], { encoding: 'utf8' });
  if (q.status === 0) {
    const present = q.stdout.split('\n').filter((s) => ['installed', 'triggers-pending', 'triggers-awaited'].includes(s)).length;
    t.equal(lower.length, present, 'as many as dpkg counts installed');
  }
});

t.test('an opkg status database; stanzas not installed are left out', async (t) => {
  const root = lowerRoot(t, { 'usr/lib/opkg/status': OPKG_STATUS });
  const lower = await readLowerPackages(root);
  t.same(lower.map((p) => `${p.Package} ${p.Version}`), ['libc 1.2.4-4', 'busybox 1.36.1-1', 'held 3.0']);
  t.ok(lower.every((p) => p.source === 'LOWER opkg'));
  t.same(resolveDepends('libc (>= 1.2), busybox', { lower }), { resolved: true, missing: [] });
  t.same(resolveDepends('removed-one, broken-one', { lower }).missing, ['removed-one', 'broken-one']);
  t.ok(resolveDepends('held (= 3.0)', { lower }).resolved, 'a held package is installed');
  // virtual packages: unversioned Provides satisfies only unversioned relations (dpkg)
  t.ok(resolveDepends('sh', { lower }).resolved);
  t.same(resolveDepends('sh (>= 1)', { lower }).missing, ['sh (>= 1) [found sh (provided by busybox) in LOWER opkg]']);
  t.ok(resolveDepends('ash (>= 1.36)', { lower }).resolved, 'a versioned Provides satisfies by its own version');
  t.notOk(resolveDepends('ash (>> 1.36.1)', { lower }).resolved);
  // Yocto keeps it in var/lib/opkg; the same file through a link is read once
  const yocto = lowerRoot(t, { 'var/lib/opkg/status': OPKG_STATUS });
  mkdirSync(path.join(yocto, 'usr/lib'), { recursive: true });
  symlinkSync('../../var/lib/opkg', path.join(yocto, 'usr/lib/opkg'));
  t.equal((await readLowerPackages(yocto)).length, 3, 'read once');
  t.same(await readLowerPackages(lowerRoot(t, {})), [], 'no database: nothing installed');
});

t.test('status databases are read inside LOWER and capped', async (t) => {
  const escape = lowerRoot(t, {});
  mkdirSync(path.join(escape, 'var/lib/dpkg'), { recursive: true });
  symlinkSync(hasDpkg ? DPKG_STATUS : '/etc/hostname', path.join(escape, 'var/lib/dpkg/status'));
  await t.rejects(readLowerPackages(escape), { code: 'PKG_STATUS_UNREADABLE', message: /outside LOWER/ });
  const big = lowerRoot(t, { 'var/lib/dpkg/status': OPKG_STATUS });
  await t.rejects(readLowerPackages(big, { maxSize: 100 }), { code: 'PKG_STATUS_UNREADABLE', file: path.join(big, 'var/lib/dpkg/status') });
  t.equal((await readLowerPackages(big, { maxSize: OPKG_STATUS.length })).length, 3, 'exactly the cap is read');
  const dir = lowerRoot(t, {});
  mkdirSync(path.join(dir, 'var/lib/dpkg/status'), { recursive: true });
  await t.rejects(readLowerPackages(dir), { code: 'PKG_STATUS_UNREADABLE', message: /not a regular file/ });
  await t.rejects(readLowerPackages(path.join(dir, 'missing')), { code: 'PKG_STATUS_UNREADABLE' });
});

t.test("version relations at their edges, in dpkg's order", async (t) => {
  const at = (v: string): AvailablePackage[] => [{ Package: 'p', Version: v }];
  const cases: [string, string, boolean][] = [
    ['1.0~rc1', 'p (<< 1.0)', true], ['1.0~rc1', 'p (>= 1.0)', false], ['1.0', 'p (>= 1.0~rc1)', true],
    ['1.0', 'p (= 1.0-0)', true], ['1.0-0', 'p (<< 1.0)', false], ['1.0', 'p (= 0:1.0)', true],
    ['1:0.1', 'p (>> 9.9)', true], ['1.0a', 'p (>> 1.0+)', false], ['1.0a', 'p (<< 1.0+)', true],
    ['1.10', 'p (>> 1.9)', true], ['1.0', 'p (<= 1.0)', true], ['1.0', 'p (<< 1.0)', false], ['1.0', 'p (>> 1.0)', false],
    ['1.0', 'p (< 1.0)', true], ['1.0', 'p (> 1.0)', true], ['2.0~~', 'p (<< 2.0~)', true],
  ];
  for (const [have, relation, ok] of cases) t.equal(resolveDepends(relation, { layer: at(have) }).resolved, ok, `${have} ${relation}`);
  // dpkg agrees on each (where dpkg is installed)
  if (spawnSync('dpkg', ['--version']).status === 0) {
    const ops: Record<string, string> = { '<<': 'lt', '<=': 'le', '=': 'eq', '>=': 'ge', '>>': 'gt', '<': 'le', '>': 'ge' };
    for (const [have, relation, ok] of cases) {
      const [, op, want] = /\((\S+) (\S+)\)/.exec(relation)!;
      t.equal(spawnSync('dpkg', ['--compare-versions', have, ops[op!]!, want!]).status === 0, ok, `dpkg: ${have} ${op} ${want}`);
    }
  }
});

t.test('the layer, the installed DUs, Conflicts and the whole check', async (t) => {
  const layer: AvailablePackage[] = [{ Package: 'webapp', Version: '2.0', Provides: 'httpd', source: 'layer' }, { Package: 'webapp-lib', Version: '2.0', source: 'layer' }];
  const dus = [{ Name: 'core', Version: '1.4-2', Subhost: 'core' }];
  t.ok(resolveDepends('webapp-lib (= 2.0)', { layer }).resolved);
  // a hotfix: Depends on an exact version of an installed DU
  t.ok(resolveDepends('core (= 1.4-2)', { dus }).resolved);
  t.same(resolveDepends('core (= 1.4-3)', { dus }).missing, ['core (= 1.4-3) [found core 1.4-2 in DU core]']);
  t.same(findConflicts('httpd, nginx', { layer }, 'webapp'), [], 'a package may conflict with what it provides itself');
  t.same(findConflicts('httpd, webapp-lib (<< 3)', { layer }, 'other'), ['httpd [with webapp 2.0 in layer]', 'webapp-lib (<< 3) [with webapp-lib 2.0 in layer]']);
  const root = lowerRoot(t, { 'usr/lib/opkg/status': OPKG_STATUS });
  const sources = { layer, lower: await readLowerPackages(root), dus };
  const fields = { Package: 'webapp', Version: '2.0', 'Pre-Depends': 'busybox', Depends: 'libc (>= 9), webapp-lib | nothing', Conflicts: 'held', Tags: 'web, hotfix' };
  const report = checkRelations(fields, sources);
  t.same(report, { resolved: false, missing: ['libc (>= 9) [found libc 1.2.4-4 in LOWER opkg]'], conflicts: ['held [with held 3.0 in LOWER opkg]'] });
  const err = relationsError(report, 'webapp', '/x.ipk')!;
  t.equal(err.code, 'PKG_DEPENDS_UNRESOLVED');
  t.equal(err.message, 'webapp needs libc (>= 9) [found libc 1.2.4-4 in LOWER opkg], and conflicts with held [with held 3.0 in LOWER opkg]');
  t.equal(faultOf(err).FaultCode, 9001);
  t.equal(relationsError(checkRelations({ Package: 'x', Depends: 'busybox' }, sources), 'x'), undefined);
  t.ok(hasTag(fields, 'hotfix'));
  t.notOk(hasTag(fields, 'remove'));
  t.notOk(hasTag({}, 'hotfix'));
});

t.test('nested packages are installed dependencies first; a cycle is an error naming it', async (t) => {
  const p = (Package: string, Depends?: string, Provides?: string): NestedPackage => ({ Package, Version: '1.0', Depends, Provides, file: `packages/${Package}.ipk` });
  const names = (list: NestedPackage[]) => list.map((x) => x.Package);
  t.same(names(orderNestedPackages([p('app', 'lib, runtime (>= 1)'), p('lib', 'base'), p('runtime', 'base, libc'), p('base')])), ['base', 'lib', 'runtime', 'app']);
  t.same(names(orderNestedPackages([p('a'), p('b'), p('c')])), ['a', 'b', 'c'], 'no relations: the order given');
  t.same(names(orderNestedPackages([p('app', 'www'), p('server', undefined, 'www')])), ['server', 'app'], 'through Provides');
  t.same(names(orderNestedPackages([p('app', 'lib (>= 2)'), p('lib')])), ['app', 'lib'], 'a version the nested lib does not satisfy is no edge');
  t.same(names(orderNestedPackages([p('self', 'self-virtual', 'self-virtual')])), ['self']);
  t.throws(() => orderNestedPackages([p('x'), p('a', 'b'), p('b', 'c | zzz'), p('c', 'a')]), {
    code: 'PKG_DEPENDS_CYCLE', message: /a -> b -> c -> a$/, file: 'packages/a.ipk',
  });
  t.throws(() => orderNestedPackages([p('a', 'b (>= 1')]), { code: 'PKG_BAD_CONTROL', file: 'packages/a.ipk' });
});

t.test('parseStatusDatabase: continuation lines and odd stanzas', async (t) => {
  const text = readFileSync(hasDpkg ? DPKG_STATUS : '/dev/null', 'utf8');
  if (hasDpkg) t.ok(parseStatusDatabase(text).length > 10);
  t.same(parseStatusDatabase('Package: a\nStatus: install ok installed\n\nVersion: 1\nStatus: install ok installed\n\nPackage: c\nVersion: 1\nStatus: install ok installed\nProvides: x,\n y (= 2)\n'), [
    { Package: 'c', Version: '1', Provides: 'x, y (= 2)' },
  ]);
  t.same(parseStatusDatabase('Package: t\nVersion: 1\nStatus: install ok triggers-pending\n\nPackage: u\nVersion: 1\nStatus: install ok unpacked\n', 'S'), [
    { Package: 't', Version: '1', source: 'S' },
  ]);
});

t.test('a long chain of nested packages is ordered without exhausting the stack', async (t) => {
  const n = 20_000;
  const chain: NestedPackage[] = Array.from({ length: n }, (_, i) => ({ Package: `p${i}`, Version: '1', Depends: i + 1 < n ? `p${i + 1}` : undefined }));
  const order = orderNestedPackages(chain);
  t.equal(order[0]!.Package, `p${n - 1}`);
  t.equal(order[n - 1]!.Package, 'p0');
});
