// The commands, from package.json's "bin": a command `overlay-X` runs main() of
// src/cli/X.ts, through the stub bin/overlay-X.js, which imports the bundle
// dist/bin/overlay-X.mjs (scripts/bundle.mjs). A new command is one line in "bin".
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * @returns {Array<{ name: string, cli: string, stub: string, bundle: string }>} absolute paths
 */
export function commands() {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  return Object.keys(pkg.bin).map((name) => ({
    name,
    cli: path.join(ROOT, 'src/cli', `${name.replace(/^overlay-/, '')}.ts`),
    stub: path.join(ROOT, 'bin', `${name}.js`),
    bundle: path.join(ROOT, 'dist/bin', `${name}.mjs`),
  }));
}
