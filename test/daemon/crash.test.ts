// SIGKILL of the daemon (a process of its own) while it installs a package submitted by
// RPC, at 20 moments: each of the install's crash points (OVERLAY_PKG_CRASH_AT, in the
// daemon, which runs the library in process) and seeded random delays within an
// undisturbed install's duration. Then a new daemon: it recovers the operation, marks it
// done with its real outcome and delivers its operation.complete to its first subscriber
// (unless the killed one had delivered it already), then runs the operation queued
// behind it; du.list matches the disk; nothing leaked (journal, trash, temp files, secrets, staging subhost, the DU's subhost when not
// installed). As root, under the root lock.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import t, { type Test } from 'tap';
import { queueDir } from '../../src/daemon/queue.js';
import { CRASH_ENV } from '../../src/lifecycle/crash.js';
import { isTempName } from '../../src/lifecycle/durable.js';
import { DuStore, type DuRecord } from '../../src/lifecycle/store.js';
import { isRunning, uninstallDU } from '../../src/lifecycle/uninstall.js';
import { buildDu, makeDuEnv, serviceScript, type DuEnv } from '../helpers/du.js';
import { snapshotHost } from '../helpers/host.js';
import { uniqueName } from '../helpers/subhost.js';
import { bundleDaemon, startDaemonProcess, type DaemonProcess } from './daemon-process.js';
import { Client } from './helpers.js';
import { completion, completions, submit, subscriber } from './ops-helpers.js';

const SEED = Number(process.env.CRASH_SEED ?? 0x0d1e5eed);
const POINTS = ['unit', 'staged', 'staging-booted', 'scripts', 'boot-list', 'boot-listed', 'recorded', 'committed'];
const RUNS = 20;

/** The seeded moment of run `i`, a fraction in [0, 1): replayable with CRASH_SEED. */
function seeded(i: number): number {
  return createHash('sha256').update(`${SEED}:${i}`).digest().readUInt32BE(0) / 2 ** 32;
}

/** Every path below `dir` (relative). */
function walk(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String) : [];
}

/** The state on disk matches du.list and what runs; nothing of an operation is left. */
async function consistent(t: Test, env: DuEnv, c: Client, name: string): Promise<DuRecord | undefined> {
  const listed = (await c.call('du.list')).result as DuRecord[];
  const record = new DuStore(env.state).get(name);
  t.same(listed.map((r) => r.Subhost), record ? [name] : [], 'du.list is what the records on disk say');
  const journal = JSON.parse(readFileSync(path.join(env.state, 'journal.json'), 'utf8')) as { operation: unknown };
  t.equal(journal.operation, null, 'the journal is empty');
  t.notOk(existsSync(path.join(env.state, 'trash')) || existsSync(path.join(env.state, 'download')), 'no trash, no download');
  t.same(walk(env.state).filter((p) => isTempName(path.basename(p)) || p.endsWith('.secret')), [], 'no temp or secret file');
  const unitDir = path.join(env.state, 'units', name);
  const booted = existsSync(env.bootList) && readFileSync(env.bootList, 'utf8').includes(`/${name}.conf`);
  t.same([existsSync(unitDir), booted, isRunning(name, '/run/overlay-boot')], record ? [true, true, true] : [false, false, false],
    `unit dir, boot-list line, subhost running: as the record says (${record ? 'installed' : 'not installed'})`);
  if (record) t.same(readdirSync(unitDir).filter((f) => /^(layer|stage)-/.test(f)), [path.basename(record.layer)], 'one layer, the record\'s');
  else t.same(Object.values(snapshotHost({ names: [name] })).flat(), [], 'nothing of the DU\'s subhost is left');
  t.same(Object.values(snapshotHost({ names: ['stg'] })).flat(), [], 'no staging subhost is left');
  return record;
}

