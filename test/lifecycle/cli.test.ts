// overlay-pkg's lifecycle subcommands: ees and history (the package commands are in test/cli/pkg.test.ts).
import t, { type Test } from 'tap';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { main } from '../../src/cli/pkg.js';
import { fault } from '../../src/lifecycle/faults.js';
import { History, historyEntry } from '../../src/lifecycle/history.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { capture } from '../helpers/cli.js';
import { tempState } from './temp.js';

interface Env { state: string; templates: string; config: string }

function setup(t: Test): Env {
  const dir = tempState(t, 'ovb-lifecli-');
  chmodSync(dir, 0o755);
  const templates = path.join(dir, 'templates');
  mkdirSync(templates, { mode: 0o755 });
  const state = path.join(dir, 'state');
  const config = path.join(dir, 'pkg.ini');
  writeFileSync(config, `[paths]\nstate = ${state}\ntemplates = ${templates}\n`);
  return { state, templates, config };
}

async function run(env: Env, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture({ OVERLAY_PKG_CONFIG: env.config });
  const code = await main(argv, io);
  return { code, out: io.out, err: io.err };
}

t.test('ees lists the execution environments, as a table or TR-181 JSON', async (t) => {
  const env = setup(t);
  writeFileSync(path.join(env.templates, 'iot.conf'), 'LOWER=/\nUPPER=mine\n', { mode: 0o644 });
  writeFileSync(path.join(env.templates, 'oci.disabled'), '');
  const text = await run(env, ['ees']);
  t.equal(text.code, 0, text.err);
  const lines = text.out.split('\n');
  t.match(lines[0], /^NAME\s+STATUS\s+ENABLE\s+ORIGIN\s+SOURCE$/);
  t.match(lines[1], /^iot\s+Error\s+yes\s+custom\s+\//);
  t.match(lines[2], /^bee\s+Up\s+yes\s+shipped\s+\//);
  t.match(lines[4], /^oci\s+Up\s+no\s+shipped/);
  t.match(text.out, /iot: PKG_TEMPLATE_INVALID: .*iot\.conf:2: UPPER: /);
  t.match(text.out, /overlay-boot \d+\.\d+\.\d+; available: \d+ KiB disk, \d+ KiB memory/);
  const json = await run(env, ['--json', 'ees']);
  t.equal(json.code, 0);
  const parsed = JSON.parse(json.out);
  t.equal(parsed.changed, false);
  t.same(parsed.ExecEnv.map((e: { Name: string }) => e.Name), ['iot', 'bee', 'bridge', 'oci']);
  for (const e of parsed.ExecEnv) {
    t.same(Object.keys(e).filter((k) => /^[A-Z]/.test(k)).sort(), [
      'AvailableDiskSpace', 'AvailableMemory', 'Enable', 'Name', 'Source', 'Status', 'Type', 'Vendor', 'Version',
    ], `${e.Name}: the TR-181 keys`);
  }
  t.same(await run(env, ['ees', 'x']).then((r) => r.code), 2, 'ees takes no argument');
  t.same(await run(env, ['ees', '--key', 'x']).then((r) => r.code), 2);
});

t.test('history prints the operations, oldest first', async (t) => {
  const env = setup(t);
  const empty = await run(env, ['history', '--json']);
  t.same(JSON.parse(empty.out), { changed: false, operations: [] }, 'no state directory yet: an empty history');
  t.equal((await run(env, ['history'])).out, '');
  const journal = new Journal(env.state);
  const history = new History(env.state);
  journal.begin({ kind: 'install', subhost: 'web', intent: {}, allocateDUID: true, command: 'overlay-pkg install web.ipk' });
  history.append(historyEntry(journal.commit(), { CurrentState: 'Installed', Version: '1.0' }));
  journal.begin({ kind: 'update', subhost: 'web', intent: {}, command: 'overlay-pkg update web old.ipk' });
  history.append(historyEntry(journal.abort(), { CurrentState: 'Failed', Version: '1.0', Fault: fault('DOWNGRADE') }));
  const text = await run(env, ['history']);
  t.equal(text.code, 0, text.err);
  const lines = text.out.trim().split('\n');
  t.equal(lines.length, 2);
  t.match(lines[0], /^\S+Z {2}#1 {2}Install web 1\.0: Installed {2}\[uid \d+, pid \d+: overlay-pkg install web\.ipk\]$/);
  t.match(lines[1], /#2 {2}Update web 1\.0: Failed 9030 Invalid deployment unit update: downgrade not permitted/);
  const json = JSON.parse((await run(env, ['history', '--json'])).out);
  t.match(json, { changed: false, operations: [{ id: 1, OperationPerformed: 'Install', DUID: '1' }, { id: 2, Fault: { FaultCode: 9030 } }] });
});
