// The conf.d examples must stay valid: copy them into a temp dir, create the
// directories their comments tell the administrator to create, and read each.
import t, { type Test } from 'tap';
import path from 'node:path';
import { cpSync, readdirSync, realpathSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { readConfig } from '../../src/config/read.js';
import type { SubhostConfig } from '../../src/config/types.js';
import { tempDir } from '../fixtures/config/helpers.js';
import { CONF_D, prepareExample } from '../fixtures/examples.js';

const expectations: Record<string, (t: Test, c: SubhostConfig, dir: string) => void> = {
  minimal(t, c, dir) {
    t.match(c, { name: 'minimal', lower: '/', rootVariant: 'overlay', start: ['networking', 'ssh'], cables: [], ramSize: '50M' });
    t.equal(c.upper, path.join(dir, 'minimal/root'));
    t.equal(c.log, '/tmp/overlay-minimal.log');
  },
  tiny(t, c, dir) {
    t.match(c, { name: 'tiny', lower: path.join(dir, 'tiny/rootfs'), start: [], ramSize: '8M', rootVariant: 'overlay' });
  },
  mail(t, c) {
    t.match(c, {
      name: 'mail',
      cables: [{ kind: 'veth', hostIf: 'mail0', subhostIf: 'eth0', bridge: 'br0', mac: '02:00:5e:10:00:25' }],
      start: ['networking', 'ssh', 'postfix', 'dovecot'],
      stopTimeout: 60,
      log: '/var/log/overlay-mail.log',
    });
  },
  vlan(t, c) {
    t.match(c.cables, [
      { kind: 'veth', hostIf: 'xmpl0', subhostIf: 'eth0' },
      { kind: 'vlan', hostIf: 'xmpl0.302', subhostIf: 'eth0.302', vlan: 302, hostCarrier: 'xmpl0' },
    ]);
    t.equal(c.cables.length, 2);
  },
  share(t, c, dir) {
    t.same(
      c.shares.map((s) => [s.hostPath, s.subhostPath, s.isDirectory]),
      [
        [realpathSync('/home'), '/home', true],
        [path.join(dir, 'share/exchange'), '/srv/exchange', true],
        [path.join(dir, 'share/motd'), '/etc/motd', false],
      ],
    );
  },
  upperprog(t, c, dir) {
    t.equal(c.upperProgram, path.join(dir, 'upperprog-upper.sh'));
    t.equal(c.upper, undefined);
    t.notOk(existsSync(path.join(dir, 'upperprog/fresh-root')), 'reading did not run the program');
  },
};


t.test('every example is covered', async (t) => {
  const confs = readdirSync(CONF_D).filter((f) => f.endsWith('.conf')).map((f) => f.slice(0, -5)).sort();
  t.same(confs, Object.keys(expectations).sort());
});

for (const name of Object.keys(expectations)) {
  t.test(`conf.d/${name}.conf`, async (t) => {
    const dir = prepareExample(t, name);
    const c = await readConfig(path.join(dir, `${name}.conf`));
    t.same(c.warnings, [], 'no warnings');
    t.equal(c.base, path.join(dir, name));
    expectations[name]!(t, c, dir);
  });
}

t.test('the UPPER program example does what its comment says', async (t) => {
  const dir = realpathSync(tempDir(t));
  cpSync(CONF_D, dir, { recursive: true });
  const env = { ...process.env, CONFIG: path.join(dir, 'upperprog.conf') };
  const script = path.join(dir, 'upperprog-upper.sh');
  const out = execFileSync(script, { env: { ...env, ACTION: 'setup' } }).toString();
  t.equal(out, `${dir}/upperprog/fresh-root\n`);
  t.ok(existsSync(path.join(dir, 'upperprog/fresh-root')));
  execFileSync(script, { env: { ...env, ACTION: 'teardown' } });
  t.notOk(existsSync(path.join(dir, 'upperprog/fresh-root')));
  t.throws(() => execFileSync(script, { env: { ...env, ACTION: 'other' }, stdio: 'ignore' }), 'refuses other actions');
});
