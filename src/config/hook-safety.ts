import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { OverlayBootError } from '../errors.js';
import { checkConfigSafety } from './safety.js';
import type { KnownVariable, SubhostConfig } from './types.js';

/**
 * Hooks and the UPPER program run as root like the config's own '!' values, so
 * a hook file that others could change is refused for the same reason: the
 * first word of PREMOUNT, POSTMOUNT and INIT when it names a file, and UPPER
 * when it is a program.
 */
export async function checkHookSafety(config: SubhostConfig): Promise<void> {
  const files: Array<[KnownVariable, string]> = [];
  for (const v of ['PREMOUNT', 'POSTMOUNT', 'INIT'] as const) {
    const cmd = v === 'PREMOUNT' ? config.premount : v === 'POSTMOUNT' ? config.postmount : config.init;
    const first = cmd?.trim().split(/\s+/)[0];
    if (!first || !first.includes('/')) continue;
    const file = path.resolve(config.base, first);
    if (existsSync(file) && statSync(file).isFile()) files.push([v, file]);
  }
  if (config.upperProgram) files.push(['UPPER', config.upperProgram]);
  for (const [variable, file] of files) {
    try {
      await checkConfigSafety(file);
    } catch (e) {
      const why = e instanceof OverlayBootError ? e.found ?? e.message : String(e);
      throw new OverlayBootError('CONFIG_UNSAFE', `refusing ${variable} program ${file}, which others could change: ${why}`, {
        file: config.file, line: config.origins[variable]?.line, variable, found: file,
      });
    }
  }
}
