import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/boot.js';
import { capture } from '../helpers/cli.js';
import { CONF_D, EXAMPLE_LAYOUT, prepareExample } from '../fixtures/examples.js';
import { snapshotHost } from '../helpers/host.js';
import { makeSubhost } from '../helpers/subhost.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-boot.js', import.meta.url));

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A block device of this host (its first disk), as /dev names it. */
function blockDevice(): string {
  const disk = readFileSync('/proc/partitions', 'utf8').split('\n').slice(2).map((l) => l.trim().split(/\s+/)[3]).find(Boolean);
  if (!disk) throw new Error('this host lists no block device in /proc/partitions');
  return `/dev/${disk}`;
}

t.test('--check prints the full plan for every conf.d example and changes nothing', async (t) => {
  const examples = readdirSync(CONF_D).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -5));
  t.same(examples.sort(), Object.keys(EXAMPLE_LAYOUT).sort(), 'every example has a layout');
  for (const name of examples) {
    await t.test(name, async (t) => {
      const dir = prepareExample(t, name);
      const before = snapshotHost();
      const io = capture();
      const code = await main(['--check', path.join(dir, `${name}.conf`)], io);
      t.equal(code, 0, io.err);
      t.match(io.out, new RegExp(`^subhost ${name === 'vlan' ? 'xmpl' : name} `), 'names the subhost');
      for (const id of ['state', 'netns', 'mount-namespace', 'mount-root', 'pid1', 'init']) {
        t.match(io.out, new RegExp(`\\. ${id} \\(`), `step ${id} shown`);
      }
      t.match(io.out, /undo: delete network namespace/, 'undo shown');
      if (name === 'mail') {
        t.match(io.out, /ip link add mail0 type veth peer name eth0 address 02:00:5e:10:00:25 netns mail/);
        t.match(io.out, /link set mail0 master br0 up/);
        t.match(io.out, /service postfix start/);
      }
      if (name === 'vlan') t.match(io.out, /type vlan id 302/);
      if (name === 'share') t.match(io.out, /bind-share .*\/share\/exchange .*\/srv\/exchange/);
      if (name === 'upperprog') t.match(io.out, /ACTION=setup .*upperprog-upper\.sh/);
      if (name === 'minimal') {
        t.match(io.out, /mount -t overlay overlay .*minimal\/live \(upperdir=.*, lowerdir\+=\/\)/);
        t.match(io.out, /mknod .*\/dev\/null c 1 3 mode 0666/);
      }
      t.same(snapshotHost(), before, 'host unchanged');
      if (name === 'upperprog') t.notOk(existsSync(path.join(dir, 'upperprog/fresh-root')), 'UPPER program not run');

      const j = capture();
      t.equal(await main(['--check', '--json', path.join(dir, `${name}.conf`)], j), 0);
      const doc = JSON.parse(j.out);
      t.equal(doc.valid, true);
      t.ok(Array.isArray(doc.plan.steps) && doc.plan.steps.length >= 8, 'JSON plan has the steps');
      t.ok(doc.plan.steps.every((s: { id: string; place: string }) => s.id && s.place), 'each step has id and place');
    });
  }
});

t.test('--check lists every error with file, line and variable, exit 1', async (t) => {
  const sh = makeSubhost(t, 'bad', ['CABLES=br0=01:00:00:00:00:01 =.5000 nocable', 'RAM_SIZE=lots']);
  const io = capture();
  t.equal(await main(['--check', sh.conf], io), 1);
  t.match(io.err, new RegExp(`${sh.conf}:4: CABLES: .*\\[CONFIG_BAD_MAC\\]`));
  t.match(io.err, /\[CONFIG_BAD_VLAN\]/);
  t.match(io.err, /\[CONFIG_BAD_CABLE\]/);
  t.match(io.err, new RegExp(`${sh.conf}:5: RAM_SIZE: .*\\[CONFIG_BAD_SIZE\\]`));
  const j = capture();
  t.equal(await main(['--check', '--json', sh.conf], j), 1);
  const doc = JSON.parse(j.out);
  t.equal(doc.valid, false);
  t.equal(doc.error.code, 'CONFIG_INVALID');
  t.ok(doc.error.errors.length >= 4);
});

