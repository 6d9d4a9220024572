/**
 * Who a deployment unit is (LIFECYCLE.md "Identity" and "Contract details"): its TR-181
 * `Name`, `Vendor` and `UUID` from the control file, the subhost NAME it runs as, and
 * the `EUID` of each of its execution units.
 */
import { createHash } from 'node:crypto';
import { checkName, MAX_NAME_LENGTH } from '../config/values.js';
import { OverlayBootError } from '../errors.js';
import { controlField } from '../package/control.js';
import type { ControlFields } from '../package/types.js';

/** RFC 4122 appendix C: the name space of fully qualified domain names. */
export const NAMESPACE_DNS = '6ba7b810-9dad-11d1-80b4-00c04fd430c8';

/** The Vendor of a package whose Maintainer has no usable e-mail domain. */
export const UNKNOWN_VENDOR = 'unknown';

/** A DU's identity as TR-181 names it. */
export interface DuIdentity {
  /** The control file's `Package`. */
  Name: string;
  /** The domain of the Maintainer's e-mail address, lower case, else `unknown`. */
  Vendor: string;
  /** Version-5 UUID of `"<Name>.<Vendor>."`; the same across updates. */
  UUID: string;
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `text` is a UUID in its canonical 8-4-4-4-12 hex form (either case). */
export function isUuid(text: string): boolean {
  return UUID_TEXT.test(text);
}

/**
 * RFC 4122 version-5 (SHA-1) UUID of `name` (UTF-8) in the name space `namespace`,
 * in lower case. Throws INTERNAL for a namespace that is not a UUID: callers pass constants.
 */
export function uuidV5(namespace: string, name: string): string {
  if (!isUuid(namespace)) throw new OverlayBootError('INTERNAL', `not a UUID: ${namespace}`, { found: namespace });
  const hash = createHash('sha1').update(Buffer.from(namespace.replace(/-/g, ''), 'hex')).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50; // version 5
  b[8] = (b[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `Name` with every byte outside `[0-9a-zA-Z_-]` percent-encoded (upper-case hex, UTF-8 bytes). */
export function encodeDuName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[0-9a-zA-Z_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The domain of the first e-mail address in a Maintainer field (`A <a@example.org>` or
 * a bare `a@example.org`), lower case; `unknown` when there is none or it is no
 * plausible domain name.
 */
export function vendorOf(maintainer: string | undefined): string {
  if (maintainer === undefined) return UNKNOWN_VENDOR;
  const m = /<[^<>@\s]+@([^<>\s]+)>/.exec(maintainer) ?? /(?:^|\s)[^\s<>@]+@([^\s<>@]+)/.exec(maintainer);
  const domain = m?.[1]?.toLowerCase().replace(/\.$/, '');
  if (domain === undefined || domain.length > 253 || !/^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    return UNKNOWN_VENDOR;
  }
  return domain;
}

/** The DU's `UUID`: version 5 in the DNS name space of `"<encoded Name>.<Vendor>."`. */
export function duUuid(name: string, vendor: string): string {
  return uuidV5(NAMESPACE_DNS, `${encodeDuName(name)}.${vendor}.`);
}

/** Name, Vendor and UUID of the DU a package with these control fields becomes. */
export function duIdentity(control: ControlFields): DuIdentity {
  const Vendor = vendorOf(controlField(control.fields, 'Maintainer'));
  return { Name: control.package, Vendor, UUID: duUuid(control.package, Vendor) };
}

/** Whether `name` passes the subhost config reader's NAME check (src/config/values.ts). */
export function isSubhostName(name: string): boolean {
  try {
    checkName(name, {});
    return true;
  } catch {
    return false;
  }
}

/** How many tries {@link deriveSubhostName} makes before it gives up: far more than names in use. */
const MAX_NAME_TRIES = 10000;

/**
 * The subhost NAME of a new DU when `--name` is not given: the package name itself when
 * it is a valid subhost NAME and not in `taken`; otherwise a short unique one, the
 * package name's first letters and digits (at most 7) then `-` and 4 hex digits derived
 * from the UUID (so the same package gets the same name on every device when it is free),
 * e.g. `libfoo-7a3c` for `libfoo.bar+baz`.
 * Throws PKG_STATE_IO when no free name is found (10000 taken candidates).
 */
export function deriveSubhostName(packageName: string, uuid: string, taken: ReadonlySet<string>): string {
  if (isSubhostName(packageName) && !taken.has(packageName)) return packageName;
  const stem = packageName.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, MAX_NAME_LENGTH - 5) || 'du';
  for (let i = 0; i < MAX_NAME_TRIES; i += 1) {
    const suffix = createHash('sha1').update(`${uuid}/${i}`).digest('hex').slice(0, 4);
    const name = `${stem}-${suffix}`;
    if (isSubhostName(name) && !taken.has(name)) return name;
  }
  throw new OverlayBootError('PKG_STATE_IO', `no free subhost name for ${packageName} after ${MAX_NAME_TRIES} tries`, { name: packageName });
}

/** The EUID of the execution unit `script` (an /etc/init.d name, or the OCI process) of DU subhost `subhost`. */
export function euid(subhost: string, script: string): string {
  return `${subhost}/${script}`;
}
