import t from 'tap';
import { chmodSync, mkdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readConfig } from '../../src/config/read.js';
import { defaultPkgConfig, type PkgConfig } from '../../src/package/config.js';
import {
  availableDiskKiB, availableMemoryKiB, checkTemplate, composeDuConfig, findTemplate, isEnabled, listExecEnvs,
  listTemplates, loadTemplate, MANAGED_DIRS, packageVersion, shippedTemplatesDir,
} from '../../src/lifecycle/templates.js';
import { tempState } from './temp.js';

function setup(t: Parameters<typeof tempState>[0]): { dir: string; custom: string; config: PkgConfig } {
  const dir = tempState(t, 'ovb-ee-test-');
  chmodSync(dir, 0o755);
  const custom = path.join(dir, 'templates');
  mkdirSync(custom, { mode: 0o755 });
  const config = defaultPkgConfig();
  config.paths.templates = custom;
  config.paths.state = path.join(dir, 'state');
  return { dir, custom, config };
}

t.test('the shipped templates: bee, bridge and oci, each checks', async (t) => {
  const shipped = shippedTemplatesDir();
  t.same(listTemplates({ custom: '/nonexistent' }).map((r) => [r.name, r.source, r.file]), [
    ['bee', 'shipped', path.join(shipped, 'bee.conf')],
    ['bridge', 'shipped', path.join(shipped, 'bridge.conf')],
    ['oci', 'shipped', path.join(shipped, 'oci.conf')],
  ]);
  for (const name of ['bee', 'bridge', 'oci']) {
    const template = await loadTemplate(findTemplate(name, { custom: '/nonexistent' }));
    t.same(await checkTemplate(template), [], `${name} checks without warnings`);
  }
  const bee = await loadTemplate(findTemplate('bee', { custom: '/nonexistent' }));
  const limits = [['MEMORY_MAX', '256M'], ['CPU_MAX', '50'], ['PIDS_MAX', '512']];
  const rotation = [['LOG_MAX_SIZE', '500K'], ['LOG_KEEP', '10']];
  t.same(bee.assignments.map((a) => [a.variable, a.value]), [['LOWER', '/'], ...limits, ['START', 'none'], ['PRIVILEGED', 'no'], ...rotation], 'bee has modest limits, runs DUs unprivileged and rotates its log');
  const bridge = await loadTemplate(findTemplate('bridge', { custom: '/nonexistent' }));
  t.same(bridge.assignments.map((a) => [a.variable, a.value]), [['LOWER', '/'], ['CABLES', 'br0='], ['START', 'none'], ['PRIVILEGED', 'no'], ...limits, ...rotation], 'bridge too');
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  t.ok(pkg.files.includes('templates/'), 'shipped in the npm package');
});

t.test('a DU config composed from a template reads as a real subhost config', async (t) => {
  const { dir } = setup(t);
  for (const [ee, lower, cables] of [['bee', '/', 0], ['bridge', '/', 1], ['oci', 'empty', 0]] as const) {
    const base = path.join(dir, `du-${ee}`);
    for (const d of Object.values(MANAGED_DIRS)) mkdirSync(path.join(base, d), { recursive: true, mode: 0o755 });
    const template = await loadTemplate(findTemplate(ee, { custom: '/nonexistent' }));
    const conf = path.join(dir, `du-${ee}.conf`);
    writeFileSync(conf, composeDuConfig(template, { name: `du-${ee}`, base, log: path.join(dir, `${ee}.log`) }), { mode: 0o644 });
    const config = await readConfig(conf);
    t.equal(config.name, `du-${ee}`);
    t.equal(config.base, base);
    t.equal(config.upper, path.join(base, 'root'));
    t.equal(config.live, path.join(base, 'live'));
    t.equal(config.lower, lower === '/' ? '/' : path.join(base, 'empty'), `${ee}: LOWER`);
    t.equal(config.cables.length, cables);
    t.same(config.start, []);
    if (ee !== 'oci') t.match(config, { memoryMax: 256 * 1024 * 1024, cpuMax: 50, pidsMax: 512 }, `${ee}: modest limits`);
    t.equal(config.log, path.join(dir, `${ee}.log`));
    t.equal(config.origins.LOWER?.line, template.assignments.find((a) => a.variable === 'LOWER')?.line, 'template lines keep their numbers');
  }
});

t.test('custom templates come first and shadow shipped ones; NAME.disabled disables', async (t) => {
  const { custom } = setup(t);
  writeFileSync(path.join(custom, 'bee.conf'), 'LOWER=/\nRAM_SIZE=10M\n', { mode: 0o644 });
  writeFileSync(path.join(custom, 'iot.conf'), 'CABLES==\n', { mode: 0o644 });
  writeFileSync(path.join(custom, 'README'), 'not a template\n');
  writeFileSync(path.join(custom, '-bad.conf'), 'LOWER=/\n');
  t.same(listTemplates({ custom }).map((r) => `${r.source}:${r.name}`), ['custom:bee', 'custom:iot', 'shipped:bridge', 'shipped:oci']);
  t.equal(findTemplate('bee', { custom }).file, path.join(custom, 'bee.conf'));
  t.throws(() => findTemplate('nope', { custom }), { code: 'PKG_TEMPLATE_UNKNOWN', found: 'nope', expected: 'bee, iot, bridge, oci' });
  t.throws(() => findTemplate('../x', { custom }), { code: 'PKG_TEMPLATE_UNKNOWN' });
  t.ok(isEnabled('oci', { custom }));
  writeFileSync(path.join(custom, 'oci.disabled'), '');
  t.notOk(isEnabled('oci', { custom }), 'a shipped EE is disabled from the configured directory');
});

