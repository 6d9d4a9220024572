// LAYERS: read-only lower layers between UPPER and LOWER, mounted with fsconfig "lowerdir+"
// one layer at a time. Real boots, real overlayfs, checked from inside the subhost.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { checkConfig } from '../../src/commands/check.js';
import { readConfig } from '../../src/config/read.js';
import { OverlayBootError } from '../../src/errors.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { makeSubhost, subhostTest, tempDir, uniqueName } from '../helpers/subhost.js';

function inside(pid1: number, script: string): string {
  return execFileSync('nsenter', ['-t', String(pid1), '-m', '-p', '-r', '-w', '/bin/sh', '-c', script], { encoding: 'utf8' });
}

/** Writes `files` (path below the layer -> content) into the directory `dir`. */
function layer(dir: string, files: Record<string, string>): string {
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), content);
  }
  mkdirSync(dir, { recursive: true });
  return dir;
}

const layered = uniqueName('ly');
subhostTest(t, 'the top layer wins, a whiteout hides LOWER, writes land in UPPER', [layered], async (t) => {
  const name = layered;
  const lower = makeBusyboxRoot(tempDir(t, 'ovb-lower-'));
  writeFileSync(path.join(lower, 'etc/from'), 'lower\n');
  writeFileSync(path.join(lower, 'etc/hidden'), 'lower\n');
  writeFileSync(path.join(lower, 'etc/only-lower'), 'lower\n');
  // Relative names resolved against BASE, one with ',', ':' and a space (written escaped).
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', 'LAYERS=top odd,na:me\\ x mid'], { lower });
  const top = layer(path.join(sh.base, 'top'), { 'etc/from': 'top\n', 'etc/only-top': 'top\n' });
  const odd = layer(path.join(sh.base, 'odd,na:me x'), { 'etc/from': 'odd\n', 'etc/only-odd': 'odd\n' });
  const mid = layer(path.join(sh.base, 'mid'), { 'etc/from': 'mid\n', 'etc/only-mid': 'mid\n' });
  execFileSync('mknod', [path.join(mid, 'etc/hidden'), 'c', '0', '0']);

  const { config, plan } = await checkConfig(sh.conf);
  t.same(config.layers, [top, odd, mid], '--check --json shows the layers, top first, as real paths');
  const mountRoot = plan.steps.find((s) => s.id === 'mount-root')!;
  t.match(mountRoot.title, `lowerdir+=${top}, lowerdir+=${odd}, lowerdir+=${mid}, lowerdir+=${lower}`, 'the plan step names every layer in order');
  t.same(mountRoot.native[0], { op: 'mount-overlay', args: [path.join(sh.base, 'live'), path.join(sh.base, 'root'), path.join(sh.base, 'work'), top, odd, mid, lower] });

  const r = await boot(sh.conf);
  t.equal(inside(r.pid1, 'cat /etc/from'), 'top\n', 'the top layer\'s file is over the lower ones\'');
  t.equal(inside(r.pid1, 'cat /etc/only-top /etc/only-odd /etc/only-mid /etc/only-lower'), 'top\nodd\nmid\nlower\n', 'every layer is seen');
  t.equal(inside(r.pid1, 'test -e /etc/hidden && echo there || echo gone').trim(), 'gone', 'a whiteout in a layer hides the LOWER file');

  inside(r.pid1, 'echo new > /etc/new; echo changed > /etc/from; echo changed > /etc/only-mid; rm /etc/only-odd');
  t.equal(readFileSync(path.join(sh.base, 'root/etc/new'), 'utf8'), 'new\n', 'a new file lands in UPPER');
  t.equal(readFileSync(path.join(sh.base, 'root/etc/from'), 'utf8'), 'changed\n', 'a changed file is copied up to UPPER');
  t.equal(readFileSync(path.join(sh.base, 'root/etc/only-mid'), 'utf8'), 'changed\n');
  t.equal(readFileSync(path.join(top, 'etc/from'), 'utf8'), 'top\n', 'the top layer is unchanged');
  t.equal(readFileSync(path.join(mid, 'etc/only-mid'), 'utf8'), 'mid\n', 'a lower layer is unchanged');
  t.ok(existsSync(path.join(odd, 'etc/only-odd')), 'a removed file stays in its layer (UPPER holds the whiteout)');
  t.notOk(existsSync(path.join(top, 'etc/new')) || existsSync(path.join(mid, 'etc/new')) || existsSync(path.join(lower, 'etc/new')), 'nothing was written into a layer or LOWER');
});

