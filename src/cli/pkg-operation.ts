/**
 * How overlay-pkg runs an operation (install, update, remove, start, stop, restart) and
 * prints its outcome. Through overlay-pkgd when it runs, so that they are in its queue and every agent watching its
 * events sees them: the request is submitted, and the command waits for the operation's
 * end with `operation.get` (it does not subscribe to the events: a subscription would
 * take the completions the daemon keeps for a management agent that is away), over a new
 * connection when the daemon restarted meanwhile. Else with the library here. Either
 * way the outcome is the JSON `--json` prints (src/daemon/results.ts builds it for
 * both), and the text is made from that JSON, so both print the same.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PkgDaemonClient } from '../daemon/client.js';
import { RpcError } from '../daemon/jsonrpc.js';
import type { OperationComplete, QueuedMethod } from '../daemon/queue.js';
import { ERROR_CODES, OverlayBootError, type ErrorCode } from '../errors.js';
import type { Fault } from '../lifecycle/faults.js';
import type { HistoryEntry } from '../lifecycle/history.js';
import { flagOption, printJSON, stringOption, UsageError, type PkgContext } from './pkg-command.js';
import { DAEMON_ANSWER_MS, linkDaemon } from './pkg-daemon.js';

const TOOL = 'overlay-pkg';

/** How long the command keeps trying to reach a daemon that went away while its operation was queued. */
export const RECONNECT_MS = 60_000;

/** Longest pause between two `operation.get`. */
const MAX_POLL_MS = 200;

/** A package source as the library and the daemon take it: a URL as given, a file path made absolute (the daemon's working directory is not ours). */
export function absoluteSource(source: string): string {
  return /^[A-Za-z][A-Za-z0-9+.-]*:/.test(source) ? source : path.resolve(source);
}

/** `--username` and the password of `--password-file FILE` (`-`: standard input), one trailing newline dropped; never from the command line itself. */
export function credentials(ctx: PkgContext): { username?: string; password?: string } {
  const username = stringOption(ctx, 'username');
  const file = stringOption(ctx, 'password-file');
  if (file === undefined) return username === undefined ? {} : { username };
  if (username === undefined) throw new UsageError('--password-file needs --username');
  let password: string;
  try {
    password = readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (e) {
    throw new UsageError(`cannot read the password file ${file}: ${(e as Error).message}`);
  }
  return { username, password };
}

/** The error a command alone would have thrown, from a completion without a result (its Fault says `CODE: message`). */
export function completionError(f: Fault | null): Error {
  const m = /^([A-Z][A-Z0-9_]*): ([^]*)$/.exec(f?.FaultString ?? '');
  if (m && Object.prototype.hasOwnProperty.call(ERROR_CODES, m[1]!)) return new OverlayBootError(m[1] as ErrorCode, m[2]!);
  return new Error(f ? `fault ${f.FaultCode}: ${f.FaultString}` : 'the operation ended without an outcome');
}

interface Got {
  status: string;
  complete?: OperationComplete;
}

async function pollUntilDone(ctx: PkgContext, first: PkgDaemonClient, operationId: number): Promise<OperationComplete> {
  let client: PkgDaemonClient | undefined = first;
  let pause = 5;
  let lostSince: number | undefined;
  try {
    for (;;) {
      if (client) {
        try {
          const got = await client.call<Got>('operation.get', { operationId });
          if (got.status === 'done' && got.complete) return got.complete;
          lostSince = undefined;
        } catch (e) {
          // an answer that is an error (the daemon forgot it, after 1000 more) will not change
          if (e instanceof RpcError) throw e;
          client.close();
          client = undefined;
          lostSince ??= Date.now();
        }
      } else {
        try {
          client = await PkgDaemonClient.connect(ctx.config.paths.socket, { connectTimeoutMs: DAEMON_ANSWER_MS });
          continue;
        } catch (e) {
          if (Date.now() - (lostSince ?? Date.now()) > RECONNECT_MS) {
            throw new OverlayBootError('PKG_DAEMON_UNAVAILABLE', `the daemon went away while operation ${operationId} was queued or running; see overlay-pkg history for its outcome`, { file: ctx.config.paths.socket, cause: e });
          }
        }
      }
      await sleep(pause);
      pause = Math.min(MAX_POLL_MS, pause * 1.5);
    }
  } finally {
    client?.close();
  }
}

/**
 * Runs `method` with `params` through the daemon and returns its completion; undefined
 * when no daemon answers, it lacks the method, or it refuses to queue the request (then
 * the library alone runs it and reports why, exactly as without a daemon).
 */
export async function runThroughDaemon(ctx: PkgContext, method: QueuedMethod, params: Record<string, unknown>): Promise<OperationComplete | undefined> {
  const link = await linkDaemon(ctx);
  if (!link) return undefined;
  if (!link.methods.has(method) || !link.methods.has('operation.get')) {
    link.client.close();
    return undefined;
  }
  let operationId: number;
  try {
    // no timeout: once sent, the request may be queued, and must not run twice
    ({ operationId } = await link.client.call<{ operationId: number }>(method, params));
  } catch (e) {
    link.client.close();
    if (e instanceof RpcError) return undefined;
    throw e;
  }
  return pollUntilDone(ctx, link.client, operationId);
}

/** An operation's outcome as the commands print it. */
export interface Outcome {
  /** What `--json` prints. */
  json: Record<string, unknown>;
  /** The library's warnings (run here only: the daemon logs its own). */
  warnings?: string[];
  /** An operation a crash had left, finished or undone first (run here only: the daemon recovers when it starts). */
  recovered?: HistoryEntry;
}

/** Runs `method` through the daemon when one answers, else `alone()` with the library. */
export async function performOperation(ctx: PkgContext, method: QueuedMethod, params: Record<string, unknown>, alone: () => Promise<Outcome>): Promise<Outcome> {
  const complete = await runThroughDaemon(ctx, method, params);
  if (!complete) return alone();
  if (complete.result === null) throw completionError(complete.Fault);
  return { json: complete.result };
}

/** Says on stderr that a crash's operation was recovered first. */
export function printRecovered(ctx: PkgContext, recovered: HistoryEntry | undefined): void {
  if (recovered) ctx.io.stderr(`${TOOL}: recovered operation ${recovered.id} (${recovered.OperationPerformed} ${recovered.Subhost}) left by a crash: ${recovered.CurrentState}\n`);
}

/**
 * Prints an outcome: warnings and recovery on stderr; `--json`'s object, or when `ok`
 * the line(s) of `text` (nothing when it gives undefined); the fault on stderr when not
 * `ok`. Returns the exit status: 0 when `ok`, else 1.
 */
export function printOutcome(ctx: PkgContext, out: Outcome, ok: boolean, text: (json: Record<string, unknown>) => string | undefined): number {
  for (const w of out.warnings ?? []) ctx.io.stderr(`${TOOL}: warning: ${w}\n`);
  printRecovered(ctx, out.recovered);
  if (flagOption(ctx, 'json')) printJSON(ctx, out.json);
  else if (ok) {
    const t = text(out.json);
    if (t !== undefined) ctx.io.stdout(t);
  }
  const f = out.json.Fault as Fault | undefined;
  if (!ok && f) ctx.io.stderr(`${TOOL}: fault ${f.FaultCode}: ${f.FaultString}\n`);
  return ok ? 0 : 1;
}
