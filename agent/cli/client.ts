import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type * as tls from 'node:tls';
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
  /** The API is HTTPS: how to connect (the CA to trust, for one); absent: plain HTTP. */
  tls?: tls.ConnectionOptions;
  /** How long to wait for the answer. */
  timeoutMs: number;
}

/**
 * The agent named by --api (host:port, http://host:port or https://host:port) and --cacert.
 * HTTPS when the scheme says so, or when a CA is given without a scheme. As with curl, a CA
 * given is the only one trusted; without one, the system's CAs are.
 */
export function apiTarget(api: string, cacert?: string): Pick<ClientOptions, 'api' | 'tls'> {
  const m = /^([a-z][a-z0-9+.-]*):\/\/([^/]*)(\/.*)?$/i.exec(api);
  const scheme = m ? m[1].toLowerCase() : cacert !== undefined ? 'https' : 'http';
  const hostPort = m ? m[2] : api;
  if (scheme !== 'http' && scheme !== 'https') {
    throw new CommandError(`--api ${api}: the API speaks http or https`, ExitCode.USAGE, 'give --api host:port, http://host:port or https://host:port');
  }
  if (m?.[3] && m[3] !== '/') {
    throw new CommandError(`--api ${api}: give the API's address without a path`, ExitCode.USAGE, `e.g. --api ${scheme}://${hostPort}`);
  }
  if (scheme === 'http') {
    if (cacert !== undefined) throw new CommandError(`--cacert is for an HTTPS API, but --api ${api} is plain HTTP`, ExitCode.USAGE, `give --api https://${hostPort}`);
    return { api: hostPort };
  }
  if (cacert === undefined) return { api: hostPort, tls: { minVersion: 'TLSv1.2' } };
  let ca: Buffer;
  try {
    ca = fs.readFileSync(cacert);
  } catch (e) {
    throw new CommandError(`cannot read --cacert ${cacert}: ${(e as Error).message}`, ExitCode.USAGE, "give the cluster's CA certificate (PEM), the file pgraft.tls_ca_file names");
  }
  return { api: hostPort, tls: { ca, minVersion: 'TLSv1.2' } };
}

/** Errors that prove the request never reached the agent. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN']);

/** Certificate checks that fail when the client does not trust the CA that signed the agent's certificate. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
]);

const CHECK_AGENT = 'check that the agent runs and that --api names its pgraft.api_port';

/** What to do about a connection that failed before the request was sent. */
function unreachableHint(e: NodeJS.ErrnoException, o: ClientOptions): string {
  if (!o.tls) return CHECK_AGENT;
  if (UNTRUSTED.has(e.code ?? '')) return "give --cacert with the cluster's CA certificate (pgraft.tls_ca_file), the one that signed the agent's certificate";
  if (e.code === 'ERR_TLS_CERT_ALTNAME_INVALID') return "the agent's certificate does not name the host in --api: use a name or address the certificate carries";
  if (e.code === 'EPROTO') return `the agent's API may be plain HTTP (pgraft.api_tls = off): give --api ${o.api} without https://`;
  return CHECK_AGENT;
}

/** What to do about a connection that broke after the request may have been sent. */
function brokenHint(e: NodeJS.ErrnoException, o: ClientOptions): string {
  const check = 'the operation may still complete; check with pgraft status';
  // The agent answers a plain HTTP request on its HTTPS port; an HTTPS proxy in front of it may drop it instead.
  if (!o.tls && e.code === 'ECONNRESET') return `if the agent serves its API over HTTPS (pgraft.api_tls = on), give --api https://${o.api}; otherwise ${check}`;
  return check;
}

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
    const request = { host, port, method, path, headers, agent: false as const };
    const req = o.tls ? https.request({ ...o.tls, ...request }) : http.request(request);
    const timer = setTimeout(() => {
      req.destroy();
      reject(
        sent
          ? new CommandError(`the agent at ${o.api} did not answer within ${o.timeoutMs} ms`, ExitCode.TIMEOUT, 'the operation may still complete; check with pgraft status')
          : new CommandError(`cannot connect to the agent at ${o.api} within ${o.timeoutMs} ms`, ExitCode.UNREACHABLE, CHECK_AGENT),
      );
    }, o.timeoutMs);
    // A fresh connection per call (agent: false): once it is up, the request may have been acted on.
    req.on('socket', (s) => s.once(o.tls ? 'secureConnect' : 'connect', () => (sent = true)));
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
        reject(new CommandError(`cannot reach the agent at ${o.api}: ${e.message}`, ExitCode.UNREACHABLE, unreachableHint(e, o)));
      } else {
        reject(new CommandError(`the connection to ${o.api} broke: ${e.message}`, ExitCode.TIMEOUT, brokenHint(e, o)));
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
