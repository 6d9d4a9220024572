// DUs run unprivileged by default (TR-181 InstallDU Privileged false; issue 16): the shipped
// templates say PRIVILEGED=no, `privileged` (--privileged) or a template saying yes opts in.
// A DU keeps one id range for its life (its UPPER's owner); maintainer scripts run in an
// unprivileged staging subhost and leave the layer in host ids. Real installs, real kernel.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import { installDU } from '../../src/lifecycle/install.js';
import { shippedTemplatesDir } from '../../src/lifecycle/templates.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { unitPaths } from '../../src/lifecycle/unit.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { DEFAULT_POOL, IDS_PER_SUBHOST, slotFile } from '../../src/subhost/idmap.js';
import { DEFAULT_STATE_DIR, readStateRecord, statePath } from '../../src/subhost/state.js';
import { buildDu, runInside, makeDuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

t.test('the shipped templates run DUs unprivileged', async (t) => {
  for (const ee of ['bee', 'bridge', 'oci']) {
    t.match(readFileSync(path.join(shippedTemplatesDir(), `${ee}.conf`), 'utf8'), /^PRIVILEGED=no$/m, `${ee} says PRIVILEGED=no`);
  }
});

t.test('an unprivileged DU: scripts staged unprivileged, the layer in host ids, one range for its life', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('ud');
  const file = buildDu(env, {
    name: 'unpriv-demo',
    data: { 'usr/share/unpriv-demo/shipped': 'shipped\n' },
    scripts: {
      // As root inside the staging subhost: a file of its own, one given to uid 7, the package's own file changed.
      postinst: '#!/bin/sh\nset -e\nmkdir -p /var/lib/unpriv-demo\necho made > /var/lib/unpriv-demo/root-file\n'
        + 'echo seven > /var/lib/unpriv-demo/uid7-file\nchown 7:7 /var/lib/unpriv-demo/uid7-file\n'
        + 'echo changed >> /usr/share/unpriv-demo/shipped\nid -u > /var/lib/unpriv-demo/staging-uid\n'
        + 'cat /proc/self/uid_map > /var/lib/unpriv-demo/uid-map\n',
    },
  });
  const out = await installDU({ config: env.config, source: file, name });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
  const record = new DuStore(env.state).get(name)!;
  t.equal(record.Privileged, false, 'the record says unprivileged');
  const unit = unitPaths(env.state, name);
  t.match(readFileSync(unit.config, 'utf8'), /^PRIVILEGED=no$/m, 'and so does its config');

  const layer = record.layer;
  const owner = (p: string) => { const s = statSync(path.join(layer, p)); return `${s.uid}:${s.gid}`; };
  t.equal(readFileSync(path.join(layer, 'var/lib/unpriv-demo/staging-uid'), 'utf8'), '0\n', 'postinst ran as root inside');
  const stagingMap = /^\s*0\s+(\d+)\s+65536\s*$/.exec(readFileSync(path.join(layer, 'var/lib/unpriv-demo/uid-map'), 'utf8'));
  t.ok(stagingMap && Number(stagingMap[1]) > 0, 'that root is the mapped root of a user namespace (uid 0 inside is a range on the host), not host root');
  t.same(['var/lib/unpriv-demo/root-file', 'var/lib/unpriv-demo/uid7-file', 'usr/share/unpriv-demo/shipped', '.'].map(owner),
    ['0:0', '7:7', '0:0', '0:0'], 'what the scripts made is in host ids in the layer (moved back from the staging range)');
  t.equal(readFileSync(path.join(layer, 'usr/share/unpriv-demo/shipped'), 'utf8'), 'shipped\nchanged\n', 'the script could change the package\'s file');

  const running = readStateRecord(statePath(name))!;
  const base = running.idmap!.base;
  t.equal(statSync(unit.upper).uid, base, 'its UPPER belongs to the range it runs with');
  t.ok(base >= DEFAULT_POOL.start + DEFAULT_POOL.count / 2, 'a DU\'s range comes from the top of the pool');
  t.equal(runInside(name, ['stat', '-c', '%u:%g', '/var/lib/unpriv-demo/root-file', '/var/lib/unpriv-demo/uid7-file']).stdout, '0:0\n7:7\n',
    'inside the DU the layer shows its owners');
  t.equal(runInside(name, ['sh', '-c', 'echo x > /var/lib/unpriv-demo/new; stat -c %u /var/lib/unpriv-demo/new']).stdout, '0\n');
  t.equal(statSync(path.join(unit.upper, 'var/lib/unpriv-demo/new')).uid, base, 'a write lands in UPPER under its range');

  await stopByName(name);
  await boot(unit.config);
  t.equal(readStateRecord(statePath(name))!.idmap!.base, base, 'booted again, it has the same range');
  t.equal(runInside(name, ['stat', '-c', '%u', '/var/lib/unpriv-demo/new']).stdout, '0\n', 'and its files in UPPER are still root\'s inside');

  const slot = (base - DEFAULT_POOL.start) / IDS_PER_SUBHOST;
  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled', JSON.stringify(rm.entry.Fault));
  t.notOk(existsSync(unit.dir), 'remove takes its UPPER, and with it the range\'s lease');
  t.notOk(existsSync(slotFile(DEFAULT_STATE_DIR, slot)), 'and the range is free');
});

