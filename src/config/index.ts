export type {
  Assignment, Cable, KnownVariable, Origin, RootVariant, Share, SubhostConfig, VethCable, VlanCable, Warning,
} from './types.js';
export { KNOWN_VARIABLES } from './types.js';
export { readConfig, defaultName, type ReadConfigOptions } from './read.js';
export { parseConfigText, readConfigFile, MAX_CONFIG_BYTES, REPEATABLE_VARIABLES, type ParsedConfigText } from './parse.js';
export { evaluateBang, isBangValue, DEFAULT_BANG_TIMEOUT_MS, type BangOptions } from './bang.js';
export { parseCables, parseMac, type ParsedCables } from './cables.js';
export { ifnameProblem, MAX_IFNAME_BYTES } from './ifname.js';
export {
  checkName, parseRamSize, parseStart, parseStopTimeout, parseRun,
  MAX_NAME_LENGTH, DEFAULT_START, DEFAULT_RAM_SIZE, DEFAULT_STOP_TIMEOUT,
} from './values.js';
export { checkConfigSafety, type SafetyOptions } from './safety.js';
export { resolveRootLayout, rootVariant, type RootLayout, type RootLayoutInput, type PathValue } from './root.js';
export { isDeviceNode, resolveShare, type ShareInput } from './shares.js';
export { configDigest } from './digest.js';
export { checkHookSafety } from './hook-safety.js';
