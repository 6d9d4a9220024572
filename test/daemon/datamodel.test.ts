// datamodel.get through the socket against du.list, ee.list and eu.list; instance
// numbers stable across a daemon restart and the removal of a record, never reused.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { assignInstances, INSTANCES_FILE } from '../../src/daemon/instances.js';
import { selectParameters, type Parameters } from '../../src/daemon/datamodel.js';
import { DuStore, type DuRecord } from '../../src/lifecycle/store.js';
import type { ExecEnv } from '../../src/lifecycle/templates.js';
import { Client, startDaemon, tempDir, testConfig } from './helpers.js';
import { duRecord, putRecords } from './records.js';

const SM = 'Device.SoftwareModules.';

/** The instance numbers of a table's objects, by the value of `keyParam`. */
function instancesBy(p: Parameters, table: string, keyParam: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(p)) {
    const m = new RegExp(`^${SM.replace(/\./g, '\\.')}${table}\\.(\\d+)\\.${keyParam}$`).exec(k);
    if (m) out[String(v)] = Number(m[1]);
  }
  return out;
}

/** Without the parameters measured live (free disk and memory change between two reads). */
function stable(p: unknown): Parameters {
  return Object.fromEntries(Object.entries(p as Parameters).filter(([k]) => !/\.Available(DiskSpace|Memory)$/.test(k)));
}

t.test('the tree agrees with du.list, eu.list and ee.list', async (t) => {
  const d = await startDaemon(t);
  putRecords(d.config.paths.state, [duRecord('web', '1', ['httpd', 'cron']), duRecord('db', '2', ['postgres'], { ExecutionEnvRef: 'bridge' })]);
  const c = await Client.connect(t, d.socket);
  const dus = (await c.call('du.list')).result as DuRecord[];
  const ees = (await c.call('ee.list')).result as ExecEnv[];
  const p = (await c.call('datamodel.get')).result as Parameters;

  t.equal(p[`${SM}ExecEnvNumberOfEntries`], ees.length);
  t.equal(p[`${SM}DeploymentUnitNumberOfEntries`], dus.length);
  t.equal(p[`${SM}ExecutionUnitNumberOfEntries`], 3);
  const eeAt = instancesBy(p, 'ExecEnv', 'Name');
  t.same(Object.keys(eeAt).sort(), ees.map((e) => e.Name).sort());
  for (const e of ees) {
    const at = `${SM}ExecEnv.${eeAt[e.Name]}.`;
    t.match(p, { [`${at}Status`]: 'Up', [`${at}Enable`]: true, [`${at}Type`]: e.Type, [`${at}Vendor`]: 'overlay-boot', [`${at}Version`]: e.Version });
  }
  const duAt = instancesBy(p, 'DeploymentUnit', 'DUID');
  const euAt = instancesBy(p, 'ExecutionUnit', 'EUID');
  for (const r of dus) {
    const at = `${SM}DeploymentUnit.${duAt[r.DUID]}.`;
    t.match(p, {
      [`${at}UUID`]: r.UUID, [`${at}Name`]: r.Name, [`${at}Status`]: 'Installed', [`${at}Resolved`]: true, [`${at}Version`]: r.Version,
      [`${at}Vendor`]: r.Vendor, [`${at}Description`]: r.Description, [`${at}URL`]: r.package.source,
      [`${at}ExecutionEnvRef`]: `${SM}ExecEnv.${eeAt[r.ExecutionEnvRef]}`,
      [`${at}ExecutionUnitList`]: r.EUs.map((eu) => `${SM}ExecutionUnit.${euAt[eu.EUID]}`).join(','),
    }, `DU ${r.Subhost}`);
    for (const eu of r.EUs) {
      const e = `${SM}ExecutionUnit.${euAt[eu.EUID]}.`;
      t.match(p, { [`${e}Name`]: eu.Name, [`${e}Status`]: eu.Status, [`${e}AutoStart`]: eu.AutoStart, [`${e}ExecutionFaultCode`]: 'NoFault', [`${e}ExecutionEnvRef`]: `${SM}ExecEnv.${eeAt[r.ExecutionEnvRef]}` });
    }
  }
  t.equal(p[`${SM}ExecEnv.${eeAt.bee}.ActiveExecutionUnits`], `${SM}ExecutionUnit.${euAt['web/httpd']}`, 'the Active EUs of an EE');

  const sub = `${SM}DeploymentUnit.${duAt['2']}.`;
  const subtree = (await c.call('datamodel.get', { path: sub })).result as Parameters;
  t.ok(Object.keys(subtree).length > 5 && Object.keys(subtree).every((k) => k.startsWith(sub)), 'a path ending in . is a subtree');
  t.same((await c.call('datamodel.get', { path: `${sub}Name` })).result, { [`${sub}Name`]: 'db' }, 'else one parameter');
  t.same((await c.call('datamodel.get', { path: `${SM}DeploymentUnitNumberOfEntries` })).result, { [`${SM}DeploymentUnitNumberOfEntries`]: 2 });
  t.same(stable((await c.call('datamodel.get', { path: SM })).result), stable(p), 'the root is everything');
  t.match(await c.call('datamodel.get', { path: `${SM}DeploymentUnit.99.` }), { error: { code: -32602, message: /no parameter or object/ } });
  t.match(await c.call('datamodel.get', { path: 'Device.DeviceInfo.' }), { error: { code: -32602, message: /must start with/ } });
  t.same(selectParameters({ 'a.b': 1 }, 'a.b.'), {}, 'a parameter is no subtree');

  // disabling an EE: Enable false and Status Disabled
  writeFileSync(path.join(d.config.paths.templates, 'bridge.disabled'), '');
  const after = (await c.call('datamodel.get', { path: `${SM}ExecEnv.${eeAt.bridge}.` })).result as Parameters;
  t.match(after, { [`${SM}ExecEnv.${eeAt.bridge}.Enable`]: false, [`${SM}ExecEnv.${eeAt.bridge}.Status`]: 'Disabled' });
});

