// OCI config.json → RUN line: real bundle configs (made by umoci, which writes runc's
// default runtime spec), every refused field named with its member, and the line run for
// real with /bin/sh in a chroot of a busybox rootfs to prove args, env, cwd and rlimits.
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { isOverlayBootError } from '../../src/errors.js';
import { ociRunLine, shellQuote } from '../../src/lifecycle/oci.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { tempState } from './temp.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests edit config.json as the free-form JSON it is
type Json = Record<string, any>;

/** The config.json umoci writes for a new image: runc's default spec with umoci's annotations. */
function umociConfig(dir: string): Json {
  execFileSync('umoci', ['init', '--layout', path.join(dir, 'img')]);
  execFileSync('umoci', ['new', '--image', `${path.join(dir, 'img')}:t`]);
  execFileSync('umoci', ['unpack', '--image', `${path.join(dir, 'img')}:t`, path.join(dir, 'bundle')]);
  return JSON.parse(readFileSync(path.join(dir, 'bundle', 'config.json'), 'utf8')) as Json;
}

const dir = tempState(t, 'ovb-oci-');
const umoci = umociConfig(dir);
const rootfs = makeBusyboxRoot(path.join(dir, 'rootfs'));
const bare = path.join(dir, 'bare');
mkdirSync(bare);
const opts = { bundle: 'web', subhost: 'web', rootfs };

/** What ociRunLine throws for `config`: its code, member and field (variable). */
function refusal(config: unknown, o = opts): { code?: string; member?: string; variable?: string; message?: string } {
  try {
    ociRunLine(config, o);
  } catch (e) {
    if (!isOverlayBootError(e)) throw e;
    return { code: e.code, member: e.member, variable: e.variable, message: e.message };
  }
  return {};
}

/** umoci's config with what a subhost cannot honour taken out, terminal off. */
function adapted(): Json {
  const c = structuredClone(umoci);
  c.process.terminal = false;
  delete c.process.capabilities;
  delete c.linux.maskedPaths;
  delete c.linux.readonlyPaths;
  return c;
}

t.test('runc\'s default spec is refused field by field, each naming NAME/config.json', async (t) => {
  const c = structuredClone(umoci);
  const order: string[] = [];
  // Take out each refused field in turn: the refusals found are exactly the ones expected, in order.
  for (let i = 0; i < 10; i += 1) {
    const r = refusal(c);
    if (r.code === undefined) break;
    t.equal(r.code, 'PKG_OCI_UNSUPPORTED');
    t.equal(r.member, 'web/config.json');
    t.match(r.message, /^web\/config\.json: /);
    order.push(r.variable!);
    if (r.variable === 'process.terminal') c.process.terminal = false;
    else if (r.variable === 'process.capabilities') delete c.process.capabilities;
    else if (r.variable === 'linux.maskedPaths') delete c.linux.maskedPaths;
    else if (r.variable === 'linux.readonlyPaths') delete c.linux.readonlyPaths;
    else break;
  }
  t.same(order.sort(), ['linux.maskedPaths', 'linux.readonlyPaths', 'process.capabilities', 'process.terminal']);
  t.same(refusal(c), {}, 'what is left (mounts, namespaces, devices rule, rlimits, nnp, hostname) is honoured');
});

