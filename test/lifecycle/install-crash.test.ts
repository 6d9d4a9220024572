// Crash safety of install and remove: a child overlay-pkg SIGKILLs itself at a chosen
// point (OVERLAY_PKG_CRASH_AT), then one more command (list) recovers, and the DU is
// either fully there (record, unit, boot-list line, running subhost) or fully gone.
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installDU } from '../../src/lifecycle/install.js';
import { uninstallDU } from '../../src/lifecycle/uninstall.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { History } from '../../src/lifecycle/history.js';
import { list as listSubhosts } from '../../src/commands/list.js';
import { buildDu, makeDuEnv, serviceScript, type DuEnv } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';

const LOADER = fileURLToPath(new URL('../../node_modules/@tapjs/typescript/dist/esm/import.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../src/cli/pkg.ts', import.meta.url));
const IO = fileURLToPath(new URL('../../src/cli/io.ts', import.meta.url));

/** overlay-pkg ARGS in a child process (from the sources), crashing at `crashAt` when given. */
function overlayPkg(env: DuEnv, args: string[], crashAt?: string): ReturnType<typeof spawnSync> {
  const code = `import { main } from ${JSON.stringify(CLI)}; import { runMain } from ${JSON.stringify(IO)}; runMain(main);`;
  return spawnSync(process.execPath, ['--import', LOADER, '--input-type=module', '-e', code, '--', 'overlay-pkg', ...args], {
    encoding: 'utf8', timeout: 60_000, env: { ...env.env, ...(crashAt ? { OVERLAY_PKG_CRASH_AT: crashAt } : {}) },
  });
}

/** Whether DU `name` is wholly installed (true), wholly absent (false), or neither (throws, via t). */
function duState(t: Test, env: DuEnv, name: string): boolean {
  const record = new DuStore(env.state).get(name);
  const unit = existsSync(path.join(env.state, 'units', name));
  const listed = existsSync(env.bootList) && readFileSync(env.bootList, 'utf8').includes(`/${name}.conf`);
  const running = listSubhosts().filter((s) => s.state === 'running').map((s) => s.name);
  const staging = running.filter((n) => /^stg[0-9a-z]{5}$/.test(n));
  t.same(staging, [], 'no staging subhost runs');
  const journal = JSON.parse(readFileSync(path.join(env.state, 'journal.json'), 'utf8')) as { operation: unknown };
  t.equal(journal.operation, null, 'the journal is empty');
  t.notOk(existsSync(path.join(env.state, 'trash')), 'no trash');
  const parts = [record !== undefined, unit, listed, running.includes(name)];
  t.ok(parts.every(Boolean) || parts.every((p) => !p), `record, unit, boot-list line, running all or none: ${parts.join(' ')}`);
  return parts[0]!;
}

const ONLY = process.env.CRASH_POINTS?.split(',');
const INSTALL_POINTS = ONLY ?? ['unit', 'staged', 'staging', 'staging-booted', 'scripts', 'boot-list', 'boot-listed', 'recorded', 'committed'];

t.test('install killed at each step, then one command: the DU is wholly there or wholly gone', async (t) => {
  for (const point of INSTALL_POINTS) {
    await t.test(point, async (t) => {
      const env = makeDuEnv(t);
      const name = uniqueName('ci');
      const file = buildDu(env, {
        name: 'crashy', data: { 'etc/init.d/svc': serviceScript('svc') },
        scripts: { postinst: '#!/bin/sh\necho done > /var/lib/crashy-configured\n' },
      });
      const r = overlayPkg(env, ['install', file, '--name', name], point);
      t.equal(r.signal, 'SIGKILL', `killed at ${point}: ${r.stderr}`);
      const l = overlayPkg(env, ['list', '--json']);
      t.equal(l.status, 0, String(l.stderr));
      const installed = duState(t, env, name);
      t.equal(installed, point === 'committed', point === 'committed' ? 'rolled forward' : 'rolled back');
      const last = new History(env.state).read().entries.at(-1);
      t.match(last, { recovered: true, CurrentState: installed ? 'Installed' : 'Failed' });
      if (installed) {
        const rm = await uninstallDU({ config: env.config, du: name });
        t.equal(rm.entry.CurrentState, 'Uninstalled');
      }
      t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
    });
  }
});

const REMOVE_POINTS = ONLY ?? ['eus-stopped', 'stopping', 'trashed', 'boot-list', 'unrecorded', 'committed'];

t.test('remove killed at each step, then one command: the DU is wholly there or wholly gone', async (t) => {
  for (const point of REMOVE_POINTS) {
    await t.test(point, async (t) => {
      const env = makeDuEnv(t);
      const name = uniqueName('cr');
      const file = buildDu(env, { name: 'crashy', data: { 'etc/init.d/svc': serviceScript('svc') }, scripts: { prerm: '#!/bin/sh\nexit 0\n' } });
      const ins = await installDU({ config: env.config, source: file, name });
      t.equal(ins.entry.CurrentState, 'Installed', JSON.stringify(ins.entry.Fault));
      const r = overlayPkg(env, ['remove', name], point);
      t.equal(r.signal, 'SIGKILL', `killed at ${point}: ${r.stderr}`);
      const l = overlayPkg(env, ['list']);
      t.equal(l.status, 0, String(l.stderr));
      const installed = duState(t, env, name);
      t.equal(installed, point !== 'committed', point === 'committed' ? 'rolled forward' : 'rolled back');
      if (installed) {
        const eus = new DuStore(env.state).get(name)!.EUs;
        t.same(eus.map((e) => e.Status), ['Active'], 'its EU is Active again');
        const rm = await uninstallDU({ config: env.config, du: name });
        t.equal(rm.entry.CurrentState, 'Uninstalled');
      }
      t.same(readdirSync(env.state).sort(), ['history.jsonl', 'journal.json', 'lock']);
    });
  }
});
