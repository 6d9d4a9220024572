// The documentation must not drift from the code: every error code, command and
// man page the package declares is documented and exists.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { ERROR_CODES } from '../src/errors.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

t.test('every error code is listed in overlay-boot(8), or overlay-pkg(8) for the package codes', async (t) => {
  const boot = readFileSync(path.join(ROOT, 'man/overlay-boot.8'), 'utf8');
  const pkgMan = readFileSync(path.join(ROOT, 'man/overlay-pkg.8'), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) {
    t.match(code.startsWith('PKG_') ? pkgMan : boot, new RegExp(`^${code}\\t`, 'm'), code);
  }
});

t.test('every command has a bin, a man page and a README row', async (t) => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  for (const [cmd, bin] of Object.entries(pkg.bin as Record<string, string>)) {
    t.ok(existsSync(path.join(ROOT, bin)), `${cmd}: ${bin} exists`);
    t.ok((pkg.man as string[]).includes(`man/${cmd}.8`), `${cmd}: man page declared`);
    t.match(readme, new RegExp('`' + cmd + '[ `]'), `${cmd}: in the README`);
  }
  for (const m of pkg.man as string[]) {
    t.ok(existsSync(path.join(ROOT, m)), `${m} exists`);
    const r = spawnSync('groff', ['-ww', '-man', '-Tutf8', path.join(ROOT, m)], { encoding: 'utf8' });
    if (r.error) continue; // groff not installed: the page is still checked for existence
    t.equal(r.stderr, '', `${m} renders without warnings`);
  }
});