t.test('fields beyond the defaults are refused by name', async (t) => {
  const cases: Array<[string, (c: Json) => void]> = [
    ['mounts[7]', (c) => c.mounts.push({ destination: '/data', type: 'bind', source: '/srv' })],
    ['mounts[0]', (c) => { c.mounts[0].type = 'tmpfs'; }],
    ['hooks', (c) => { c.hooks = { prestart: [{ path: '/bin/true' }] }; }],
    ['linux.devices', (c) => { c.linux.devices = [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]; }],
    ['linux.seccomp', (c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_ALLOW' }; }],
    ['linux.sysctl', (c) => { c.linux.sysctl = { 'net.ipv4.ip_forward': '1' }; }],
    ['linux.uidMappings', (c) => { c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }],
    ['linux.namespaces[5]', (c) => c.linux.namespaces.push({ type: 'user' })],
    ['linux.namespaces[0].path', (c) => { c.linux.namespaces[0].path = '/proc/1/ns/pid'; }],
    ['linux.resources.memory', (c) => { c.linux.resources.memory = { limit: 1 << 20 }; }],
    ['linux.resources.devices', (c) => c.linux.resources.devices.push({ allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' })],
    ['process.rlimits[0].type', (c) => { c.process.rlimits[0].type = 'RLIMIT_RTPRIO'; }],
    ['process.rlimits[0].soft', (c) => { c.process.rlimits[0].soft = 2048; }],
    ['process.apparmorProfile', (c) => { c.process.apparmorProfile = 'docker-default'; }],
    ['process.args', (c) => { c.process.args = []; }],
    ['process.args[1]', (c) => { c.process.args = ['echo', 'two\nlines']; }],
    ['process.args[0]', (c) => { c.process.args = ['A=b', 'x']; }],
    ['process.env[0]', (c) => { c.process.env = ['NOEQUALS']; }],
    ['process.cwd', (c) => { c.process.cwd = 'relative'; }],
    ['root.readonly', (c) => { c.root.readonly = true; }],
    ['root.path', (c) => { c.root.path = '/elsewhere'; }],
    ['hostname', (c) => { c.hostname = 'bad host'; }],
    ['process', (c) => { delete c.process; }],
    ['domainname', (c) => { c.domainname = 'example'; }],
  ];
  for (const [field, change] of cases) {
    const c = adapted();
    change(c);
    const r = refusal(c);
    t.equal(r.code, 'PKG_OCI_UNSUPPORTED', field);
    t.equal(r.variable, field, `${field} is the field named (${r.message})`);
    t.equal(r.member, 'web/config.json');
  }
});

t.test('a rootfs without the tools the line needs is refused naming what needs them', async (t) => {
  const r = refusal(adapted(), { ...opts, rootfs: bare });
  t.equal(r.variable, 'process', 'no /bin/sh');
  t.match(r.message, /\/bin\/sh/);
  mkdirSync(path.join(bare, 'bin'));
  writeFileSync(path.join(bare, 'bin/sh'), '');
  const noEnv = adapted();
  delete noEnv.hostname;
  delete noEnv.process.noNewPrivileges;
  t.match(refusal(noEnv, { ...opts, rootfs: bare }), { variable: 'process.env', message: /needs env/ });
  t.match(refusal(adapted(), { ...opts, rootfs: bare }), { variable: 'hostname', message: /needs hostname/ }, 'a hostname other than the subhost NAME needs the hostname tool');
});

t.test('the line: every word quoted, tools from the rootfs, in the documented order', async (t) => {
  const c = adapted();
  c.process.args = ['/bin/echo', "it's", '$HOME `id`', '; rm -rf /'];
  c.process.user = { uid: 1000, gid: 100, additionalGids: [5] };
  c.process.cwd = '/srv/my dir';
  t.equal(ociRunLine(c, opts), [
    '{ ulimit -S -n 1024 || :; } 2>/dev/null', 'ulimit -H -n 1024', 'ulimit -S -n 1024', "/bin/hostname 'umoci-default'", "cd '/srv/my dir'",
    "exec /bin/env -i 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'TERM=xterm' /bin/setpriv --reuid=1000 --regid=100 --groups=5 --nnp '/bin/echo' 'it'\\''s' '$HOME `id`' '; rm -rf /'",
  ].join(' && '));
  c.hostname = 'web';
  c.process.user = { uid: 0, gid: 0 };
  delete c.process.noNewPrivileges;
  delete c.process.rlimits;
  t.notMatch(ociRunLine(c, opts), /hostname|setpriv|ulimit/, 'hostname equal to the subhost NAME, root and no limits need nothing');
  t.equal(shellQuote("a'b"), "'a'\\''b'");
});

t.test('the line run by /bin/sh in a chroot of the rootfs: exact args, only the bundle\'s env, its cwd and limits', { skip: process.getuid?.() !== 0 && 'needs root (chroot)' }, async (t) => {
  mkdirSync(path.join(rootfs, 'srv/my dir'), { recursive: true });
  const c = adapted();
  c.hostname = 'web';
  delete c.process.noNewPrivileges; // busybox's setpriv has --nnp, but keep the proof to the shell and env
  c.process.cwd = '/srv/my dir';
  c.process.env = ['PATH=/bin', 'GREETING=hello world', "QUOTE=it's"];
  c.process.rlimits = [{ type: 'RLIMIT_NOFILE', hard: 77, soft: 66 }];
  const script = 'pwd; env | sort; ulimit -n; ulimit -H -n; for a in "$@"; do printf "<%s>" "$a"; done';
  c.process.args = ['sh', '-c', script, 'sh', "it's", '$HOME `id`', ''];
  const line = ociRunLine(c, opts);
  const out = execFileSync('/usr/sbin/chroot', [rootfs, '/bin/sh', '-c', line], { encoding: 'utf8', env: { SECRET: 'host', PATH: '/bin' } });
  t.equal(out, [
    '/srv/my dir',
    'GREETING=hello world', 'PATH=/bin', 'PWD=/srv/my dir', "QUOTE=it's", 'SHLVL=1',
    '66', '77',
    "<it's><$HOME `id`><>",
  ].join('\n'));
});
