// overlay-pkg datamodel: the TR-181 tree against du.list, the same lines whether the
// daemon answers or the command computes it alone, a subtree, one parameter, an unknown path.
import t, { type Test } from 'tap';
import { main } from '../../src/cli/pkg.js';
import type { DuRecord } from '../../src/lifecycle/store.js';
import { capture } from '../helpers/cli.js';
import { writeTestIni } from './cli-helpers.js';
import { Client, startDaemon, tempDir } from './helpers.js';
import { duRecord, putRecords } from './records.js';

const SM = 'Device.SoftwareModules.';

/** A pkg.ini naming a test configuration's directories and socket; its env. */
function world(t: Test): { env: NodeJS.ProcessEnv; dir: string; state: string } {
  const dir = tempDir(t);
  const { config, ini } = writeTestIni(dir);
  return { env: { ...process.env, OVERLAY_PKG_CONFIG: ini }, dir, state: config.paths.state };
}

async function pkg(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture(env);
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** Without the lines measured live (free disk and memory change between two reads). */
const stable = (text: string) => text.split('\n').filter((l) => !/\.Available(DiskSpace|Memory) /.test(l)).join('\n');

t.test('the tree against du.list, alone and through the daemon', async (t) => {
  const w = world(t);
  putRecords(w.state, [duRecord('web', '11', ['httpd', 'cron']), duRecord('db', '12', ['postgres'])]);

  const alone = await pkg(w.env, ['datamodel']);
  t.equal(alone.code, 0, alone.err);
  t.equal(alone.err, '');
  const lines = alone.out.trimEnd().split('\n');
  t.ok(lines.every((l) => l.startsWith(SM) && / /.test(l)), 'one "Path value" line each');
  const json = await pkg(w.env, ['datamodel', '--json']);
  const params = (JSON.parse(json.out) as { changed: boolean; parameters: Record<string, unknown> });
  t.equal(params.changed, false);
  t.same(lines.map((l) => l.slice(0, l.indexOf(' '))), Object.keys(params.parameters), 'text and --json list the same paths in the same order');

  const d = await startDaemon(t, { dir: w.dir });
  const c = await Client.connect(t, d.socket);
  const dus = (await c.call('du.list')).result as DuRecord[];
  t.equal(params.parameters[`${SM}DeploymentUnitNumberOfEntries`], dus.length);
  for (const r of dus) {
    const at = Object.entries(params.parameters).find(([k, v]) => k.endsWith('.DUID') && v === r.DUID)?.[0].slice(0, -'DUID'.length);
    t.ok(at, `DU ${r.Subhost} has an instance`);
    t.match(params.parameters, { [`${at}Name`]: r.Name, [`${at}UUID`]: r.UUID, [`${at}Version`]: r.Version, [`${at}Status`]: r.Status, [`${at}URL`]: r.package.source });
  }

  const asked = () => d.logs.filter((l) => /^connection \d+ from pid /.test(l)).length;
  const before = asked();
  const viaDaemon = await pkg(w.env, ['datamodel']);
  t.equal(viaDaemon.code, 0, viaDaemon.err);
  t.equal(stable(viaDaemon.out), stable(alone.out), 'the daemon gives the same lines, same instance numbers');
  t.equal(asked(), before + 1, 'the command asked the daemon');
  const forced = await pkg(w.env, ['datamodel', '--no-daemon']);
  t.equal(stable(forced.out), stable(alone.out), '--no-daemon: the same, computed here');

  for (const mode of [[], ['--no-daemon']]) {
    const sub = await pkg(w.env, ['datamodel', `${SM}DeploymentUnit.`, ...mode]);
    t.equal(sub.code, 0);
    t.ok(sub.out.trimEnd().split('\n').every((l) => l.startsWith(`${SM}DeploymentUnit.`)), `a subtree ${mode.join('')}`);
    const one = await pkg(w.env, ['datamodel', `${SM}DeploymentUnitNumberOfEntries`, ...mode]);
    t.equal(one.out, `${SM}DeploymentUnitNumberOfEntries 2\n`, `one parameter ${mode.join('')}`);
    const bad = await pkg(w.env, ['datamodel', `${SM}DeploymentUnit.99.`, '--json', ...mode]);
    t.equal(bad.code, 1, `an unknown path fails ${mode.join('')}`);
    t.match(bad.err, /^overlay-pkg: no parameter or object "Device\.SoftwareModules\.DeploymentUnit\.99\." in Device\.SoftwareModules\./);
    t.match(JSON.parse(bad.out), { ok: false, error: { code: 'INVALID_PATH' } });
  }
});

t.test('usage', async (t) => {
  const w = world(t);
  const r = await pkg(w.env, ['datamodel', 'a', 'b']);
  t.equal(r.code, 2);
  t.match(r.err, /datamodel takes at most one PATH/);
});
