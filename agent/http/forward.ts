import * as http from 'node:http';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import { splitHostPort } from '../node';
import { ApiError, RETRY_AFTER_SECONDS, noLeader, sendError } from './respond';

/** Set on a request one node passes to the leader; the leader never passes it on again. */
export const FORWARDED_HEADER = 'x-pgraft-forwarded-by';
/** Set on the answer to a forwarded request: the node that handled it. */
export const HANDLED_BY_HEADER = 'x-pgraft-handled-by';

const PASSED_REQUEST_HEADERS = ['content-type', 'authorization', 'accept'];
const PASSED_RESPONSE_HEADERS = ['content-type', 'retry-after', 'www-authenticate', HANDLED_BY_HEADER];

/** Connection errors that prove the request never reached the leader. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

export interface ForwardTarget {
  leaderId: number;
  /** host:port of the leader's API. */
  api: string;
  /** The API is HTTPS (pgraft.api_tls): how to connect; null: plain HTTP. */
  tls: tls.ConnectionOptions | null;
}

/**
 * Passes a request that only the leader can serve to the leader's API and relays its answer
 * unchanged. One hop only: the request carries FORWARDED_HEADER, and a node that receives a
 * forwarded request while not leader refuses it instead of forwarding again.
 *
 * When the leader cannot be reached the answer is 503 with Retry-After (nothing was done).
 * When the connection breaks or times out after the request was sent, the write may or may
 * not have been applied: 502 or 504 say so, and the client should read before retrying.
 */
export function forwardToLeader(
  req: http.IncomingMessage,
  body: Buffer,
  res: http.ServerResponse,
  target: ForwardTarget,
  fromNode: number,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve) => {
    let host: string;
    let port: number;
    try {
      ({ host, port } = splitHostPort(target.api));
    } catch {
      sendError(res, noLeader(target.leaderId, '', `the leader's API address "${target.api}" is not host:port`));
      resolve();
      return;
    }
    const headers: Record<string, string> = { [FORWARDED_HEADER]: String(fromNode), 'content-length': String(body.length) };
    for (const h of PASSED_REQUEST_HEADERS) {
      const v = req.headers[h];
      if (typeof v === 'string') headers[h] = v;
    }
    let sent = false;
    let done = false;
    const finish = (e?: ApiError) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (e) sendError(res, e);
      resolve();
    };
    const request = { host, port, method: req.method, path: req.url, headers, agent: false as const };
    const out = target.tls ? https.request({ ...target.tls, ...request }) : http.request(request);
    const timer = setTimeout(() => {
      out.destroy();
      finish(
        sent
          ? new ApiError(
              504,
              `node ${target.leaderId} (the leader, at ${target.api}) did not answer the forwarded request within ${timeoutMs} ms; it may or may not have been applied`,
              'read the current value before you retry',
              { leaderId: target.leaderId, leaderApi: target.api },
            )
          : noLeader(target.leaderId, target.api, `the leader (node ${target.leaderId} at ${target.api}) did not accept a connection within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    timer.unref?.();
    // A fresh connection per request (agent: false): once it is up, the leader may act on it.
    out.on('socket', (s) => s.once(target.tls ? 'secureConnect' : 'connect', () => (sent = true)));
    out.on('response', (answer) => {
      if (done) {
        answer.resume();
        return;
      }
      const relay: Record<string, string> = {};
      for (const h of PASSED_RESPONSE_HEADERS) {
        const v = answer.headers[h];
        if (typeof v === 'string') relay[h] = v;
      }
      relay[HANDLED_BY_HEADER] ??= String(target.leaderId);
      res.writeHead(answer.statusCode ?? 502, relay);
      answer.pipe(res);
      answer.on('end', () => finish());
      answer.on('error', () => {
        res.destroy();
        finish();
      });
    });
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (done) return;
      if (res.headersSent) {
        res.destroy();
        finish();
        return;
      }
      if (!sent || NOT_DELIVERED.has(err.code ?? '')) {
        finish(
          noLeader(
            target.leaderId,
            target.api,
            `cannot reach the leader (node ${target.leaderId}) at ${target.api} to pass the request on: ${err.message}`,
          ),
        );
        return;
      }
      finish(
        new ApiError(
          502,
          `the connection to the leader (node ${target.leaderId} at ${target.api}) broke before it answered: ${err.message}; the request may or may not have been applied`,
          'read the current value before you retry',
          { leaderId: target.leaderId, leaderApi: target.api },
          { 'retry-after': String(RETRY_AFTER_SECONDS) },
        ),
      );
    });
    out.end(body);
  });
}
