// install and remove on the real kernel: signed packages built in the test, real
// subhosts (under the root lock), maintainer scripts proven to run inside.
import t from 'tap';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installDU } from '../../src/lifecycle/install.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { listDUs } from '../../src/lifecycle/list.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { list as listSubhosts } from '../../src/commands/list.js';
import { buildDu, makeDuEnv, serviceScript, type DuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

/** What is left in the state directory, recursively (lock files are the queue's own). */
function stateFiles(env: DuEnv): string[] {
  return readdirSync(env.state, { recursive: true }).map(String).sort();
}

t.test('install a signed ipk with scripts and a service, then remove it without a trace', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('du');
  // In the host's /run, which a subhost never sees (its /run is its own tmpfs; LOWER / shows the rest).
  const marker = `/run/ovb-marker-${name}`;
  writeFileSync(marker, 'on the host\n');
  t.teardown(() => rmSync(marker, { force: true }));
  const file = buildDu(env, {
    name: 'demo-svc',
    data: { 'etc/init.d/websvc': serviceScript('websvc'), 'usr/share/demo/hello': 'hello from demo\n' },
    scripts: {
      preinst: `#!/bin/sh\n{ echo "preinst $*"; hostname; echo "pid $$"; test -e ${marker} && echo marker-visible || echo marker-hidden; } > /var/lib/demo-preinst.txt 2>&1 || { mkdir -p /var/lib; echo "preinst $*" > /var/lib/demo-preinst.txt; }\n`,
      postinst: `#!/bin/sh\nmkdir -p /var/lib/demo\n{ echo "postinst $* $PKG_ROOT $PKG_UPGRADE"; hostname; cat /proc/1/comm; test -e ${marker} && echo marker-visible || echo marker-hidden; } > /var/lib/demo/postinst.txt\n`,
    },
  });
  const out = await installDU({ config: env.config, source: file, name });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
  t.equal(out.changed, true);
  const record = new DuStore(env.state).get(name)!;
  t.match(record, { Name: 'demo-svc', Version: '1.0', Status: 'Installed', ExecutionEnvRef: 'bee', Subhost: name, Vendor: 'example.org' });
  t.same(record.EUs.map((e) => e.EUID), [`${name}/websvc`]);
  const layer = record.layer;
  t.match(readFileSync(path.join(layer, 'var/lib/demo/postinst.txt'), 'utf8'), /^postinst configure \/ 0\nstg[0-9a-z]{5}\nreaper\nmarker-hidden\n$/, 'postinst ran inside the staging subhost: its hostname, pid 1 the reaper, the host marker unseen');
  t.match(readFileSync(path.join(layer, 'var/lib/demo-preinst.txt'), 'utf8'), /^preinst install\nstg/);
  t.equal(readFileSync(env.bootList, 'utf8'), `${path.join(env.state, 'units', name, `${name}.conf`)}\n`, 'registered for host boot');
  const sub = listSubhosts().find((s) => s.name === name);
  t.equal(sub?.state, 'running', 'the DU subhost runs');
  t.notOk(existsSync(path.join('/var/lib/demo')), 'nothing of the scripts on the host');
  const listed = await listDUs(env.state);
  t.same(listed.DeploymentUnit.map((d) => [d.Subhost, d.running]), [[name, true]]);

  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled', JSON.stringify(rm.entry.Fault));
  t.notOk(listSubhosts().some((s) => s.name === name), 'the subhost is gone');
  t.notOk(existsSync(env.bootList), 'the boot list line is gone (and the file the install made)');
  t.same(stateFiles(env), ['history.jsonl', 'journal.json', 'lock'], 'only the history, the lock and an empty journal remain');
  t.equal(JSON.parse(readFileSync(path.join(env.state, 'journal.json'), 'utf8')).operation, null);
});