const many = uniqueName('lz');
subhostTest(t, '40 layers with long paths (over 4 KB in all) boot', [many], async (t) => {
  const name = many;
  const lower = makeBusyboxRoot(tempDir(t, 'ovb-lower-'));
  const dirs: string[] = [];
  for (let i = 0; i < 40; i++) dirs.push(`layer-${String(i).padStart(2, '0')}-${'x'.repeat(140)}`);
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', `LAYERS=${dirs.join(' ')}`], { lower });
  dirs.forEach((d, i) => layer(path.join(sh.base, d), { [`etc/layer-${i}`]: `${i}\n`, 'etc/which': `${i}\n` }));
  const total = dirs.reduce((n, d) => n + path.join(sh.base, d).length + 1, 0);
  t.ok(total > 4096, `the layer paths take ${total} bytes`);

  const r = await boot(sh.conf);
  t.equal(inside(r.pid1, 'cat /etc/which'), '0\n', 'the first layer is the top one');
  t.equal(inside(r.pid1, 'cat /etc/layer-0 /etc/layer-39'), '0\n39\n', 'the top and the bottom layer are both there');
  t.equal(inside(r.pid1, 'ls /etc | grep -c ^layer-').trim(), '40', 'and every one between');
});

/** An opaque directory: what LOWER has below it is hidden (overlayfs's own xattr; node has no setxattr). */
function opaque(dir: string): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('python3', ['-c', 'import os,sys; os.setxattr(sys.argv[1], "trusted.overlay.opaque", b"y")', dir]);
}

/** Everything below `dir`, with sizes, to show a layer was not written to. */
function tree(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).sort().map((p) => `${p} ${statSync(path.join(dir, p)).size}`);
}

