// The checks install makes before it changes anything, each with its fault code, and
// what a refused install leaves: nothing but its line in the history. No subhost boots
// here (every check fails before the first step).
import t, { type Test } from 'tap';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { installDU } from '../../src/lifecycle/install.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { History } from '../../src/lifecycle/history.js';
import { buildDu, makeDuEnv, runInside, stopEverySubhostOf, writeTemplate, type DuEnv } from '../helpers/du.js';

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
  await refused(t, env, 'ftp://127.0.0.1/x.ipk', {}, 'PKG_DOWNLOAD_PROTOCOL', 9013);
  await refused(t, env, 'http://127.0.0.1:1/x.ipk', {}, 'PKG_DOWNLOAD_UNREACHABLE', 9015);
  const history = new History(env.state).read().entries;
  t.same(history.map((e) => e.CurrentState), history.map(() => 'Failed'), 'every refusal is in the history');
  t.equal(history.length, 9);
});

t.test('a state directory on LOWER\'s own filesystem (bee: /) works: the layer is the upper of an inner overlay', { skip: statSync('/tmp').dev !== statSync('/').dev && '/tmp is not on the root filesystem' }, async (t) => {
  const env = makeDuEnv(t);
  // env.dir is in /tmp, on the root filesystem here, below bee's LOWER /: overlayfs would
  // refuse the layer as a lower layer (ELOOP); it is mounted as an inner overlay's upper.
  const state = path.join(env.dir, 'state-on-root');
  const config = { ...env.config, paths: { ...env.config.paths, state } };
  t.teardown(() => stopEverySubhostOf(state));
  const out = await installDU({ config, source: buildDu(env, { name: 'onroot' }) });
  t.equal(out.entry.CurrentState, 'Installed', String(out.error ?? ''));
  const name = out.entry.Subhost;
  const seen = runInside(name, ['cat', '/usr/share/onroot/hello']);
  t.equal(seen.stdout, 'hello from onroot\n', 'the package\'s file is seen inside');
  t.equal(runInside(name, ['cat', '/etc/hostname']).status, 0, 'and the host\'s root beneath it');
  const removed = await uninstallDU({ config, du: name });
  t.equal(removed.entry.CurrentState, 'Uninstalled', String(removed.error ?? ''));
  t.same(readdirSync(state).sort(), ['history.jsonl', 'journal.json', 'lock']);
});
