// EU requests on a DU installed for real (signed ipk, its own subhost): start, stop and
// restart through the library, overlay-pkg's main() and bin/overlay-pkg.js as a process;
// no-ops, failures with their ExecutionFaultCode, a service that dies, a subhost that
// does not run, and recovery after a SIGKILL in the middle of a start.
import { spawnSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { main } from '../../src/cli/pkg.js';
import { boot } from '../../src/commands/boot.js';
import { stopByName } from '../../src/commands/stop.js';
import { list as listSubhosts } from '../../src/commands/list.js';
import { euRestart, euStart, euStop, listEUs } from '../../src/lifecycle/eu-ops.js';
import { euLiveStatus } from '../../src/lifecycle/eu.js';
import type { LifecycleEvents } from '../../src/lifecycle/events.js';
import { History } from '../../src/lifecycle/history.js';
import { installDU } from '../../src/lifecycle/install.js';
import { Journal } from '../../src/lifecycle/journal.js';
import { DuStore } from '../../src/lifecycle/store.js';
import { capture } from '../helpers/cli.js';
import { buildDu, makeDuEnv, runInside, serviceScript, writeTemplate, type DuEnv } from '../helpers/du.js';
import { makeBusyboxRoot } from '../helpers/rootfs.js';
import { uniqueName } from '../helpers/subhost.js';

const BIN = fileURLToPath(new URL('../../bin/overlay-pkg.js', import.meta.url));

/** Installs a DU `name` with EUs svc and web (real services), liar (start says 0, never runs); starts them when `start`. */
async function installDemo(t: Test, env: DuEnv, name: string, start = false): Promise<void> {
  const file = buildDu(env, {
    name,
    data: {
      'etc/init.d/svc': serviceScript('svc'),
      'etc/init.d/web': serviceScript('web'),
      'etc/init.d/liar': { mode: 0o755, content: '#!/bin/sh\ncase "$1" in status) exit 3;; esac\nexit 0\n' },
    },
  });
  // A busybox LOWER of its own: with LOWER=/ the kernel refuses a layer below / on the
  // same filesystem as an overlapping lower layer (ELOOP), which the bee EE hits here.
  const lower = makeBusyboxRoot(path.join(env.dir, 'lower'));
  writeTemplate(env, 'bbx', [`LOWER=${lower}`, 'START=none']);
  const out = await installDU({ config: env.config, source: file, name, ee: 'bbx', start });
  t.equal(out.entry.CurrentState, 'Installed', JSON.stringify(out.entry.Fault));
}

async function cli(env: DuEnv, argv: string[]): Promise<{ code: number; json: Record<string, unknown>; err: string }> {
  const io = capture({ OVERLAY_PKG_CONFIG: env.configFile });
  const code = await main(argv, io);
  return { code, json: io.out.startsWith('{') ? JSON.parse(io.out) : {}, err: io.err };
}

const statusOf = async (env: DuEnv, euid: string) => (await listEUs(env.state)).ExecutionUnit.find((e) => e.EUID === euid);

t.test('start, stop, restart through the library', async (t) => {
  const env = makeDuEnv(t);
  const du = uniqueName('eo');
  await installDemo(t, env, du);
  const store = new DuStore(env.state);
  const eus = await listEUs(env.state);
  t.same(eus.ExecutionUnit.map((e) => [e.EUID, e.Status, e.AutoStart, e.ExecutionFaultCode, e.Subhost]), [
    [`${du}/liar`, 'Idle', true, 'NoFault', du], [`${du}/svc`, 'Idle', true, 'NoFault', du], [`${du}/web`, 'Idle', true, 'NoFault', du],
  ], 'install --no-start: the subhost booted without its AutoStart EUs');

  const started = await euStart({ config: env.config, euid: `${du}/svc` });
  t.equal(started.entry.CurrentState, 'Installed', JSON.stringify(started.entry.Fault));
  t.equal(started.entry.OperationPerformed, 'EUStart');
  t.match(started, { changed: true, eu: { Status: 'Active', ExecutionFaultCode: 'NoFault' } });
  t.equal(await euLiveStatus(du, store.get(du)!.EUs.find((e) => e.Name === 'svc')!), 'Active', 'the service runs inside');
  t.match(await euStart({ config: env.config, euid: `${du}/svc` }), { changed: false, eu: { Status: 'Active' } }, 'start of an Active EU: no-op');

  t.match(await euStop({ config: env.config, euid: `${du}/svc` }), { changed: true, eu: { Status: 'Idle', ExecutionFaultCode: 'NoFault' } });
  t.equal((await statusOf(env, `${du}/svc`))?.Status, 'Idle');
  const again = await euStop({ config: env.config, euid: `${du}/svc` });
  t.match(again, { changed: false, eu: { Status: 'Idle' } }, 'stop of an Idle EU: no-op');
  t.equal(again.entry.CurrentState, 'Installed');

  t.match(await euRestart({ config: env.config, euid: `${du}/web` }), { changed: true, eu: { Status: 'Active' } }, 'restart of an Idle EU starts it');
  const pid = runInside(du, ['cat', '/run/web.pid']).stdout.trim();
  t.match(await euRestart({ config: env.config, euid: `${du}/web` }), { changed: true, eu: { Status: 'Active' } }, 'restart of an Active one');
  t.not(runInside(du, ['cat', '/run/web.pid']).stdout.trim(), pid, 'a new process');

  // Events: the EU's transient and final Status, and the finished operation.
  const events = new EventEmitter() as LifecycleEvents;
  const seen: string[] = [];
  events.on('eu.status', (e) => seen.push(`${e.EUID} ${e.Status} ${e.ExecutionFaultCode}`));
  events.on('operation.complete', (e) => seen.push(`${e.OperationPerformed} ${e.CurrentState}`));
  await euStop({ config: env.config, euid: `${du}/web`, events });
  t.same(seen, [`${du}/web Stopping NoFault`, `${du}/web Idle NoFault`, 'EUStop Installed']);

  // A record that says Stopping (as during a stop) refuses a start: 9029.
  const rec = store.get(du)!;
  store.put({ ...rec, EUs: rec.EUs.map((e) => (e.Name === 'web' ? { ...e, Status: 'Stopping' as const } : e)) });
  const refused = await euStart({ config: env.config, euid: `${du}/web` });
  t.equal(refused.entry.Fault?.FaultCode, 9029, 'start while Stopping: 9029');
  t.match(refused.entry.Fault?.FaultString, /PKG_EU_STATE/);
  t.match(refused, { changed: false, eu: { Status: 'Idle' } }, 'the live state recorded after the refusal');
  await euStart({ config: env.config, euid: `${du}/web` });

  const liar = await euStart({ config: env.config, euid: `${du}/liar`, timeoutMs: 1500 });
  t.equal(liar.entry.CurrentState, 'Failed');
  t.equal(liar.entry.Fault?.FaultCode, 9001);
  t.match(liar.entry.Fault?.FaultString, /PKG_EU_FAILED/);
  t.match(liar, { changed: false, eu: { Status: 'Idle', ExecutionFaultCode: 'FailureOnStart' } }, 'a start that never runs: FailureOnStart');
  t.match(store.get(du)!.EUs.find((e) => e.Name === 'liar'), { Status: 'Idle', ExecutionFaultCode: 'FailureOnStart' }, 'recorded');

  const unknownEu = await euStart({ config: env.config, euid: `${du}/nope` });
  t.equal(unknownEu.entry.Fault?.FaultCode, 9003, 'unknown EU: 9003');
  t.match(unknownEu.entry.Fault?.FaultString, /PKG_UNKNOWN_EU/);
  const unknownDu = await euStop({ config: env.config, euid: 'nosuchdu/svc' });
  t.equal(unknownDu.entry.Fault?.FaultCode, 9028, 'unknown DU: 9028');

  // web dies by itself: the list shows it Idle with FailureWhileActive, and a stop records that.
  t.equal(runInside(du, ['/bin/sh', '-c', 'kill "$(cat /run/web.pid)"']).status, 0);
  t.match(await statusOf(env, `${du}/web`), { Status: 'Idle', ExecutionFaultCode: 'FailureWhileActive' });
  t.match(await euStop({ config: env.config, euid: `${du}/web` }), { changed: false, eu: { Status: 'Idle', ExecutionFaultCode: 'FailureWhileActive' } });

  // The subhost stopped: start boots it with this EU only.
  await stopByName(du, { timeoutSeconds: 3 });
  t.equal((await statusOf(env, `${du}/svc`))?.Status, 'Idle', 'Idle while the subhost does not run');
  t.match(await euStart({ config: env.config, euid: `${du}/svc` }), { changed: true, eu: { Status: 'Active' } });
  t.ok(listSubhosts().some((s) => s.name === du && s.state === 'running'), 'the subhost was booted');
  t.equal((await statusOf(env, `${du}/web`))?.Status, 'Idle', 'web (AutoStart) was not started by that boot');
  const history = new History(env.state).read().entries;
  t.ok(history.some((e) => e.Subhost === du && e.CurrentState === 'Failed'), 'the failures are in the history');
});

t.test('overlay-pkg eus/start/stop/restart: main() and bin/overlay-pkg.js', async (t) => {
  const env = makeDuEnv(t);
  const du = uniqueName('ec');
  await installDemo(t, env, du);
  const start = await cli(env, ['start', `${du}/svc`, '--json']);
  t.equal(start.code, 0, start.err);
  t.match(start.json, { changed: true, CurrentState: 'Installed', EUID: `${du}/svc`, Subhost: du, Status: 'Active', ExecutionFaultCode: 'NoFault' });
  t.notOk('Fault' in start.json);
  const stop = await cli(env, ['--json', 'stop', `${du}/web`]);
  t.equal(stop.code, 0);
  t.match(stop.json, { changed: false, Status: 'Idle' });
  const bad = await cli(env, ['start', `${du}/liar`, '--json']);
  // 10 s default timeout: the liar fails within it
  t.equal(bad.code, 1);
  t.match(bad.json, { changed: false, CurrentState: 'Failed', Status: 'Idle', ExecutionFaultCode: 'FailureOnStart', Fault: { FaultCode: 9001 } });
  t.equal((await cli(env, ['start', 'no-slash'])).code, 2, 'an EUID without / is bad usage');
  t.equal((await cli(env, ['start'])).code, 2);
  const unknown = await cli(env, ['stop', `${du}/nope`, '--json']);
  t.equal(unknown.code, 1);
  t.match(unknown.json, { Fault: { FaultCode: 9003 } });

  const run = (args: string[], extra: NodeJS.ProcessEnv = {}) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...env.env, ...extra }, timeout: 60_000 });
  const eus = run(['eus', du, '--json']);
  t.equal(eus.status, 0, eus.stderr);
  t.same(JSON.parse(eus.stdout).ExecutionUnit.map((e: { Name: string; Status: string }) => [e.Name, e.Status]), [['liar', 'Idle'], ['svc', 'Active'], ['web', 'Idle']]);
  const text = run(['eus']);
  t.match(text.stdout, /^EUID\s+STATUS\s+AUTOSTART\s+FAULT\s+SUBHOST\n/);
  t.match(text.stdout, new RegExp(`${du}/liar\\s+Idle\\s+yes\\s+FailureOnStart\\s+${du}`));
  const restart = run(['restart', `${du}/svc`, '--json']);
  t.equal(restart.status, 0, restart.stderr);
  t.match(JSON.parse(restart.stdout), { changed: true, Status: 'Active' });

  // SIGKILL after the journal says "starting": the next command recovers it from the live status.
  const killed = run(['start', `${du}/web`], { OVERLAY_PKG_CRASH_AT: 'starting' });
  t.equal(killed.signal, 'SIGKILL', 'killed where asked');
  t.equal(new Journal(env.state).pending()?.kind, 'eu-start', 'left in flight');
  t.equal(new DuStore(env.state).get(du)!.EUs.find((e) => e.Name === 'web')!.Status, 'Starting', 'the record in its transient state');
  const after = run(['eus', '--json']);
  t.equal(after.status, 0, after.stderr);
  t.match(after.stderr, /recovered operation \d+ \(EUStart /);
  t.equal(new Journal(env.state).pending(), undefined, 'recovered');
  t.match(new DuStore(env.state).get(du)!.EUs.find((e) => e.Name === 'web'), { Status: 'Idle', ExecutionFaultCode: 'FailureOnStart' }, 'the live state recorded');
  t.match(new History(env.state).read().entries.at(-1), { recovered: true, CurrentState: 'Failed' });
});

t.test('AutoStart EUs start with the DU subhost: at install and whenever it boots', async (t) => {
  const env = makeDuEnv(t);
  const du = uniqueName('ea');
  await installDemo(t, env, du, true);
  const shown = async () => (await listEUs(env.state, { du })).ExecutionUnit.map((e) => [e.Name, e.Status, e.ExecutionFaultCode]);
  t.same(await shown(), [['liar', 'Idle', 'FailureOnAutoStart'], ['svc', 'Active', 'NoFault'], ['web', 'Active', 'NoFault']]);
  await stopByName(du, { timeoutSeconds: 3 });
  t.same((await shown()).map((e) => e[1]), ['Idle', 'Idle', 'Idle'], 'all Idle with the subhost stopped');
  await boot(path.join(env.state, 'units', du, `${du}.conf`));
  t.same((await shown()).map((e) => e[1]), ['Idle', 'Active', 'Active'], 'booted again (as at host boot): the AutoStart EUs are back');
});
