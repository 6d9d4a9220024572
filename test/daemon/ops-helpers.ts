// What the tests of the queued operations share: a daemon of the library over a
// lifecycle world (test/helpers/du.ts), a subscriber, and waiting for an operation's end.
import path from 'node:path';
import type { Test } from 'tap';
import { buildDu, makeDuEnv, serviceScript, type DuEnv } from '../helpers/du.js';
import { Client, startDaemon, type Message, type TestDaemon } from './helpers.js';

/** A daemon in process over a fresh lifecycle world, its socket in the world's directory. */
export async function opsDaemon(t: Test, env: DuEnv = makeDuEnv(t)): Promise<TestDaemon & { env: DuEnv }> {
  const d = await startDaemon(t, { config: env.config, dir: env.dir, socketPath: path.join(env.dir, 'pkgd.sock') });
  return { ...d, env };
}

/** A client that subscribed to the events. */
export async function subscriber(t: Test, socket: string): Promise<Client> {
  const c = await Client.connect(t, socket);
  const r = await c.call('events.subscribe');
  t.same(r.result, { subscribed: true }, 'subscribed');
  return c;
}

/** Submits `method` and returns its operationId (failing the test when it is refused). */
export async function submit(t: Test, c: Client, method: string, params: Record<string, unknown>): Promise<number> {
  const r = await c.call(method, params);
  const id = (r.result as { operationId?: unknown } | undefined)?.operationId;
  if (typeof id !== 'number') t.fail(`${method} answered ${JSON.stringify(r)}`);
  return id as number;
}

/** The operation.complete notifications `c` received. */
export function completions(c: Client): Array<Record<string, unknown>> {
  return c.received.filter((m) => m.method === 'operation.complete').map((m) => m.params as Record<string, unknown>);
}

/** Waits (at most `ms`) for the operation.complete of `id` on subscriber `c`; its params. */
export async function completion(c: Client, id: number, ms = 60_000): Promise<Record<string, unknown> | undefined> {
  const m = await c.waitFor((x: Message) => x.method === 'operation.complete' && (x.params as { operationId?: unknown }).operationId === id, ms);
  return m?.params as Record<string, unknown> | undefined;
}

/** A signed package of version `version` with one service `svc` (AutoStart EU). */
export function servicePackage(env: DuEnv, name: string, version: string): string {
  return buildDu(env, { name, version, data: { 'etc/init.d/svc': serviceScript(`${name}svc`), [`usr/share/${name}/version`]: `${version}\n` } });
}
