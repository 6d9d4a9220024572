import t, { type Test } from 'tap';
import path from 'node:path';
import { existsSync, mkdirSync, realpathSync, symlinkSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { readConfig, defaultName } from '../../src/config/read.js';
import { OverlayBootError } from '../../src/errors.js';
import { tempDir, makeSubhost, writeConf, rejection } from '../fixtures/config/helpers.js';

/** A temp dir holding `sub/{live,root,work}` and `NAME.conf` with the given lines. */
function setup(t: Test, lines: string[], confName = 'host1.conf') {
  const dir = realpathSync(tempDir(t));
  const base = makeSubhost(dir);
  const file = writeConf(dir, confName, lines.join('\n') + '\n');
  return { dir, base, file };
}

t.test('defaults: every row of the variable table', async (t) => {
  const { dir, base, file } = setup(t, ['BASE=sub']);
  const c = await readConfig(file);
  t.match(c, {
    file,
    name: 'host1',
    base,
    cables: [],
    live: path.join(base, 'live'),
    upper: path.join(base, 'root'),
    work: path.join(base, 'work'),
    lower: '/',
    start: ['networking', 'ssh'],
    ramSize: '50M',
    log: '/tmp/overlay-host1.log',
    shares: [],
    run: [],
    stopTimeout: 10,
    rootVariant: 'overlay',
    warnings: [],
  });
  for (const key of ['premount', 'postmount', 'init', 'upperProgram'] as const) t.equal(c[key], undefined, `${key} unset`);
  t.same(c.origins.BASE, { line: 1, raw: 'sub' });
  t.same(c.origins.NAME, {}, 'a default has no line');
  t.ok(dir);
});

t.test('every variable set explicitly', async (t) => {
  const { dir, base, file } = setup(t, [
    'NAME=web-1',
    'BASE=sub',
    'CABLES=br0=02:00:00:00:00:01 =.302',
    'LIVE=mnt',
    'UPPER=upper',
    'WORK=wk',
    'LOWER=rootfs',
    'START=ssh /usr/local/bin/svc',
    'RAM_SIZE=none',
    'LOG=/var/log/web.log',
    'PREMOUNT=/usr/lib/x/pre --flag',
    'POSTMOUNT=/usr/lib/x/post',
    'INIT=/usr/lib/x/init',
    'SHARE=data:/srv/data',
    'RUN=/usr/sbin/sshd -D',
    'RUN=/usr/bin/other',
    'STOP_TIMEOUT=30',
  ]);
  for (const d of ['mnt', 'upper', 'wk', 'rootfs', 'data']) mkdirSync(path.join(base, d));
  const c = await readConfig(file);
  t.match(c, {
    name: 'web-1',
    base,
    cables: [
      { kind: 'veth', hostIf: 'web-10', subhostIf: 'eth0', bridge: 'br0', mac: '02:00:00:00:00:01' },
      { kind: 'vlan', hostIf: 'web-10.302', subhostIf: 'eth0.302', vlan: 302 },
    ],
    live: path.join(base, 'mnt'),
    upper: path.join(base, 'upper'),
    work: path.join(base, 'wk'),
    lower: path.join(base, 'rootfs'),
    start: ['ssh', '/usr/local/bin/svc'],
    log: '/var/log/web.log',
    premount: '/usr/lib/x/pre --flag',
    postmount: '/usr/lib/x/post',
    init: '/usr/lib/x/init',
    shares: [{ hostPath: path.join(base, 'data'), subhostPath: '/srv/data', isDirectory: true, line: 14 }],
    run: ['/usr/sbin/sshd -D', '/usr/bin/other'],
    stopTimeout: 30,
    rootVariant: 'overlay',
  });
  t.equal(c.ramSize, undefined, 'RAM_SIZE=none: no /run tmpfs');
  t.same(c.origins.SHARE, { line: 14, raw: 'data:/srv/data' });
  t.same(c.origins.LOWER, { line: 7, raw: 'rootfs' });
  t.ok(dir);
});

t.test('an empty value means the default, as in the shell tool', async (t) => {
  const { file } = setup(t, ['BASE=sub', 'START=', 'RAM_SIZE=', 'NAME=']);
  const c = await readConfig(file);
  t.same(c.start, ['networking', 'ssh']);
  t.equal(c.ramSize, '50M');
  t.equal(c.name, 'host1');
});

t.test('the first assignment wins, with a warning; unknown variables warn', async (t) => {
  const { file } = setup(t, ['BASE=sub', 'RAM_SIZE=10M', 'FOO=bar', 'RAM_SIZE=20M']);
  const c = await readConfig(file);
  t.equal(c.ramSize, '10M');
  t.match(c.warnings, [{ variable: 'FOO', line: 3 }, { variable: 'RAM_SIZE', line: 4, message: /line 2/ }]);
});

t.test('CRLF config', async (t) => {
  const { file } = setup(t, ['NAME=crlf\r', 'BASE=sub\r', 'START=ssh\r']);
  const c = await readConfig(file);
  t.equal(c.name, 'crlf');
  t.same(c.start, ['ssh']);
});

t.test('BASE is relative to the config file, not to the current directory', async (t) => {
  const { base, file, dir } = setup(t, ['BASE=sub']);
  const elsewhere = tempDir(t);
  t.equal((await readConfig(file, { cwd: elsewhere })).base, base);
  t.equal((await readConfig('host1.conf', { cwd: dir })).file, file, 'a relative config path is taken from cwd');
});

t.test('symlinks are resolved so the plan shows the truth', async (t) => {
  const { base, file } = setup(t, ['BASE=sub', 'LIVE=live-link', 'SHARE=share-link:/s']);
  symlinkSync(path.join(base, 'live'), path.join(base, 'live-link'));
  mkdirSync(path.join(base, 'real-share'));
  symlinkSync('real-share', path.join(base, 'share-link'));
  const c = await readConfig(file);
  t.equal(c.live, path.join(base, 'live'));
  t.equal(c.shares[0]?.hostPath, path.join(base, 'real-share'));
});

t.test('NAME', async (t) => {
  const cases: Array<[string, string[], string | { code: string }]> = [
    ['from the file name', ['BASE=sub'], 'host1'],
    ['explicit', ['NAME=abc', 'BASE=sub'], 'abc'],
    ['13 characters', ['NAME=abcdefghijklm', 'BASE=sub'], { code: 'CONFIG_BAD_NAME' }],
    ['a dot', ['NAME=a.b', 'BASE=sub'], { code: 'CONFIG_BAD_NAME' }],
  ];
  for (const [what, lines, expected] of cases) {
    const { file } = setup(t, lines);
    if (typeof expected === 'string') t.equal((await readConfig(file)).name, expected, what);
    else t.match(await rejection(t, readConfig(file), expected.code), { variable: 'NAME', line: 1, file }, what);
  }
  const dotted = setup(t, ['BASE=sub'], 'my.host.conf');
  t.match(await rejection(t, readConfig(dotted.file), 'CONFIG_BAD_NAME'), { variable: 'NAME', line: undefined });
  const empty = setup(t, ['BASE=sub'], '.conf');
  await rejection(t, readConfig(empty.file), 'CONFIG_BAD_NAME');
  t.equal(defaultName('/etc/subhosts/mail.conf'), 'mail');
  t.equal(defaultName('/etc/subhosts/mail'), 'mail');
});

t.test('a 12-character NAME with a VLAN is a clear error', async (t) => {
  const { file } = setup(t, ['NAME=abcdefghijkl', 'BASE=sub', 'CABLES= = =.302']);
  const e = await rejection(t, readConfig(file), 'CONFIG_BAD_CABLE');
  t.match(e, { variable: 'CABLES', line: 3, message: /abcdefghijkl0\.302.*17 bytes/ });
});

t.test('path checks, each naming the variable and line', async (t) => {
  type Case = [string, string[], string, string, number | undefined, ((base: string) => void)?];
  const cases: Case[] = [
    ['BASE absent', [], 'CONFIG_BASE_MISSING', 'BASE', undefined],
    ['BASE empty', ['BASE='], 'CONFIG_BASE_MISSING', 'BASE', 1],
    ['BASE missing', ['BASE=nowhere'], 'CONFIG_BAD_PATH', 'BASE', 1],
    ['BASE a file', ['BASE=f'], 'CONFIG_BAD_PATH', 'BASE', 1, (b) => writeFileSync(path.join(b, '..', 'f'), '')],
    ['LIVE default missing', ['BASE=sub'], 'CONFIG_BAD_PATH', 'LIVE', undefined, (b) => rmdir(b, 'live')],
    ['LIVE missing', ['BASE=sub', 'LIVE=nope'], 'CONFIG_BAD_PATH', 'LIVE', 2],
    ['LIVE a file', ['BASE=sub', 'LIVE=f'], 'CONFIG_BAD_PATH', 'LIVE', 2, (b) => writeFileSync(path.join(b, 'f'), '')],
    ['LOWER missing', ['BASE=sub', 'LOWER=nope'], 'CONFIG_BAD_PATH', 'LOWER', 2],
    ['LOWER a file', ['BASE=sub', 'LOWER=/etc/passwd'], 'CONFIG_BAD_PATH', 'LOWER', 2],
    ['UPPER missing', ['BASE=sub', 'UPPER=nope'], 'CONFIG_BAD_PATH', 'UPPER', 2],
    ['UPPER a plain file', ['BASE=sub', 'UPPER=f'], 'CONFIG_BAD_PATH', 'UPPER', 2, (b) => writeFileSync(path.join(b, 'f'), '')],
    ['UPPER a device', ['BASE=sub', 'UPPER=/dev/null'], 'CONFIG_BAD_PATH', 'UPPER', 2],
    ['WORK missing', ['BASE=sub', 'WORK=nope'], 'CONFIG_BAD_PATH', 'WORK', 2],
    ['WORK default missing', ['BASE=sub'], 'CONFIG_BAD_PATH', 'WORK', undefined, (b) => rmdir(b, 'work')],
    ['WORK a file', ['BASE=sub', 'WORK=f'], 'CONFIG_BAD_PATH', 'WORK', 2, (b) => writeFileSync(path.join(b, 'f'), '')],
    // /proc is a directory on another filesystem on every Linux host.
    ['WORK elsewhere', ['BASE=sub', 'WORK=/proc'], 'CONFIG_NOT_SAME_FS', 'WORK', 2],
  ];
  for (const [what, lines, code, variable, line, prepare] of cases) {
    const { base, file } = setup(t, lines);
    prepare?.(base);
    const e = await rejection(t, readConfig(file), code);
    t.match(e, { variable, line, file }, what);
  }
});

function rmdir(base: string, d: string) {
  rmSync(path.join(base, d), { recursive: true });
}

t.test('root filesystem variants', async (t) => {
  const cases: Array<[string, string[], 'premounted' | 'bind' | 'overlay']> = [
    ['overlay by default', ['BASE=sub'], 'overlay'],
    ['LIVE = LOWER: premounted', ['BASE=sub', 'LIVE=rootfs', 'LOWER=rootfs', 'WORK=none'], 'premounted'],
    ['UPPER = LOWER: bind', ['BASE=sub', 'UPPER=rootfs', 'LOWER=rootfs', 'WORK=none'], 'bind'],
    ['equal after symlinks', ['BASE=sub', 'UPPER=rootfs-link', 'LOWER=rootfs/', 'WORK=/proc'], 'bind'],
  ];
  for (const [what, lines, variant] of cases) {
    const { base, file } = setup(t, lines);
    mkdirSync(path.join(base, 'rootfs'));
    symlinkSync('rootfs', path.join(base, 'rootfs-link'));
    const c = await readConfig(file);
    t.equal(c.rootVariant, variant, `${what}: WORK is only needed, and its filesystem only checked, for an overlay`);
  }
});

t.test('UPPER as a program is recognised, never run while reading', async (t) => {
  const { base, file, dir } = setup(t, ['BASE=sub', 'UPPER=upper.sh']);
  const prog = path.join(base, 'upper.sh');
  writeFileSync(prog, `#!/bin/sh\ntouch ${dir}/MARKER\necho ${base}/root\n`, { mode: 0o755 });
  const c = await readConfig(file);
  t.equal(c.upperProgram, prog);
  t.equal(c.upper, undefined);
  t.equal(c.rootVariant, 'overlay');
  t.notOk(existsSync(path.join(dir, 'MARKER')), 'the program did not run');
});

t.test('SHARE through readConfig', async (t) => {
  const { base, file } = setup(t, ['BASE=sub', 'SHARE=d1', 'SHARE=/', 'SHARE=f1:/etc/f1', 'SHARE=d1:/x/../y/']);
  mkdirSync(path.join(base, 'd1'));
  writeFileSync(path.join(base, 'f1'), '');
  const c = await readConfig(file);
  t.same(
    c.shares.map((s) => [s.hostPath, s.subhostPath, s.isDirectory, s.line]),
    [
      [path.join(base, 'd1'), path.join(base, 'd1'), true, 2],
      [path.join(base, 'f1'), '/etc/f1', false, 4],
      [path.join(base, 'd1'), '/y', true, 5],
    ],
  );
  t.match(c.warnings, [{ variable: 'SHARE', line: 3, message: /LOWER/ }], 'SHARE=/ equals LOWER and is skipped');
});

t.test('all errors are gathered into CONFIG_INVALID', async (t) => {
  const { file } = setup(t, [
    'NAME=-bad',
    'BASE=sub',
    'CABLES=nocable',
    'LIVE=nope',
    'RAM_SIZE=lots',
    'START=a;b',
    'STOP_TIMEOUT=0',
    'SHARE=missing',
    'RUN=',
  ]);
  const e = await rejection(t, readConfig(file), 'CONFIG_INVALID');
  t.same(
    e.errors?.map((x) => [x.code, x.variable, x.line]).sort(),
    [
      ['CONFIG_BAD_NAME', 'NAME', 1],
      ['CONFIG_BAD_CABLE', 'CABLES', 3],
      ['CONFIG_BAD_PATH', 'LIVE', 4],
      ['CONFIG_BAD_SIZE', 'RAM_SIZE', 5],
      ['CONFIG_BAD_VALUE', 'START', 6],
      ['CONFIG_BAD_VALUE', 'STOP_TIMEOUT', 7],
      ['CONFIG_BAD_SHARE', 'SHARE', 8],
      ['CONFIG_BAD_VALUE', 'RUN', 9],
    ].sort(),
  );
  for (const x of e.errors ?? []) t.equal(x.file, file, `${x.code} names the file`);
  t.match(e.message, /8 errors/);
  t.match(e.message, new RegExp(`${file}:4: LIVE: `));
});

t.test('file-level problems through readConfig', async (t) => {
  const dir = tempDir(t);
  await rejection(t, readConfig(writeConf(dir, 'nul.conf', 'BASE=.\n\0\n')), 'CONFIG_BINARY');
  await rejection(t, readConfig(writeConf(dir, 'big.conf', Buffer.alloc(10 << 20, 0x23))), 'CONFIG_TOO_LARGE');
  await rejection(t, readConfig(path.join(dir, 'absent.conf')), 'CONFIG_UNREADABLE');
  const bad = Buffer.concat([Buffer.from('BASE=.\nNAME=a'), Buffer.from([0xff]), Buffer.from('\n')]);
  t.match(await rejection(t, readConfig(writeConf(dir, 'utf.conf', bad)), 'CONFIG_BAD_VALUE'), { line: 2, variable: 'NAME' });
  const big = ['BASE=sub', ...Array.from({ length: 100_000 }, (_, i) => `#${i % 10}`)];
  const many = setup(t, big);
  t.equal((await readConfig(many.file)).base, many.base, '100 000 lines');
});

t.test('safety is checked before any ! command runs', async (t) => {
  const { dir, file } = setup(t, ['BASE=sub', `NAME=!touch MARKER; echo x`]);
  chmodSync(file, 0o666);
  await rejection(t, readConfig(file, { cwd: dir }), 'CONFIG_UNSAFE');
  t.notOk(existsSync(path.join(dir, 'MARKER')), 'refused before running anything');
  const c = await readConfig(file, { cwd: dir, checkOwnership: false });
  t.equal(c.name, 'x');
  t.ok(existsSync(path.join(dir, 'MARKER')), 'with the check off, the ! command ran');
});

t.test('! values run in the directory the spec names, with ACTION and CONFIG', async (t) => {
  const dir = realpathSync(tempDir(t));
  const start = path.join(dir, 'start');
  const confDir = path.join(dir, 'conf');
  mkdirSync(start);
  mkdirSync(confDir);
  const base = makeSubhost(confDir);
  const file = path.join(confDir, 'bang.conf');
  // Each command fails unless it runs where it should, so a value proves its directory.
  const inDir = (d: string, value: string) => `!test "$(pwd -P)" = "${d}" && echo ${value}`;
  writeConf(confDir, 'bang.conf', [
    `NAME=${inDir(start, 'named')}`,
    `BASE=${inDir(confDir, 'sub')}`,
    `LOG=${inDir(start, 'rel.log')}`,
    `LIVE=${inDir(base, 'live')}`,
    `UPPER=${inDir(base, 'root')}`,
    `WORK=${inDir(base, 'work')}`,
    `LOWER=${inDir(base, '/')}`,
    `CABLES=${inDir(base, 'br0=')}`,
    `RAM_SIZE=${inDir(base, '8M')}`,
    `STOP_TIMEOUT=${inDir(base, '5')}`,
    'START=!echo "$ACTION"',
    'PREMOUNT=!echo "$CONFIG"',
    'POSTMOUNT=!echo "${MYVAR:-unset}"',
    `INIT=${inDir(base, '/bin/init-x')}`,
  ].join('\n'));
  const c = await readConfig(file, { cwd: start, action: 'overlay-check', env: { PATH: process.env.PATH, MYVAR: 'mine' } });
  t.match(c, {
    name: 'named',
    base,
    log: path.join(start, 'rel.log'),
    live: path.join(base, 'live'),
    upper: path.join(base, 'root'),
    work: path.join(base, 'work'),
    lower: '/',
    cables: [{ hostIf: 'named0', bridge: 'br0' }],
    ramSize: '8M',
    stopTimeout: 5,
    start: ['overlay-check'],
    premount: file,
    postmount: 'mine',
    init: '/bin/init-x',
  });
  t.match(c.origins.LIVE, { line: 4, raw: /^!test/ });
  const dflt = await readConfig(file, { cwd: start });
  t.same(dflt.start, ['overlay-boot'], 'ACTION defaults to overlay-boot');
});

t.test('! failures are located', async (t) => {
  const cases: Array<[string, string, Record<string, unknown>]> = [
    ['NAME=!echo oops >&2; exit 2', 'CONFIG_BANG_FAILED', { variable: 'NAME', line: 2, message: /oops/ }],
    ['LOWER=!true', 'CONFIG_BANG_EMPTY', { variable: 'LOWER', line: 2 }],
    ['LIVE=!sleep 20', 'CONFIG_BANG_TIMEOUT', { variable: 'LIVE', line: 2 }],
  ];
  for (const [line, code, expected] of cases) {
    const { file } = setup(t, ['BASE=sub', line]);
    t.match(await rejection(t, readConfig(file, { bangTimeoutMs: 300 }), code), expected);
  }
  const noBase = setup(t, ['BASE=!exit 1', 'LIVE=!touch MARKER; echo live']);
  const e = await rejection(t, readConfig(noBase.file, { cwd: noBase.dir }), 'CONFIG_BANG_FAILED');
  t.equal(e.variable, 'BASE');
  t.notOk(existsSync(path.join(noBase.dir, 'MARKER')), 'no BASE, so nothing runs in it');
});

t.test('hostile values never reach a shell', async (t) => {
  const dir = realpathSync(tempDir(t));
  makeSubhost(dir);
  const marker = path.join(dir, 'MARKER');
  const payloads = [
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `x; touch ${marker}`,
    `x' ; touch ${marker} ; '`,
    `x" ; touch ${marker} ; "`,
    `x | touch ${marker}`,
    `x && touch ${marker}`,
    `x\ttouch ${marker}`,
    `é€ $(touch ${marker})`,
  ];
  const variables = ['NAME', 'BASE', 'CABLES', 'LIVE', 'UPPER', 'WORK', 'LOWER', 'START', 'RAM_SIZE', 'LOG',
    'PREMOUNT', 'POSTMOUNT', 'INIT', 'SHARE', 'RUN', 'STOP_TIMEOUT'];
  let n = 0;
  for (const variable of variables) {
    for (const payload of [...payloads, ...(variable === 'SHARE' || variable === 'RUN' ? [`!touch ${marker}`] : [])]) {
      const lines = variable === 'BASE' ? [`BASE=${payload}`] : ['BASE=sub', `${variable}=${payload}`];
      const file = writeConf(dir, `h${n++}.conf`, lines.join('\n'));
      const outcome = await readConfig(file, { cwd: dir }).then(
        (c) => c,
        (e: unknown) => e,
      );
      t.ok(!(outcome instanceof Error) || outcome instanceof OverlayBootError, `${variable}=${payload}: no stray error`);
      if (!existsSync(marker)) continue;
      t.fail(`${variable}=${payload} reached a shell`);
    }
  }
  t.notOk(existsSync(marker), `none of ${n} hostile configs ran anything`);
  const kept = writeConf(dir, 'kept.conf', ['BASE=sub', `PREMOUNT=$(touch ${marker})`, `RUN=\`touch ${marker}\``].join('\n'));
  const c = await readConfig(kept, { cwd: dir });
  t.equal(c.premount, `$(touch ${marker})`, 'kept literally for the hook runner');
  t.same(c.run, [`\`touch ${marker}\``]);
});

t.test('a ! value does run, by design', async (t) => {
  const { dir, file } = setup(t, ['BASE=sub', `LOWER=!touch MARKER-"$ACTION"; echo /`]);
  const c = await readConfig(file);
  t.equal(c.lower, '/');
  t.ok(existsSync(path.join(dir, 'sub', 'MARKER-overlay-boot')), 'ran in BASE with ACTION set');
});
