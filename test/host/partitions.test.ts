import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { formatGuid, readPartitionTable, type Partition } from '../../src/host/partitions.js';
import { OverlayBootError } from '../../src/errors.js';

/** A temporary directory under /tmp for image files, removed at teardown. */
function imageDir(t: Test): string {
  const dir = mkdtempSync('/tmp/ovb-part-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A sparse image file of `mib` MiB partitioned by sfdisk from `script` (IMG in the script is the image's name). */
function partitionedImage(dir: string, name: string, mib: number, script: string): string {
  const img = path.join(dir, name);
  execFileSync('truncate', ['-s', `${mib}M`, img]);
  execFileSync('sfdisk', ['-q', '--no-reread', '--no-tell-kernel', img], { input: script.replaceAll('IMG', img) });
  return img;
}

/** The table as `sfdisk --json` reads it, in readPartitionTable's terms. */
function sfdiskTable(img: string): { label: string; partitions: Partial<Partition>[] } {
  const doc = JSON.parse(execFileSync('sfdisk', ['--json', img], { encoding: 'utf8' })).partitiontable;
  return {
    label: doc.label,
    partitions: doc.partitions.map((p: { node: string; start: number; size: number; type: string; uuid?: string; name?: string }) => ({
      index: Number(p.node.slice(img.length)),
      start: p.start * doc.sectorsize,
      size: p.size * doc.sectorsize,
      type: p.type,
      ...(p.uuid ? { uuid: p.uuid } : {}),
      ...(p.name ? { name: p.name } : {}),
    })),
  };
}

function overwrite(file: string, position: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  try { writeSync(fd, bytes, 0, bytes.length, position); } finally { closeSync(fd); }
}

async function rejectsCode(t: Test, p: Promise<unknown>, code: string, msg: RegExp, what: string) {
  await t.rejects(p, { constructor: OverlayBootError, code, message: msg }, what);
}

t.test('MBR: primary, extended and logical partitions match sfdisk --json', async (t) => {
  const dir = imageDir(t);
  const img = partitionedImage(dir, 'mbr.img', 20, [
    'label: dos',
    'start=2048, size=4096, type=c, bootable',
    'start=6144, size=4096, type=83',
    'type=5',
    'size=4096, type=83',
    'size=4096, type=82',
    '',
  ].join('\n'));
  const table = await readPartitionTable(img);
  const want = sfdiskTable(img);
  t.equal(table.label, 'dos');
  t.equal(table.sectorSize, 512);
  t.same(table.partitions.map((p) => p.index), [1, 2, 3, 5, 6], 'logical partitions numbered from 5');
  t.strictSame(table.partitions, want.partitions, 'same as sfdisk');
});

t.test('MBR: an empty slot keeps the numbering of later slots', async (t) => {
  const dir = imageDir(t);
  const img = partitionedImage(dir, 'gap.img', 8, 'label: dos\nIMG2 : start=2048, size=2048, type=83\nIMG4 : start=6144, size=2048, type=7\n');
  const table = await readPartitionTable(img);
  t.strictSame(table.partitions, sfdiskTable(img).partitions);
  t.same(table.partitions.map((p) => p.index), [2, 4]);
});

t.test('GPT behind a protective MBR matches sfdisk --json, names and gaps included', async (t) => {
  const dir = imageDir(t);
  const img = partitionedImage(dir, 'gpt.img', 20, [
    'label: gpt',
    'IMG1 : start=2048, size=4096, name="boot part"',
    'IMG2 : start=6144, size=8192, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=root',
    'IMG4 : start=14336, size=4096, type=933AC7E1-2EB4-4F13-B844-0E14E2AEF915',
    '',
  ].join('\n'));
  const table = await readPartitionTable(img);
  t.equal(table.label, 'gpt');
  t.same(table.partitions.map((p) => p.index), [1, 2, 4]);
  t.strictSame(table.partitions, sfdiskTable(img).partitions, 'same as sfdisk');
  t.equal(table.partitions[0]!.name, 'boot part');

  await t.test('a damaged primary header falls back to the backup header', async (t) => {
    const copy = path.join(dir, 'damaged.img');
    execFileSync('cp', ['--sparse=always', img, copy]);
    overwrite(copy, 512 + 60, Buffer.from('garbage')); // inside the disk GUID: breaks the header CRC
    t.strictSame((await readPartitionTable(copy)).partitions, table.partitions);
  });

  await t.test('both headers damaged: DISK_BAD_TABLE', async (t) => {
    const copy = path.join(dir, 'broken.img');
    execFileSync('cp', ['--sparse=always', img, copy]);
    overwrite(copy, 512 + 60, Buffer.from('garbage'));
    overwrite(copy, 20 * 1024 * 1024 - 512 + 60, Buffer.from('garbage'));
    await rejectsCode(t, readPartitionTable(copy), 'DISK_BAD_TABLE', /protective MBR promises a GPT.*checksum/, 'bad table');
  });

  await t.test('a damaged entry array: DISK_BAD_TABLE names the checksum', async (t) => {
    const copy = path.join(dir, 'entries.img');
    execFileSync('cp', ['--sparse=always', img, copy]);
    overwrite(copy, 1024 + 56, Buffer.from('XX')); // primary entries
    overwrite(copy, 20 * 1024 * 1024 - 512 - 128 * 128 + 56, Buffer.from('XX')); // backup entries
    await rejectsCode(t, readPartitionTable(copy), 'DISK_BAD_TABLE', /entry array .* bad checksum/, 'bad entries');
  });
});

t.test('GUIDs are printed in the mixed-endian GPT form', async (t) => {
  const raw = Buffer.from('AF3DC60F838472478E793D69D8477DE4', 'hex');
  t.equal(formatGuid(raw), '0FC63DAF-8483-4772-8E79-3D69D8477DE4');
});

t.test('not a partition table: DISK_BAD_TABLE; not readable: DISK_UNREADABLE', async (t) => {
  const dir = imageDir(t);
  const plain = path.join(dir, 'plain.img');
  execFileSync('truncate', ['-s', '4M', plain]);
  execFileSync('mkfs.ext4', ['-q', '-F', plain]);
  await rejectsCode(t, readPartitionTable(plain), 'DISK_BAD_TABLE', /plain\.img: no partition table/, 'filesystem image without a table');

  const garbage = path.join(dir, 'garbage.img');
  writeFileSync(garbage, Buffer.alloc(64 * 1024, 'garbage!'));
  await rejectsCode(t, readPartitionTable(garbage), 'DISK_BAD_TABLE', /no partition table/, 'garbage');

  const signed = path.join(dir, 'signed.img');
  const sector = Buffer.alloc(4096, 0x41);
  sector[510] = 0x55; sector[511] = 0xaa;
  writeFileSync(signed, sector);
  await rejectsCode(t, readPartitionTable(signed), 'DISK_BAD_TABLE', /invalid status byte/, 'signature but garbage entries');

  const short = path.join(dir, 'short.img');
  writeFileSync(short, Buffer.alloc(100));
  await rejectsCode(t, readPartitionTable(short), 'DISK_BAD_TABLE', /shorter than one sector/, 'short file');

  const protective = path.join(dir, 'protective.img');
  const pmbr = Buffer.alloc(8192);
  pmbr[446 + 4] = 0xee; pmbr.writeUInt32LE(1, 446 + 8); pmbr.writeUInt32LE(15, 446 + 12);
  pmbr[510] = 0x55; pmbr[511] = 0xaa;
  writeFileSync(protective, pmbr);
  await rejectsCode(t, readPartitionTable(protective), 'DISK_BAD_TABLE', /promises a GPT, but there is no GPT header/, 'protective MBR alone');

  const loop = path.join(dir, 'loop.img');
  const ext = Buffer.alloc(16 * 512);
  ext[446 + 4] = 0x05; ext.writeUInt32LE(2, 446 + 8); ext.writeUInt32LE(10, 446 + 12);
  ext[510] = 0x55; ext[511] = 0xaa;
  // The EBR at sector 2 links to itself.
  const ebr = 2 * 512;
  ext[ebr + 446 + 16 + 4] = 0x05; ext.writeUInt32LE(0, ebr + 446 + 16 + 8); ext.writeUInt32LE(4, ebr + 446 + 16 + 12);
  ext[ebr + 510] = 0x55; ext[ebr + 511] = 0xaa;
  writeFileSync(loop, ext);
  await rejectsCode(t, readPartitionTable(loop), 'DISK_BAD_TABLE', /loops at sector 2/, 'EBR chain loop');

  await rejectsCode(t, readPartitionTable(path.join(dir, 'missing.img')), 'DISK_UNREADABLE', /cannot read disk image .*missing\.img: ENOENT/, 'missing file');
  mkdirSync(path.join(dir, 'adir'));
  await rejectsCode(t, readPartitionTable(path.join(dir, 'adir')), 'DISK_UNREADABLE', /adir is not a regular file/, 'a directory');
});