t.test('a template may not set what the manager fills, and must check', async (t) => {
  const { custom } = setup(t);
  const write = (name: string, text: string) => {
    writeFileSync(path.join(custom, `${name}.conf`), text, { mode: 0o644 });
    return findTemplate(name, { custom });
  };
  for (const variable of ['NAME', 'BASE', 'UPPER', 'WORK', 'LIVE']) {
    const ref = write('m', `# comment\nLOWER=/\n${variable}=x\n`);
    await t.rejects(loadTemplate(ref), { code: 'PKG_TEMPLATE_INVALID', file: ref.file, line: 3, variable }, variable);
  }
  const badCable = await loadTemplate(write('c', '# a\nCABLES=br0=zz\n'));
  await t.rejects(checkTemplate(badCable), { code: 'PKG_TEMPLATE_INVALID', file: badCable.file, line: 2, variable: 'CABLES', errors: [{ code: 'CONFIG_BAD_MAC' }] });
  const badLower = await loadTemplate(write('l', 'LOWER=/nonexistent/lower\n'));
  const e = await checkTemplate(badLower).catch((x) => x);
  t.match(e, { code: 'PKG_TEMPLATE_INVALID', file: badLower.file, line: 1, variable: 'LOWER' });
  t.notMatch(e.message, /ovb-ee-check-/, 'the message names the template, not the scratch config');
  const several = await loadTemplate(write('s', 'START=a;b\nRAM_SIZE=lots\n'));
  await t.rejects(checkTemplate(several), { code: 'PKG_TEMPLATE_INVALID', errors: [{ code: 'CONFIG_INVALID', file: several.file, errors: [{ line: 1 }, { line: 2 }] }] });
  // A ! value is not run while checking; its variable's default is checked instead.
  const marker = path.join(custom, 'ran');
  const bang = await loadTemplate(write('b', `LOWER=!touch ${marker}; echo /\nSTART=none\n`));
  t.same(await checkTemplate(bang), []);
  t.throws(() => readFileSync(marker), 'the ! command did not run');
  const unknown = await loadTemplate(write('u', 'FAVOURITE_COLOUR=blue\n'));
  t.match(await checkTemplate(unknown), [{ line: 1, variable: 'FAVOURITE_COLOUR', message: /unknown variable/ }]);
  const limited = await loadTemplate(write('k', 'MEMORY_MAX=64M\nCPU_MAX=25\nPIDS_MAX=64\n'));
  t.same(await checkTemplate(limited), [], 'a template may set the limits');
  const badLimit = await loadTemplate(write('x', 'PIDS_MAX=0\n'));
  await t.rejects(checkTemplate(badLimit), { code: 'PKG_TEMPLATE_INVALID', file: badLimit.file, line: 1, variable: 'PIDS_MAX' });
  // Writable by others: its ! values would run as root at boot.
  const unsafe = write('w', 'LOWER=/\n');
  chmodSync(unsafe.file, 0o666);
  await t.rejects(loadTemplate(unsafe), { code: 'CONFIG_UNSAFE' });
});

t.test('listExecEnvs gives the TR-181 fields', async (t) => {
  const { custom, config } = setup(t);
  writeFileSync(path.join(custom, 'broken.conf'), 'NAME=x\n', { mode: 0o644 });
  writeFileSync(path.join(custom, 'warned.conf'), 'FAVOURITE_COLOUR=blue\n', { mode: 0o644 });
  writeFileSync(path.join(custom, 'bridge.disabled'), '');
  const ees = await listExecEnvs(config);
  t.same(ees.map((e) => [e.Name, e.Status, e.Enable, e.origin]), [
    ['broken', 'Error', true, 'custom'], ['warned', 'Up', true, 'custom'],
    ['bee', 'Up', true, 'shipped'], ['bridge', 'Up', false, 'shipped'], ['oci', 'Up', true, 'shipped'],
  ]);
  const [broken, warned, bee] = ees;
  t.match(broken?.reason, /^PKG_TEMPLATE_INVALID: .*broken\.conf:1: NAME: /);
  t.same(warned?.warnings, ['1: unknown variable FAVOURITE_COLOUR is ignored']);
  t.match(bee, {
    Type: 'overlay-boot subhost', Vendor: 'overlay-boot', Version: packageVersion(), Source: path.join(shippedTemplatesDir(), 'bee.conf'), warnings: [],
  });
  t.equal(bee?.reason, undefined);
  // The state directory does not exist yet: its nearest ancestor's filesystem counts.
  const s = statfsSync(path.dirname(config.paths.state));
  t.ok(Math.abs(bee!.AvailableDiskSpace - (s.bavail * s.bsize) / 1024) < 64 * 1024, 'disk KiB from statfs');
  t.equal(availableDiskKiB(config.paths.state), availableDiskKiB(path.dirname(config.paths.state)));
  t.ok(bee!.AvailableMemory > 0 && bee!.AvailableMemory <= Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]));
  t.ok(availableMemoryKiB() > 0);
});
