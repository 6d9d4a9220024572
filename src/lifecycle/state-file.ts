/**
 * Reading a JSON file of the state directory with validation: a file that is not JSON
 * or not of the expected shape is PKG_STATE_CORRUPT naming the file and the field, never
 * a TypeError deep inside an operation.
 */
import { readFileSync } from 'node:fs';
import { OverlayBootError } from '../errors.js';

/** The largest state file read: a record or journal is a few kilobytes. */
export const MAX_STATE_FILE = 4 * 1024 * 1024;

/** A PKG_STATE_CORRUPT error for `file`, naming `field` when given. */
export function corrupt(file: string, message: string, field?: string, cause?: unknown): OverlayBootError {
  return new OverlayBootError('PKG_STATE_CORRUPT', message, { file, variable: field, cause });
}

/** The parsed JSON of `file`, or undefined when it does not exist. */
export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_STATE_FILE) throw corrupt(file, `larger than ${MAX_STATE_FILE} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    if (e instanceof OverlayBootError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new OverlayBootError('PKG_STATE_IO', `cannot read: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw corrupt(file, `not JSON: ${(e as Error).message}`, undefined, e);
  }
}

/** Field checks for one object read from `file`; each throws PKG_STATE_CORRUPT naming the field. */
export class Fields {
  constructor(
    readonly file: string,
    private readonly obj: Record<string, unknown>,
    private readonly prefix = '',
  ) {}

  /** `value` as an object, or PKG_STATE_CORRUPT. */
  static of(file: string, value: unknown, prefix = ''): Fields {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw corrupt(file, `${prefix || 'the file'} is not a JSON object`, prefix || undefined);
    }
    return new Fields(file, value as Record<string, unknown>, prefix);
  }

  private name(key: string): string {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  private fail(key: string, expected: string): never {
    throw new OverlayBootError('PKG_STATE_CORRUPT', `${this.name(key)} is not ${expected}`, {
      file: this.file, variable: this.name(key), expected, found: JSON.stringify(this.obj[key]) ?? 'nothing',
    });
  }

  string(key: string, pattern?: RegExp): string {
    const v = this.obj[key];
    if (typeof v !== 'string' || (pattern !== undefined && !pattern.test(v))) this.fail(key, pattern ? `a string matching ${pattern}` : 'a string');
    return v;
  }

  optionalString(key: string): string | undefined {
    return this.obj[key] === undefined ? undefined : this.string(key);
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.obj[key];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(key, `one of ${values.join(', ')}`);
    return v as T;
  }

  boolean(key: string): boolean {
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  integer(key: string, min = 0): number {
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) this.fail(key, `a whole number of at least ${min}`);
    return v;
  }

  array(key: string): unknown[] {
    const v = this.obj[key];
    if (!Array.isArray(v)) this.fail(key, 'an array');
    return v;
  }

  object(key: string): Fields {
    return Fields.of(this.file, this.obj[key], this.name(key));
  }

  /** An object field as it is, for fields whose shape belongs to someone else (an operation's intent). */
  rawObject(key: string): Record<string, unknown> {
    this.object(key);
    return this.obj[key] as Record<string, unknown>;
  }

  /** The raw value, for fields that may be of several types. */
  raw(key: string): unknown {
    return this.obj[key];
  }
}
