// The ar reader against archives made by binutils' ar, and against broken ones.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { readArMembers, arMemberStream, type ArMember } from '../../src/package/ar.js';
import { OverlayBootError } from '../../src/errors.js';
import { tempDir } from '../helpers/subhost.js';

async function list(file: string): Promise<ArMember[]> {
  const out: ArMember[] = [];
  for await (const m of readArMembers(file)) out.push(m);
  return out;
}

async function failure(file: string): Promise<OverlayBootError> {
  try {
    await list(file);
  } catch (e) {
    if (e instanceof OverlayBootError) return e;
    throw e;
  }
  throw new Error('no error');
}

function makeAr(dir: string): string {
  writeFileSync(path.join(dir, 'debian-binary'), '2.0\n');
  writeFileSync(path.join(dir, 'odd.txt'), 'abc'); // odd size: one padding byte follows
  writeFileSync(path.join(dir, 'empty'), '');
  const out = path.join(dir, 'x.a');
  execFileSync('ar', ['-crf', out, 'debian-binary', 'odd.txt', 'empty'], { cwd: dir });
  return out;
}

t.test('members, sizes, offsets and contents of an archive made by ar', async (t) => {
  const dir = tempDir(t);
  const file = makeAr(dir);
  const ms = await list(file);
  t.same(ms.map((m) => [m.name, m.size]), [['debian-binary', 4], ['odd.txt', 3], ['empty', 0]]);
  t.equal(await text(arMemberStream(file, ms[0]!)), '2.0\n');
  t.equal(await text(arMemberStream(file, ms[1]!)), 'abc');
  t.equal(await text(arMemberStream(file, ms[2]!)), '');
});

t.test('broken archives are PKG_CORRUPT naming the member', async (t) => {
  const dir = tempDir(t);
  const good = readFileSync(makeAr(dir));
  const variant = (name: string, bytes: Buffer) => {
    const f = path.join(dir, name);
    writeFileSync(f, bytes);
    return f;
  };
  let e = await failure(variant('magic', Buffer.concat([Buffer.from('!<arch>x'), good.subarray(8)])));
  t.equal(e.code, 'PKG_CORRUPT');
  // truncated inside the second member's data
  const firstEnd = 8 + 60 + 4;
  const trunc = variant('trunc', good.subarray(0, firstEnd + 60 + 2));
  e = await failure(trunc);
  t.equal(e.code, 'PKG_CORRUPT');
  t.equal(e.member, 'odd.txt');
  // truncated in a header
  e = await failure(variant('trunchdr', good.subarray(0, firstEnd + 30)));
  t.equal(e.member, '#1');
  // padding byte missing: cut right after odd.txt's data
  e = await failure(variant('nopad', good.subarray(0, firstEnd + 60 + 3)));
  t.equal(e.member, 'odd.txt');
  t.match(e.message, /padding/);
  // header terminator broken
  const term = Buffer.from(good);
  term[firstEnd + 58] = 0x41;
  e = await failure(variant('term', term));
  t.match(e.message, /terminator/);
  // size field not decimal
  const size = Buffer.from(good);
  size.write('0x10      ', firstEnd + 48, 'latin1');
  e = await failure(variant('size', size));
  t.equal(e.member, 'odd.txt');
  t.match(e.message, /size/);
  // a file that is not there
  const gone = path.join(dir, 'gone');
  writeFileSync(gone, '');
  truncateSync(gone, 0);
  e = await failure(gone);
  t.equal(e.code, 'PKG_CORRUPT');
  e = await failure(path.join(dir, 'nonexistent'));
  t.equal(e.code, 'PKG_UNREADABLE');
});
