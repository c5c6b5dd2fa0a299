/**
 * One key-value write as each system takes it over HTTP, and a minimal HTTP client for it
 * (node:http with a keep-alive agent: no per-call allocations beyond the request itself).
 *
 *   pgraft: PUT /v1/kv/<key>, the value as the body            (docs/http-api.md)
 *   etcd:   POST /v3/kv/put {"key": b64, "value": b64}         (etcd's v3 JSON gateway)
 */
import * as http from 'node:http';

export type System = 'pgraft' | 'etcd';

export interface PreparedWrite {
  method: string;
  path: string;
  body: Buffer;
}

export function prepareWrite(system: System, key: string, value: string): PreparedWrite {
  if (system === 'pgraft') return { method: 'PUT', path: `/v1/kv/${encodeURIComponent(key)}`, body: Buffer.from(value) };
  const json = JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
  return { method: 'POST', path: '/v3/kv/put', body: Buffer.from(json) };
}

/** A value of `bytes` printable ASCII characters (the same for every write). */
export function makeValue(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let i = 0; i < bytes; i++) s += alphabet[(i * 7919) % alphabet.length];
  return s;
}

export function keepAliveAgent(sockets: number): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: sockets, maxFreeSockets: sockets, scheduling: 'fifo' });
}

export interface Answer {
  status: number;
  body: string;
}

/**
 * One request to 127.0.0.1:port. Rejects on a connection error or when no answer came within
 * timeoutMs (the socket is then destroyed, so a retry never queues behind a stalled one).
 */
export function request(
  agent: http.Agent,
  port: number,
  w: PreparedWrite,
  timeoutMs: number,
  keepBody = false,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: w.method,
        path: w.path,
        agent,
        headers: { 'content-type': w.method === 'PUT' ? 'text/plain' : 'application/json', 'content-length': w.body.length },
      },
      (res) => {
        let body = '';
        if (keepBody) res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (keepBody) body += chunk;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.end(w.body);
  });
}

/** A call answered with text (metrics); null when there is no answer. */
export async function textCall(port: number, method: string, path: string, body?: Buffer, timeoutMs = 2000): Promise<Answer | null> {
  try {
    return await request(oneShot, port, { method, path, body: body ?? Buffer.alloc(0) }, timeoutMs, true);
  } catch {
    return null;
  }
}

/** A JSON call (status checks, control calls); null when there is no answer. */
export async function jsonCall(port: number, method: string, path: string, body?: unknown, timeoutMs = 2000): Promise<{ status: number; body: any } | null> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const a = await textCall(port, method, path, body === undefined ? undefined : Buffer.from(JSON.stringify(body)), timeoutMs);
  if (!a) return null;
  try {
    return { status: a.status, body: JSON.parse(a.body) };
  } catch {
    return { status: a.status, body: null };
  }
}

const oneShot = new http.Agent({ keepAlive: false });
