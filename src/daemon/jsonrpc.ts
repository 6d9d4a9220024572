/**
 * JSON-RPC 2.0 (https://www.jsonrpc.org/specification) as overlay-pkgd speaks it: one
 * JSON object per line, requests by name with named params (an object) or none.
 * Batches (arrays) are refused with -32600: a line is one request, so the output cap and
 * the one-request-at-a-time order of a connection hold per request, and one line can
 * never fan out into thousands of answers.
 */
import { isOverlayBootError } from '../errors.js';
import { faultOf, type Fault } from '../lifecycle/faults.js';

/** The error codes of the daemon: JSON-RPC's, then its own in the server range. */
export const RPC_ERRORS = {
  PARSE_ERROR: -32700,
  INVALID_REQUEST: -32600,
  METHOD_NOT_FOUND: -32601,
  INVALID_PARAMS: -32602,
  INTERNAL_ERROR: -32603,
  /** The method failed; `data` holds the library's `code`, and `Fault` (TR-069 FaultCode, FaultString). */
  OPERATION_FAILED: -32000,
  /** The peer is neither root nor in the daemon's group; the connection is closed. */
  PEER_REFUSED: -32001,
  /** A line longer than the cap; the connection is closed. */
  LINE_TOO_LONG: -32002,
  /** More connections than the cap; this one is closed. */
  TOO_MANY_CONNECTIONS: -32003,
  /** Nothing was asked for longer than the idle timeout; the connection is closed. */
  IDLE_TIMEOUT: -32004,
} as const;

export type RpcErrorCode = (typeof RPC_ERRORS)[keyof typeof RPC_ERRORS];

/** A request id: JSON-RPC allows a string, a number or null. */
export type RpcId = string | number | null;

/** A checked request; `id` is absent for a notification (never answered). */
export interface RpcRequest {
  method: string;
  params?: Record<string, unknown>;
  id?: RpcId;
}

/** The error object of a response. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** An error a method throws to answer with a given code (the daemon maps every other error). */
export class RpcError extends Error {
  readonly code: number;
  readonly data?: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
    this.data = data;
  }

  toObject(): RpcErrorObject {
    return this.data === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, data: this.data };
  }
}

/** An operation refused with a TR-069 fault (e.g. 9028 for an unknown DU): -32000 with `data.Fault`. */
export function faultError(fault: Fault): RpcError {
  return new RpcError(RPC_ERRORS.OPERATION_FAILED, fault.FaultString, { Fault: fault });
}

/** The error object answering `e`: RpcError as is; OverlayBootError -32000 with its code, context and Fault; anything else -32603. */
export function errorObject(e: unknown): RpcErrorObject {
  if (e instanceof RpcError) return e.toObject();
  if (isOverlayBootError(e)) {
    return { code: RPC_ERRORS.OPERATION_FAILED, message: `${e.code}: ${e.describe()}`, data: { ...e.toJSON(), Fault: faultOf(e) } };
  }
  return { code: RPC_ERRORS.INTERNAL_ERROR, message: 'internal error (see the daemon log)' };
}

/** What one line is: a request, or the error to answer it with (id null when none could be read). */
export type ParsedLine = { request: RpcRequest } | { error: RpcErrorObject; id: RpcId };

const isId = (v: unknown): v is RpcId => v === null || typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));

/** Parses and checks one line (without its newline). */
export function parseLine(line: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { error: { code: RPC_ERRORS.PARSE_ERROR, message: `parse error: ${(e as Error).message}` }, id: null };
  }
  const invalid = (why: string, id: RpcId = null): ParsedLine => ({ error: { code: RPC_ERRORS.INVALID_REQUEST, message: `invalid request: ${why}` }, id });
  if (Array.isArray(value)) return invalid('batches are not supported: send one request object per line');
  if (value === null || typeof value !== 'object') return invalid('not an object');
  const o = value as Record<string, unknown>;
  const hasId = Object.prototype.hasOwnProperty.call(o, 'id');
  if (hasId && !isId(o.id)) return invalid('id must be a string, a number or null');
  const id = hasId ? (o.id as RpcId) : null;
  if (o.jsonrpc !== '2.0') return invalid('jsonrpc must be "2.0"', id);
  if (typeof o.method !== 'string' || o.method === '') return invalid('method must be a non-empty string', id);
  for (const key of Object.keys(o)) {
    if (!['jsonrpc', 'method', 'params', 'id'].includes(key)) return invalid(`unknown member ${JSON.stringify(key)}`, id);
  }
  const request: RpcRequest = { method: o.method };
  if (hasId) request.id = id;
  if (o.params !== undefined) {
    if (o.params === null || typeof o.params !== 'object') return invalid('params must be an object', id);
    if (Array.isArray(o.params)) {
      // by-position params are valid JSON-RPC, but no method here takes them
      return { error: { code: RPC_ERRORS.INVALID_PARAMS, message: 'invalid params: give params by name (an object), not by position' }, id };
    }
    request.params = o.params as Record<string, unknown>;
  }
  return { request };
}

/** A response line (with its newline). */
export function responseLine(id: RpcId, result: { result: unknown } | { error: RpcErrorObject }): string {
  return JSON.stringify({ jsonrpc: '2.0', ...result, id }) + '\n';
}

/** A notification line (with its newline). */
export function notificationLine(method: string, params: unknown): string {
  return JSON.stringify({ jsonrpc: '2.0', method, params }) + '\n';
}
