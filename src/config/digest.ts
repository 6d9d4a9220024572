import type { SubhostConfig } from './types.js';

/**
 * A digest of what a config means, not how it is written: comments, order of
 * lines and warnings do not change it, a changed value does. The watcher
 * restarts a subhost only when this changes.
 */
export function configDigest(config: SubhostConfig): string {
  const { origins: _o, warnings: _w, ...meaning } = config;
  // node:crypto is loaded here, not imported: most commands never digest and skip its ~4 ms.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(JSON.stringify(meaning)).digest('hex').slice(0, 32);
}
