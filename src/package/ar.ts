/**
 * A strict reader of the `ar` container (.deb and the Debian form of .ipk),
 * reading headers from the file and handing out each member's bytes as a
 * stream: nothing is held in memory beyond one 60-byte header.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { OverlayBootError } from '../errors.js';
import { CHUNK } from './decompress.js';

export const AR_MAGIC = '!<arch>\n';
const HEADER_SIZE = 60;

/** One member of an ar archive as found in its header. */
export interface ArMember {
  /** The name with GNU's `/` suffix and the space padding removed. */
  name: string;
  /** True when the name carried GNU's `/` terminator (binutils ar writes it, dpkg-deb does not). */
  gnuName: boolean;
  /** Size of the member's data in bytes (without the padding byte). */
  size: number;
  /** Offset of the member's data in the file. */
  offset: number;
  /** Offset of the member's 60-byte header in the file. */
  headerOffset: number;
  mtime: number;
  uid: number;
  gid: number;
  mode: number;
}

function corrupt(file: string, member: string, found: string): OverlayBootError {
  return new OverlayBootError('PKG_CORRUPT', `ar archive: ${found}`, { file, member, found });
}

/** Parses one 60-byte header; `index` names the member when its name is unreadable. */
export function parseArHeader(file: string, h: Buffer, headerOffset: number, index: number): ArMember {
  const field = (start: number, len: number) => h.toString('latin1', start, start + len);
  const rawName = field(0, 16).replace(/ +$/, '');
  const label = rawName || `#${index}`;
  if (field(58, 2) !== '`\n') throw corrupt(file, label, `bad header terminator at offset ${headerOffset}`);
  const name = rawName.endsWith('/') && rawName !== '/' && rawName !== '//' ? rawName.slice(0, -1) : rawName;
  // eslint-disable-next-line no-control-regex
  if (name === '' || (/[\x00-\x1f\x7f/]/.test(name) && name !== '/' && name !== '//')) {
    throw corrupt(file, label, `bad member name at offset ${headerOffset}`);
  }
  const num = (start: number, len: number, what: string, radix: number, digits: RegExp): number => {
    const s = field(start, len);
    if (!digits.test(s)) throw corrupt(file, name, `bad ${what} field ${JSON.stringify(s)}`);
    const t = s.trim();
    return t === '' ? 0 : parseInt(t, radix);
  };
  const size = num(48, 10, 'size', 10, /^[0-9]+ *$/);
  return {
    name,
    gnuName: name !== rawName,
    size,
    offset: headerOffset + HEADER_SIZE,
    headerOffset,
    mtime: num(16, 12, 'mtime', 10, /^[0-9]* *$/),
    uid: num(28, 6, 'uid', 10, /^[0-9]* *$/),
    gid: num(34, 6, 'gid', 10, /^[0-9]* *$/),
    mode: num(40, 8, 'mode', 8, /^[0-7]* *$/),
  };
}

async function readExactly(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await fh.read(buf, got, buf.length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/** True when the file starts with the ar magic. */
export function isAr(head: Buffer): boolean {
  return head.length >= AR_MAGIC.length && head.toString('latin1', 0, AR_MAGIC.length) === AR_MAGIC;
}

/**
 * The members of the ar archive `file`, in order. Throws PKG_CORRUPT (naming
 * the member) on a bad magic, a malformed header, or a truncated member or padding.
 */
export async function* readArMembers(file: string): AsyncGenerator<ArMember> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (cause) {
    throw new OverlayBootError('PKG_UNREADABLE', 'cannot open the package file', { file, cause });
  }
  try {
    const fileSize = (await fh.stat()).size;
    const magic = Buffer.alloc(AR_MAGIC.length);
    if ((await readExactly(fh, magic, 0)) !== magic.length || !isAr(magic)) {
      throw corrupt(file, '(archive)', 'no ar magic');
    }
    const header = Buffer.alloc(HEADER_SIZE);
    let pos = AR_MAGIC.length;
    for (let index = 0; pos < fileSize; index += 1) {
      const got = await readExactly(fh, header, pos);
      if (got !== HEADER_SIZE) throw corrupt(file, `#${index}`, `truncated header at offset ${pos}`);
      const m = parseArHeader(file, header, pos, index);
      const end = m.offset + m.size;
      if (end > fileSize) throw corrupt(file, m.name, `member truncated: needs ${m.size} bytes, ${fileSize - m.offset} left`);
      pos = end;
      if (m.size % 2 === 1) {
        const pad = Buffer.alloc(1);
        if ((await readExactly(fh, pad, pos)) !== 1) throw corrupt(file, m.name, 'padding byte missing');
        if (pad[0] !== 0x0a) throw corrupt(file, m.name, 'padding byte is not a newline');
        pos += 1;
      }
      yield m;
    }
  } finally {
    await fh.close();
  }
}

/** The bytes of one member, streamed from the file. */
export function arMemberStream(file: string, member: Pick<ArMember, 'offset' | 'size'>): Readable {
  if (member.size === 0) return Readable.from([]);
  return createReadStream(file, { start: member.offset, end: member.offset + member.size - 1, highWaterMark: CHUNK });
}
