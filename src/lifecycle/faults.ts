/**
 * The TR-069 / USP fault codes an operation reports (LIFECYCLE.md "Fault codes"), and
 * the mapping from the library's OverlayBootError codes to them. An operation's result
 * carries `Fault: { FaultCode, FaultString }` built by {@link faultOf}.
 */
import { isOverlayBootError, type ErrorCode } from '../errors.js';

/** One fault: its TR-069 code, the USP 7xxx equivalent where USP has one, and its meaning. */
export interface FaultDefinition {
  /** TR-069 code (9xxx); 7036 has no TR-069 code and is given as itself. */
  tr069: number;
  /** USP code (7xxx), when USP defines one. */
  usp?: number;
  /** The standard's short meaning, used as FaultString when nothing better is known. */
  meaning: string;
}

/** Every fault of LIFECYCLE.md, by a name the code uses. */
export const FAULTS = {
  REQUEST_DENIED: { tr069: 9001, usp: 7002, meaning: 'Request denied' },
  INVALID_ARGUMENTS: { tr069: 9003, usp: 7004, meaning: 'Invalid arguments' },
  SERVER_AUTHENTICATION: { tr069: 9012, meaning: 'File transfer server authentication failure' },
  UNSUPPORTED_PROTOCOL: { tr069: 9013, meaning: 'Unsupported protocol for file transfer' },
  SERVER_UNREACHABLE: { tr069: 9015, usp: 7033, meaning: 'File transfer failure: unable to contact file server' },
  FILE_ACCESS: { tr069: 9016, meaning: 'File transfer failure: unable to access file' },
  DOWNLOAD_INCOMPLETE: { tr069: 9017, meaning: 'File transfer failure: unable to complete download' },
  FILE_CORRUPTED: { tr069: 9018, usp: 7035, meaning: 'File transfer failure: file corrupted' },
  BAD_SIGNATURE: { tr069: 7036, usp: 7036, meaning: 'Invalid deployment unit signature' },
  INVALID_UUID: { tr069: 9022, meaning: 'Invalid UUID format' },
  UNKNOWN_EE: { tr069: 9023, usp: 7223, meaning: 'Unknown execution environment' },
  DISABLED_EE: { tr069: 9024, meaning: 'Disabled execution environment' },
  DU_EE_MISMATCH: { tr069: 9025, usp: 7225, meaning: 'Deployment unit to execution environment mismatch' },
  DUPLICATE_DU: { tr069: 9026, usp: 7226, meaning: 'Duplicate deployment unit' },
  RESOURCES_EXCEEDED: { tr069: 9027, usp: 7227, meaning: 'System resources exceeded' },
  UNKNOWN_DU: { tr069: 9028, meaning: 'Unknown deployment unit' },
  INVALID_DU_STATE: { tr069: 9029, usp: 7229, meaning: 'Invalid deployment unit state' },
  DOWNGRADE: { tr069: 9030, meaning: 'Invalid deployment unit update: downgrade not permitted' },
  VERSION_NOT_SPECIFIED: { tr069: 9031, meaning: 'Invalid deployment unit update: version not specified' },
  VERSION_EXISTS: { tr069: 9032, meaning: 'Invalid deployment unit update: version already exists' },
} as const satisfies Record<string, FaultDefinition>;

/** A fault's name in {@link FAULTS}. */
export type FaultName = keyof typeof FAULTS;

/** The `Fault` object of an operation result, with TR-181 key names. */
export interface Fault {
  FaultCode: number;
  FaultString: string;
}

/**
 * Which fault each library error code is reported as. Codes not listed are internal
 * failures of the device and report {@link FAULTS.REQUEST_DENIED} (9001): the request
 * could not be carried out, and the FaultString says why.
 */
