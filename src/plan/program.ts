import { OverlayBootError } from '../errors.js';
import { NATIVE_OPS, type NativeOp, type NativeOpArgs, type NativeOpName } from './types.js';

/** The same tuple with numbers allowed (written in decimal). */
type Loose<T extends string[]> = { [I in keyof T]: string | number };

/** An op from its name and arguments, checked against its arity by the compiler. */
export function nativeOp<K extends NativeOpName>(op: K, ...args: Loose<NativeOpArgs[K]>): NativeOp {
  return toNativeOp(op, (args as Array<string | number>).map(String));
}

/**
 * An op from a name and arguments known only at run time (a state record's teardown,
 * a rewritten op): INTERNAL unless the name is an op and the arguments fit its arity.
 */
export function toNativeOp(op: string, args: string[]): NativeOp {
  const def = (NATIVE_OPS as Record<string, { fixed: number; variadic: boolean }>)[op];
  if (!def) throw new OverlayBootError('INTERNAL', `unknown native op ${op}`, { found: op });
  const fits = def.variadic ? args.length > def.fixed && args.slice(def.fixed).every((a) => a !== '') : args.length === def.fixed;
  if (!fits) {
    throw new OverlayBootError('INTERNAL', `native op ${op} takes ${def.fixed}${def.variadic ? ' + 1 or more' : ''} arguments, not ${args.length}`,
      { found: op, expected: String(def.fixed) });
  }
  return { op, args } as NativeOp;
}

/** The same op with each argument rewritten (the UPPER placeholder, for one). */
export function mapOpArgs(o: NativeOp, f: (arg: string) => string): NativeOp {
  return toNativeOp(o.op, o.args.map(f));
}

/**
 * Encode ops for ovb-launch: each op is NUL-terminated strings (name, args)
 * closed by an empty string. NUL cannot occur in a config value (the reader
 * refuses binary files), so no escaping is needed. Each op is checked against
 * its arity first (ops read back from a state record are not typed).
 */
export function encodeOps(ops: NativeOp[]): Buffer {
  const parts: string[] = [];
  for (const o of ops) {
    toNativeOp(o.op, o.args);
    for (const s of [o.op, ...o.args]) {
      if (s.includes('\0')) throw new Error(`NUL byte in native op ${o.op}`);
      parts.push(s, '\0');
    }
    parts.push('\0');
  }
  return Buffer.from(parts.join(''), 'utf8');
}

/** A boot program: the boot ops, the `teardown` separator, then the teardown ops. */
export function encodeBootProgram(boot: NativeOp[], teardown: NativeOp[]): Buffer {
  return encodeOps([...boot, { op: 'teardown', args: [] }, ...teardown]);
}
