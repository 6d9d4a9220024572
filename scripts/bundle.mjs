#!/usr/bin/env node
// npm run build:bundle: each command (scripts/commands.mjs) as one ESM file in
// dist/bin, so that a command loads one file instead of ~60 modules. One file,
// not shared chunks: measured, each chunk a command imports costs it more than
// the bytes it saves. What is heavy and rarely needed stays in node_modules and
// is loaded only on the path that uses it: execa (import()ed for hooks and `!`
// values), pino, pino-pretty and chokidar (overlay-watch; pino loads its parts
// by path, so it is not bundled anyway).
// Writes dist/bin/meta.json (esbuild's metafile: which input went into which
// output), which test/bundle.test.ts reads.
import { build } from 'esbuild';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { commands, ROOT } from './commands.mjs';

// dist/bin sits as deep as dist/subhost, so findNative()'s path from import.meta.url
// (../../src/native/build) holds in the bundle too.
const OUT = path.join(ROOT, 'dist/bin');
const EXTERNAL = ['execa', 'pino', 'pino-pretty', 'chokidar'];

/** Each entry is `runMain(main)` of the command's src/cli module, as the old stubs did. */
const entries = {
  name: 'command-entry',
  setup(b) {
    b.onResolve({ filter: /^command-entry:/ }, (a) => ({ path: a.path.slice('command-entry:'.length), namespace: 'command-entry' }));
    b.onLoad({ filter: /.*/, namespace: 'command-entry' }, (a) => ({
      contents: `import { main } from ${JSON.stringify(a.path)};\nimport { runMain } from ${JSON.stringify(path.join(ROOT, 'src/cli/io.ts'))};\nrunMain(main);\n`,
      resolveDir: ROOT,
      loader: 'js',
    }));
  },
};

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
const result = await build({
  entryPoints: commands().map((c) => ({ in: `command-entry:${c.cli}`, out: c.name })),
  outdir: OUT,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // Bundled CommonJS dependencies call require() for Node's own modules.
  banner: { js: "import { createRequire as __ovbCreateRequire } from 'node:module'; const require = __ovbCreateRequire(import.meta.url);" },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
  plugins: [entries],
});
writeFileSync(path.join(OUT, 'meta.json'), JSON.stringify(result.metafile, null, 1) + '\n');
