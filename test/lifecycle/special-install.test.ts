// Removal packages and hotfixes through install, on the real kernel (as root, under the
// root lock): signed packages, real DU subhosts.
import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { list as listSubhosts } from '../../src/commands/list.js';
import { History } from '../../src/lifecycle/history.js';
import { installDU } from '../../src/lifecycle/install.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { buildRemovalPackage } from '../../src/package/build.js';
import { buildDu, makeDuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

t.test('a hotfix installs only over its exact version; a removal package removes the DU', async (t) => {
  const env = makeDuEnv(t);
  const name = uniqueName('hf');
  const app = await installDU({ config: env.config, source: buildDu(env, { name: 'webapp', version: '1.0-2' }), name });
  t.equal(app.entry.CurrentState, 'Installed', JSON.stringify(app.entry.Fault));

  const fixFor = (version: string) => buildDu(env, { name: 'webapp-fix', version: '1', fields: { Tags: 'hotfix', Depends: `webapp (= ${version})` } });
  const wrong = await installDU({ config: env.config, source: fixFor('1.0-3'), name: `${name}f` });
  t.equal(wrong.entry.CurrentState, 'Failed');
  t.match(wrong.entry.Fault, { FaultCode: 9001, FaultString: /PKG_HOTFIX_MISMATCH.*webapp 1\.0-3; installed: 1\.0-2/ });
  t.notOk(existsSync(path.join(env.state, 'units', `${name}f`)), 'nothing of the refused hotfix is left');
  const right = await installDU({ config: env.config, source: fixFor('1.0-2'), name: `${name}f` });
  t.equal(right.entry.CurrentState, 'Installed', JSON.stringify(right.entry.Fault));

  const removal = await buildRemovalPackage('webapp', { outDir: env.dir, signKey: env.key.secret });
  const out = await installDU({ config: env.config, source: removal.file });
  t.equal(out.entry.CurrentState, 'Uninstalled', JSON.stringify(out.entry.Fault));
  t.equal(out.entry.OperationPerformed, 'Uninstall');
  t.equal(out.entry.Subhost, name);
  t.notOk(new DuStore(env.state).get(name), 'the DU of webapp is gone');
  t.notOk(listSubhosts().some((s) => s.name === name), 'its subhost too');
  t.ok(new DuStore(env.state).get(`${name}f`), 'the other DU stays');
  const again = await installDU({ config: env.config, source: removal.file });
  t.match(again.entry, { CurrentState: 'Failed', Fault: { FaultCode: 9028, FaultString: /no DU of webapp is installed/ } });
  t.same(new History(env.state).read().entries.map((e) => `${e.OperationPerformed} ${e.CurrentState}`),
    ['Install Installed', 'Install Failed', 'Install Installed', 'Uninstall Uninstalled', 'Install Failed']);
  t.equal((await uninstallDU({ config: env.config, du: `${name}f` })).entry.CurrentState, 'Uninstalled');
});
