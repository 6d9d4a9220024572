import { open, type FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { OverlayBootError } from '../errors.js';

/**
 * Reading the partition table of a raw disk image ourselves, so that
 * overlay-diskfile needs neither fdisk nor bc: an MBR (primary entries and
 * the logical partitions of an extended one) or, behind a protective MBR, a GPT.
 */

/** One partition, numbered as the kernel and sfdisk number them. */
export interface Partition {
  /** 1-based: the MBR slot (1-4), a logical partition from 5 on, or the GPT entry number. */
  index: number;
  /** Byte offset of the partition in the image. */
  start: number;
  /** Length of the partition in bytes. */
  size: number;
  /**
   * As `sfdisk --json` prints it: the MBR type byte in lower-case hex without
   * leading zeros (`83`, `5`, `c`), or the GPT type GUID in upper case.
   */
  type: string;
  /** GPT only: the partition's unique GUID, upper case. */
  uuid?: string;
  /** GPT only: the partition name, when set. */
  name?: string;
}

export interface PartitionTable {
  /** `dos` for an MBR, `gpt` for a GPT (sfdisk's names). */
  label: 'dos' | 'gpt';
  /** Bytes per logical sector the table was read with. */
  sectorSize: number;
  /** The used entries, by index. */
  partitions: Partition[];
}

const MBR_SECTOR = 512;
const MBR_SIGNATURE_OFFSET = 510;
const MBR_ENTRIES_OFFSET = 446;
const PROTECTIVE_MBR_TYPE = 0xee;
// CHS extended (0x05), LBA extended (0x0f), Linux extended (0x85)
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
// A chain of EBRs longer than this is a loop or garbage, not a disk.
const MAX_LOGICAL = 256;
// GPT sector sizes we try: 512 (all images this tool is for), then 4K-native.
const GPT_SECTOR_SIZES = [512, 4096];
const GPT_MAX_ENTRY_BYTES = 4 * 1024 * 1024;

function badTable(file: string, why: string): OverlayBootError {
  return new OverlayBootError('DISK_BAD_TABLE', `${file}: ${why}`, { found: why });
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** A GPT GUID: the first three fields are little-endian, the rest big-endian. */
export function formatGuid(b: Buffer): string {
  const hex = (x: Buffer) => x.toString('hex');
  const le = (x: Buffer) => hex(Buffer.from(x).reverse());
  return [le(b.subarray(0, 4)), le(b.subarray(4, 6)), le(b.subarray(6, 8)), hex(b.subarray(8, 10)), hex(b.subarray(10, 16))]
    .join('-').toUpperCase();
}

function safeNumber(file: string, v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw badTable(file, `${what} ${v} is out of range`);
  return Number(v);
}

interface MbrEntry { slot: number; status: number; type: number; lbaStart: number; sectors: number }

function mbrEntries(sector: Buffer): MbrEntry[] {
  const out: MbrEntry[] = [];
  for (let i = 0; i < 4; i++) {
    const e = sector.subarray(MBR_ENTRIES_OFFSET + 16 * i, MBR_ENTRIES_OFFSET + 16 * (i + 1));
    out.push({ slot: i + 1, status: e[0]!, type: e[4]!, lbaStart: e.readUInt32LE(8), sectors: e.readUInt32LE(12) });
  }
  return out;
}

function hasMbrSignature(sector: Buffer): boolean {
  return sector.length >= MBR_SECTOR && sector[MBR_SIGNATURE_OFFSET] === 0x55 && sector[MBR_SIGNATURE_OFFSET + 1] === 0xaa;
}

async function readLogical(fh: FileHandle, file: string, extStart: number, extSectors: number): Promise<Partition[]> {
  const out: Partition[] = [];
  const seen = new Set<number>();
  let ebr = extStart;
  while (out.length < MAX_LOGICAL) {
    if (seen.has(ebr)) throw badTable(file, `the chain of logical partitions loops at sector ${ebr}`);
    seen.add(ebr);
    const sector = await readAt(fh, ebr * MBR_SECTOR, MBR_SECTOR);
    if (!hasMbrSignature(sector)) {
      // An extended partition with no logical partition yet has an empty EBR.
      if (ebr === extStart && sector.every((x) => x === 0)) return out;
      throw badTable(file, `the extended boot record at sector ${ebr} has no 0x55AA signature`);
    }
    const [logical, next] = mbrEntries(sector);
    if (logical!.type !== 0 && logical!.sectors > 0) {
      out.push({
        index: 5 + out.length,
        start: (ebr + logical!.lbaStart) * MBR_SECTOR,
        size: logical!.sectors * MBR_SECTOR,
        type: logical!.type.toString(16),
      });
    }
    if (next!.type === 0 || next!.sectors === 0) return out;
    if (next!.lbaStart >= extSectors) throw badTable(file, `a logical partition link points beyond the extended partition`);
    ebr = extStart + next!.lbaStart;
  }
  throw badTable(file, `more than ${MAX_LOGICAL} logical partitions`);
}

async function readMbr(fh: FileHandle, file: string, sector: Buffer): Promise<PartitionTable> {
  const partitions: Partition[] = [];
  let extended: MbrEntry | undefined;
  for (const e of mbrEntries(sector)) {
    if (e.type === 0 || e.sectors === 0) continue;
    // Anything but 0x00 and 0x80 means these 64 bytes are not a partition table
    // (a FAT boot sector also ends in 0x55AA).
    if (e.status !== 0x00 && e.status !== 0x80) throw badTable(file, `MBR entry ${e.slot} has an invalid status byte 0x${e.status.toString(16)}`);
    partitions.push({ index: e.slot, start: e.lbaStart * MBR_SECTOR, size: e.sectors * MBR_SECTOR, type: e.type.toString(16) });
    if (EXTENDED_TYPES.has(e.type)) {
      if (extended) throw badTable(file, 'the MBR has more than one extended partition');
      extended = e;
    }
  }
  if (extended) partitions.push(...await readLogical(fh, file, extended.lbaStart, extended.sectors));
  return { label: 'dos', sectorSize: MBR_SECTOR, partitions };
}

interface GptHeader { entriesLba: number; count: number; entrySize: number; entriesCrc: number }

/** The GPT header at `lba`, or why it is not valid. */
async function readGptHeader(fh: FileHandle, file: string, sectorSize: number, lba: number): Promise<GptHeader | string> {
  const h = await readAt(fh, lba * sectorSize, sectorSize);
  if (h.length < 92 || h.toString('latin1', 0, 8) !== 'EFI PART') return `no GPT header at LBA ${lba}`;
  const headerSize = h.readUInt32LE(12);
  if (headerSize < 92 || headerSize > sectorSize) return `GPT header at LBA ${lba} has a bad size ${headerSize}`;
  const copy = Buffer.from(h.subarray(0, headerSize));
  copy.writeUInt32LE(0, 16);
  if (crc32(copy) !== h.readUInt32LE(16)) return `GPT header at LBA ${lba} has a bad checksum`;
  if (h.readBigUInt64LE(24) !== BigInt(lba)) return `GPT header at LBA ${lba} says it is elsewhere`;
  const count = h.readUInt32LE(80);
  const entrySize = h.readUInt32LE(84);
  if (entrySize < 128 || entrySize % 8 !== 0 || count * entrySize > GPT_MAX_ENTRY_BYTES) {
    return `GPT header at LBA ${lba} has a bad entry array (${count} entries of ${entrySize} bytes)`;
  }
  return { entriesLba: safeNumber(file, h.readBigUInt64LE(72), 'GPT entry array LBA'), count, entrySize, entriesCrc: h.readUInt32LE(88) };
}

async function readGpt(fh: FileHandle, file: string, fileSize: number): Promise<PartitionTable> {
  const problems: string[] = [];
  for (const sectorSize of GPT_SECTOR_SIZES) {
    // The primary header at LBA 1; when it is damaged, the backup in the last sector.
    const lbas = [1, Math.floor(fileSize / sectorSize) - 1].filter((x, i, a) => x >= 1 && a.indexOf(x) === i);
    for (const lba of lbas) {
      const header = await readGptHeader(fh, file, sectorSize, lba);
      if (typeof header === 'string') { problems.push(header); continue; }
      const bytes = header.count * header.entrySize;
      const array = await readAt(fh, header.entriesLba * sectorSize, bytes);
      if (array.length !== bytes) { problems.push(`GPT entry array at LBA ${header.entriesLba} lies beyond the end of the image`); continue; }
      if (crc32(array) !== header.entriesCrc) { problems.push(`GPT entry array at LBA ${header.entriesLba} has a bad checksum`); continue; }
      const partitions: Partition[] = [];
      for (let i = 0; i < header.count; i++) {
        const e = array.subarray(i * header.entrySize, (i + 1) * header.entrySize);
        if (e.subarray(0, 16).every((x) => x === 0)) continue;
        const first = e.readBigUInt64LE(32);
        const last = e.readBigUInt64LE(40);
        if (last < first) throw badTable(file, `GPT entry ${i + 1} ends before it starts`);
        const name = e.toString('utf16le', 56, 128).replace(/\0.*$/s, '');
        partitions.push({
          index: i + 1,
          start: safeNumber(file, first * BigInt(sectorSize), `GPT entry ${i + 1} start`),
          size: safeNumber(file, (last - first + 1n) * BigInt(sectorSize), `GPT entry ${i + 1} size`),
          type: formatGuid(e.subarray(0, 16)),
          uuid: formatGuid(e.subarray(16, 32)),
          ...(name ? { name } : {}),
        });
      }
      return { label: 'gpt', sectorSize, partitions };
    }
    // A header was found at this sector size but was damaged: do not guess another size.
    if (problems.some((p) => !p.startsWith('no GPT header'))) break;
  }
  throw badTable(file, `the protective MBR promises a GPT, but ${problems.find((p) => !p.startsWith('no GPT header')) ?? 'there is no GPT header'}`);
}

/**
 * The partition table of the raw disk image `file` (512-byte sectors; a GPT on
 * 4096-byte sectors is also found). Throws DISK_UNREADABLE when the file cannot
 * be read, DISK_BAD_TABLE when it holds no valid MBR or GPT.
 */
export async function readPartitionTable(file: string): Promise<PartitionTable> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (e) {
    throw new OverlayBootError('DISK_UNREADABLE', `cannot read disk image ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() && !st.isBlockDevice()) throw new OverlayBootError('DISK_UNREADABLE', `disk image ${file} is not a regular file`);
    const sector = await readAt(fh, 0, MBR_SECTOR);
    if (!hasMbrSignature(sector)) {
      throw badTable(file, sector.length < MBR_SECTOR ? `the image is shorter than one sector (${sector.length} bytes)` : 'no partition table (no 0x55AA MBR signature)');
    }
    if (mbrEntries(sector).some((e) => e.type === PROTECTIVE_MBR_TYPE)) return await readGpt(fh, file, st.size);
    return await readMbr(fh, file, sector);
  } catch (e) {
    if (e instanceof OverlayBootError) throw e;
    throw new OverlayBootError('DISK_UNREADABLE', `cannot read disk image ${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    await fh.close();
  }
}
