// Packages encrypted with `openssl enc -aes-256-cbc -pbkdf2 -salt` (Perenio's .bin).
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openPackage } from '../../src/package/open.js';
import { unpackPackage } from '../../src/package/unpack.js';
import { describeTree, encryptByHand, makeDebByHand, makeIpkByHand } from '../helpers/packages.js';
import { tempDir } from '../helpers/subhost.js';

const CONTROL = { Package: 'secret', Version: '1.2', Architecture: 'all' };
const DATA = { 'opt/secret/run': { content: '#!/bin/sh\n', mode: 0o755 }, 'opt/secret/data': 'payload\n'.repeat(5000) };
const scratch = () => readdirSync(os.tmpdir()).filter((n) => n.startsWith('ovb-pkg-')).sort();

t.test('an encrypted ipk and deb read like the plain ones, with the secret', async (t) => {
  const work = tempDir(t);
  const before = scratch();
  const plainIpk = makeIpkByHand({ work: path.join(work, 'i'), control: CONTROL, data: DATA });
  const plainDeb = makeDebByHand({ work: path.join(work, 'd'), control: CONTROL, data: DATA, compression: 'zstd' });
  for (const plain of [plainIpk, plainDeb]) {
    const bin = encryptByHand(plain, 'hunter2', `${plain}.bin`);
    t.equal(readFileSync(bin).toString('latin1', 0, 8), 'Salted__');
    const info = await openPackage(bin, { secret: 'hunter2' });
    const ref = await openPackage(plain);
    t.equal(info.encrypted, true);
    t.same({ ...info, file: '', encrypted: false }, { ...ref, file: '', encrypted: false }, 'same as the plain package');
    await t.rejects(openPackage(bin), { code: 'PKG_DECRYPT' }, 'no secret');
    await t.rejects(openPackage(bin, { secret: 'wrong' }), { code: 'PKG_DECRYPT' }, 'wrong secret');
    const dest = path.join(work, `${path.basename(plain)}-out`);
    await unpackPackage(bin, dest, { secret: 'hunter2' });
    const plainDest = `${dest}-plain`;
    await unpackPackage(plain, plainDest);
    t.same(describeTree(dest), describeTree(plainDest), 'same tree as the plain package unpacks to');
    t.equal(readFileSync(path.join(dest, 'opt/secret/data'), 'utf8'), DATA['opt/secret/data']);
  }
  t.same(scratch(), before, 'scratch directories removed');
});

t.test('many wrong secrets: always PKG_DECRYPT, never another error', async (t) => {
  const work = tempDir(t);
  const bin = encryptByHand(makeIpkByHand({ work, control: CONTROL, data: { a: 'a' } }), 'right', path.join(work, 'p.bin'));
  for (let i = 0; i < 40; i += 1) {
    await t.rejects(openPackage(bin, { secret: `wrong${i}` }), { code: 'PKG_DECRYPT' });
  }
});
