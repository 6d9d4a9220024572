import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { OverlayBootError } from '../errors.js';
import { KNOWN_VARIABLES, type Assignment, type KnownVariable, type Warning } from './types.js';
import { configError, throwGathered } from './where.js';

/** Larger than any honest config; a bound keeps a mistaken path from eating memory. */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Variables whose every assignment counts; for all others the first one wins. */
export const REPEATABLE_VARIABLES: ReadonlySet<string> = new Set<KnownVariable>(['SHARE', 'RUN']);

const KNOWN: ReadonlySet<string> = new Set<string>(KNOWN_VARIABLES);

/**
 * Reads a config file's bytes, refusing what cannot be a config: something that is
 * not a regular file (a FIFO would block us forever, hence O_NONBLOCK) or that is
 * larger than MAX_CONFIG_BYTES.
 */
export async function readConfigFile(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (cause) {
    throw configError('CONFIG_UNREADABLE', `cannot open: ${(cause as Error).message}`, { file }, { cause });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) {
      throw configError('CONFIG_UNREADABLE', 'not a regular file', { file });
    }
    if (st.size > MAX_CONFIG_BYTES) throw tooLarge(file, st.size);
    // Read one byte past the limit: the file may have grown since fstat.
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > MAX_CONFIG_BYTES) throw tooLarge(file, length);
    }
    return buf.subarray(0, length);
  } catch (cause) {
    if (cause instanceof OverlayBootError) throw cause;
    throw configError('CONFIG_UNREADABLE', `cannot read: ${(cause as Error).message}`, { file }, { cause });
  } finally {
    await handle.close();
  }
}

function tooLarge(file: string, size: number): OverlayBootError {
  return configError('CONFIG_TOO_LARGE', `${size} bytes or more; at most ${MAX_CONFIG_BYTES} are accepted`, { file }, {
    expected: `at most ${MAX_CONFIG_BYTES} bytes`,
    found: `${size} bytes`,
  });
}

export interface ParsedConfigText {
  /** The assignments that count, in file order: the first of each ordinary variable, every SHARE and RUN. */
  assignments: Assignment[];
  /** Unknown variables and repeated ordinary variables. */
  warnings: Warning[];
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
const NEWLINE = 0x0a;
const CR = 0x0d;
const EQUALS = 0x3d;

/**
 * Splits config text into assignments. Works on bytes, not on a decoded string, so
 * that comments may hold any bytes while values of known variables must be UTF-8.
 * Throws CONFIG_BINARY for a NUL byte and CONFIG_BAD_VALUE (gathered) for values
 * that are not UTF-8.
 */
export function parseConfigText(buf: Buffer, file: string): ParsedConfigText {
  const nul = buf.indexOf(0);
  if (nul !== -1) {
    throw configError('CONFIG_BINARY', `NUL byte at offset ${nul}: this is not a text file`, {
      file,
      line: lineOf(buf, nul),
    });
  }
  const state: ParseState = { file, assignments: [], warnings: [], errors: [], firstLine: new Map() };
  let start = 0;
  let lineNo = 0;
  while (start <= buf.length) {
    let end = buf.indexOf(NEWLINE, start);
    if (end === -1) end = buf.length;
    lineNo += 1;
    const stop = end > start && buf[end - 1] === CR ? end - 1 : end;
    parseLine(buf, start, stop, lineNo, state);
    start = end + 1;
  }
  throwGathered(state.errors, file);
  return { assignments: state.assignments, warnings: state.warnings };
}

interface ParseState {
  file: string;
  assignments: Assignment[];
  warnings: Warning[];
  errors: OverlayBootError[];
  firstLine: Map<string, number>;
}

function parseLine(buf: Buffer, start: number, stop: number, line: number, state: ParseState): void {
  const eq = assignmentEquals(buf, start, stop);
  if (eq === -1) return;
  const variable = buf.toString('latin1', start, eq);
  if (!KNOWN.has(variable)) {
    state.warnings.push({ message: `unknown variable ${variable} is ignored`, line, variable });
    return;
  }
  let value: string;
  try {
    value = trimBlanks(strictUtf8.decode(buf.subarray(eq + 1, stop)));
  } catch {
    state.errors.push(
      configError('CONFIG_BAD_VALUE', 'the value is not valid UTF-8 text', { file: state.file, line, variable }),
    );
    return;
  }
  const first = state.firstLine.get(variable);
  if (first !== undefined && !REPEATABLE_VARIABLES.has(variable)) {
    state.warnings.push({
      message: `${variable} is assigned again on line ${line}; the first assignment, on line ${first}, counts`,
      line,
      variable,
    });
    return;
  }
  if (first === undefined) state.firstLine.set(variable, line);
  state.assignments.push({ variable, value, line });
}

/** Index of the `=` ending a flush-left `NAME=`, or -1 when the line is no assignment. */
function assignmentEquals(buf: Buffer, start: number, stop: number): number {
  if (start >= stop || !isNameStart(buf[start]!)) return -1;
  let i = start + 1;
  while (i < stop && isNameChar(buf[i]!)) i += 1;
  return i < stop && buf[i] === EQUALS ? i : -1;
}

function isNameStart(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 0x30 && c <= 0x39);
}

/**
 * Removes ASCII white space only: String.prototype.trim would also eat Unicode
 * spaces such as U+00A0, which the shell tool kept as part of the value.
 */
export function trimBlanks(s: string): string {
  // A loop, not /\s+$/: that regex is quadratic on a long run of blanks (a 1 MiB line).
  let from = 0;
  let to = s.length;
  while (from < to && isBlank(s.charCodeAt(from))) from += 1;
  while (to > from && isBlank(s.charCodeAt(to - 1))) to -= 1;
  return s.slice(from, to);
}

function isBlank(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d && c !== 0x0a);
}

function lineOf(buf: Buffer, offset: number): number {
  let line = 1;
  for (let i = buf.indexOf(NEWLINE); i !== -1 && i < offset; i = buf.indexOf(NEWLINE, i + 1)) line += 1;
  return line;
}