t.test('opting in: --privileged, or a template that says PRIVILEGED=yes', async (t) => {
  const env = makeDuEnv(t);
  const flagged = uniqueName('up');
  const a = await installDU({
    config: env.config, name: flagged, privileged: true,
    source: buildDu(env, { name: 'priv-demo', scripts: { postinst: '#!/bin/sh\nset -e\nmkdir -p /var/lib/priv-demo\ncat /proc/self/uid_map > /var/lib/priv-demo/uid-map\n' } }),
  });
  t.equal(a.entry.CurrentState, 'Installed', JSON.stringify(a.entry.Fault));
  // SECURITY.md's privileged column for maintainer scripts: they run as host root
  t.match(readFileSync(path.join(new DuStore(env.state).get(flagged)!.layer, 'var/lib/priv-demo/uid-map'), 'utf8'), /^\s*0\s+0\s+4294967295\s*$/,
    'a privileged DU\'s postinst runs as host root (the identity map)');
  t.equal(new DuStore(env.state).get(flagged)!.Privileged, true, 'privileged: true is recorded');
  t.match(readFileSync(unitPaths(env.state, flagged).config, 'utf8'), /^PRIVILEGED=yes$/m);
  t.notOk(readStateRecord(statePath(flagged))!.idmap, 'no user namespace');

  copyFileSync(path.join(shippedTemplatesDir(), 'bee.conf'), path.join(env.templates, 'trusted.conf'));
  const text = readFileSync(path.join(env.templates, 'trusted.conf'), 'utf8').replace(/^PRIVILEGED=no$/m, 'PRIVILEGED=yes');
  writeFileSync(path.join(env.templates, 'trusted.conf'), text, { mode: 0o644 });
  const viaTemplate = uniqueName('up');
  const b = await installDU({ config: env.config, source: buildDu(env, { name: 'trusted-demo' }), name: viaTemplate, ee: 'trusted' });
  t.equal(b.entry.CurrentState, 'Installed', JSON.stringify(b.entry.Fault));
  t.equal(new DuStore(env.state).get(viaTemplate)!.Privileged, true, 'the template\'s PRIVILEGED=yes is recorded');
  t.notOk(readStateRecord(statePath(viaTemplate))!.idmap, 'no user namespace');
  t.equal(execFileSync('stat', ['-c', '%u', unitPaths(env.state, viaTemplate).upper], { encoding: 'utf8' }).trim(), '0', 'no range leased to its UPPER');
});
