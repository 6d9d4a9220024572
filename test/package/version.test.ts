// dpkg's version order, checked pair by pair against `dpkg --compare-versions` itself.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { compareVersions, parseVersion } from '../../src/package/version.js';
import { Rng } from '../fixtures/fuzz/prng.js';

const CLASSIC: [string, string][] = [
  ['1.0~rc1', '1.0'], ['1:0', '9'], ['1.0-1', '1.0'], ['0:1.0', '1.0'], ['1.0~', '1.0'],
  ['1.0~~', '1.0~'], ['1.0~~a', '1.0~'], ['1.0a', '1.0'], ['1.0+', '1.0a'], ['1.0.', '1.0+'],
  ['1.00', '1.0'], ['1.010', '1.9'], ['2.0-1ubuntu1', '2.0-1'], ['2.0-1~bpo1', '2.0-1'],
  ['1:1.2-3', '1:1.2-3'], ['10', '9'], ['1.2.3', '1.2.10'], ['0.0.0', '0'], ['1-1-1', '1-1'],
  ['1:2:3', '1:2'], ['2.30-4+deb12u1', '2.30-4'], ['7.88.1-10+deb12u5', '7.88.1-10+deb12u12'],
  ['1.0-0', '1.0'], ['1.0', '1.0'], ['0001', '1'], ['1.0-01', '1.0-1'],
];

/** Versions of the shapes dpkg sees: epochs, ~ and + suffixes, letters, revisions. */
function generated(rng: Rng, n: number): string[] {
  const out: string[] = [];
  const piece = () => rng.weighted<() => string>([
    [5, () => String(rng.int(0, 12))],
    [2, () => String(rng.int(0, 3)).padStart(rng.int(1, 3), '0')],
    [2, () => rng.pick(['a', 'b', 'rc', 'beta', 'Z', 'z'])],
    [2, () => rng.pick(['~', '~~', '+', '.', '~rc', '+dfsg', '.0'])],
  ])();
  for (let i = 0; i < n; i += 1) {
    let up = String(rng.int(0, 5));
    for (let k = rng.int(0, 4); k > 0; k -= 1) up += piece();
    let v = rng.chance(0.2) ? `${rng.int(0, 2)}:${up}` : up;
    if (rng.chance(0.4)) v += `-${rng.int(0, 3)}${rng.chance(0.3) ? rng.pick(['~bpo1', '+b1', 'ubuntu1', '.1']) : ''}`;
    out.push(v);
  }
  return out;
}

function dpkgOrder(pairs: [string, string][]): number[] {
  const script = 'while read -r a b; do if dpkg --compare-versions "$a" lt "$b"; then echo -1; '
    + 'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
  const out = execFileSync('bash', ['-c', script], { input: pairs.map(([a, b]) => `${a} ${b}\n`).join(''), encoding: 'utf8' });
  return out.trim().split('\n').map(Number);
}

t.test('compareVersions agrees with dpkg --compare-versions on classic and generated pairs', async (t) => {
  const rng = new Rng(20261123);
  const pool = generated(rng, 300);
  const pairs: [string, string][] = [...CLASSIC, ...CLASSIC.map(([a, b]) => [b, a] as [string, string])];
  for (let i = 0; i < 400; i += 1) pairs.push([rng.pick(pool), rng.pick(pool)]);
  const expected = dpkgOrder(pairs);
  let agree = 0;
  pairs.forEach(([a, b], i) => {
    const got = compareVersions(a, b);
    if (got === expected[i]) agree += 1;
    else t.fail(`${a} vs ${b}: dpkg says ${expected[i]}, we say ${got}`);
  });
  t.equal(agree, pairs.length, `${pairs.length} pairs agree`);
  t.equal(compareVersions('1.0~rc1', '1.0'), -1);
  t.equal(compareVersions('1:0', '9'), 1);
  t.equal(compareVersions('0:1.0', '1.0'), 0);
});

t.test('parseVersion splits epoch, upstream and revision', async (t) => {
  t.same(parseVersion('2:1.2-3-4'), { epoch: 2, upstream: '1.2-3', revision: '4' });
  t.same(parseVersion('1.0'), { epoch: 0, upstream: '1.0', revision: '' });
});

t.test('invalid versions are PKG_BAD_VERSION saying why', async (t) => {
  const cases: [string, RegExp][] = [
    ['', /empty/], ['1 .0', /white space/], ['a:1', /epoch/], ['1:', /after the colon/], ['1.0-', /revision is empty/],
    ['abc', /start with a digit/], ['1.0_1', /invalid character/], ['1.0-a_b', /revision/], ['-1', /upstream version is empty/],
  ];
  for (const [v, why] of cases) {
    t.throws(() => parseVersion(v), { code: 'PKG_BAD_VERSION', message: why }, JSON.stringify(v));
    t.throws(() => compareVersions(v, '1'), { code: 'PKG_BAD_VERSION' });
  }
});