t.test('--check of every conf.d example with PRIVILEGED=no prints the plan in a user namespace, changing nothing', async (t) => {
  for (const name of Object.keys(EXAMPLE_LAYOUT)) {
    const dir = prepareExample(t, name);
    const conf = path.join(dir, `${name}.conf`);
    appendFileSync(conf, 'PRIVILEGED=no\n');
    const before = snapshotHost();
    const io = capture();
    t.equal(await main(['--check', conf], io), 0, `${name}: ${io.err}`);
    t.match(io.out, /PRIVILEGED=no/, `${name}: the plan says so`);
    t.match(io.out, /\. netns \(.*\): create user namespace /, `${name}: with its user namespace`);
    t.same(snapshotHost(), before, `${name}: host unchanged (no id range reserved)`);
  }
});

t.test('--check says up front, with UNPRIV_UNSUPPORTED, what an unprivileged subhost cannot have', async (t) => {
  const cases: Array<{ what: string; lines: string[]; variable: string }> = [
    { what: 'a host device node shared in (character)', lines: ['SHARE=/dev/null:/mnt/null'], variable: 'SHARE' },
    { what: 'a host disk shared in (block device)', lines: [`SHARE=${blockDevice()}:/mnt/disk`], variable: 'SHARE' },
    { what: 'a bind root (UPPER=/)', lines: ['UPPER=/'], variable: 'PRIVILEGED' },
    { what: 'a premounted root (LIVE equals LOWER)', lines: ['LIVE=live', 'LOWER=live'], variable: 'PRIVILEGED' },
  ];
  for (const c of cases) {
    const sh = makeSubhost(t, 'unsup', ['START=none', ...c.lines], { mode: 'unprivileged' });
    const before = snapshotHost();
    const io = capture();
    t.equal(await main(['--check', sh.conf], io), 1, `${c.what}: exit 1`);
    t.match(io.err, new RegExp(`^overlay-boot: ${escape(sh.conf)}:\\d+: ${c.variable}: .*\\[UNPRIV_UNSUPPORTED\\]`, 'm'), `${c.what}: names file, line and ${c.variable}`);
    const j = capture();
    t.equal(await main(['--check', '--json', sh.conf], j), 1);
    t.match(JSON.parse(j.out), { valid: false, error: { code: 'UNPRIV_UNSUPPORTED', variable: c.variable } }, `${c.what}: in --json too`);
    t.same(snapshotHost(), before, `${c.what}: host unchanged`);
    const privileged = makeSubhost(t, 'unsup', ['START=none', ...c.lines]);
    t.equal(await main(['--check', privileged.conf], capture()), 0, `${c.what}: fine for a privileged subhost`);
  }
});

t.test('usage errors exit 2', async (t) => {
  const io = capture();
  t.equal(await main([], io), 2);
  t.match(io.err, /usage: overlay-boot/);
  t.equal(await main(['--bogus', 'x'], capture()), 2);
  const h = capture();
  t.equal(await main(['--help'], h), 0);
  t.match(h.out, /--check/);
});

t.test('the real bin runs --check', async (t) => {
  const dir = prepareExample(t, 'minimal');
  const r = spawnSync(process.execPath, [BIN, '--check', path.join(dir, 'minimal.conf')], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /subhost minimal/);
  const bad = spawnSync(process.execPath, [BIN, '--check', path.join(dir, 'nonexistent.conf')], { encoding: 'utf8' });
  t.equal(bad.status, 1);
  t.match(bad.stderr, /CONFIG_UNREADABLE/);
});

t.test('--check works for a non-root user where only reading is needed', async (t) => {
  const dir = prepareExample(t, 'minimal');
  execFileSync('chmod', ['755', dir]);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, BIN, '--check', path.join(dir, 'minimal.conf')], { encoding: 'utf8', env: { PATH: process.env.PATH } });
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /subhost minimal/);
});