const nested = uniqueName('ln');
subhostTest(t, 'a layer inside LOWER\'s tree is the read-only upper of an inner overlay', [nested], async (t) => {
  const name = nested;
  const lower = makeBusyboxRoot(tempDir(t, 'ovb-lower-'));
  writeFileSync(path.join(lower, 'etc/from'), 'lower\n');
  writeFileSync(path.join(lower, 'etc/hidden'), 'lower\n');
  writeFileSync(path.join(lower, 'etc/only-lower'), 'lower\n');
  mkdirSync(path.join(lower, 'opt/dir'), { recursive: true });
  writeFileSync(path.join(lower, 'opt/dir/lower-file'), 'lower\n');
  const inner = layer(path.join(lower, 'var/lib/x/layer'), { 'etc/from': 'inner\n', 'etc/only-inner': 'inner\n', 'opt/dir/inner-file': 'inner\n' });
  execFileSync('mknod', [path.join(inner, 'etc/hidden'), 'c', '0', '0']);
  opaque(path.join(inner, 'opt/dir'));
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', `LAYERS=top ${inner}`], { lower });
  const top = layer(path.join(sh.base, 'top'), { 'etc/only-top': 'top\n' });

  // The kernel refuses the single overlay with that layer as a lower one: this is what the inner overlay avoids.
  const scratch = tempDir(t, 'ovb-eloop-');
  for (const d of ['up', 'work', 'mnt']) mkdirSync(path.join(scratch, d));
  t.throws(() => execFileSync('unshare', ['-m', 'mount', '-t', 'overlay', 'overlay', '-o',
    `lowerdir=${inner}:${lower},upperdir=${scratch}/up,workdir=${scratch}/work`, `${scratch}/mnt`], { stdio: 'pipe' }),
  /Too many levels of symbolic links/, 'overlayfs refuses the layer as a lower beside LOWER (ELOOP)');

  const before = tree(inner);
  const { config, plan } = await checkConfig(sh.conf);
  t.same(config.innerLayer, { layer: inner, workdir: path.join(sh.base, '.work.layer-work') }, 'the layer inside LOWER is found');
  const mountRoot = plan.steps.find((s) => s.id === 'mount-root')!;
  t.match(mountRoot.title, `with LAYERS ${inner} as its read-only upper (it lies inside LOWER ${lower} on its filesystem, and overlayfs refuses overlapping lower layers)`, '--check says how and why');
  t.match(mountRoot.title, `lowerdir+=${top}, lowerdir+=${path.join(sh.base, 'live')})`, 'the layer above it is over the inner overlay');

  const r = await boot(sh.conf);
  t.equal(inside(r.pid1, 'cat /etc/from /etc/only-inner /etc/only-lower /etc/only-top'), 'inner\ninner\nlower\ntop\n', 'the layer is over LOWER, the top layer over both');
  t.equal(inside(r.pid1, 'test -e /etc/hidden && echo there || echo gone').trim(), 'gone', 'a whiteout in the layer hides the LOWER file');
  t.equal(inside(r.pid1, 'ls /opt/dir').trim(), 'inner-file', 'an opaque directory in the layer hides LOWER\'s');
  t.match(inside(r.pid1, 'cat /proc/self/mountinfo'), `lowerdir+=${top},lowerdir+=${path.join(sh.base, 'live')},upperdir=${path.join(sh.base, 'root')},`,
    'the subhost\'s root is the overlay over the inner one (mounted on LIVE, covered by it)');
  inside(r.pid1, 'echo new > /etc/new; echo changed > /etc/from; echo changed > /etc/only-inner; rm /etc/only-lower');
  t.equal(readFileSync(path.join(sh.base, 'root/etc/new'), 'utf8'), 'new\n', 'a new file lands in UPPER');
  t.equal(readFileSync(path.join(sh.base, 'root/etc/only-inner'), 'utf8'), 'changed\n', 'a changed layer file is copied up to UPPER');
  t.same(tree(inner), before, 'the layer is unchanged');
  t.equal(readFileSync(path.join(lower, 'etc/only-lower'), 'utf8'), 'lower\n', 'LOWER is unchanged');
});

