import * as http from 'node:http';
import { splitHostPort } from '../node';
import { ExitCode, exitCodeForStatus } from './exit_codes';

/** A command that cannot succeed: what to print, and the exit code that says why. */
export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface ApiAnswer {
  status: number;
  /** The parsed JSON body (null when there was none or it was not JSON). */
  body: Record<string, unknown> | null;
}

export interface ClientOptions {
  /** host:port of the agent's API. */
  api: string;
  token?: string;
  /** How long to wait for the answer. */
  timeoutMs: number;
}

/** Errors that prove the request never reached the agent. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** One call to an agent's HTTP API. Any HTTP status is an answer; no answer is a CommandError. */
export function callApi(o: ClientOptions, method: string, path: string, body?: unknown): Promise<ApiAnswer> {
  let host: string;
  let port: number;
  try {
    ({ host, port } = splitHostPort(o.api));
  } catch {
    return Promise.reject(new CommandError(`"${o.api}" is not host:port`, ExitCode.USAGE, 'e.g. --api 127.0.0.1:7002'));
  }
  const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  const headers: Record<string, string> = { accept: 'application/json' };
  if (payload) {
    headers['content-type'] = typeof body === 'string' ? 'application/octet-stream' : 'application/json';
    headers['content-length'] = String(payload.length);
  }
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  return new Promise((resolve, reject) => {
    let sent = false;
    const req = http.request({ host, port, method, path, headers, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      reject(
        sent
          ? new CommandError(`the agent at ${o.api} did not answer within ${o.timeoutMs} ms`, ExitCode.TIMEOUT, 'the operation may still complete; check with pgraft status')
          : new CommandError(`cannot connect to the agent at ${o.api} within ${o.timeoutMs} ms`, ExitCode.UNREACHABLE, 'check that the agent runs and that --api names its pgraft.api_port'),
      );
    }, o.timeoutMs);
    // A fresh connection per call (agent: false): once it is up, the request may have been acted on.
    req.on('socket', (s) => s.once('connect', () => (sent = true)));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        let parsed: Record<string, unknown> | null = null;
        try {
          const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (typeof v === 'object' && v !== null && !Array.isArray(v)) parsed = v as Record<string, unknown>;
        } catch {
          parsed = null;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(new CommandError(`the answer from ${o.api} broke off: ${e.message}`, ExitCode.TIMEOUT, 'the operation may still complete; check with pgraft status'));
      });
    });
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!sent || NOT_DELIVERED.has(e.code ?? '')) {
        reject(
          new CommandError(`cannot reach the agent at ${o.api}: ${e.message}`, ExitCode.UNREACHABLE, 'check that the agent runs and that --api names its pgraft.api_port'),
        );
      } else {
        reject(new CommandError(`the connection to ${o.api} broke: ${e.message}`, ExitCode.TIMEOUT, 'the operation may still complete; check with pgraft status'));
      }
    });
    req.end(payload);
  });
}

/** The answer's body when it is a success; otherwise a CommandError carrying the API's error and hint. */
export function expectOk(a: ApiAnswer, o: ClientOptions): Record<string, unknown> {
  if (a.status >= 200 && a.status < 300) return a.body ?? {};
  const error = typeof a.body?.error === 'string' ? a.body.error : `the agent at ${o.api} answered HTTP ${a.status}`;
  const hint = typeof a.body?.hint === 'string' ? a.body.hint : undefined;
  return failWith(error, exitCodeForStatus(a.status), hint);
}

function failWith(message: string, code: ExitCode, hint?: string): never {
  throw new CommandError(message, code, hint);
}
