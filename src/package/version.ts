/**
 * Debian version strings, `[epoch:]upstream[-revision]`, parsed and compared
 * exactly as dpkg does (lib/dpkg/version.c): `~` sorts before everything, even
 * the end of the string; digit runs compare numerically; letters sort before
 * other characters.
 */
import { OverlayBootError } from '../errors.js';

export interface DebianVersion {
  epoch: number;
  upstream: string;
  /** Empty when the version has no `-revision`. */
  revision: string;
}

function bad(version: string, why: string): OverlayBootError {
  return new OverlayBootError('PKG_BAD_VERSION', `version ${JSON.stringify(version)}: ${why}`, { found: version });
}

/** Splits and validates a version; invalid ones throw PKG_BAD_VERSION saying why. */
export function parseVersion(version: string): DebianVersion {
  const v = version.trim();
  if (v === '') throw bad(version, 'empty');
  if (/\s/.test(v)) throw bad(version, 'contains white space');
  let epoch = 0;
  let rest = v;
  const colon = v.indexOf(':');
  if (colon >= 0) {
    const e = v.slice(0, colon);
    if (!/^[0-9]+$/.test(e)) throw bad(version, 'epoch is not a number');
    epoch = Number(e);
    if (epoch > 0x7fffffff) throw bad(version, 'epoch is too big');
    rest = v.slice(colon + 1);
    if (rest === '') throw bad(version, 'nothing after the colon');
  }
  const dash = rest.lastIndexOf('-');
  const upstream = dash >= 0 ? rest.slice(0, dash) : rest;
  const revision = dash >= 0 ? rest.slice(dash + 1) : '';
  if (dash >= 0 && revision === '') throw bad(version, 'revision is empty');
  if (upstream === '') throw bad(version, 'upstream version is empty');
  if (!/^[0-9]/.test(upstream)) throw bad(version, 'upstream version does not start with a digit');
  if (!/^[A-Za-z0-9.+~:-]+$/.test(upstream)) throw bad(version, 'invalid character in the upstream version');
  if (!/^[A-Za-z0-9.+~]*$/.test(revision)) throw bad(version, 'invalid character in the revision');
  return { epoch, upstream, revision };
}

/** True when `version` is a valid Debian version. */
export function isValidVersion(version: string): boolean {
  try {
    parseVersion(version);
    return true;
  } catch {
    return false;
  }
}

function order(c: string | undefined): number {
  if (c === undefined) return 0;
  if (c === '~') return -1;
  const code = c.charCodeAt(0);
  if (code >= 48 && code <= 57) return 0;
  if ((code >= 65 && code <= 90) || (code >= 97 && code <= 122)) return code;
  return code + 256;
}

const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';

function compareParts(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    let firstDiff = 0;
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const ac = order(a[i]);
      const bc = order(b[j]);
      if (ac !== bc) return ac - bc;
      i += 1;
      j += 1;
    }
    while (a[i] === '0') i += 1;
    while (b[j] === '0') j += 1;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i += 1;
      j += 1;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

/** dpkg's order of two versions: -1, 0 or 1. Invalid versions throw PKG_BAD_VERSION. */
export function compareVersions(a: string | DebianVersion, b: string | DebianVersion): -1 | 0 | 1 {
  const va = typeof a === 'string' ? parseVersion(a) : a;
  const vb = typeof b === 'string' ? parseVersion(b) : b;
  const r = va.epoch !== vb.epoch ? va.epoch - vb.epoch
    : compareParts(va.upstream, vb.upstream) || compareParts(va.revision, vb.revision);
  return r < 0 ? -1 : r > 0 ? 1 : 0;
}
