// Staging a DU's layer without booting anything: config composition, the LOWER symlink
// rule (merged /usr), opkg's database in the layer, and what a hostile package cannot do.
import t from 'tap';
import { existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadTrustedKeys } from '../../src/package/keys.js';
import { verifyPackage } from '../../src/package/verify.js';
import { composeStagingConfig, composeUnitConfig, duStart } from '../../src/lifecycle/du-config.js';
import { resolveInLower, stageLayer, templateLower } from '../../src/lifecycle/stage.js';
import { loadTemplate, findTemplate } from '../../src/lifecycle/templates.js';
import { unitPaths } from '../../src/lifecycle/unit.js';
import { buildDu, makeDuEnv, writeTemplate } from '../helpers/du.js';
import { parseConfigText } from '../../src/config/parse.js';

/** A LOWER with merged /usr: lib -> usr/lib, bin -> usr/bin, and an absolute link. */
function mergedLower(dir: string): string {
  const lower = path.join(dir, 'lower');
  mkdirSync(path.join(lower, 'usr/lib/x86'), { recursive: true });
  mkdirSync(path.join(lower, 'usr/bin'), { recursive: true });
  mkdirSync(path.join(lower, 'etc'), { recursive: true });
  symlinkSync('usr/lib', path.join(lower, 'lib'));
  symlinkSync('/usr/bin', path.join(lower, 'bin'));
  symlinkSync('../../../../../etc', path.join(lower, 'usr/lib/up'));
  return lower;
}

t.test('resolveInLower follows LOWER links inside LOWER, never on the host', async (t) => {
  const env = makeDuEnv(t);
  const lower = mergedLower(env.dir);
  t.equal(resolveInLower(lower, 'lib/x86/libz.so'), 'usr/lib/x86/libz.so');
  t.equal(resolveInLower(lower, 'bin'), 'usr/bin', 'an absolute link is taken from LOWER\'s root');
  t.equal(resolveInLower(lower, 'lib/up/passwd'), 'etc/passwd', '.. stops at LOWER\'s root');
  t.equal(resolveInLower(lower, 'opt/new/thing'), 'opt/new/thing', 'what LOWER lacks is kept');
});

t.test('the DU config: overrides comment the template lines, START gets the AutoStart EUs', async (t) => {
  const env = makeDuEnv(t);
  writeTemplate(env, 'svc', ['LOWER=/', 'START=cron', 'RAM_SIZE=20M']);
  const template = await loadTemplate(findTemplate('svc', { custom: env.templates }));
  t.equal(duStart(template, ['web', 'db']), 'cron /etc/init.d/web /etc/init.d/db');
  const unit = unitPaths(env.state, 'demo');
  const text = composeUnitConfig(template, { subhost: 'demo', unit, layer: '/x/layer-1', autoStart: ['web'] });
  const lines = text.split('\n');
  t.equal(lines[1], '# (overridden below) START=cron', 'line 2 stays line 2, as a comment');
  const parsed = parseConfigText(Buffer.from(text), 'demo.conf');
  const value = (v: string) => parsed.assignments.find((a) => a.variable === v)?.value;
  t.equal(value('START'), 'cron /etc/init.d/web');
  t.match(text, /\nLAYERS=\/x\/layer-1\n/, 'LAYERS names the layer');
  t.equal(value('BASE'), unit.base);
  t.equal(value('LOG'), unit.log);
  const bee = await loadTemplate(findTemplate('bee', { custom: env.templates }));
  t.equal(duStart(bee, []), 'none', 'bee starts nothing but the EUs');
  writeTemplate(env, 'bang', ['START=!echo ssh']);
  const bang = await loadTemplate(findTemplate('bang', { custom: env.templates }));
  t.throws(() => duStart(bang, []), { code: 'PKG_TEMPLATE_INVALID', line: 1, variable: 'START' });
  writeTemplate(env, 'cabled', ['LOWER=/', 'CABLES=br0=', 'SHARE=/srv', 'START=ssh']);
  const cabled = await loadTemplate(findTemplate('cabled', { custom: env.templates }));
  const staging = parseConfigText(Buffer.from(composeStagingConfig(cabled, {
    name: 'stg1', unit, layer: '/x/layer-2', dir: '/x/stage-2', log: '/x/stage-2/log',
  })), 's.conf');
  const sv = (v: string) => staging.assignments.filter((a) => a.variable === v).map((a) => a.value);
  t.same(sv('CABLES'), [], 'no cable');
  t.same(sv('SHARE'), [], 'no share');
  t.same(sv('START'), ['none']);
  t.same(sv('UPPER'), ['/x/layer-2'], 'UPPER is the new layer');
  t.same(sv('WORK'), ['/x/stage-2/work']);
  t.same(sv('LOWER'), ['/']);
  t.equal(templateLower(cabled, unit.base), '/');
});

