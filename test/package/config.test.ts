import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PKG_CONFIG, readPkgConfig } from '../../src/package/config.js';
import { keyTemp } from '../helpers/keys.js';

function write(t: Parameters<typeof keyTemp>[0], text: string): string {
  const file = path.join(keyTemp(t, 'ovb-pkgconf-'), 'pkg.ini');
  writeFileSync(file, text);
  return file;
}

t.test('defaults when the default file is absent', async (t) => {
  t.equal(DEFAULT_PKG_CONFIG, '/etc/overlay-boot/pkg.ini');
  const c = readPkgConfig({ env: { OVERLAY_PKG_CONFIG: '' } });
  // the test machine has no /etc/overlay-boot/pkg.ini; if it had, this test would read it
  t.equal(c.file, undefined);
  t.same(c.trust, { keys: '/etc/overlay-boot/keys', requireSignature: true });
  t.same(c.paths, { state: '/var/lib/overlay-boot/pkg', templates: '/etc/overlay-boot/templates', socket: '/run/overlay-boot/pkgd.sock', bootList: '/etc/subhosts.conf' });
  t.equal(c.limits.maxUnpackedSize, 2 * 1024 ** 3);
  t.same(c.download, { maxSize: 2 * 1024 ** 3, timeoutMs: 300_000, retries: 3 });
  t.same(c.warnings, []);
});

t.test('every key read; --config wins over the environment', async (t) => {
  const file = write(t, [
    '; overlay-pkg',
    '[trust]',
    'keys = /srv/keys',
    'require_signature = false',
    'device_key = /etc/device.key',
    '[paths]',
    'state = /srv/state/',
    'templates = /srv/templates',
    'socket = /run/x.sock',
    'boot_list = /srv/subhosts.conf',
    '[limits]',
    'max_unpacked_size = 512M',
    '[download]',
    'max_size = 64M',
    'timeout = 30',
    'retries = 0',
  ].join('\n'));
  const other = write(t, '[trust]\nkeys = /other\n');
  const c = readPkgConfig({ file, env: { OVERLAY_PKG_CONFIG: other } });
  t.equal(c.file, file);
  t.same(c.trust, { keys: '/srv/keys', requireSignature: false, deviceKey: '/etc/device.key' });
  t.same(c.paths, { state: '/srv/state/', templates: '/srv/templates', socket: '/run/x.sock', bootList: '/srv/subhosts.conf' });
  t.equal(c.limits.maxUnpackedSize, 512 * 1024 * 1024);
  t.same(c.download, { maxSize: 64 * 1024 * 1024, timeoutMs: 30_000, retries: 0 });
  const e = readPkgConfig({ env: { OVERLAY_PKG_CONFIG: other } });
  t.equal(e.file, other, 'the environment names the file');
  t.equal(e.trust.keys, '/other');
  t.equal(e.trust.requireSignature, true, 'unset keys keep their defaults');
});

t.test('an explicitly named file that is missing is an error', async (t) => {
  t.throws(() => readPkgConfig({ file: '/nonexistent/pkg.ini' }), { code: 'PKG_CONFIG_INVALID', file: '/nonexistent/pkg.ini' });
  t.throws(() => readPkgConfig({ env: { OVERLAY_PKG_CONFIG: '/nonexistent/env.ini' } }), { code: 'PKG_CONFIG_INVALID', file: '/nonexistent/env.ini' });
});

t.test('unknown sections and keys are warnings with their line', async (t) => {
  const file = write(t, 'stray = 1\n[trust]\nkeys = /k\nkeyz = /typo\n[colours]\nred = 1\n');
  const c = readPkgConfig({ file });
  t.equal(c.trust.keys, '/k');
  t.same(c.warnings, [
    `${file}:1: unknown key stray outside any section (ignored)`,
    `${file}:4: unknown key keyz in [trust] (ignored)`,
    `${file}:5: unknown section [colours] (ignored)`,
  ]);
});

t.test('bad values are errors naming file, line and key', async (t) => {
  const cases: [string, string, number][] = [
    ['[trust]\nrequire_signature = maybe\n', 'trust.require_signature', 2],
    ['[trust]\n\nkeys = relative/dir\n', 'trust.keys', 3],
    ['[paths]\nstate =\n', 'paths.state', 2],
    ['[limits]\nmax_unpacked_size = 2T\n', 'limits.max_unpacked_size', 2],
    ['[limits]\nmax_unpacked_size = 0\n', 'limits.max_unpacked_size', 2],
    ['[trust]\ndevice_key = /a\ndevice_key = b\n', 'trust.device_key', 3],
    ['[download]\nmax_size = -1\n', 'download.max_size', 2],
    ['[download]\ntimeout = 0\n', 'download.timeout', 2],
    ['[download]\n\ntimeout = 2.5\n', 'download.timeout', 3],
    ['[download]\ntimeout = 86401\n', 'download.timeout', 2],
    ['[download]\nretries = 101\n', 'download.retries', 2],
    ['[download]\nretries = many\n', 'download.retries', 2],
  ];
  for (const [text, variable, line] of cases) {
    const file = write(t, text);
    t.throws(() => readPkgConfig({ file }), { code: 'PKG_CONFIG_INVALID', file, line, variable }, variable);
  }
  const file = write(t, '[limits]\nmax_unpacked_size = 1x\n');
  try {
    readPkgConfig({ file });
    t.fail('no error');
  } catch (e) {
    t.match((e as { describe(): string }).describe(), `${file}:2: limits.max_unpacked_size: `);
  }
});
