// The checks install makes before it changes anything, each with its fault code, and
// what a refused install leaves: nothing but its line in the history. No subhost boots
// here (every check fails before the first step).
import t, { type Test } from 'tap';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installDU } from '../../src/lifecycle/install.js';
import { History } from '../../src/lifecycle/history.js';
import { buildDu, makeDuEnv, writeTemplate, type DuEnv } from '../helpers/du.js';

function stateFiles(env: DuEnv): string[] {
  return readdirSync(env.state).sort();
}

async function refused(t: Test, env: DuEnv, file: string, extra: { ee?: string; name?: string }, code: string, fault: number): Promise<void> {
  const out = await installDU({ config: env.config, source: file, ...extra });
  t.equal(out.entry.CurrentState, 'Failed', code);
  t.equal(out.changed, false);
  t.match(out.error, { code }, code);
  t.equal(out.entry.Fault?.FaultCode, fault, `${code} is fault ${fault}`);
  t.match(out.entry.Fault?.FaultString, code);
  t.same(stateFiles(env), ['history.jsonl', 'journal.json', 'lock'], `${code}: nothing but the history, the lock and an empty journal`);
}

t.test('each check refuses with its fault and leaves nothing', async (t) => {
  const env = makeDuEnv(t);
  await refused(t, env, buildDu(env, { signed: false }), {}, 'PKG_UNSIGNED', 7036);
  await refused(t, env, buildDu(env, { architecture: 'sparc64' }), {}, 'PKG_ARCHITECTURE', 9025);
  await refused(t, env, buildDu(env), { ee: 'no-such-ee' }, 'PKG_TEMPLATE_UNKNOWN', 9023);
  writeTemplate(env, 'off', ['LOWER=/', 'START=none']);
  writeFileSync(path.join(env.templates, 'off.disabled'), '');
  await refused(t, env, buildDu(env), { ee: 'off' }, 'PKG_EE_DISABLED', 9024);
  await refused(t, env, buildDu(env, { fields: { 'Installed-Size': '999999999999999' } }), {}, 'PKG_NO_SPACE', 9027);
  await refused(t, env, buildDu(env), { name: 'no/slash' }, 'USAGE', 9003);
  const corrupt = path.join(env.dir, 'corrupt.ipk');
  writeFileSync(corrupt, 'not a package at all');
  await refused(t, env, corrupt, {}, 'PKG_FORMAT', 9018);
  await refused(t, env, 'http://127.0.0.1:1/x.ipk', {}, 'PKG_UNSUPPORTED_SOURCE', 9013);
  const history = new History(env.state).read().entries;
  t.same(history.map((e) => e.CurrentState), history.map(() => 'Failed'), 'every refusal is in the history');
  t.equal(history.length, 8);
});

t.test('a state directory below LOWER on its filesystem is refused before anything is made', { skip: statSync('/tmp').dev !== statSync('/').dev && '/tmp is not on the root filesystem' }, async (t) => {
  const env = makeDuEnv(t);
  // env.dir is in /tmp, on the root filesystem here: bee's LOWER is /.
  const state = path.join(env.dir, 'state-on-root');
  const out = await installDU({ config: { ...env.config, paths: { ...env.config.paths, state } }, source: buildDu(env) });
  t.match(out.error, { code: 'PKG_LAYER_OVERLAP' });
  t.equal(out.entry.Fault?.FaultCode, 9025);
  t.same(readdirSync(state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});
