// update on the real kernel (as root, under the root lock): signed packages built in the
// test, a real DU subhost whose service proves by its output which version runs; the
// version rules and their faults; conffiles; and automatic rollback when postinst fails
// or the service does not start, checked against the live status.
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/pkg.js';
import { euLiveStatus } from '../../src/lifecycle/eu.js';
import { installDU } from '../../src/lifecycle/install.js';
import { DuStore, type DuRecord } from '../../src/lifecycle/store.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { updateDU } from '../../src/lifecycle/update.js';
import { buildDu, makeDuEnv, runInside, type DuEnv } from '../helpers/du.js';
import { capture } from '../helpers/cli.js';
import { uniqueName } from '../helpers/subhost.js';

/**
 * An init script whose service writes the version it was started from (the layer's
 * /usr/share/app/version) to /run/app.out every 0.2 s; `extra` runs first in `start`.
 */
function appScript(extra = ''): { content: string; mode: number } {
  return {
    mode: 0o755,
    content: `#!/bin/sh
case "$1" in
start)
  ${extra}
  if [ -f /run/app.pid ] && kill -0 "$(cat /run/app.pid)" 2>/dev/null; then exit 0; fi
  v=$(cat /usr/share/app/version)
  ( while :; do echo "$v" > /run/app.out; sleep 0.2; done ) </dev/null >/dev/null 2>&1 &
  echo $! > /run/app.pid
  ;;
stop)
  if [ -f /run/app.pid ]; then kill "$(cat /run/app.pid)" 2>/dev/null; rm -f /run/app.pid /run/app.out; fi
  ;;
status)
  if [ -f /run/app.pid ] && kill -0 "$(cat /run/app.pid)" 2>/dev/null; then exit 0; fi
  exit 3
  ;;
esac
exit 0
`,
  };
}

/** Every maintainer script appends "SCRIPT ARGS PKG_UPGRADE=N" to /var/lib/app/scripts.log. */
const logScript = (name: string, fail = false) => `#!/bin/sh\nmkdir -p /var/lib/app\necho "${name} $* PKG_UPGRADE=$PKG_UPGRADE" >> /var/lib/app/scripts.log\n${fail ? 'exit 7\n' : ''}`;

function appPackage(env: DuEnv, version: string, o: { conf?: string; startExtra?: string; postinstFails?: boolean; name?: string; noScripts?: boolean } = {}): string {
  return buildDu(env, {
    name: o.name ?? 'app', version,
    data: {
      'etc/init.d/app': appScript(o.startExtra),
      'usr/share/app/version': `${version}\n`,
      'etc/app.conf': o.conf ?? `port=80 # ${version}\n`,
    },
    conffiles: ['/etc/app.conf'],
    scripts: o.noScripts ? {} : { preinst: logScript('preinst'), postinst: logScript('postinst', o.postinstFails), prerm: logScript('prerm'), postrm: logScript('postrm') },
  });
}

/** The version the running service says (it rewrites /run/app.out every 0.2 s). */
function serviceSays(name: string): string {
  const r = runInside(name, ['/bin/sh', '-c', 'sleep 0.5; cat /run/app.out']);
  return r.stdout.trim();
}

function layers(env: DuEnv, name: string): string[] {
  return readdirSync(path.join(env.state, 'units', name)).filter((f) => f.startsWith('layer-') || f.startsWith('stage-'));
}

/** The DU as recorded and as it lives: its version, the live status of its EU, the version its service runs. */
async function live(env: DuEnv, name: string): Promise<{ Version: string; Status: string; live: string; says: string }> {
  const r: DuRecord = new DuStore(env.state).get(name)!;
  return { Version: r.Version, Status: r.Status, live: await euLiveStatus(name, r.EUs[0]!), says: serviceSays(name) };
}

