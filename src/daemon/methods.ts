/**
 * The daemon's method registry: each method names the params it takes (checked before
 * it runs: a missing, mistyped or unknown param is -32602) and runs with them typed.
 *
 * ```ts
 * daemon.methods.register('du.uninstall', {
 *   params: { du: 'string', retainData: 'boolean?' },
 *   run: async ({ du, retainData }, ctx) => ({ operationId: await queue.add(...) }),
 * });
 * ```
 */
import type { PeerCredentials } from './peer.js';
import { RPC_ERRORS, RpcError } from './jsonrpc.js';

/** The JSON type of one param; a trailing `?` makes it optional. */
export type ParamType = 'string' | 'integer' | 'number' | 'boolean' | 'object';
export type ParamSpec = Record<string, ParamType | `${ParamType}?`>;

type TypeOf<T> = T extends 'string' | 'string?' ? string
  : T extends 'integer' | 'integer?' | 'number' | 'number?' ? number
  : T extends 'boolean' | 'boolean?' ? boolean
  : Record<string, unknown>;
type Optional<S extends ParamSpec> = { [K in keyof S]: S[K] extends `${string}?` ? K : never }[keyof S];

/** The params object a spec describes. */
export type ParamsOf<S extends ParamSpec> =
  { [K in Exclude<keyof S, Optional<S>>]: TypeOf<S[K]> } & { [K in Optional<S>]?: TypeOf<S[K]> };

/** What a method may use besides its params. */
export interface MethodContext {
  /** Who asked (SO_PEERCRED). */
  peer: PeerCredentials;
  /** The asking connection: to subscribe it to events, or send it notifications. */
  connection: RpcConnectionHandle;
}

/** The part of a connection a method may act on. */
export interface RpcConnectionHandle {
  /** A number naming the connection in the log. */
  readonly id: number;
  /** Whether it receives the lifecycle notifications. */
  subscribed: boolean;
  /** Sends a notification now (subject to the output cap). */
  notify(method: string, params: unknown): void;
}

/** One method. */
export interface MethodDefinition<S extends ParamSpec> {
  params: S;
  /** Its result is the response's `result` (undefined is sent as null). Throw RpcError or OverlayBootError to fail. */
  run: (params: ParamsOf<S>, ctx: MethodContext) => unknown;
}

interface Registered {
  params: ParamSpec;
  run: (params: Record<string, unknown>, ctx: MethodContext) => unknown;
}

function typeOk(type: ParamType, v: unknown): boolean {
  switch (type) {
    case 'string': return typeof v === 'string';
    case 'integer': return Number.isSafeInteger(v);
    case 'number': return typeof v === 'number' && Number.isFinite(v);
    case 'boolean': return typeof v === 'boolean';
    case 'object': return v !== null && typeof v === 'object' && !Array.isArray(v);
  }
}

/** Checks `raw` against `spec`; throws RpcError -32602 naming the param. */
export function checkParams<S extends ParamSpec>(method: string, spec: S, raw: Record<string, unknown> | undefined): ParamsOf<S> {
  const given = raw ?? {};
  const bad = (why: string) => new RpcError(RPC_ERRORS.INVALID_PARAMS, `invalid params for ${method}: ${why}`);
  for (const key of Object.keys(given)) {
    if (!Object.prototype.hasOwnProperty.call(spec, key)) {
      throw bad(`unknown param ${JSON.stringify(key)} (takes ${Object.keys(spec).join(', ') || 'none'})`);
    }
  }
  for (const [key, t] of Object.entries(spec)) {
    const optional = t.endsWith('?');
    const type = (optional ? t.slice(0, -1) : t) as ParamType;
    const v = given[key];
    if (v === undefined) {
      if (!optional) throw bad(`${key} is required (${type})`);
      continue;
    }
    if (!typeOk(type, v)) throw bad(`${key} must be ${type === 'integer' ? 'an' : 'a'} ${type}`);
  }
  return given as ParamsOf<S>;
}

/** The methods a daemon answers. */
export class MethodRegistry {
  private readonly methods = new Map<string, Registered>();

  /** Adds `name`; a name already registered is replaced (so an embedder can override a built-in). */
  register<S extends ParamSpec>(name: string, def: MethodDefinition<S>): void {
    if (name.startsWith('rpc.')) throw new RangeError('method names starting with rpc. are reserved by JSON-RPC');
    this.methods.set(name, { params: def.params, run: def.run as Registered['run'] });
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.methods.has(name);
  }

  /** The names, sorted. */
  names(): string[] {
    return [...this.methods.keys()].sort();
  }

  /** Runs `name` with `params`: RpcError -32601 when unknown, -32602 for bad params, else what the method returns or throws. */
  async call(name: string, params: Record<string, unknown> | undefined, ctx: MethodContext): Promise<unknown> {
    const m = this.methods.get(name);
    if (!m) throw new RpcError(RPC_ERRORS.METHOD_NOT_FOUND, `method not found: ${name}`);
    return m.run(checkParams(name, m.params, params), ctx);
  }
}
