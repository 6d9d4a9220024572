// The peer check's parts: `ovb-launch peercred` on a real connection and on what is no
// socket, its line, group names, who is allowed; and [daemon] group in the configuration.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import { parsePeerLine, peerAllowed, peerCredentials, resolveGroup } from '../../src/daemon/peer.js';
import { parsePkgConfig } from '../../src/package/config.js';
import { findNative } from '../../src/subhost/native.js';
import { tempDir } from './helpers.js';

const launcher = findNative().launcher;

t.test('ovb-launch peercred reads the peer of a real connection; fd 3 no socket fails', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 's.sock');
  const got = new Promise<Awaited<ReturnType<typeof peerCredentials>>>((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: true }, (s) => {
      peerCredentials(s, launcher).then(resolve, reject).finally(() => { s.destroy(); server.close(); });
    });
    server.listen(file, () => net.connect(file).on('error', () => {}));
  });
  const peer = await got;
  t.match(peer, { pid: process.pid, uid: 0, gid: process.getgid!() }, 'this process, as root');
  // Node's getgroups() adds the effective gid to the supplementary groups when they lack it
  t.same([...new Set([...peer.groups, process.getegid!()])].sort(), [...new Set(process.getgroups!())].sort(), 'and its supplementary groups');

  const devnull = openSync('/dev/null', 'r');
  t.teardown(() => closeSync(devnull));
  const r = spawnSync(launcher, ['peercred'], { stdio: ['ignore', 'pipe', 'pipe', devnull], encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /^fail peercred 88 getsockopt SO_PEERCRED: .+\n$/, 'ENOTSOCK (88), in the C library\'s words');
  t.equal(r.stdout, '');
});

t.test('the line, groups, the rule', async (t) => {
  t.same(parsePeerLine('peercred 12 1000 1000 4,24,1000\n'), { pid: 12, uid: 1000, gid: 1000, groups: [4, 24, 1000] });
  t.same(parsePeerLine('peercred 12 0 0 -\n'), { pid: 12, uid: 0, gid: 0, groups: [] });
  t.equal(parsePeerLine('peercred 12 0 0\n'), undefined);
  t.equal(parsePeerLine('peercred 12 0 0 - extra\n'), undefined);

  const dir = tempDir(t);
  const groups = path.join(dir, 'group');
  writeFileSync(groups, 'root:x:0:\npkgadmin:x:1234:alice,bob\nbroken:x:zz:\n');
  t.equal(resolveGroup('pkgadmin', 'daemon.group', groups), 1234);
  t.equal(resolveGroup('4321', 'daemon.group', groups), 4321, 'a gid as is');
  t.throws(() => resolveGroup('broken', 'daemon.group', groups), { code: 'PKG_CONFIG_INVALID' });
  t.throws(() => resolveGroup('nobody-here', 'daemon.group', groups), { code: 'PKG_CONFIG_INVALID', variable: 'daemon.group' });

  const peer = { pid: 1, uid: 1000, gid: 1000, groups: [24, 1234] };
  t.ok(peerAllowed({ ...peer, uid: 0 }, undefined), 'root');
  t.notOk(peerAllowed(peer, undefined), 'root only without a group');
  t.ok(peerAllowed(peer, 1234), 'a supplementary group');
  t.ok(peerAllowed(peer, 1000), 'the primary group');
  t.notOk(peerAllowed(peer, 5), 'another group');
});

t.test('[daemon] group in pkg.ini', async (t) => {
  t.equal(parsePkgConfig('', 'pkg.ini').daemon.group, undefined, 'none by default');
  t.equal(parsePkgConfig('[daemon]\ngroup = pkgadmin\n', 'pkg.ini').daemon.group, 'pkgadmin');
  t.equal(parsePkgConfig('[daemon]\ngroup = 1234\n', 'pkg.ini').daemon.group, '1234');
  t.throws(() => parsePkgConfig('[daemon]\n\ngroup = ../etc\n', 'pkg.ini'), { code: 'PKG_CONFIG_INVALID', variable: 'daemon.group', line: 3 });
  t.match(parsePkgConfig('[daemon]\nsocket_mode = 0666\n', 'pkg.ini').warnings, [/pkg.ini:2: unknown key socket_mode in \[daemon\]/], 'no mode key: the mode follows from the group');
});
