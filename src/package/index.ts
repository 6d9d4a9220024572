export * from './types.js';
export * from './ar.js';
export type { TrustedKey } from './keys.js';
export * from './version.js';
export * from './control.js';
export { openPackage } from './open.js';
export { verifyPackage, type VerifyOptions } from './verify.js';
export { unpackPackage, type UnpackOptions, type UnpackResult } from './unpack.js';
export {
  parsePublicKey, loadTrustedKeys, verifySignature, verifyDetachedFile, signData, signFile, checkSigningKey,
  type VerifyResult, type WholeFileOptions,
} from './keys.js';
export { buildPackage, buildRemovalPackage, packageFileName, type BuildOptions, type BuildResult, type RemovalOptions } from './build.js';
export { signPackage, type SignResult } from './sign.js';
export { readPkgConfig, parsePkgConfig, defaultPkgConfig, DEFAULT_PKG_CONFIG, PKG_CONFIG_ENV, type PkgConfig, type ReadPkgConfigOptions } from './config.js';
