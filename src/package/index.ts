export * from './types.js';
export * from './ar.js';
export type { TrustedKey } from './keys.js';
export * from './version.js';
export * from './control.js';
