// What a DU sees through its layer (LAYERS): the package's files over the host's LOWER,
// in both ipk forms and from a real Debian .deb; a replaced host file changes only inside;
// links to host directories shipped by a package never change those directories.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installDU } from '../../src/lifecycle/install.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { buildDu, makeDuEnv, runInside, serviceScript } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';
import { toolSign } from '../helpers/keys.js';

const HELLO_DEB = '/var/cache/overlay-boot-test/debs/hello_2.10-3_amd64.deb';

for (const container of ['tar', 'ar'] as const) {
  t.test(`${container} ipk: the DU sees the package's file and its service runs`, async (t) => {
    const env = makeDuEnv(t);
    const name = uniqueName('ly');
    const file = buildDu(env, {
      name: `lay-${container}`, container,
      data: { 'etc/init.d/websvc': serviceScript('websvc'), 'usr/share/lay/hello': `hello from ${container}\n` },
    });
    const out = await installDU({ config: env.config, source: file, name });
    t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
    t.equal(runInside(name, ['cat', '/usr/share/lay/hello']).stdout, `hello from ${container}\n`, 'overlay-go DU cat sees the file');
    t.equal(runInside(name, ['/etc/init.d/websvc', 'status']).status, 0, 'the service runs');
    t.match(out.record?.EUs, [{ EUID: `${name}/websvc`, Status: 'Active', ExecutionFaultCode: 'NoFault' }]);
    t.notOk(existsSync('/usr/share/lay'), 'not on the host');
    const rm = await uninstallDU({ config: env.config, du: name });
    t.equal(rm.entry.CurrentState, 'Uninstalled');
  });
}

t.test('a package that replaces a host file: the DU sees its own, the host never changes', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('rp');
  const hostFile = `/etc/ovb-issue-${name}`;
  writeFileSync(hostFile, 'the host\'s own\n');
  t.teardown(() => rmSync(hostFile, { force: true }));
  const file = buildDu(env, {
    name: 'replacer',
    data: { [hostFile.slice(1)]: 'the package\'s\n' },
    scripts: { postinst: `#!/bin/sh\necho "added by postinst" >> ${hostFile}\n` },
  });
  const out = await installDU({ config: env.config, source: file, name });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
  t.equal(runInside(name, ['cat', hostFile]).stdout, 'the package\'s\nadded by postinst\n', 'inside: the package\'s file as its postinst left it');
  t.equal(readFileSync(hostFile, 'utf8'), 'the host\'s own\n', 'the host file is unchanged');
  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled');
  t.equal(readFileSync(hostFile, 'utf8'), 'the host\'s own\n', 'and after removal');
  // Installed again (without the package's file): the original shows inside.
  const plain = await installDU({ config: env.config, source: buildDu(env, { name: 'plain' }), name });
  t.equal(runInside(name, ['cat', hostFile]).stdout, 'the host\'s own\n', 'a DU without it sees the original');
  await uninstallDU({ config: env.config, du: plain.record!.Subhost });
});

t.test('sys and etc/network shipped as links to host directories never change them', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('sl');
  const hostDir = `/etc/ovb-net-${name}`;
  mkdirSync(hostDir);
  writeFileSync(path.join(hostDir, 'interfaces'), 'host\n');
  t.teardown(() => rmSync(hostDir, { recursive: true, force: true }));
  const sysBefore = readdirSync('/sys').sort();
  const file = buildDu(env, {
    name: 'linker',
    data: { 'etc/network': { symlink: hostDir }, sys: { symlink: '/sys' }, 'usr/share/linker/x': 'x\n' },
    scripts: { postinst: `#!/bin/sh\necho planted > /etc/network/planted 2>/dev/null; echo planted > ${hostDir}/planted2 2>/dev/null; exit 0\n` },
  });
  const out = await installDU({ config: env.config, source: file, name });
  if (out.entry.CurrentState === 'Installed') await uninstallDU({ config: env.config, du: name });
  t.same(readdirSync(hostDir).sort(), ['interfaces'], 'nothing planted in the host directory');
  t.equal(readFileSync(path.join(hostDir, 'interfaces'), 'utf8'), 'host\n');
  t.same(readdirSync('/sys').sort(), sysBefore, '/sys unchanged');
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock'], 'nothing left either way');
});

t.test('the real Debian hello .deb (detached signature) in bee prints "Hello, world!"', { skip: !existsSync(HELLO_DEB) && 'run test/fixtures/package/fetch-debs.sh' }, async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('hl');
  const deb = path.join(env.dir, 'hello.deb');
  execFileSync('cp', [HELLO_DEB, deb]);
  const unsigned = await installDU({ config: env.config, source: deb, name });
  t.equal(unsigned.entry.Fault?.FaultCode, 7036, 'unsigned: refused under the default policy');
  toolSign(env.key, deb);
  const out = await installDU({ config: env.config, source: deb, name });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
  t.equal(runInside(name, ['/usr/bin/hello']).stdout, 'Hello, world!\n');
  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled');
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});
