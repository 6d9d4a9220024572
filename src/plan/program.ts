import type { NativeOp } from './types.js';

/**
 * Encode ops for ovb-launch: each op is NUL-terminated strings (name, args)
 * closed by an empty string. NUL cannot occur in a config value (the reader
 * refuses binary files), so no escaping is needed.
 */
export function encodeOps(ops: NativeOp[]): Buffer {
  const parts: string[] = [];
  for (const o of ops) {
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
