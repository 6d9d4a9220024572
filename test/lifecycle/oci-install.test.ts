// An OCI bundle with a busybox rootfs installed into the `oci` EE, on the real kernel (as
// root, under the root lock): its process runs as the subhost's RUN service with exactly
// the bundle's args, env and cwd, its EU is Active, and removal leaves nothing.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { list as listSubhosts } from '../../src/commands/list.js';
import { euLiveStatus } from '../../src/lifecycle/eu.js';
import { installDU } from '../../src/lifecycle/install.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { makeDuEnv, runInside, type DuEnv } from '../helpers/du.js';
import { toolSign } from '../helpers/keys.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { uniqueName } from '../helpers/subhost.js';

/** NAME.tar: NAME/config.json (umoci's runc-default spec, adapted) and NAME/rootfs (busybox), signed detached. */
function ociBundle(env: DuEnv, name: string, process: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
  const dir = path.join(env.dir, `oci-${name}`);
  mkdirSync(dir);
  execFileSync('umoci', ['init', '--layout', path.join(dir, 'img')]);
  execFileSync('umoci', ['new', '--image', `${path.join(dir, 'img')}:t`]);
  execFileSync('umoci', ['unpack', '--image', `${path.join(dir, 'img')}:t`, path.join(dir, name)]);
  const config = JSON.parse(execFileSync('cat', [path.join(dir, name, 'config.json')], { encoding: 'utf8' })) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form JSON
  delete config.process.capabilities;
  delete config.linux.maskedPaths;
  delete config.linux.readonlyPaths;
  config.process = { ...config.process, terminal: false, ...process };
  config.annotations['org.opencontainers.image.version'] = '1.2';
  Object.assign(config, extra);
  writeFileSync(path.join(dir, name, 'config.json'), JSON.stringify(config, null, 2));
  makeBusyboxRoot(path.join(dir, name, 'rootfs'));
  mkdirSync(path.join(dir, name, 'rootfs/srv/www'), { recursive: true });
  const file = path.join(env.dir, `${name}.tar`);
  execFileSync('tar', ['--format=gnu', '--numeric-owner', '--owner=0', '--group=0', '-cf', file, '-C', dir, name]);
  toolSign(env.key, file);
  return file;
}

t.test('an OCI bundle runs as the DU\'s RUN service, its EU Active; removal is exact', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('oc');
  const script = 'while :; do echo "$GREETING from $(pwd) as $(id -u) in $(hostname)" > /tmp/oci.out; sleep 0.2; done';
  const file = ociBundle(env, 'webby', {
    args: ['/bin/sh', '-c', script], env: ['PATH=/bin', "GREETING=it's hello"], cwd: '/srv/www',
  }, { hostname: name });
  const out = await installDU({ config: env.config, source: file, name, ee: 'oci' });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
  const record = new DuStore(env.state).get(name)!;
  t.match(record, { Name: 'webby', Version: '1.2', ExecutionEnvRef: 'oci' });
  t.same(record.EUs.map((eu) => [eu.EUID, eu.kind, eu.Status]), [[`${name}/webby`, 'run', 'Active']]);
  t.equal(await euLiveStatus(name, record.EUs[0]!), 'Active', 'live: the reaper runs it');
  const said = runInside(name, ['/bin/sh', '-c', 'sleep 0.5; cat /tmp/oci.out']);
  t.equal(said.stdout, `it's hello from /srv/www as 0 in ${name}\n`, 'args, env and cwd as the bundle says');
  const env2 = runInside(name, ['/bin/sh', '-c', 'tr "\\0" "\\n" < /proc/$(pidof sleep | cut -d" " -f1)/environ | sort']);
  t.equal(env2.stdout, "GREETING=it's hello\nPATH=/bin\nPWD=/srv/www\nSHLVL=1\n", 'only the bundle\'s environment (and what sh adds)');
  t.notOk(runInside(name, ['ls', '/usr/lib/x86_64-linux-gnu']).status === 0, 'nothing of the host shows through (empty LOWER)');

  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled', JSON.stringify(rm.entry.Fault));
  t.notOk(listSubhosts().some((s) => s.name === name));
  t.notOk(existsSync(path.join(env.state, 'units')));
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});

t.test('a bundle asking what a subhost cannot honour is refused naming NAME/config.json and the field; nothing installed', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('oc');
  const file = ociBundle(env, 'hooky', { args: ['/bin/sleep', '1000'] }, { hooks: { prestart: [{ path: '/bin/true' }] } });
  const out = await installDU({ config: env.config, source: file, name, ee: 'oci' });
  t.match(out.entry, { CurrentState: 'Failed', Fault: { FaultCode: 9025, FaultString: /PKG_OCI_UNSUPPORTED.*hooky\/config\.json: hooks cannot be honoured/ } });
  t.notOk(existsSync(path.join(env.state, 'units', name)));
  t.notOk(listSubhosts().some((s) => s.name === name));
});
