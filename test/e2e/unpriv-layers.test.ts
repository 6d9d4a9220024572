// PRIVILEGED=no with LAYERS (issue 16): each layer, and LOWER, is a detached idmapped mount
// handed to overlayfs as a descriptor, so layer files keep their real owners inside while the
// subhost's writes land in UPPER under the mapped ids. Real boots, checked from inside.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { enterArgv } from '../../src/commands/enter.js';
import { stop } from '../../src/commands/stop.js';
import { slotFile } from '../../src/subhost/idmap.js';
import { findNative } from '../../src/subhost/native.js';
import { processId } from '../../src/subhost/process.js';
import { DEFAULT_STATE_DIR, readStateRecord, statePath } from '../../src/subhost/state.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { makeSubhost, subhostTest, tempDir, uniqueName } from '../helpers/subhost.js';

/** A command inside the subhost as overlay-go runs it (its user namespace included). */
function inside(pid1: number, script: string): string {
  const argv = enterArgv(findNative().launcher, processId(pid1)!, ['/bin/sh', '-c', script]);
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Writes `files` (path below the layer -> content) into `dir`, owned by uid:gid. */
function layer(dir: string, files: Record<string, string>, owner: [number, number] = [0, 0]): string {
  mkdirSync(dir, { recursive: true });
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), content);
    chownSync(path.join(dir, p), ...owner);
  }
  return dir;
}

/** Every entry below `dir` with owner, mode and size: a layer that was not written to keeps it. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort().map((p) => {
    const s = lstatSync(path.join(dir, p));
    return `${p} ${s.uid}:${s.gid} ${s.mode.toString(8)} ${s.size}`;
  });
}

/** Mount points of the host's mount table below `dir`. */
function hostMountsBelow(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir));
}

const three = uniqueName('ul');
subhostTest(t, 'three layers, unprivileged: real owners inside, writes mapped in UPPER, layers unchanged', [three], async (t) => {
  const name = three;
  const lower = makeBusyboxRoot(tempDir(t, 'ovb-lower-'));
  writeFileSync(path.join(lower, 'etc/hidden'), 'lower\n');
  writeFileSync(path.join(lower, 'etc/only-lower'), 'lower\n');
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', 'PRIVILEGED=no', 'LAYERS=top mid bot'], { lower });
  const top = layer(path.join(sh.base, 'top'), { 'etc/from': 'top\n' });
  const mid = layer(path.join(sh.base, 'mid'), { 'etc/from': 'mid\n', 'srv/app/data': 'mid\n' }, [7, 8]);
  const bot = layer(path.join(sh.base, 'bot'), { 'etc/only-bot': 'bot\n' });
  execFileSync('mknod', [path.join(mid, 'etc/hidden'), 'c', '0', '0']);
  const before = [top, mid, bot, lower].map(tree);

  const { plan } = await checkConfig(sh.conf);
  const mountRoot = plan.steps.find((s) => s.id === 'mount-root')!;
  t.same(mountRoot.native.map((o) => o.op), ['chown-root', 'idmap-overlay', 'root'], '--check: the layers go to overlayfs idmapped');
  t.same(mountRoot.native[1]!.args.slice(4), ['lowers', top, mid, bot, lower], 'every layer and LOWER, top first');
  t.match(mountRoot.title, /each layer and LOWER idmapped/);

  const r = await boot(sh.conf);
  const { base, slot } = readStateRecord(statePath(name))!.idmap!;
  t.equal(inside(r.pid1, 'cat /etc/from /etc/only-bot /etc/only-lower'), 'top\nbot\nlower\n', 'the layers are stacked as LAYERS says');
  t.equal(inside(r.pid1, 'test -e /etc/hidden && echo there || echo gone').trim(), 'gone', 'a whiteout in a layer hides LOWER\'s file');
  t.equal(inside(r.pid1, 'stat -c %u:%g /etc/from /srv/app/data /etc/only-bot /etc/only-lower').trim(), '0:0\n7:8\n0:0\n0:0',
    'layer files show their real owners inside (host root is root, uid 7 is 7)');

  inside(r.pid1, 'echo new > /etc/new; echo changed > /etc/from; echo changed > /srv/app/data; touch /etc/by7; chown 7:8 /etc/by7');
  const upper = (p: string) => statSync(path.join(sh.base, 'root', p));
  t.equal(readFileSync(path.join(sh.base, 'root/etc/from'), 'utf8'), 'changed\n', 'a changed layer file is copied up to UPPER');
  t.same([upper('etc/new').uid, upper('etc/new').gid], [base, base], 'a new file is the mapped root\'s on the host');
  t.same([upper('etc/from').uid, upper('srv/app/data').uid, upper('srv/app/data').gid], [base, base + 7, base + 8],
    'copied-up files keep their owners, mapped');
  t.equal(upper('etc/by7').uid, base + 7, 'uid 7 inside is base + 7 on the host');
  t.same([top, mid, bot, lower].map(tree), before, 'the layers and LOWER on the host are unchanged');

  await stop(sh.conf, { timeoutSeconds: 3 });
  t.same(hostMountsBelow(sh.dir), [], 'nothing is left mounted');
  t.notOk(existsSync(slotFile(DEFAULT_STATE_DIR, slot)), 'the range is given back');
});

const nested = uniqueName('un');
subhostTest(t, 'unprivileged, a layer inside LOWER\'s tree: an inner overlay of idmapped mounts', [nested], async (t) => {
  const name = nested;
  const lower = makeBusyboxRoot(tempDir(t, 'ovb-lower-'));
  writeFileSync(path.join(lower, 'etc/only-lower'), 'lower\n');
  const inner = layer(path.join(lower, 'var/lib/x/layer'), { 'etc/from': 'inner\n' });
  layer(inner, { 'opt/by7': 'inner\n' }, [7, 7]);
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', 'PRIVILEGED=no', `LAYERS=top ${inner}`], { lower });
  const top = layer(path.join(sh.base, 'top'), { 'etc/only-top': 'top\n' }, [5, 5]);
  const before = [inner, top].map(tree);

  const { config, plan } = await checkConfig(sh.conf);
  t.equal(config.innerLayer?.layer, inner, 'the layer inside LOWER is found');
  const ops = plan.steps.find((s) => s.id === 'mount-root')!.native;
  t.same(ops.filter((o) => o.op === 'idmap-overlay').map((o) => o.args[4]), ['all', 'lowers-but-last'],
    'the inner overlay idmapped throughout, the outer one over it as it is');

  const r = await boot(sh.conf);
  const base = readStateRecord(statePath(name))!.idmap!.base;
  t.equal(inside(r.pid1, 'cat /etc/from /etc/only-lower /etc/only-top'), 'inner\nlower\ntop\n', 'the layer over LOWER, the top layer over both');
  t.equal(inside(r.pid1, 'stat -c %u /etc/from /opt/by7 /etc/only-top /etc/only-lower').trim(), '0\n7\n5\n0', 'real owners inside, in both overlays');
  inside(r.pid1, 'echo changed > /opt/by7; echo new > /etc/new');
  t.equal(statSync(path.join(sh.base, 'root/opt/by7')).uid, base + 7, 'a copied-up layer file is mapped in UPPER');
  t.equal(statSync(path.join(sh.base, 'root/etc/new')).uid, base, 'a new file too');
  t.same([inner, top].map(tree), before, 'the layers on the host are unchanged');
  await stop(sh.conf, { timeoutSeconds: 3 });
  t.same(hostMountsBelow(sh.dir).concat(hostMountsBelow(lower)), [], 'nothing is left mounted');
});