export const ERROR_FAULTS: Partial<Record<ErrorCode, FaultName>> = {
  PKG_UNREADABLE: 'FILE_ACCESS',
  PKG_FORMAT: 'FILE_CORRUPTED',
  PKG_CORRUPT: 'FILE_CORRUPTED',
  PKG_MEMBER_MISSING: 'FILE_CORRUPTED',
  PKG_MEMBER_DUPLICATE: 'FILE_CORRUPTED',
  PKG_BAD_CONTROL: 'FILE_CORRUPTED',
  PKG_BAD_VERSION: 'FILE_CORRUPTED',
  PKG_UNSAFE_PATH: 'FILE_CORRUPTED',
  PKG_UNSAFE_LINK: 'FILE_CORRUPTED',
  PKG_DEVICE: 'FILE_CORRUPTED',
  PKG_SETID: 'FILE_CORRUPTED',
  PKG_DECRYPT: 'FILE_CORRUPTED',
  PKG_CHECKSUM: 'FILE_CORRUPTED',
  PKG_CHECKSUMS_MEMBERS: 'FILE_CORRUPTED',
  PKG_TOO_LARGE: 'RESOURCES_EXCEEDED',
  PKG_UNSIGNED: 'BAD_SIGNATURE',
  PKG_BAD_SIGNATURE: 'BAD_SIGNATURE',
  PKG_UNKNOWN_KEY: 'BAD_SIGNATURE',
  PKG_TEMPLATE_UNKNOWN: 'UNKNOWN_EE',
  // An EE whose template does not check is listed with Status Error; TR-069 has no
  // fault for a broken EE, and "disabled" is what it is in effect.
  PKG_TEMPLATE_INVALID: 'DISABLED_EE',
  PKG_ARCHITECTURE: 'DU_EE_MISMATCH',
  PKG_EE_DISABLED: 'DISABLED_EE',
  PKG_DUPLICATE: 'DUPLICATE_DU',
  PKG_NO_SPACE: 'RESOURCES_EXCEEDED',
  // A preinst or postinst that fails inside the EE says the DU does not fit that EE
  // (what it needs is not there): TR-069 has no fault for a failed script, 9025 is closest.
  PKG_SCRIPT_FAILED: 'DU_EE_MISMATCH',
  PKG_UNKNOWN_DU: 'UNKNOWN_DU',
  PKG_NAME_TAKEN: 'INVALID_ARGUMENTS',
  // A bundle asking for what the EE cannot give does not fit the EE.
  PKG_OCI_UNSUPPORTED: 'DU_EE_MISMATCH',
  // TR-069 has no fault for "that file is another package": the request's arguments do
  // not belong together (DU and file), so 9003.
  PKG_OTHER_PACKAGE: 'INVALID_ARGUMENTS',
  PKG_DOWNGRADE: 'DOWNGRADE',
  PKG_VERSION_EXISTS: 'VERSION_EXISTS',
  // The new version does not run in this EE (its service does not start), as for a failed script.
  PKG_ROLLED_BACK: 'DU_EE_MISMATCH',
  // Depends not satisfied by the installed DUs: the request cannot be carried out as asked.
  PKG_HOTFIX_MISMATCH: 'REQUEST_DENIED',
  // TR-069 has no fault for an unknown EU (9028 is the DU's): the EUID argument is invalid.
  PKG_UNKNOWN_EU: 'INVALID_ARGUMENTS',
  PKG_EU_STATE: 'INVALID_DU_STATE',
  // An EU that does not start or stop: the request could not be carried out (the EU's
  // ExecutionFaultCode says FailureOnStart or FailureOnStop).
  PKG_EU_FAILED: 'REQUEST_DENIED',
  // Downloads (download.ts). The URL itself is an argument of the request.
  PKG_DOWNLOAD_BAD_URL: 'INVALID_ARGUMENTS',
  PKG_DOWNLOAD_PROTOCOL: 'UNSUPPORTED_PROTOCOL',
  PKG_DOWNLOAD_AUTH: 'SERVER_AUTHENTICATION',
  // A certificate that does not verify is the server failing to authenticate itself.
  PKG_DOWNLOAD_TLS: 'SERVER_AUTHENTICATION',
  PKG_DOWNLOAD_UNREACHABLE: 'SERVER_UNREACHABLE',
  PKG_DOWNLOAD_HTTP: 'FILE_ACCESS',
  PKG_DOWNLOAD_INCOMPLETE: 'DOWNLOAD_INCOMPLETE',
  // A timeout once the server has answered is a transfer that did not complete (one
  // with no answer at all is raised as PKG_DOWNLOAD_UNREACHABLE: 9015).
  PKG_DOWNLOAD_TIMEOUT: 'DOWNLOAD_INCOMPLETE',
  // The cap is this device's limit, like the unpack cap (PKG_TOO_LARGE): 9027 tells the
  // ACS that the file is too big for the device and a retry will not help, which 9017
  // (a transfer that broke) would not.
  PKG_DOWNLOAD_TOO_LARGE: 'RESOURCES_EXCEEDED',
  PKG_DOWNLOAD_NO_SPACE: 'RESOURCES_EXCEEDED',
  // PKG_DEPENDS_UNRESOLVED, PKG_DEPENDS_CYCLE and PKG_STATUS_UNREADABLE stay 9001: TR-069
  // has no fault for an unmet dependency (TR-181 reports it as Resolved=false), and the
  // FaultString names the relations.
  USAGE: 'INVALID_ARGUMENTS',
};

/** The TR-069 code of a fault (what `FaultCode` carries; USP agents translate with `usp`). */
export function faultCode(name: FaultName): number {
  return FAULTS[name].tr069;
}

/** A `Fault` object: the named fault, with `detail` as FaultString when given. */
export function fault(name: FaultName, detail?: string): Fault {
  return { FaultCode: FAULTS[name].tr069, FaultString: detail ?? FAULTS[name].meaning };
}

/**
 * The `Fault` an operation reports for a thrown error: an OverlayBootError by its code
 * (see {@link ERROR_FAULTS}) with its described message; anything else is 9001 with its
 * message, since only our own codes say whose fault it was.
 */
export function faultOf(error: unknown): Fault {
  if (isOverlayBootError(error)) return fault(ERROR_FAULTS[error.code] ?? 'REQUEST_DENIED', `${error.code}: ${error.describe()}`);
  return fault('REQUEST_DENIED', error instanceof Error ? error.message : String(error));
}