t.test('instance numbers: stable across a restart and a removal, never reused', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir);
  putRecords(config.paths.state, [duRecord('aa', '1', ['one']), duRecord('bb', '2', ['two']), duRecord('cc', '3', ['three', 'four'])]);
  const first = await startDaemon(t, { dir, config });
  let c = await Client.connect(t, first.socket);
  const before = (await c.call('datamodel.get')).result as Parameters;
  const duBefore = instancesBy(before, 'DeploymentUnit', 'DUID');
  const euBefore = instancesBy(before, 'ExecutionUnit', 'EUID');
  t.same(Object.values(duBefore).sort(), [1, 2, 3]);
  await first.daemon.close();

  const second = await startDaemon(t, { dir, config });
  c = await Client.connect(t, second.socket);
  t.same(stable((await c.call('datamodel.get')).result), stable(before), 'the same tree after a restart');

  new DuStore(config.paths.state).remove('bb');
  const removed = (await c.call('datamodel.get')).result as Parameters;
  t.same(instancesBy(removed, 'DeploymentUnit', 'DUID'), { 1: duBefore['1'], 3: duBefore['3'] }, 'the others keep their numbers');
  t.same(instancesBy(removed, 'ExecutionUnit', 'EUID'), { 'aa/one': euBefore['aa/one'], 'cc/three': euBefore['cc/three'], 'cc/four': euBefore['cc/four'] });
  t.equal(removed[`${SM}DeploymentUnitNumberOfEntries`], 2);

  // bb comes back as a new DU (a new DUID): a new number, not the old one
  putRecords(config.paths.state, [duRecord('bb', '4', ['two'])]);
  const back = instancesBy((await c.call('datamodel.get')).result as Parameters, 'DeploymentUnit', 'DUID');
  t.equal(back['4'], 4, 'a new object gets a number never used');
  t.equal(back['1'], duBefore['1']);
  t.match(JSON.parse(readFileSync(path.join(config.paths.state, INSTANCES_FILE), 'utf8')), { format: 1, DeploymentUnit: { next: 5 } }, 'persisted');
});

t.test('assignInstances: a corrupt file is PKG_STATE_CORRUPT, not renumbered', async (t) => {
  const dir = tempDir(t);
  const keys = { ExecEnv: ['bee'], DeploymentUnit: ['1'], ExecutionUnit: [] };
  t.same(Object.fromEntries(assignInstances(dir, keys).DeploymentUnit), { 1: 1 });
  const file = path.join(dir, INSTANCES_FILE);
  writeFileSync(file, JSON.stringify({ format: 1, DeploymentUnit: { next: 2, byKey: { 1: 7 } } }));
  t.throws(() => assignInstances(dir, keys), { code: 'PKG_STATE_CORRUPT' }, 'a number not below next');
  writeFileSync(file, '{');
  t.throws(() => assignInstances(dir, keys), { code: 'PKG_STATE_CORRUPT' });
});
