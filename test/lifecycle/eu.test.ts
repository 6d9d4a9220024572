// The EU primitives on a real subhost whose UPPER holds init scripts: discovery, the
// live LSB status, start and stop with their timeouts, and boot's START override.
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { boot } from '../../src/commands/boot.js';
import { isOverlayBootError } from '../../src/errors.js';
import { parsePkgConfig } from '../../src/package/config.js';
import { discoverEUs, euFaultOf, euLiveStatus, isEuName, ociEU, probeEU, startEU, stopEU } from '../../src/lifecycle/eu.js';
import { list as listSubhosts } from '../../src/commands/list.js';
import { runInside, serviceScript } from '../helpers/du.js';
import { makeSubhost, subhostTest, tempDir, uniqueName } from '../helpers/subhost.js';

/** Writes init script `name` (from serviceScript, `extra` shell at the start of `start`) under ROOT/etc/init.d. */
function writeService(root: string, name: string, extra = ''): void {
  const dir = path.join(root, 'etc/init.d');
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  writeFileSync(path.join(dir, name), (serviceScript(name, extra) as { content: string }).content, { mode: 0o755 });
}

t.test('discoverEUs: executable regular files with EU names, sorted; links and others not', async (t) => {
  const layer = tempDir(t);
  t.same(discoverEUs(layer, 'du1'), [], 'no etc/init.d: no EU');
  writeService(layer, 'web');
  writeService(layer, 'db');
  const d = path.join(layer, 'etc/init.d');
  writeFileSync(path.join(d, 'README'), 'not executable\n', { mode: 0o644 });
  writeFileSync(path.join(d, 'web.dpkg-old'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(path.join(d, '.hidden'), '#!/bin/sh\n', { mode: 0o755 });
  symlinkSync('web', path.join(d, 'alias'));
  mkdirSync(path.join(d, 'sub.d'));
  chmodSync(path.join(d, 'sub.d'), 0o755);
  t.same(discoverEUs(layer, 'du1'), [
    { EUID: 'du1/db', Name: 'db', AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' },
    { EUID: 'du1/web', Name: 'web', AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' },
  ]);
  t.ok(isEuName('httpd') && isEuName('my-svc.2') && !isEuName('a/b') && !isEuName('x~') && !isEuName('-x'));
});

t.test('[lifecycle] eu_timeout: seconds, 1 to 3600, default 10', async (t) => {
  t.equal(parsePkgConfig('', 'pkg.ini').lifecycle.euTimeoutMs, 10000);
  t.equal(parsePkgConfig('[lifecycle]\neu_timeout = 3\n', 'pkg.ini').lifecycle.euTimeoutMs, 3000);
  t.throws(() => parsePkgConfig('[lifecycle]\neu_timeout = 0\n', 'pkg.ini'), { code: 'PKG_CONFIG_INVALID', line: 2, variable: 'lifecycle.eu_timeout' });
});

t.test('on a real subhost', async (t) => {
  const name = uniqueName('eu');
  const runtimeDir = '/run/overlay-boot';
  await subhostTest(t, 'status, start, stop, failures and the START override', [name], async (t) => {
    const sh = makeSubhost(t, name, ['START=/etc/init.d/auto']);
    const root = path.join(sh.base, 'root');
    writeService(root, 'auto');
    writeService(root, 'svc');
    // start returns 0 but the service never runs
    writeFileSync(path.join(root, 'etc/init.d/liar'), '#!/bin/sh\ncase "$1" in status) exit 3;; esac\nexit 0\n', { mode: 0o755 });
    // start fails
    writeService(root, 'broken', 'exit 1');
    // status answers neither 0 nor 3
    writeFileSync(path.join(root, 'etc/init.d/odd'), '#!/bin/sh\ncase "$1" in status) exit 4;; esac\nexit 0\n', { mode: 0o755 });
    // stop ends the service but exits 1; stop that ends nothing
    writeService(root, 'sloppy');
    writeService(root, 'stuck');
    const stopWith = (n: string, stop: string) => {
      const f = path.join(root, 'etc/init.d', n);
      writeFileSync(f, readFileSync(f, 'utf8').replace(/^stop\)\n(.*\n)*? {2};;$/m, `stop)\n  ${stop}\n  ;;`), { mode: 0o755 });
    };
    stopWith('sloppy', `kill "$(cat /run/sloppy.pid)"; exit 1`);
    stopWith('stuck', 'exit 0');
    const eus = Object.fromEntries(discoverEUs(root, name).map((eu) => [eu.Name, eu]));
    t.same(Object.keys(eus), ['auto', 'broken', 'liar', 'odd', 'sloppy', 'stuck', 'svc']);
    const eu = (n: string) => eus[n]!;

    t.equal(await euLiveStatus(name, eu('svc'), { runtimeDir }), 'Idle', 'Idle while the subhost does not run');

    await boot(sh.conf, { start: [] });
    t.equal(await euLiveStatus(name, eu('auto'), { runtimeDir }), 'Idle', 'start: [] overrides START: auto not started');
    t.notOk(existsSync(path.join(root, 'run/auto.pid')), 'no pid file of auto');

    await startEU(name, eu('svc'), { runtimeDir });
    t.equal(await euLiveStatus(name, eu('svc')), 'Active', 'Active after startEU');
    await stopEU(name, eu('svc'));
    t.equal(await euLiveStatus(name, eu('svc')), 'Idle', 'Idle after stopEU');
    await stopEU(name, eu('svc'));
    t.equal(await euLiveStatus(name, eu('svc')), 'Idle', 'stopEU of an Idle EU is fine');

    const liar = await startEU(name, eu('liar'), { timeoutMs: 1500 }).catch((e: unknown) => e);
    t.ok(isOverlayBootError(liar) && liar.code === 'PKG_EU_FAILED', 'start that never runs: PKG_EU_FAILED');
    t.equal(euFaultOf(liar), 'FailureOnStart');
    const broken = await startEU(name, eu('broken'), { timeoutMs: 1500 }).catch((e: unknown) => e);
    t.ok(isOverlayBootError(broken) && broken.code === 'PKG_EU_FAILED' && /exited with 1/.test(broken.message), 'a failing start script');
    t.same(await probeEU(name, eu('odd')), { Status: 'Idle', note: '/etc/init.d/odd status exited with 4' }, 'status 4: Idle with a note');

    await startEU(name, eu('sloppy'));
    await stopEU(name, eu('sloppy'));
    t.equal(await euLiveStatus(name, eu('sloppy')), 'Idle', 'a stop that exits 1 but ends the service is fine');
    await startEU(name, eu('stuck'));
    const stuck = await stopEU(name, eu('stuck'), { timeoutMs: 1500 }).catch((e: unknown) => e);
    t.equal(euFaultOf(stuck), 'FailureOnStop', 'a service that does not stop: FailureOnStop');
    t.equal(await euLiveStatus(name, eu('stuck')), 'Active');

    await startEU(name, eu('svc'));
    // the service dies on its own: the live status says so
    t.equal(runInside(name, ['/bin/sh', '-c', 'kill "$(cat /run/svc.pid)"']).status, 0, 'killed inside');
    t.equal(await euLiveStatus(name, eu('svc')), 'Idle', 'a service that died is Idle');
  });
  await subhostTest(t, 'boot without an override starts START', [name], async (t) => {
    const sh = makeSubhost(t, name, ['START=/etc/init.d/auto']);
    writeService(path.join(sh.base, 'root'), 'auto');
    await boot(sh.conf);
    t.equal(await euLiveStatus(name, discoverEUs(path.join(sh.base, 'root'), name)[0]!), 'Active');
  });
  await subhostTest(t, 'an OCI EU: the RUN service, Active as the reaper reports it; stop and start are the subhost\'s', [name], async (t) => {
    const sh = makeSubhost(t, name, ['RUN=sleep 100000']);
    const eu = ociEU(name, 'bundle');
    t.same(eu, { EUID: `${name}/bundle`, Name: 'bundle', kind: 'run', AutoStart: true, Status: 'Idle', ExecutionFaultCode: 'NoFault' });
    t.equal(await euLiveStatus(name, eu), 'Idle', 'Idle while the subhost does not run');
    await startEU(name, eu, { configPath: sh.conf });
    t.equal(await euLiveStatus(name, eu), 'Active', 'booted: the RUN service runs');
    await stopEU(name, eu);
    t.notOk(listSubhosts().some((s) => s.name === name), 'stopping it stopped the subhost');
    t.equal(await euLiveStatus(name, eu), 'Idle');
    const noConfig = await startEU(name, eu, { timeoutMs: 1000 }).catch((e: unknown) => e);
    t.equal(euFaultOf(noConfig), 'FailureOnStart', 'no config to boot it with: FailureOnStart');
  });
});
