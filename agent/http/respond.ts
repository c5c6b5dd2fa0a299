import * as crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AgentError, NotLeaderError } from '../node';
import { NONE } from '../raft/types';

/**
 * An answer other than success, as the API sends it: an HTTP status and a JSON body
 * `{error, hint, ...extra}` where `error` says what happened and `hint` what to do.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Seconds a client should wait before retrying a request refused for want of a leader. */
export const RETRY_AFTER_SECONDS = 1;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const text = JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, e: ApiError): void {
  const body: Record<string, unknown> = { error: e.message };
  if (e.hint) body.hint = e.hint;
  Object.assign(body, e.extra);
  sendJson(res, e.status, body, e.headers);
}

/** A refusal because this node cannot do it now and no leader can be reached in its place. */
export function noLeader(leaderId: number, leaderApi: string, why: string): ApiError {
  const hint =
    leaderId === NONE
      ? `retry in a few seconds; if it persists, check that a majority of the nodes is running (pgraft status); ` +
        'if most of them are lost for good, see pgraft force-new-cluster'
      : leaderApi
        ? `retry in a few seconds, or send the request to the leader at ${leaderApi}`
        : `retry in a few seconds, or send the request to node ${leaderId}'s API directly`;
  return new ApiError(503, why, hint, { leaderId: leaderId === NONE ? null : leaderId, leaderApi: leaderApi || null }, {
    'retry-after': String(RETRY_AFTER_SECONDS),
  });
}

/** The HTTP form of an error the agent raised. */
export function fromAgentError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof NotLeaderError) return noLeader(e.leaderId, e.leaderApiAddress, e.message);
  if (e instanceof AgentError) {
    switch (e.code) {
      case 'invalid':
        return new ApiError(400, e.message);
      case 'conflict':
        return new ApiError(409, e.message, 'another change is in progress; retry once it has completed');
      case 'timeout':
        return new ApiError(504, e.message, 'the cluster may be short of a quorum; check pgraft status, then retry');
      case 'unavailable':
        return new ApiError(503, e.message, 'retry in a few seconds', {}, { 'retry-after': String(RETRY_AFTER_SECONDS) });
      case 'failed':
        return new ApiError(500, e.message, "read this node's log; restart the agent once the cause is fixed");
    }
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new ApiError(500, `internal error: ${msg}`, "read this node's log");
}

/**
 * Reads a request body of at most `limit` bytes. A longer one is refused with 413 as soon
 * as it passes the limit, without reading the rest.
 */
export function readBody(req: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(tooLarge(declared, limit, what));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.off('data', onData);
        reject(tooLarge(size, limit, what));
        return;
      }
      chunks.push(c);
    };
    req.on('data', onData);
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function tooLarge(size: number, limit: number, what: string): ApiError {
  return new ApiError(
    413,
    `the ${what} is ${size} bytes or more, larger than the ${limit} bytes this API accepts`,
    `keep the ${what} within ${limit} bytes`,
    { limitBytes: limit },
    { connection: 'close' },
  );
}

/** Parses a JSON object body; an empty body is an empty object. */
export function parseJsonObject(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`, 'send a JSON object, e.g. {"id": 4, "raft": "10.0.0.4:7001"}');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new ApiError(400, 'the request body must be a JSON object', 'send a JSON object, e.g. {"id": 4, "raft": "10.0.0.4:7001"}');
  }
  return v as Record<string, unknown>;
}

/** True when `given` is the expected token; compares digests so that timing reveals nothing. */
export function tokenMatches(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(req: IncomingMessage): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(.+)$/i.exec(h.trim());
  return m ? m[1].trim() : null;
}
