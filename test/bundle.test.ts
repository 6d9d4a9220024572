// The commands run from one bundled file each (scripts/bundle.mjs, run by npm run build):
// every stub runs its bundle, and a bundle carries only the dependencies its command uses.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
const COMMANDS = Object.keys(pkg.bin);

/** The heavy dependencies, and the only command that may load them at start-up. */
const HEAVY = ['pino', 'pino-pretty', 'chokidar', 'execa'];
const NEEDS: Record<string, string[]> = { 'overlay-watch': ['pino', 'chokidar'] };

interface Metafile {
  outputs: Record<string, {
    entryPoint?: string;
    inputs: Record<string, unknown>;
    imports: Array<{ path: string; kind: string; external?: boolean }>;
  }>;
}
const META = path.join(ROOT, 'dist/bin/meta.json');

t.test('each bin stub imports its bundle and runs it', (t) => {
  for (const name of COMMANDS) {
    const stub = path.join(ROOT, 'bin', `${name}.js`);
    t.ok(existsSync(stub), `${name}: bin/${name}.js`);
    // the resident daemon runs with a small young generation and two malloc arenas, so that
    // its memory stays flat over thousands of operations (bench/daemon.js)
    const shebang = name === 'overlay-pkgd' ? '#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --max-semi-space-size=1 --optimize-for-size' : '#!/usr/bin/env node';
    t.equal(readFileSync(stub, 'utf8'), `${shebang}\nimport '../dist/bin/${name}.mjs';\n`, `${name}: the stub imports dist/bin/${name}.mjs`);
    t.ok(existsSync(path.join(ROOT, 'dist/bin', `${name}.mjs`)), `${name}: the bundle is built`);
    const r = spawnSync(process.execPath, [stub, '--help'], { encoding: 'utf8' });
    t.equal(r.status, 0, `${name} --help exits 0 ${r.stderr}`);
    t.match(r.stdout, /^usage: /, `${name} --help prints its usage`);
  }
  t.end();
});

t.test('a bundle holds no heavy dependency, and imports one at start-up only where its command needs it', (t) => {
  const meta = JSON.parse(readFileSync(META, 'utf8')) as Metafile;
  const outputs = Object.entries(meta.outputs).filter(([file]) => file.endsWith('.mjs'));
  t.same(outputs.map(([file]) => path.basename(file, '.mjs')).sort(), [...COMMANDS].sort(), 'one bundle a command');
  for (const [file, out] of outputs) {
    const name = path.basename(file, '.mjs');
    const bundled = Object.keys(out.inputs).filter((i) => HEAVY.some((h) => i.includes(`node_modules/${h}/`)));
    t.same(bundled, [], `${name}: no code of ${HEAVY.join(', ')} inside`);
    const atStart = out.imports.filter((i) => i.kind === 'import-statement' && HEAVY.includes(i.path)).map((i) => i.path);
    t.same([...new Set(atStart)].sort(), [...(NEEDS[name] ?? [])].sort(), `${name}: loads ${atStart.length ? atStart.join(', ') : 'none of them'} at start-up`);
  }
  t.end();
});
