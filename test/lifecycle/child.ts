// Runs TypeScript ES-module code in a child node process, through the same loader tap uses.
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const LOADER = fileURLToPath(new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url));

/** The absolute path of a source module, for `import` in child code. */
export function srcModule(rel: string): string {
  return JSON.stringify(fileURLToPath(new URL(`../../src/${rel}`, import.meta.url)));
}

function argv(code: string, args: string[]): string[] {
  return ['--import', LOADER, '--input-type=module', '-e', code, '--', ...args];
}

/** Runs `code` to its end (60 s at most); `process.argv[1]...` are `args`. */
export function runChild(code: string, args: string[] = []): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, argv(code, args), { encoding: 'utf8', timeout: 60_000 });
}

/** Starts `code` in the background; `process.argv[1]...` are `args`. */
export function startChild(code: string, args: string[] = []): ChildProcess {
  return spawn(process.execPath, argv(code, args), { stdio: ['ignore', 'pipe', 'pipe'] });
}
