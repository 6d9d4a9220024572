// update's checks, which change nothing: another package (9003), a lower version (9030)
// and the same version (9032) are refused, through the library and the CLI, and an
// unknown DU is 9028. As root, under the root lock (the DU is a real subhost).
import t from 'tap';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/pkg.js';
import { installDU } from '../../src/lifecycle/install.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { updateDU } from '../../src/lifecycle/update.js';
import { capture } from '../helpers/cli.js';
import { buildDu, makeDuEnv, type DuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

const pkg = (env: DuEnv, version: string, name = 'app') => buildDu(env, { name, version });
const layers = (env: DuEnv, du: string) => readdirSync(path.join(env.state, 'units', du)).filter((f) => /^(layer|stage)-/.test(f));

t.test('another package, a lower and the same version are refused, and nothing changes', async (t) => {
  const env = makeDuEnv(t);
  const du = uniqueName('rf');
  const v1 = await installDU({ config: env.config, source: pkg(env, '1.0'), name: du });
  t.equal(v1.entry.CurrentState, 'Installed', JSON.stringify(v1.entry.Fault));
  const before = new DuStore(env.state).get(du);
  const refusals: Array<[string, string, number]> = [['0.9', 'app', 9030], ['1.0', 'app', 9032], ['1.0~rc1', 'app', 9030], ['3.0', 'other', 9003]];
  for (const [version, name, code] of refusals) {
    const r = await updateDU({ config: env.config, du, source: pkg(env, version, name) });
    t.equal(r.entry.CurrentState, 'Failed', `${name} ${version}`);
    t.equal(r.entry.Fault?.FaultCode, code, `${name} ${version}: ${r.entry.Fault?.FaultString}`);
    t.equal(r.changed, false);
  }
  const io = capture(env.env);
  t.equal(await main(['update', du, pkg(env, '0.5'), '--json'], io), 1, 'the CLI exits 1');
  t.match(JSON.parse(io.out), { changed: false, OperationPerformed: 'Update', CurrentState: 'Failed', Subhost: du, Fault: { FaultCode: 9030, FaultString: /PKG_DOWNGRADE.*--force-downgrade/ } });
  const unknown = await updateDU({ config: env.config, du: 'nosuchdu', source: pkg(env, '2.0') });
  t.match(unknown.entry, { CurrentState: 'Failed', Fault: { FaultCode: 9028 } });
  t.same(new DuStore(env.state).get(du), before, 'the DU is as it was');
  t.same(layers(env, du), [path.basename(before!.layer)]);
  t.equal((await uninstallDU({ config: env.config, du })).entry.CurrentState, 'Uninstalled');
});
