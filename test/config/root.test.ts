import t from 'tap';
import path from 'node:path';
import { mkdirSync, writeFileSync, realpathSync } from 'node:fs';
import { resolveRootLayout, rootVariant, type PathValue } from '../../src/config/root.js';
import { tempDir } from '../fixtures/config/helpers.js';

const v = (value: string, variable: string): PathValue => ({ value, where: { file: '/r.conf', variable, line: 1 } });

t.test('rootVariant follows the spec\'s three cases', async (t) => {
  const cases: Array<[{ live: string; upper?: string; lower: string }, string]> = [
    [{ live: '/a', upper: '/u', lower: '/' }, 'overlay'],
    [{ live: '/', upper: '/u', lower: '/' }, 'premounted'],
    [{ live: '/', upper: '/', lower: '/' }, 'premounted'],
    [{ live: '/a', upper: '/l', lower: '/l' }, 'bind'],
    [{ live: '/a', lower: '/l' }, 'overlay'],
  ];
  for (const [layout, variant] of cases) t.equal(rootVariant(layout), variant, JSON.stringify(layout));
});

t.test('resolveRootLayout', async (t) => {
  const base = realpathSync(tempDir(t));
  for (const d of ['live', 'root', 'work', 'lower']) mkdirSync(path.join(base, d));
  writeFileSync(path.join(base, 'prog'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(base, 'plain'), '', { mode: 0o644 });
  const input = (upper: string, work = 'work', live = 'live', lower = 'lower') => ({
    base,
    live: v(live, 'LIVE'),
    upper: v(upper, 'UPPER'),
    work: v(work, 'WORK'),
    lower: v(lower, 'LOWER'),
  });

  const ok = await resolveRootLayout(input('root'));
  t.same(ok, {
    layout: { live: `${base}/live`, lower: `${base}/lower`, upper: `${base}/root`, work: `${base}/work`, rootVariant: 'overlay' },
    errors: [],
  });
  const prog = await resolveRootLayout(input('prog'));
  t.same(prog.errors, []);
  t.match(prog.layout, { upperProgram: `${base}/prog`, upper: undefined, rootVariant: 'overlay' });
  const plain = await resolveRootLayout(input('plain'));
  t.match(plain.errors, [{ code: 'CONFIG_BAD_PATH', variable: 'UPPER', message: /neither a directory nor an executable/ }]);
  const bind = await resolveRootLayout(input('lower', 'absent'));
  t.same(bind.errors, [], 'WORK is not needed for a bind root');
  t.equal(bind.layout.work, `${base}/absent`);
  const several = await resolveRootLayout(input('x', 'y', 'z', 'w'));
  t.same(several.errors.map((e) => e.variable), ['LIVE', 'LOWER', 'UPPER', 'WORK'], 'every path error gathered');
  const otherFs = await resolveRootLayout(input('root', '/proc'));
  t.match(otherFs.errors, [{ code: 'CONFIG_NOT_SAME_FS', variable: 'WORK' }]);
  const progOtherFs = await resolveRootLayout(input('prog', '/proc'));
  t.same(progOtherFs.errors, [], "a program's upper directory is only known at boot, so its filesystem is checked then");
});
