export * from './types.js';
export * from './ar.js';
export type { TrustedKey } from './keys.js';
export * from './version.js';
export * from './control.js';
export { openPackage } from './open.js';
export { verifyPackage, type VerifyOptions } from './verify.js';
export { unpackPackage, type UnpackOptions, type UnpackResult } from './unpack.js';
