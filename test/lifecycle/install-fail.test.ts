// A failed install leaves nothing: no subhost (DU or staging), namespace, cgroup, mount,
// directory, record or boot-list line. A byte-identical second install changes nothing.
import t from 'tap';
import { existsSync, readdirSync } from 'node:fs';
import { installDU } from '../../src/lifecycle/install.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { snapshotHost } from '../helpers/host.js';
import { buildDu, makeDuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

for (const [script, body] of [
  ['postinst', '#!/bin/sh\necho configuring; echo "no luck" >&2; exit 1\n'],
  ['preinst', '#!/bin/sh\nexit 7\n'],
] as const) {
  t.test(`a ${script} that fails: Failed with fault 9025, nothing left on the host`, async (t) => {
    const env = makeDuEnv(t);
    const name = uniqueName('fa');
    // This DU's and any staging subhost's objects (other work may boot subhosts meanwhile).
    const mine = { names: [name, 'stg'] };
    const before = snapshotHost(mine);
    const file = buildDu(env, { name: 'failing', scripts: { [script]: body, ...(script === 'preinst' ? { postinst: '#!/bin/sh\nexit 0\n' } : {}) } });
    const out = await installDU({ config: env.config, source: file, name });
    t.equal(out.entry.CurrentState, 'Failed');
    t.match(out.error, { code: 'PKG_SCRIPT_FAILED', member: script });
    t.equal(out.entry.Fault?.FaultCode, 9025);
    if (script === 'postinst') t.match(out.entry.Fault?.FaultString, /postinst configure exited with status 1 inside stg[0-9a-z]{5}: configuring\nno luck/);
    t.same(snapshotHost(mine), before, 'no subhost, namespace, link, mount, cgroup or process left');
    t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock'], 'no unit directory, record or trash');
    t.notOk(existsSync(env.bootList), 'no boot-list line');
  });
}

t.test('the same package twice: byte-identical is changed:false, other bytes a real 9026', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('dp');
  const file = buildDu(env, { name: 'twice' });
  const first = await installDU({ config: env.config, source: file, name });
  t.equal(first.entry.CurrentState, 'Installed', JSON.stringify(first.entry.Fault));
  const again = await installDU({ config: env.config, source: file });
  t.equal(again.identical, true, 'identical');
  t.equal(again.changed, false);
  t.equal(again.entry.Fault?.FaultCode, 9026);
  t.equal(again.record?.Subhost, name, 'the installed DU is named');
  const other = await installDU({ config: env.config, source: buildDu(env, { name: 'twice', data: { 'other/file': 'x\n' } }) });
  t.notOk(other.identical);
  t.equal(other.entry.Fault?.FaultCode, 9026, 'same name and version, other bytes: a fault');
  t.same(new DuStore(env.state).list().map((r) => r.Subhost), [name], 'still one DU');
  const rm = await uninstallDU({ config: env.config, du: name });
  t.equal(rm.entry.CurrentState, 'Uninstalled');
  const unknown = await uninstallDU({ config: env.config, du: name });
  t.equal(unknown.entry.Fault?.FaultCode, 9028, 'removing it again: unknown DU');
  t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});