t.test(`the daemon SIGKILLed mid-install at ${RUNS} moments (seed ${SEED}), restarted: recovered, completion delivered`, async (t) => {
  const env = makeDuEnv(t);
  const bundle = await bundleDaemon(t);
  const socket = path.join(env.dir, 'pkgd.sock');
  const logFile = path.join(env.dir, 'daemon.log');
  const name = uniqueName('dk');
  const pkg = buildDu(env, {
    name: 'killme', version: '1.0',
    data: { 'etc/init.d/svc': serviceScript(`${name}svc`) },
    scripts: { postinst: '#!/bin/sh\necho configured > /var/lib/killme-configured\n' },
  });
  const start = (crashAt?: string): Promise<DaemonProcess> => {
    const childEnv = { ...process.env };
    delete childEnv[CRASH_ENV];
    if (crashAt !== undefined) childEnv[CRASH_ENV] = crashAt;
    return startDaemonProcess(t, bundle, env.configFile, socket, childEnv, logFile);
  };
  const stop = async (d: DaemonProcess) => {
    if (d.child.exitCode === null && d.child.signalCode === null) d.child.kill('SIGTERM');
    await d.exited;
  };
  const remove = async () => {
    if (!new DuStore(env.state).get(name)) return;
    const r = await uninstallDU({ config: env.config, du: name });
    t.equal(r.entry.CurrentState, 'Uninstalled', `set-up remove: ${JSON.stringify(r.entry.Fault)}`);
  };

  // undisturbed: how long an install takes, from the answer to its completion
  let d = await start();
  let c = await subscriber(t, socket);
  const began = Date.now();
  const first = await submit(t, c, 'du.install', { url: pkg, name });
  t.match(await completion(c, first), { CurrentState: 'Installed' }, 'an undisturbed install succeeds');
  const duration = Date.now() - began;
  await consistent(t, env, c, name);
  c.end();
  await stop(d);

  const outcomes: Record<string, number> = {};
  for (let i = 0; i < RUNS; i++) {
    await remove();
    const point = POINTS[i];
    const delay = point === undefined ? Math.floor(seeded(i) * duration) : undefined;
    const moment = point === undefined ? `${delay} ms` : `crash point ${point}`;
    d = await start(point);
    c = await subscriber(t, socket);
    const id = await submit(t, c, 'du.install', { url: pkg, name });
    // queued behind it: runs after the restart (when the kill came first)
    const next = await submit(t, c, 'du.uninstall', { du: `no${name}` });
    const timer = delay === undefined ? undefined : setTimeout(() => d.child.kill('SIGKILL'), delay);
    const safety = setTimeout(() => d.child.kill('SIGKILL'), 60_000);
    const ended = await d.exited;
    clearTimeout(timer);
    clearTimeout(safety);
    if (point !== undefined) t.equal(ended.signal, 'SIGKILL', `run ${i}: the daemon killed itself at ${point}`);
    const before = completions(c).filter((x) => x.operationId === id);
    const nextBefore = completions(c).find((x) => x.operationId === next);
    c.end();

    d = await start();
    c = await subscriber(t, socket);
    // recovery may still run: the completion comes when it ends (again only if the kill came before it was marked delivered)
    const after = before.length > 0 ? completions(c).find((x) => x.operationId === id) : await completion(c, id);
    const got = (await c.call('operation.get', { operationId: id })).result as { status?: string; complete?: Record<string, unknown> };
    const final = got.complete;
    t.equal(got.status, 'done', `run ${i} (${moment}): operation ${id} is done after the restart`);
    t.ok(before.length + (after ? 1 : 0) >= 1, `run ${i}: its operation.complete was delivered (${before.length ? 'before the kill' : 'by the new daemon'})`);
    if (after) t.same(after, final, 'the delivered completion is operation.get\'s');
    const queued = nextBefore ?? await completion(c, next);
    // It ran to its refusal (9028, unknown DU), or the kill came while it ran, after the
    // install had ended: then it is reported, not retried (9001, nothing changed).
    const killedWhileQueuedRan = before.length > 0 && nextBefore === undefined && (queued?.Fault as { FaultCode?: number } | undefined)?.FaultCode === 9001;
    t.match(queued, { operationId: next, CurrentState: 'Failed', Fault: { FaultCode: killedWhileQueuedRan ? 9001 : 9028 } },
      `the operation queued behind it ran too (after the restart when the kill came first)${killedWhileQueuedRan ? ': killed while it ran, reported and not retried' : ''}`);
    const record = await consistent(t, env, c, name);
    const state = final?.CurrentState as string | undefined;
    t.equal(state, record ? 'Installed' : 'Failed', `run ${i}: the outcome (${state}) is what is on disk`);
    outcomes[String(state)] = (outcomes[String(state)] ?? 0) + 1;
    t.same(readdirSync(queueDir(env.state)).filter((f) => f.endsWith('.secret')), [], 'no secret left in the queue');
    c.end();
    await stop(d);
  }
  t.comment(`outcomes: ${JSON.stringify(outcomes)}`);
  t.ok((outcomes.Failed ?? 0) > 0 && (outcomes.Installed ?? 0) > 0, 'some installs were undone, some finished');
  await remove();
});
