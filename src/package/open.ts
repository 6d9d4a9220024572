/**
 * openPackage: everything about a package without unpacking it to disk
 * (an encrypted one is decrypted into a scratch file that is removed).
 */
import { withPlainFile } from './encrypted.js';
import { problemText } from './guard.js';
import { PackageReader, type DataSink, type RawPackage } from './read.js';
import { evaluateTrust, type TrustResult } from './trust.js';
import type { PackageInfo, PackageReadOptions } from './types.js';

/** One pass over `file` (decrypted when needed), with trust evaluated; internal to open/verify/unpack. */
export async function readAndTrust(file: string, opts: PackageReadOptions, sink?: DataSink): Promise<{ raw: RawPackage; trust: TrustResult; encrypted: boolean }> {
  return withPlainFile(file, opts.secret, async (plain, encrypted) => {
    const raw = await new PackageReader(plain, file, opts, sink).read();
    // Embedded signatures are over the inner package's members; a detached one is over the file as delivered.
    const trust = await evaluateTrust(raw, file, opts.keys, opts.detachedSignature);
    return { raw, trust, encrypted };
  });
}

export function toInfo(file: string, raw: RawPackage, trust: TrustResult, encrypted: boolean): PackageInfo {
  const problems = raw.problems.map(problemText);
  if (trust.integrity) problems.unshift(`${trust.integrity.member ?? 'checksums'}: ${trust.integrity.message} [${trust.integrity.code}]`);
  const info: PackageInfo = {
    file,
    format: raw.format,
    encrypted,
    control: raw.control,
    scripts: raw.scripts,
    conffiles: raw.conffiles,
    members: raw.members,
    files: raw.files,
    installedSize: raw.installedSize,
    signature: trust.status,
    problems,
  };
  if (raw.container) info.container = raw.container;
  if (raw.oci) info.oci = raw.oci;
  return info;
}

/**
 * Reads a package (ipk in tar or ar form, deb, OCI bundle tar, or any of them
 * encrypted) by content and reports its format, control fields, scripts,
 * conffiles, members, data files and signature status. Unsafe data entries
 * and checksum mismatches are listed in `problems` rather than thrown; a
 * corrupt, truncated or unrecognised file throws a PKG_ OverlayBootError.
 */
export async function openPackage(file: string, opts: PackageReadOptions = {}): Promise<PackageInfo> {
  const { raw, trust, encrypted } = await readAndTrust(file, opts);
  return toInfo(file, raw, trust, encrypted);
}