t.test('stageLayer: merged-/usr members land under usr/, opkg\'s database is written', async (t) => {
  const env = makeDuEnv(t);
  const lower = mergedLower(env.dir);
  const file = buildDu(env, {
    name: 'merged',
    data: { 'lib/x86/libm.so': 'lib\n', 'lib/new/n.so': 'n\n', 'bin/tool': { content: '#!/bin/sh\n', mode: 0o755 }, 'etc/merged.conf': 'a=1\n' },
    scripts: { postinst: '#!/bin/sh\nexit 0\n' },
    conffiles: ['/etc/merged.conf'],
    container: 'ar',
  });
  const keys = loadTrustedKeys(env.keys).keys;
  const info = await verifyPackage(file, { keys });
  const layer = path.join(env.dir, 'layer');
  await stageLayer(file, layer, { info, keys, requireSignature: true, lower });
  t.equal(readFileSync(path.join(layer, 'usr/lib/x86/libm.so'), 'utf8'), 'lib\n');
  t.equal(readFileSync(path.join(layer, 'usr/lib/new/n.so'), 'utf8'), 'n\n');
  t.ok(lstatSync(path.join(layer, 'usr/bin/tool')).isFile());
  t.notOk(existsSync(path.join(layer, 'lib')), 'no real lib/ that would hide LOWER\'s link');
  t.notOk(existsSync(path.join(layer, 'bin')));
  const info2 = path.join(layer, 'usr/lib/opkg/info');
  t.match(readFileSync(path.join(info2, 'merged.control'), 'utf8'), /^Package: merged\nVersion: 1.0\n/);
  t.equal(readFileSync(path.join(info2, 'merged.conffiles'), 'utf8'), '/etc/merged.conf\n');
  t.equal(lstatSync(path.join(info2, 'merged.postinst')).mode & 0o777, 0o755);
  t.match(readFileSync(path.join(info2, 'merged.list'), 'utf8'), /\/usr\/lib\/x86\/libm.so\n/);
});

t.test('stageLayer refuses a relocated path through a symlink the package made', async (t) => {
  const env = makeDuEnv(t);
  const lower = mergedLower(env.dir);
  const outside = path.join(env.dir, 'outside');
  mkdirSync(outside);
  const file = buildDu(env, { name: 'evil', data: { 'usr/lib': { symlink: outside }, 'lib/planted': 'x\n' } });
  const keys = loadTrustedKeys(env.keys).keys;
  const info = await verifyPackage(file, { keys });
  const layer = path.join(env.dir, 'layer');
  await t.rejects(stageLayer(file, layer, { info, keys, requireSignature: true, lower }), { code: 'PKG_UNSAFE_PATH' });
  t.notOk(existsSync(path.join(outside, 'planted')), 'nothing written through the link');
  t.notOk(existsSync(layer), 'no layer left');
});

t.test('opkg\'s database never goes through a link the package shipped', async (t) => {
  const env = makeDuEnv(t);
  const outside = path.join(env.dir, 'outside');
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'keep'), 'k');
  const file = buildDu(env, { name: 'evil2', data: { 'usr/lib/opkg': { symlink: outside } } });
  const keys = loadTrustedKeys(env.keys).keys;
  const info = await verifyPackage(file, { keys });
  const layer = path.join(env.dir, 'layer');
  await t.rejects(stageLayer(file, layer, { info, keys, requireSignature: true, lower: '/' }), { code: 'PKG_UNSAFE_PATH' });
  t.equal(readlinkSync(path.join(layer, 'usr/lib/opkg')), outside);
  t.notOk(existsSync(path.join(outside, 'info')), 'the host directory is unchanged');
});