// Only where / and /var/tmp are one filesystem (else the layer does not overlap LOWER=/).
const rootNested = uniqueName('lr');
const sameFs = statSync('/').dev === statSync('/var/tmp').dev && statSync('/').dev === statSync('/tmp').dev;
subhostTest(t, 'LOWER=/ with a layer in /var/tmp boots', [rootNested], async (t) => {
  if (!sameFs) {
    t.comment('/, /tmp and /var/tmp are not one filesystem here: no layer in /var/tmp overlaps LOWER=/');
    return;
  }
  const name = rootNested;
  const dir = mkdtempSync('/var/tmp/ovb-layer-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const inner = layer(path.join(dir, 'layer'), { 'etc/ovb-layer-probe': 'layer\n' });
  const sh = makeSubhost(t, name, ['START=none', 'CABLES=', 'RAM_SIZE=none', `LAYERS=${inner}`, 'LOWER=/']);
  const { config } = await checkConfig(sh.conf);
  t.equal(config.innerLayer?.layer, inner, 'the layer lies inside LOWER=/');
  const r = await boot(sh.conf);
  t.equal(inside(r.pid1, 'cat /etc/ovb-layer-probe'), 'layer\n', 'the layer\'s file is seen over /');
  t.equal(inside(r.pid1, 'test -e /etc/hostname -o -e /etc/passwd && echo host').trim(), 'host', 'the host\'s / is below it');
  inside(r.pid1, 'echo new > /etc/ovb-layer-new');
  t.notOk(existsSync(path.join(inner, 'etc/ovb-layer-new')) || existsSync('/etc/ovb-layer-new'), 'the write went to UPPER only');
  t.ok(existsSync(path.join(sh.base, 'root/etc/ovb-layer-new')));
});

t.test('layers inside LOWER that cannot be nested are clear errors naming LAYERS', async (t) => {
  const lower = tempDir(t, 'ovb-lower-');
  const a = layer(path.join(lower, 'a'), { f: 'a\n' });
  const b = layer(path.join(lower, 'b'), { f: 'b\n' });
  const two = makeSubhost(t, uniqueName('lb'), [`LAYERS=${a} ${b}`], { lower });
  await t.rejects(readConfig(two.conf), { code: 'CONFIG_BAD_PATH', variable: 'LAYERS', line: 5, message: /only one of them can be mounted as the upper of an inner overlay/ });
  const one = makeSubhost(t, uniqueName('lb'), [`LAYERS=${a}`], { lower });
  t.equal((await readConfig(one.conf)).innerLayer?.layer, a, 'one is fine');
  const outside = makeSubhost(t, uniqueName('lb'), ['LAYERS=l'], { lower });
  layer(path.join(outside.base, 'l'), { f: 'l\n' });
  t.equal((await readConfig(outside.conf)).innerLayer, undefined, 'a layer outside LOWER keeps the single overlay');

  // LOWER itself an overlayfs: the inner overlay would put the subhost's three deep.
  const dir = mkdtempSync('/tmp/ovb-ovlower-');
  for (const d of ['lo', 'up', 'work', 'mnt']) mkdirSync(path.join(dir, d));
  layer(path.join(dir, 'lo/layer'), { f: 'l\n' });
  const mnt = path.join(dir, 'mnt');
  t.teardown(() => {
    try { execFileSync('umount', [mnt], { stdio: 'ignore' }); } catch { /* not mounted */ }
    rmSync(dir, { recursive: true, force: true });
  });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${dir}/lo,upperdir=${dir}/up,workdir=${dir}/work`, mnt]);
  const stacked = makeSubhost(t, uniqueName('lb'), [`LAYERS=${mnt}/layer`], { lower: mnt });
  await t.rejects(readConfig(stacked.conf), { code: 'CONFIG_BAD_PATH', variable: 'LAYERS', message: /which is itself an overlayfs/ });
});

t.test('bad LAYERS values are coded errors naming file, line and variable', async (t) => {
  const name = uniqueName('lb');
  const sh = makeSubhost(t, name, ['START=none', 'LAYERS=missing afile']);
  writeFileSync(path.join(sh.base, 'afile'), 'not a directory\n');
  const err = await readConfig(sh.conf).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof OverlayBootError, 'refused');
  const e = err as OverlayBootError;
  t.equal(e.code, 'CONFIG_INVALID', 'two problems are gathered');
  const errors = e.errors ?? [];
  t.same(errors.map((x) => [x.code, x.variable, x.line, x.file]), [
    ['CONFIG_BAD_PATH', 'LAYERS', 5, sh.conf],
    ['CONFIG_BAD_PATH', 'LAYERS', 5, sh.conf],
  ]);
  t.match(errors[0]!.message, /missing does not exist/);
  t.match(errors[1]!.message, /afile is not a directory/);

  const one = makeSubhost(t, uniqueName('lb'), ['LAYERS=/nonexistent-ovb-layer']);
  await t.rejects(readConfig(one.conf), { code: 'CONFIG_BAD_PATH', variable: 'LAYERS', line: 4, file: one.conf }, 'one bad layer is that error itself');

  // A link to a directory is fine: the plan shows where it leads.
  const linked = makeSubhost(t, uniqueName('lb'), ['LAYERS=ln']);
  mkdirSync(path.join(linked.base, 'real'));
  symlinkSync('real', path.join(linked.base, 'ln'));
  t.same((await readConfig(linked.conf)).layers, [path.join(linked.base, 'real')]);

  const unset = makeSubhost(t, uniqueName('lb'), ['LAYERS=']);
  t.same((await readConfig(unset.conf)).layers, [], 'an empty LAYERS is no layer');

  const bind = makeSubhost(t, uniqueName('lb'), ['UPPER=/', 'LAYERS=root']);
  const c = await readConfig(bind.conf);
  t.equal(c.rootVariant, 'bind');
  t.match(c.warnings, [{ variable: 'LAYERS', message: /not used/ }], 'a variant without overlay warns that LAYERS is unused');
});
