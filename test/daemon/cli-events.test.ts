// overlay-pkg events: a second terminal watching a real daemon while another client
// installs, stops, starts, updates and removes a DU; every state change is one line, the
// same in --json, and SIGTERM ends the watch with 0. Without a daemon it fails at once,
// saying why. As root, under the root lock.
import t, { type Test } from 'tap';
import type { ChildProcess } from 'node:child_process';
import { main } from '../../src/cli/pkg.js';
import { capture } from '../helpers/cli.js';
import { buildDu, makeDuEnv, serviceScript } from '../helpers/du.js';
import { uniqueName } from '../helpers/subhost.js';
import { srcModule, startChild } from '../lifecycle/child.js';
import { socketIni, writeTestIni } from './cli-helpers.js';
import { startDaemon, tempDir, until } from './helpers.js';

const PKG = `import { main } from ${srcModule('cli/pkg.ts')}; import { runMain } from ${srcModule('cli/io.ts')}; runMain(main);`;

interface Watch { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> }

/** `overlay-pkg --config INI events ARGS` in a child process, killed at the end of `t` if still there. */
function watch(t: Test, ini: string, args: string[] = []): Watch {
  // runMain reads process.argv from index 2; in a node -e child the arguments start at 1
  const child = startChild(PKG, ['overlay-pkg', '--config', ini, 'events', ...args]);
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, 'SIGKILL'); });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return { child, out: () => out, err: () => err, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

t.test('a second terminal sees every state change of operations another client makes', async (t) => {
  const env = makeDuEnv(t);
  const { socket, ini } = socketIni(env);
  const d = await startDaemon(t, { config: env.config, dir: env.dir, socketPath: socket });
  const text = watch(t, ini);
  const json = watch(t, ini, ['--json']);
  t.ok(await until(() => d.daemon.subscriberCount === 2, 30_000), 'both watchers subscribed');

  const name = uniqueName('ev');
  const eu = `${name}/svc`;
  const pkg = (version: string) => buildDu(env, { name: 'evdemo', version, data: { 'etc/init.d/svc': serviceScript(`ev${name}`) } });
  const client = { ...process.env, OVERLAY_PKG_CONFIG: ini };
  for (const args of [['install', pkg('1.0'), '--name', name], ['stop', eu], ['start', eu], ['update', name, pkg('2.0')], ['remove', name]]) {
    const io = capture(client);
    t.equal(await main(args, io), 0, `${args[0]}: ${io.err}`);
  }
  const ops = 5;
  t.ok(await until(() => (text.out().match(/ operation\.complete /g) ?? []).length === ops && (json.out().match(/"operation\.complete"/g) ?? []).length === ops, 30_000), 'both saw every completion');

  const lines = text.out().trimEnd().split('\n');
  const at = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
  t.ok(lines.every((l) => at.test(l)), 'each line starts with the time');
  const shown = lines.map((l) => l.replace(at, '').replace(/ op \d+$/, ''));
  // the operations' lines in order (progress and transient lines between them may vary)
  const expected = [
    `operation.start du.install ${name} Running`,
    `du.statechange ${name} Installed`,
    `operation.complete du.install ${name} Installed`,
    `operation.start eu.stop ${eu} Running`,
    `eu.statechange ${eu} Idle`,
    `operation.complete eu.stop ${eu} Installed`,
    `operation.start eu.start ${eu} Running`,
    `eu.statechange ${eu} Active`,
    `operation.complete eu.start ${eu} Installed`,
    `operation.start du.update ${name} Running`,
    `du.statechange ${name} Installed`,
    `operation.complete du.update ${name} Installed`,
    `operation.start du.uninstall ${name} Running`,
    `du.statechange ${name} Uninstalled`,
    `operation.complete du.uninstall ${name} Uninstalled`,
  ];
  let from = 0;
  for (const e of expected) {
    const i = shown.indexOf(e, from);
    t.ok(i >= 0, `seen in order: ${e}`);
    if (i >= 0) from = i + 1;
  }
  t.ok(shown.some((l) => l === `du.statechange ${name} Installing`), 'the transient Installing too');
  const ids = new Set(lines.map((l) => / op (\d+)$/.exec(l)?.[1]).filter((x) => x !== undefined));
  t.equal(ids.size, ops, 'every line names one of the five operations');

  const parsed = json.out().trimEnd().split('\n').map((l) => JSON.parse(l) as { time: string; event: string; params: Record<string, unknown> });
  t.same(parsed.map((p) => p.event), lines.map((l) => l.replace(at, '').split(' ')[0]), '--json: the same events, one object a line');
  t.match(parsed.find((p) => p.event === 'operation.complete'), { params: { method: 'du.install', result: { changed: true, Subhost: name } } });

  process.kill(text.child.pid!, 'SIGTERM');
  process.kill(json.child.pid!, 'SIGINT');
  t.equal(await text.exited, 0, `SIGTERM: exit 0 ${text.err()}`);
  t.equal(await json.exited, 0, 'SIGINT: exit 0');
  t.equal(text.err(), '');
});

t.test('no daemon: exit 1 at once, saying so', async (t) => {
  const dir = tempDir(t);
  const { ini } = writeTestIni(dir);
  const io = capture({ ...process.env, OVERLAY_PKG_CONFIG: ini });
  t.equal(await main(['events'], io), 1);
  t.match(io.err, /^overlay-pkg: .*pkgd\.sock: no overlay-pkgd answers on this socket: events come from the daemon .*\[PKG_DAEMON_UNAVAILABLE\]\n$/);
  t.equal(io.out, '');
});

t.test('the daemon stops under a watcher: exit 1, saying so', async (t) => {
  const dir = tempDir(t);
  const { config, ini } = writeTestIni(dir);
  const d = await startDaemon(t, { config, dir });
  const w = watch(t, ini);
  t.ok(await until(() => d.daemon.subscriberCount === 1, 30_000), 'subscribed');
  await d.daemon.close();
  t.equal(await w.exited, 1);
  t.match(w.err(), /PKG_DAEMON_UNAVAILABLE/);
});
