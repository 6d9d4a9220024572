/**
 * The `control` file (one Debian stanza) and `conffiles`, parsed strictly:
 * untrusted packages must not smuggle fields past the reader.
 */
import { OverlayBootError } from '../errors.js';
import { parseVersion } from './version.js';
import type { ControlFields } from './types.js';

/** What names the text in errors: the package file and the member. */
export interface ControlSource {
  file?: string;
  member?: string;
}

const PACKAGE_NAME = /^[a-z0-9][a-z0-9.+-]*$/;
const ARCHITECTURE = /^[a-z0-9][a-z0-9-]*$/;
// Field names: printable ASCII without ':' or space, not starting with '#' or '-' (deb822).
const FIELD_LINE = /^([!-9;-~]+):(.*)$/;

function badControl(src: ControlSource, message: string, line?: number, field?: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_BAD_CONTROL', message, {
    file: src.file, member: src.member ?? 'control', line, variable: field, cause,
  });
}

/** Field lookup ignoring case, as Debian field names are case-insensitive. */
export function controlField(fields: Record<string, string>, name: string): string | undefined {
  const key = fieldKey(fields, name);
  return key === undefined ? undefined : fields[key];
}

/** The synopsis of a package: the first line of its Description (TR-181's DU Description), or ''. */
export function controlSynopsis(fields: Record<string, string>): string {
  return (controlField(fields, 'Description') ?? '').split('\n')[0]!.trim();
}

function fieldKey(fields: Record<string, string>, name: string): string | undefined {
  const want = name.toLowerCase();
  return Object.keys(fields).find((k) => k.toLowerCase() === want);
}

/**
 * Parses a control stanza. Continuation lines (starting with a space or tab) are
 * kept verbatim, joined to the field with `\n`. Throws PKG_BAD_CONTROL naming the
 * member, line and field on: comments, a second stanza, a continuation with no
 * field, a malformed or repeated field, a missing or bad Package, Version or Architecture.
 */
export function parseControl(text: string, src: ControlSource = {}): ControlFields {
  if (text.includes('\0')) throw badControl(src, 'the control file holds a NUL byte');
  const fields: Record<string, string> = {};
  const lineOf: Record<string, number> = {};
  const seen = new Set<string>();
  let current: string | undefined;
  let ended = false;
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') {
      if (current !== undefined) ended = true;
      return;
    }
    if (ended) throw badControl(src, 'more than one stanza in the control file', lineNo);
    if (line.startsWith('#')) throw badControl(src, 'comments are not allowed in the control file', lineNo);
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === undefined) throw badControl(src, 'continuation line with no field before it', lineNo);
      fields[current] += `\n${line.trimEnd()}`;
      return;
    }
    const m = FIELD_LINE.exec(line);
    if (!m || m[1]!.startsWith('-')) throw badControl(src, `not a "Field: value" line: ${JSON.stringify(line.slice(0, 80))}`, lineNo);
    const name = m[1]!;
    if (seen.has(name.toLowerCase())) throw badControl(src, `field ${name} appears twice`, lineNo, name);
    seen.add(name.toLowerCase());
    fields[name] = m[2]!.trim();
    lineOf[name] = lineNo;
    current = name;
  });
  const required = (name: string, re: RegExp | undefined, what: string): string => {
    const key = fieldKey(fields, name);
    const value = key === undefined ? undefined : fields[key];
    if (value === undefined || value === '') throw badControl(src, `required field ${name} is missing or empty`, undefined, name);
    if (re && !re.test(value)) throw badControl(src, `${name} ${JSON.stringify(value)} is not ${what}`, lineOf[key!], name);
    return value;
  };
  const pkg = required('Package', PACKAGE_NAME, 'a package name ([a-z0-9][a-z0-9.+-]*)');
  const version = required('Version', undefined, '');
  try {
    parseVersion(version);
  } catch (cause) {
    throw badControl(src, `Version ${JSON.stringify(version)} is not a valid Debian version`, lineOf[fieldKey(fields, 'Version')!], 'Version', cause);
  }
  const architecture = required('Architecture', ARCHITECTURE, 'an architecture name');
  return { package: pkg, version, architecture, fields };
}

/**
 * Parses `conffiles`: one absolute path a line (dpkg's `remove-on-upgrade` flag
 * accepted). Throws PKG_BAD_CONTROL naming the line of a path that is not absolute.
 */
export function parseConffiles(text: string, src: ControlSource = {}): string[] {
  const out: string[] = [];
  text.split('\n').forEach((raw, i) => {
    let line = raw.trim();
    if (line === '') return;
    if (line.startsWith('remove-on-upgrade ')) line = line.slice('remove-on-upgrade '.length).trim();
    if (!line.startsWith('/') || line.includes('\0')) {
      throw badControl({ ...src, member: src.member ?? 'conffiles' }, `conffile ${JSON.stringify(line)} is not an absolute path`, i + 1);
    }
    out.push(line);
  });
  return out;
}
