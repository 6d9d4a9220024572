// The escape suite (issue 16): each attempt first reaches the host from a privileged subhost
// (so the test can fail), then is refused in an unprivileged one; the host stays as it was.
// Nothing here changes the host: see test/fixtures/escape/probe.py.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, copyFileSync, chmodSync, chownSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { boot } from '../../src/commands/boot.js';
import { enterArgv } from '../../src/commands/enter.js';
import { findNative } from '../../src/subhost/native.js';
import { processId } from '../../src/subhost/process.js';
import { readStateRecord, statePath } from '../../src/subhost/state.js';
import { makeSubhost, subhostTest, uniqueName } from '../helpers/subhost.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/escape/probe.py');
const CAP_SYS_ADMIN = 21n;

function inside(pid1: number, script: string): string {
  const argv = enterArgv(findNative().launcher, processId(pid1)!, ['/bin/sh', '-c', script]);
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}
const probe = (pid1: number, ...args: string[]) => inside(pid1, `/usr/bin/python3 /escape-probe.py ${args.join(' ')}`);
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
function hostReadsDisk(): boolean {
  try {
    closeSync(openSync(`/dev/block/${major}:${minor}`, 'r'));
    return true;
  } catch {
    return false;
  }
}
const disk = statSync('/').dev;
const [major, minor] = [String(Math.floor(disk / 256) & 0xfff), String((disk & 0xff) | ((disk >> 12) & 0xfff00))];
const capEff = (status: string) => BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)?.[1] ?? '0'}`);

const priv = uniqueName('p');
const unpriv = uniqueName('q');
subhostTest(t, 'what root inside a privileged subhost reaches, an unprivileged one does not', [priv, unpriv], async (t) => {
  const shP = makeSubhost(t, priv, ['START=none', 'CABLES==']);
  const shU = makeSubhost(t, unpriv, ['START=none', 'CABLES==', 'PRIVILEGED=no']);
  for (const sh of [shP, shU]) {
    copyFileSync(PROBE, path.join(sh.base, 'root/escape-probe.py'));
    // A setuid-root program planted in UPPER (by the host's root: the worst owner it can have).
    const suid = path.join(sh.base, 'root/escape-suid');
    copyFileSync('/usr/bin/cat', suid);
    chownSync(suid, 0, 0);
    chmodSync(suid, 0o4755);
  }
  const hostFile = path.join(shP.dir, 'host-file');
  writeFileSync(hostFile, 'host\n', { mode: 0o644 });
  const shadow = sha('/etc/shadow');
  const sleeper = spawn('sleep', ['300'], { stdio: 'ignore' });
  t.teardown(() => { sleeper.kill('SIGKILL'); });
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => { accepted.push(s); s.destroy(); });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = String((server.address() as net.AddressInfo).port);

  const p = await boot(shP.conf);
  const u = await boot(shU.conf);
  const base = readStateRecord(statePath(unpriv))!.idmap!.base;

  const cases: Array<[string, string[], string]> = [
    ['write', ['/proc/sys/kernel/core_pattern'], 'open the host-wide /proc/sys/kernel/core_pattern for writing (never written)'],
    ['read', ['/proc/kmsg'], 'open the kernel log /proc/kmsg (CAP_SYSLOG; never read)'],
    ['read', ['/proc/timer_list'], 'open /proc/timer_list (never read)'],
    ['mount', [], 'mount a new filesystem (tmpfs on /mnt)'],
    ['adjtimex', [], 'pass the CAP_SYS_TIME check of adjtimex (with an invalid tick: nothing set)'],
    ['bpf', [], 'bpf(BPF_MAP_CREATE)'],
    ['keyctl', [], 'keyctl(KEYCTL_GET_KEYRING_ID)'],
  ];
  for (const [name, args, what] of cases) {
    t.equal(probe(p.pid1, name, ...args), 'ok', `privileged: ${what} works`);
    t.not(probe(u.pid1, name, ...args), 'ok', `unprivileged: ${what} is refused`);
  }
  // Last of the mount cases: it takes the privileged subhost's /sys away (its own mount namespace's).
  t.equal(probe(p.pid1, 'umount', '/sys'), 'ok', 'privileged: a mount of the boot (/sys) can be removed');
  t.equal(probe(u.pid1, 'umount', '/sys'), 'EPERM', 'unprivileged: it cannot');

  // The sandbox this suite runs in may refuse even the host's root its disk: then making the node is the proof.
  const mknod = `mknod the host's root disk ${major}:${minor} and read it`;
  t.match(probe(p.pid1, 'mknod', major, minor), hostReadsDisk() ? /^ok$/ : /^(ok|made:EPERM)$/, `privileged: ${mknod} works`);
  t.equal(probe(u.pid1, 'mknod', major, minor), 'EPERM', `unprivileged: ${mknod} is refused (no node is made)`);
  if (existsSync('/proc/sysrq-trigger')) {
    t.equal(probe(p.pid1, 'write', '/proc/sysrq-trigger'), 'ok', 'privileged: /proc/sysrq-trigger opens for writing (never written)');
    t.not(probe(u.pid1, 'write', '/proc/sysrq-trigger'), 'ok', 'unprivileged: it is masked');
  } else {
    t.comment('this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ off): its mask cannot be proven here');
  }

  // This kernel may lack modules (ENOSYS); the privileged call still gets past any permission check.
  t.not(probe(p.pid1, 'init_module'), 'EPERM', 'privileged: init_module of an invalid image reaches the loader (ENOEXEC or ENOSYS)');
  t.equal(probe(u.pid1, 'init_module'), 'EPERM', 'unprivileged: init_module is refused outright');

  // Contained in both modes by the pid and network namespaces; proven, not assumed.
  for (const [mode, r] of [['privileged', p], ['unprivileged', u]] as const) {
    t.not(probe(r.pid1, 'kill', String(sleeper.pid)), 'ok', `${mode}: a host process cannot be signalled`);
    t.not(probe(r.pid1, 'connect', port), 'ok', `${mode}: the host's network namespace is out of reach`);
    inside(r.pid1, `echo subhost > ${hostFile}; echo 'escape::0:0:99999:7:::' >> /etc/shadow`);
    t.equal(inside(r.pid1, `cat ${hostFile}`), 'subhost', `${mode}: writing a file of LOWER works inside`);
  }
  t.equal(readFileSync(hostFile, 'utf8'), 'host\n', 'but the host file through LOWER is unchanged');
  t.equal(sha('/etc/shadow'), shadow, 'and so is the host\'s /etc/shadow');
  t.equal(sleeper.exitCode, null, 'the host process lives');
  t.equal(accepted.length, 0, 'and no connection reached the host');
  t.equal(statSync(path.join(shP.base, 'root/etc/shadow')).uid, 0, 'privileged: the copied-up shadow is host root\'s');
  t.equal(statSync(path.join(shU.base, 'root/etc/shadow')).uid, base, 'unprivileged: it is the mapped root\'s, nobody\'s on the host');

  const asUser = (pid1: number, prog: string) => capEff(inside(pid1, `setpriv --reuid=1000 --regid=1000 --clear-groups ${prog} /proc/self/status`));
  t.ok(asUser(p.pid1, '/escape-suid') & (1n << CAP_SYS_ADMIN), 'privileged: a planted setuid-root program gives CAP_SYS_ADMIN');
  t.equal(asUser(u.pid1, '/escape-suid'), 0n, 'unprivileged: the host root\'s setuid bit gives nothing (its owner is not mapped)');
  inside(u.pid1, 'cp /usr/bin/cat /escape-own-suid && chmod 4755 /escape-own-suid');
  const own = asUser(u.pid1, '/escape-own-suid');
  t.ok(own !== 0n && !(own & (1n << CAP_SYS_ADMIN)), `unprivileged: its own root's setuid program stays within the bounding set (${own.toString(16)})`);
});
