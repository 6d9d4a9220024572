// The id ranges of long-lived unprivileged subhosts (src/subhost/idmap.ts): a boot takes the
// range its UPPER belongs to, a DU's UPPER is leased one from the top of the pool, and a tree
// moves between ranges with shiftOwners. No namespaces: temp directories and a temp state dir.
import t from 'tap';
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_POOL, IDS_PER_SUBHOST, leaseIdRange, leasedSlots, reserveIdRange, shiftOwners, slotOf } from '../../src/subhost/idmap.js';
import { tempDir } from '../helpers/subhost.js';

const base = (slot: number) => DEFAULT_POOL.start + slot * IDS_PER_SUBHOST;
const last = DEFAULT_POOL.count / IDS_PER_SUBHOST - 1;

t.test('shiftOwners moves ids of one range to another and leaves the rest', async (t) => {
  const dir = tempDir(t);
  const tree = path.join(dir, 'tree');
  mkdirSync(path.join(tree, 'sub'), { recursive: true });
  writeFileSync(path.join(tree, 'sub/root-file'), 'x');
  writeFileSync(path.join(tree, 'sub/uid7'), 'x');
  chownSync(path.join(tree, 'sub/uid7'), 7, 8);
  writeFileSync(path.join(tree, 'setuid'), 'x');
  chmodSync(path.join(tree, 'setuid'), 0o4755);
  linkSync(path.join(tree, 'sub/uid7'), path.join(tree, 'hardlink'));
  const outside = path.join(dir, 'outside');
  writeFileSync(outside, 'x');
  symlinkSync(outside, path.join(tree, 'link'));
  writeFileSync(path.join(tree, 'foreign'), 'x');
  chownSync(path.join(tree, 'foreign'), 70000, 70000);

  shiftOwners(tree, 0, base(3));
  const ids = (p: string) => { const s = lstatSync(path.join(tree, p)); return [s.uid - base(3), s.gid - base(3)]; };
  t.same([ids('.'), ids('sub'), ids('sub/root-file'), ids('sub/uid7'), ids('link')], [[0, 0], [0, 0], [0, 0], [7, 8], [0, 0]], 'every id of the range, links themselves included');
  t.equal(statSync(path.join(tree, 'hardlink')).uid, base(3) + 7, 'a hard-linked file moved once');
  t.equal(statSync(path.join(tree, 'setuid')).mode & 0o7777, 0o4755, 'the setuid bit the chown dropped is back');
  t.equal(statSync(outside).uid, 0, 'a link is not followed');
  t.equal(statSync(path.join(tree, 'foreign')).uid, 70000, 'ids outside the range stay');

  shiftOwners(tree, base(3), 0);
  t.same([statSync(path.join(tree, 'sub/uid7')).uid, statSync(path.join(tree, 'sub/uid7')).gid, statSync(tree).uid], [7, 8, 0], 'and back');
});

t.test('a DU\'s UPPER is leased a range from the top of the pool, which its boots take first', async (t) => {
  const dir = tempDir(t);
  const state = path.join(dir, 'run');
  const upper = (n: string) => { const u = path.join(dir, n); mkdirSync(u); return u; };
  const a = upper('a'), b = upper('b');
  t.equal(leaseIdRange(a, new Set(), state).slot, last, 'the highest slot');
  t.equal(statSync(a).uid, base(last), 'UPPER\'s top belongs to it');
  t.equal(leaseIdRange(a, new Set(), state).slot, last, 'leased again: the one it has');
  t.same([...leasedSlots([a])], [last]);
  t.equal(leaseIdRange(b, leasedSlots([a]), state).slot, last - 1, 'the next DU gets the next one down');

  // A retained UPPER whose range another DU holds now moves to a free one, its files with it.
  const c = upper('c');
  writeFileSync(path.join(c, 'f'), 'x');
  chownSync(c, base(last), base(last));
  chownSync(path.join(c, 'f'), base(last) + 5, base(last) + 5);
  const moved = leaseIdRange(c, leasedSlots([a, b]), state);
  t.equal(moved.slot, last - 2);
  t.equal(statSync(path.join(c, 'f')).uid, moved.base + 5, 'its files moved along');

  t.equal(reserveIdRange('a', state, DEFAULT_POOL, a).slot, last, 'a boot takes the range UPPER belongs to');
  t.equal(reserveIdRange('x', state, DEFAULT_POOL, a).slot, 0, 'while it is held, another boot over it gets the lowest free one');
  t.equal(reserveIdRange('y', state).slot, 1, 'and a boot without one the lowest free');
  t.equal(leaseIdRange(upper('d'), leasedSlots([a, b, c]), state).slot, last - 3, 'a lease skips leased slots');
  const e = upper('e');
  chownSync(e, base(last - 4), base(last - 4));
  t.equal(reserveIdRange('e', state, DEFAULT_POOL, e).slot, last - 4, 'a running subhost holds slot last - 4');
  t.equal(leaseIdRange(upper('f'), new Set([...leasedSlots([a, b, c]), last - 3]), state).slot, last - 5, 'a lease skips reserved slots too');
  t.equal(slotOf(base(2) + 1), undefined, 'an id inside a range is no range\'s start');
  t.equal(slotOf(DEFAULT_POOL.start - IDS_PER_SUBHOST), undefined, 'nor one below the pool');
});
