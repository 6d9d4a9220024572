/**
 * The public types of the package layer: what opening a package tells about it,
 * and the options every reading function takes.
 */
import type { TrustedKey } from './keys.js';

/** The kind of package, detected from its bytes (never from its name). */
export type PackageFormat = 'ipk' | 'deb' | 'oci';

/** The outer container of an ipk: OpenWrt's gzip'd tar or Debian's ar. */
export type PackageContainer = 'tar' | 'ar';

export type DataFileType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

/** One entry of the package's data tarball, path normalised without a leading `./`. */
export interface DataFile {
  path: string;
  type: DataFileType;
  /** Permission bits including setuid/setgid/sticky (no file-type bits). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Symlink target as stored, or the hard link's target path (normalised). */
  linkTarget?: string;
  /** Device numbers of a char or block device node. */
  device?: { major: number; minor: number };
}

/** An outer member as stored (compressed bytes), with the sha256 of those bytes. */
export interface PackageMember {
  name: string;
  size: number;
  sha256: string;
}

/** The parsed `control` stanza. */
export interface ControlFields {
  package: string;
  version: string;
  architecture: string;
  /** Every field verbatim, keys in their original case, continuation lines joined with `\n`. */
  fields: Record<string, string>;
}

export type MaintainerScript = 'preinst' | 'postinst' | 'prerm' | 'postrm';

/** What is known about the package's signature. */
export interface SignatureStatus {
  signed: boolean;
  kind?: 'embedded' | 'detached';
  verified: boolean;
  keyId?: string;
  /** Why it is not verified: a PKG_ error code and detail. */
  reason?: string;
}

/** Everything `openPackage` reads from a package without unpacking it. */
export interface PackageInfo {
  file: string;
  format: PackageFormat;
  container?: PackageContainer;
  encrypted: boolean;
  control: ControlFields;
  scripts: Partial<Record<MaintainerScript, string>>;
  conffiles: string[];
  members: PackageMember[];
  files: DataFile[];
  /** Sum of the data files' sizes in bytes. */
  installedSize: number;
  signature: SignatureStatus;
  /** What makes the data unsafe to unpack: strings naming the member or path and the rule. */
  problems: string[];
  oci?: { config: unknown };
}

/** Options shared by openPackage, verifyPackage and unpackPackage. */
export interface PackageReadOptions {
  /** The secret an encrypted package is decrypted with. */
  secret?: string;
  /** Trusted public keys; without them a signature is reported but not verified. */
  keys?: TrustedKey[];
  /** Path of a detached signature over the whole file; default `FILE.sig` when it exists. */
  detachedSignature?: string;
  /** Cap on the total unpacked data size in bytes; default 2 GiB. */
  maxUnpackedSize?: number;
  /** Cap on one member (outer or data file) in bytes; default maxUnpackedSize. */
  maxMemberSize?: number;
  /** Device nodes in the data are allowed (else a problem). */
  allowDevices?: boolean;
  /** Setuid/setgid files in the data are allowed (else a problem). */
  allowSetid?: boolean;
}

/** The default cap on unpacked data: 2 GiB. */
export const DEFAULT_MAX_UNPACKED_SIZE = 2 * 1024 * 1024 * 1024;
