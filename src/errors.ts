/**
 * One error class for the whole library. The library throws; the CLI maps
 * `code` to a message and an exit status in one place (src/cli/report.ts).
 * Codes are stable: tools may match on them. They are listed in overlay-boot(8).
 */
export const ERROR_CODES = {
  // configuration file
  CONFIG_UNREADABLE: 'the configuration file cannot be read',
  CONFIG_TOO_LARGE: 'the configuration file is too large',
  CONFIG_BINARY: 'the configuration file is not text',
  CONFIG_UNSAFE: 'the configuration file or its directory is writable by someone other than root',
  CONFIG_BASE_MISSING: 'BASE is not set',
  CONFIG_BAD_NAME: 'NAME is not a valid subhost name',
  CONFIG_BAD_PATH: 'a path variable does not name what it must',
  UNPRIV_UNSUPPORTED: 'the config asks for something an unprivileged subhost (PRIVILEGED=no) cannot do',
  IDMAP_EXHAUSTED: 'every id range of the pool for unprivileged subhosts is taken',
  CONFIG_NOT_SAME_FS: 'WORK is not on the same filesystem as UPPER',
  CONFIG_BAD_CABLE: 'a cable specifier is malformed',
  CONFIG_BAD_MAC: 'a MAC address is malformed',
  CONFIG_BAD_VLAN: 'a VLAN tag is out of range or has no carrier cable',
  CONFIG_BAD_SIZE: 'RAM_SIZE is not a size tmpfs accepts',
  CONFIG_BAD_SHARE: 'a SHARE value is malformed',
  CONFIG_BAD_VALUE: 'a variable has a value that is not allowed',
  CONFIG_BANG_FAILED: "a '!' command failed",
  CONFIG_BANG_TIMEOUT: "a '!' command did not finish in time",
  CONFIG_BANG_EMPTY: "a '!' command printed nothing",
  CONFIG_INVALID: 'the configuration has errors',
  // host and boot
  NOT_ROOT: 'this needs root',
  ALREADY_RUNNING: 'the subhost is already running',
  NOT_RUNNING: 'the subhost is not running',
  LOCKED: 'another overlay-boot command holds the subhost lock',
  NATIVE_MISSING: 'the native helper programs are not built',
  BRIDGE_MISSING: 'a bridge named in CABLES does not exist',
  NAME_IN_USE: 'an interface, network namespace or cgroup of that name already exists',
  LIVE_BUSY: 'something is already mounted on LIVE',
  BOOT_TIMEOUT: 'the subhost did not come up in time',
  FAULT_INJECTED: 'a fault was injected for testing (OVERLAY_BOOT_FAIL_STEP)',
  UPPER_PROGRAM_FAILED: 'the UPPER program failed',
  STEP_FAILED: 'a boot step failed',
  HOOK_FAILED: 'a hook command failed',
  SUBHOST_FAILED: 'the subhost failed to start',
  STOP_FAILED: 'the subhost could not be stopped',
  STATE_CORRUPT: 'the runtime state record is unreadable',
  USAGE: 'bad command line',
  INTERNAL: 'internal error',
  // overlay-diskfile
  DISK_UNREADABLE: 'the disk image cannot be read',
  DISK_BAD_TABLE: 'the disk image has no readable partition table',
  DISK_NO_PARTITION: 'the disk image has no partition of that index',
  DISK_MOUNT_FAILED: 'the disk image could not be mounted',
  // packages (overlay-pkg; listed in overlay-pkg(8))
  PKG_UNREADABLE: 'the package file cannot be read',
  PKG_FORMAT: 'the file is not a package of a known format',
  PKG_CORRUPT: 'the package is corrupt or truncated',
  PKG_MEMBER_MISSING: 'a member the package needs is missing',
  PKG_MEMBER_DUPLICATE: 'a member appears twice in the package',
  PKG_BAD_CONTROL: 'the control file is missing a field or has a bad value',
  PKG_BAD_VERSION: 'a version string is not a valid Debian version',
  PKG_UNSAFE_PATH: 'a member path is absolute, contains .., or passes through a symlink',
  PKG_UNSAFE_LINK: 'a hard link points outside the package',
  PKG_DEVICE: 'the package holds a device node and devices are not allowed',
  PKG_SETID: 'the package holds a setuid or setgid file and that is not allowed',
  PKG_TOO_LARGE: 'a member or the unpacked data is larger than the cap',
  PKG_DECRYPT: 'the encrypted package cannot be decrypted with this secret',
  PKG_CHECKSUM: 'a member does not match its checksum',
  PKG_CHECKSUMS_MEMBERS: 'the checksums file does not list exactly the package members',
  PKG_UNSIGNED: 'the package is not signed and a signature is required',
  PKG_BAD_SIGNATURE: 'the signature does not verify',
  PKG_UNKNOWN_KEY: 'the package is signed by a key that is not trusted',
  PKG_BAD_KEY: 'a key file is not a usable key',
  PKG_CONFIG_INVALID: 'the package configuration file has an error',
  PKG_BUILD_FAILED: 'the package cannot be built from that directory',
  // lifecycle (issue 13); PKG_ codes too, as overlay-pkg raises them (listed in overlay-pkg(8))
  PKG_TEMPLATE_UNKNOWN: 'no execution environment template of that name',
  PKG_TEMPLATE_INVALID: 'an execution environment template sets a variable the manager fills, or does not check',
  PKG_STATE_CORRUPT: 'a record, the journal or the history in the state directory is unreadable',
  PKG_STATE_IO: 'the state directory cannot be read or written',
  PKG_IN_FLIGHT: 'an operation is still in flight in the journal and must be recovered first',
  PKG_LOCK_FAILED: 'the state directory lock cannot be taken',
  // install and remove (issue 13)
  PKG_ARCHITECTURE: 'the package is built for another architecture than the host',
  PKG_EE_DISABLED: 'the execution environment is disabled',
  PKG_DUPLICATE: 'that package and version is already installed in that execution environment',
  PKG_NO_SPACE: 'not enough free space on the state directory for the package',
  PKG_SCRIPT_FAILED: 'a maintainer script failed inside the subhost',
  PKG_UNKNOWN_DU: 'no deployment unit of that name or UUID',
  PKG_NAME_TAKEN: 'the subhost NAME is taken by another DU or subhost',
  // OCI bundles, update, removal and hotfix packages (issue 13)
  PKG_OCI_UNSUPPORTED: "an OCI bundle's config.json asks for something a subhost cannot honour",
  PKG_OTHER_PACKAGE: 'the update is a different package than the DU',
  PKG_DOWNGRADE: 'the update is an older version than the installed one',
  PKG_VERSION_EXISTS: 'the update is the version already installed',
  PKG_ROLLED_BACK: 'the update was rolled back: an EU that was Active did not become Active again',
  PKG_HOTFIX_MISMATCH: 'a hotfix does not depend on exactly the installed version of an installed DU',
  // execution units (issue 13)
  PKG_UNKNOWN_EU: 'the DU has no execution unit of that name',
  PKG_EU_STATE: 'the execution unit is in a state that refuses the request (start while Stopping)',
  PKG_EU_FAILED: 'an execution unit did not reach the requested state (Active or Idle) within its timeout',
  // downloads and Depends (issues 13, 14); PKG_ codes, listed in overlay-pkg(8)
  PKG_DOWNLOAD_BAD_URL: 'the package URL is malformed, holds a user name or password, or is a file URL of another host',
  PKG_DOWNLOAD_PROTOCOL: 'the package URL (or a redirect) uses a protocol other than file, http or https',
  PKG_DOWNLOAD_AUTH: 'the download server refused the credentials (401 or 403)',
  PKG_DOWNLOAD_TLS: 'the download server did not prove its identity (its TLS certificate does not verify)',
  PKG_DOWNLOAD_UNREACHABLE: 'the download server cannot be reached (name, connection refused, unreachable, no answer)',
  PKG_DOWNLOAD_HTTP: 'the download server cannot deliver the file (another 4xx or 5xx status, or too many redirects)',
  PKG_DOWNLOAD_INCOMPLETE: 'the download broke off and could not be resumed within the retries',
  PKG_DOWNLOAD_TIMEOUT: 'the download did not complete within the timeout',
  PKG_DOWNLOAD_TOO_LARGE: 'the download is larger than the size cap',
  PKG_DOWNLOAD_NO_SPACE: 'the scratch directory has no room for the download',
  PKG_DOWNLOAD_SCRATCH: 'the download cannot be written to the scratch directory',
  PKG_STATUS_UNREADABLE: "the dpkg or opkg status database of the EE's LOWER cannot be read",
  PKG_DEPENDS_CYCLE: 'the nested packages depend on each other in a cycle',
  PKG_DEPENDS_UNRESOLVED: 'a Depends of the package is not satisfied, or a Conflicts is',
  // the daemon (issue 14)
  PKG_DAEMON_RUNNING: 'another overlay-pkgd already listens on the socket',
  PKG_DAEMON_SOCKET: "the daemon's socket cannot be created (its directory, a file in the way, the path too long)",
  PKG_DAEMON_UNAVAILABLE: 'no daemon answers on the socket, or it ended the connection',
  PKG_DAEMON_PIDFILE: "the daemon's pid file cannot be written",
  // issue 11: paths inside the root, pinned processes
  PROCESS_CHANGED: "the subhost's pid 1 is not the process its state record names (it ended; the pid may be another's)",
  LOG_UNSAFE: 'LOG is not a regular file owned by root (a link, a directory, a device or another owner)',
  // issue 11: error contract
  STATE_UNWRITABLE: 'the runtime state directory cannot be written (full, read-only, no permission)',
  LOG_UNWRITABLE: 'LOG cannot be opened for writing',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Where and why: every field optional, all that is known is given. */
export interface ErrorContext {
  file?: string;
  line?: number;
  variable?: string;
  step?: string;
  name?: string;
  expected?: string;
  found?: string;
  /** The package member (or data file inside it) at fault. */
  member?: string;
  cause?: unknown;
  /** Further errors gathered with this one (CONFIG_INVALID lists them all). */
  errors?: OverlayBootError[];
}

export class OverlayBootError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly line?: number;
  readonly variable?: string;
  readonly step?: string;
  readonly subhost?: string;
  readonly expected?: string;
  readonly found?: string;
  readonly member?: string;
  readonly errors?: OverlayBootError[];

  constructor(code: ErrorCode, message: string, context: ErrorContext = {}) {
    super(message, context.cause === undefined ? undefined : { cause: context.cause });
    this.name = 'OverlayBootError';
    this.code = code;
    this.file = context.file;
    this.line = context.line;
    this.variable = context.variable;
    this.step = context.step;
    this.subhost = context.name;
    this.expected = context.expected;
    this.found = context.found;
    this.member = context.member;
    this.errors = context.errors;
  }

  /** `file:line: VARIABLE: message`, as compilers print it. */
  describe(): string {
    const where = [this.file, this.line].filter((x) => x !== undefined).join(':');
    const parts: string[] = [];
    if (where) parts.push(where);
    if (this.step) parts.push(`step ${this.step}`);
    if (this.variable) parts.push(this.variable);
    if (this.member) parts.push(`member ${this.member}`);
    parts.push(this.message);
    return parts.join(': ');
  }

  toJSON(): Record<string, unknown> {
    return {
      code: this.code,
      message: this.message,
      file: this.file,
      line: this.line,
      variable: this.variable,
      step: this.step,
      subhost: this.subhost,
      expected: this.expected,
      found: this.found,
      member: this.member,
      errors: this.errors?.map((e) => e.toJSON()),
      cause: this.cause instanceof Error ? this.cause.message : this.cause,
    };
  }
}

export function isOverlayBootError(e: unknown): e is OverlayBootError {
  return e instanceof OverlayBootError;
}