t.test('update up, forced downgrade, conffile kept with -opkg', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('up');
  const v1 = await installDU({ config: env.config, source: appPackage(env, '1.0'), name });
  t.equal(v1.entry.CurrentState, 'Installed', JSON.stringify(v1.entry.Fault));
  t.same(await live(env, name), { Version: '1.0', Status: 'Installed', live: 'Active', says: '1.0' });
  const layer1 = new DuStore(env.state).get(name)!.layer;
  // The user edits the conffile inside the DU (it lands in UPPER).
  t.equal(runInside(name, ['/bin/sh', '-c', 'echo "port=8080 # mine" > /etc/app.conf']).status, 0);

  const v2 = await updateDU({ config: env.config, du: name, source: appPackage(env, '2.0') });
  t.equal(v2.entry.CurrentState, 'Installed', JSON.stringify(v2.entry.Fault));
  t.equal(v2.entry.OperationPerformed, 'Update');
  t.same(v2.conffilesKept, ['/etc/app.conf']);
  t.same(await live(env, name), { Version: '2.0', Status: 'Installed', live: 'Active', says: '2.0' }, 'the service runs the new version');
  t.equal(runInside(name, ['cat', '/etc/app.conf']).stdout, 'port=8080 # mine\n', 'the user\'s conffile is kept');
  t.equal(runInside(name, ['cat', '/etc/app.conf-opkg']).stdout, 'port=80 # 2.0\n', 'the new version beside it');
  t.equal(runInside(name, ['cat', '/var/lib/app/scripts.log']).stdout, [
    'preinst install PKG_UPGRADE=0', 'postinst configure PKG_UPGRADE=0', 'prerm upgrade 2.0 PKG_UPGRADE=1', 'postrm upgrade 2.0 PKG_UPGRADE=1',
  ].join('\n') + '\n', 'the old layer\'s install log, copied up into UPPER by prerm/postrm upgrade NEW, which ran inside the DU');
  t.notOk(existsSync(layer1), 'the old layer is deleted');
  t.same(layers(env, name), [path.basename(new DuStore(env.state).get(name)!.layer)], 'one layer, no staging dir');

  const forced = capture(env.env);
  t.equal(await main(['update', name, appPackage(env, '1.5'), '--force-downgrade', '--json'], forced), 0, forced.err);
  t.match(JSON.parse(forced.out), { changed: true, CurrentState: 'Installed', Version: '1.5', Subhost: name });
  t.same(await live(env, name), { Version: '1.5', Status: 'Installed', live: 'Active', says: '1.5' });
  const scripts = runInside(name, ['cat', '/var/lib/app/scripts.log']).stdout;
  t.match(scripts, /prerm upgrade 2\.0 PKG_UPGRADE=1\npostrm upgrade 2\.0 PKG_UPGRADE=1\nprerm upgrade 1\.5 PKG_UPGRADE=1\npostrm upgrade 1\.5 PKG_UPGRADE=1\n$/, 'prerm/postrm upgrade NEW ran inside the DU\'s own subhost (its UPPER)');
  t.match(readFileSync(path.join(new DuStore(env.state).get(name)!.layer, 'var/lib/app/scripts.log'), 'utf8'), /^preinst upgrade 2\.0 PKG_UPGRADE=1\npostinst configure PKG_UPGRADE=1\n$/, 'preinst upgrade OLD and postinst in the staging subhost, into the new layer');

  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled', JSON.stringify(rm.entry.Fault));
});

t.test('a failing postinst and a service that does not start each leave the old version Installed and Active', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('rb');
  const v1 = await installDU({ config: env.config, source: appPackage(env, '1.0'), name });
  t.equal(v1.entry.CurrentState, 'Installed', JSON.stringify(v1.entry.Fault));
  const before = new DuStore(env.state).get(name)!;
  const config = readFileSync(path.join(env.state, 'units', name, `${name}.conf`), 'utf8');

  const badScript = await updateDU({ config: env.config, du: name, source: appPackage(env, '2.0', { postinstFails: true }) });
  t.equal(badScript.entry.CurrentState, 'Failed');
  t.match(badScript.entry.Fault, { FaultCode: 9025, FaultString: /PKG_SCRIPT_FAILED.*postinst configure.*status 7/ });
  t.same(await live(env, name), { Version: '1.0', Status: 'Installed', live: 'Active', says: '1.0' }, 'the old version runs as before');

  const badStart = await updateDU({ config: env.config, du: name, source: appPackage(env, '2.0', { startExtra: 'exit 1' }), euTimeoutMs: 3000 });
  t.equal(badStart.entry.CurrentState, 'Failed');
  t.match(badStart.entry.Fault, { FaultCode: 9025, FaultString: /PKG_ROLLED_BACK.*app.*1\.0 is back/ });
  t.same(await live(env, name), { Version: '1.0', Status: 'Installed', live: 'Active', says: '1.0' }, 'rolled back: the old version Active again');
  t.same(new DuStore(env.state).get(name), before, 'the record is the old one');
  t.equal(readFileSync(path.join(env.state, 'units', name, `${name}.conf`), 'utf8'), config, 'the config is the old one');
  t.same(layers(env, name), [path.basename(before.layer)], 'the new layers are gone');

  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled', JSON.stringify(rm.entry.Fault));
});
