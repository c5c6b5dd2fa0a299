import * as http from 'node:http';
import * as https from 'node:https';
import type * as tls from 'node:tls';
import type { Logger } from 'pino';
import { Op } from '../fsm/commands';
import { Agent, splitHostPort } from '../node';
import { NONE, NodeId } from '../raft/types';
import { TlsMaterial, agentTlsClient } from '../transport';
import { HttpsPort } from './https_port';
import { close, listen } from './listen';
import { FORWARDED_HEADER, HANDLED_BY_HEADER, forwardToLeader } from './forward';
import {
  ApiError,
  bearerToken,
  fromAgentError,
  noLeader,
  parseJsonObject,
  readBody,
  sendError,
  sendJson,
  tokenMatches,
} from './respond';
import { apiAddressOf, statusView } from './status';

export interface ApiServerOptions {
  agent: Agent;
  clusterId: string;
  host: string;
  port: number;
  /** The token mutating calls must present; null: none asked. Read on every request, so a reload applies at once. */
  authToken: () => string | null;
  /** The election timeout in force, for the health check's "heard from the leader lately". */
  electionTimeoutMs: () => number;
  /** How long a request forwarded to the leader may take (catch-up waits get their own timeout on top). */
  forwardTimeoutMs?: number;
  maxKeyBytes?: number;
  maxValueBytes?: number;
  /**
   * pgraft.api_tls: serve HTTPS with this node's certificate and key, and pass calls on to the
   * leader over HTTPS, trusting the cluster CA and presenting the same certificate.
   */
  tls?: TlsMaterial;
  logger: Logger;
}

export const DEFAULT_MAX_KEY_BYTES = 1024;
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** Bodies of the control calls are small JSON objects. */
const MAX_CONTROL_BODY_BYTES = 64 * 1024;
const DEFAULT_CATCH_UP_TIMEOUT_MS = 60_000;
const MAX_NODE_ID = 2_147_483_647;

interface Call {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  url: URL;
  /** Path segments after the route's prefix. */
  rest: string;
}

interface Route {
  method: string;
  /** Matched against the path; `rest` receives what follows a prefix match. */
  path: string | RegExp;
  /** Changes state: needs the token, and (if leaderOnly) runs on the leader. */
  mutating: boolean;
  leaderOnly: boolean;
  /** Largest body accepted, and what it is called in a 413. */
  body?: { limit: (s: ApiServer) => number; what: string };
  /** Extra time a forwarded call may take (e.g. a catch-up wait it asked for). */
  forwardExtraMs?: (body: Buffer) => number;
  handle(this: ApiServer, call: Call, body: Buffer): Promise<void> | void;
}

/** Refuses malformed UTF-8 instead of replacing it; one decoder serves every request. */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

const controlBody = { limit: () => MAX_CONTROL_BODY_BYTES, what: 'request body' };

/**
 * The agent's HTTP API (pgraft.api_port): status and health checks for operators and load
 * balancers, the key-value store for applications, and the control calls the CLI makes.
 * Plain node:http and JSON; see docs/http-api.md.
 *
 * Calls only the leader can serve that arrive at a follower are forwarded to the leader's
 * API (its address is in the replicated state, where each node records its own), so a client
 * may talk to any node. Reads are served where they arrive: linearizable ones through a
 * ReadIndex round with the leader, stale ones from the local state.
 */
export class ApiServer {
  /** Stops the listener and closes its connections; null when not started. */
  private closeListener: (() => Promise<void>) | null = null;
  private boundPort = 0;
  readonly maxKeyBytes: number;
  readonly maxValueBytes: number;
  private readonly forwardTimeoutMs: number;
  /** How this node connects to the leader's API when it passes a call on; null: plain HTTP. */
  private readonly forwardTls: tls.ConnectionOptions | null;
  /** When this agent started, as GET /v1/status reports it (a restart changes it). */
  private readonly startedAt = new Date().toISOString();

  constructor(private readonly opts: ApiServerOptions) {
    this.maxKeyBytes = opts.maxKeyBytes ?? DEFAULT_MAX_KEY_BYTES;
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.forwardTimeoutMs = opts.forwardTimeoutMs ?? 10_000;
    this.forwardTls = opts.tls ? agentTlsClient(opts.tls) : null;
  }

  /** 'https' when pgraft.api_tls is on. */
  get scheme(): 'http' | 'https' {
    return this.opts.tls ? 'https' : 'http';
  }

  get agent(): Agent {
    return this.opts.agent;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.dispatch(req, res);
    const t = this.opts.tls;
    const server = t ? https.createServer({ cert: t.cert, key: t.key, minVersion: 'TLSv1.2' }, handler) : http.createServer(handler);
    server.keepAliveTimeout = 5000;
    // Over HTTPS, a listener of its own answers plain HTTP requests instead of dropping them.
    const port = t ? new HttpsPort(server as https.Server) : null;
    this.boundPort = await listen(port?.server ?? server, this.opts.host, this.opts.port, 'the HTTP API', 'pgraft.api_port');
    this.closeListener = port ? () => port.close() : () => close(server);
  }

  async stop(): Promise<void> {
    const closeListener = this.closeListener;
    this.closeListener = null;
    await closeListener?.();
  }

  private async dispatch(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      sendError(res, new ApiError(400, `"${req.url}" is not a valid request path`));
      return;
    }
    // HEAD is GET without the body (node:http leaves it out), for load balancers' checks.
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const found = this.route(method, url.pathname);
    if (found instanceof ApiError) {
      req.resume();
      sendError(res, found);
      return;
    }
    const { route, rest } = found;
    const call: Call = { req, res, url, rest };
    try {
      if (route.mutating) this.authorize(req);
      const body = route.body ? await readBody(req, route.body.limit(this), route.body.what) : Buffer.alloc(0);
      if (!route.body) req.resume();
      if (route.leaderOnly && !this.agent.isLeader()) {
        await this.forward(call, body, route.forwardExtraMs?.(body) ?? 0);
        return;
      }
      await route.handle.call(this, call, body);
    } catch (e) {
      const err = fromAgentError(e);
      if (err.status >= 500 && err.status !== 503 && err.status !== 504) {
        this.opts.logger.warn({ method: req.method, path: url.pathname, status: err.status }, err.message);
      }
      // A body over the limit is not read: the answer closes the connection instead.
      if (err.status !== 413) req.resume();
      sendError(res, err);
    }
  }

  private route(method: string, pathname: string): { route: Route; rest: string } | ApiError {
    const allowed: string[] = [];
    for (const r of ROUTES) {
      let rest = '';
      if (typeof r.path === 'string') {
        if (r.path !== pathname) continue;
      } else {
        const m = r.path.exec(pathname);
        if (!m) continue;
        rest = m[1] ?? '';
      }
      if (r.method === method) return { route: r, rest };
      allowed.push(r.method);
    }
    if (allowed.length > 0) {
      return new ApiError(405, `${method} is not allowed on ${pathname}`, `use ${allowed.join(' or ')}`, {}, { allow: allowed.join(', ') });
    }
    return new ApiError(404, `no such endpoint: ${pathname}`, 'docs/http-api.md lists the endpoints');
  }

  private authorize(req: http.IncomingMessage): void {
    const expected = this.opts.authToken();
    if (expected === null) return;
    const given = bearerToken(req);
    if (given !== null && tokenMatches(given, expected)) return;
    throw new ApiError(
      401,
      given === null ? 'this call changes the cluster and needs the API token' : 'the API token is not the one this node expects',
      'send Authorization: Bearer <token> with the token in pgraft.auth_token_file (pgraft --token, or PGRAFT_AUTH_TOKEN)',
      {},
      { 'www-authenticate': 'Bearer realm="pgraft"' },
    );
  }

  private async forward(call: Call, body: Buffer, extraMs: number): Promise<void> {
    const lead = this.agent.leaderId();
    const api = apiAddressOf(this.agent, lead);
    if (call.req.headers[FORWARDED_HEADER] !== undefined) {
      throw noLeader(lead, api, `node ${this.agent.id} received a forwarded request but is not the leader (leadership moved)`);
    }
    if (lead === NONE) throw noLeader(lead, '', 'no leader is known at the moment (an election may be in progress)');
    if (!api) {
      throw noLeader(lead, '', `node ${lead} is the leader, but its API address is not known yet (each node records it once a leader is known)`);
    }
    await forwardToLeader(call.req, body, call.res, { leaderId: lead, api, tls: this.forwardTls }, this.agent.id, this.forwardTimeoutMs + extraMs);
  }

  // ---- handlers ------------------------------------------------------------------------------

  status(call: Call): void {
    sendJson(call.res, 200, statusView(this.agent, this.opts.clusterId, this.startedAt));
  }

  /** Healthy: the agent runs, a leader is known, and a follower has heard from it lately. */
  health(call: Call): void {
    const a = this.agent;
    const unhealthy = (reason: string, hint: string) => {
      throw new ApiError(503, reason, hint, { status: 'unhealthy', nodeId: a.id });
    };
    if (a.state !== 'RUNNING') {
      unhealthy(
        `the agent is ${a.state}${a.failure ? `: ${a.failure.message}` : ''}`,
        a.state === 'ERROR' ? "read this node's log, fix the cause and restart the agent" : 'wait for the agent to start',
      );
    }
    const lead = a.leaderId();
    if (lead === NONE) {
      unhealthy(
        'no leader is known to this node',
        'an election may be in progress; if it persists, check that a majority of the nodes is running and can reach each other',
      );
    }
    if (lead !== a.id) {
      const seen = a.lastContact.get(lead);
      const limit = 2 * this.opts.electionTimeoutMs();
      if (seen === undefined || Date.now() - seen > limit) {
        unhealthy(
          `node ${lead} is the leader this node knows, but it has not heard from it for more than ${limit} ms`,
          'check the network between this node and the leader',
        );
      }
    }
    const st = a.status();
    sendJson(call.res, 200, { status: 'ok', nodeId: a.id, role: st.softState.role, leaderId: lead, term: st.hardState.term });
  }

  /** 200 on the leader only, so a load balancer sends writes there. */
  leader(call: Call): void {
    const a = this.agent;
    const lead = a.leaderId();
    const st = a.status();
    if (a.state === 'RUNNING' && a.isLeader()) {
      sendJson(call.res, 200, { leader: true, nodeId: a.id, leaderId: a.id, term: st.hardState.term });
      return;
    }
    const api = apiAddressOf(a, lead);
    throw new ApiError(
      503,
      lead === NONE ? `node ${a.id} is not the leader, and no leader is known` : `node ${a.id} is not the leader; node ${lead} is`,
      lead === NONE ? 'an election may be in progress' : api ? `the leader's API is at ${api}` : undefined,
      { leader: false, nodeId: a.id, leaderId: lead === NONE ? null : lead, leaderApi: api || null },
    );
  }

  private key(call: Call): string {
    let key = call.rest;
    try {
      // Only percent-escapes change; decoding allocates even when there are none.
      if (key.includes('%')) key = decodeURIComponent(key);
    } catch {
      throw new ApiError(400, `the key in "${call.url.pathname}" is not valid percent-encoding`, 'percent-encode the key as in a URL path');
    }
    if (key === '') throw new ApiError(400, 'the key is empty', 'put the key after /v1/kv/, e.g. /v1/kv/config/primary');
    const size = Buffer.byteLength(key, 'utf8');
    if (size > this.maxKeyBytes) {
      throw new ApiError(413, `the key is ${size} bytes, longer than the ${this.maxKeyBytes} bytes this API accepts`, `keep keys within ${this.maxKeyBytes} bytes`, {
        limitBytes: this.maxKeyBytes,
      });
    }
    return key;
  }

  async kvGet(call: Call): Promise<void> {
    const key = this.key(call);
    const c = call.url.searchParams.get('consistency') ?? 'linearizable';
    if (c !== 'linearizable' && c !== 'stale') {
      throw new ApiError(400, `consistency=${c} is not known`, 'use consistency=linearizable (the default) or consistency=stale');
    }
    const value = await this.agent.get(key, c);
    if (value === null) throw new ApiError(404, `no key "${key}"`, undefined, { key });
    sendJson(call.res, 200, { key, value });
  }

  async kvPut(call: Call, body: Buffer): Promise<void> {
    const key = this.key(call);
    let value: string;
    try {
      value = strictUtf8.decode(body);
    } catch {
      throw new ApiError(400, 'the value is not valid UTF-8 text', 'send text, or encode binary data (base64) before storing it');
    }
    const r = await this.agent.propose({ op: Op.Put, key, value });
    sendJson(call.res, 200, { key, index: r.index }, { [HANDLED_BY_HEADER]: String(this.agent.id) });
  }

  async kvDelete(call: Call): Promise<void> {
    const key = this.key(call);
    const r = await this.agent.propose({ op: Op.Delete, key });
    sendJson(call.res, 200, { key, deleted: r.value === true, index: r.index }, { [HANDLED_BY_HEADER]: String(this.agent.id) });
  }

  async addMember(call: Call, body: Buffer): Promise<void> {
    const b = parseJsonObject(body);
    const id = nodeId(b.id, 'id');
    const raft = address(b.raft, 'raft', true)!;
    const api = address(b.api, 'api', false);
    if (b.learner !== undefined && typeof b.learner !== 'boolean') throw new ApiError(400, '"learner" must be true or false');
    const learner = b.learner === true;
    const timeoutMs = timeout(b.timeoutMs, DEFAULT_CATCH_UP_TIMEOUT_MS);
    const conf = this.agent.status().config;
    if (conf.voters.includes(id)) {
      const known = this.agent.memberAddress(id)?.raft;
      throw new ApiError(409, `node ${id} is already a voter${known ? ` (at ${known})` : ''}`, `to replace it, remove it first: pgraft remove ${id}`, {
        id,
        role: 'voter',
      });
    }
    if (learner && conf.learners.includes(id)) {
      throw new ApiError(409, `node ${id} is already a learner`, `to make it a voter: pgraft add-voter ${id} ${raft}`, { id, role: 'learner' });
    }
    await this.agent.addMember(id, raft, api ?? undefined, learner, timeoutMs);
    sendJson(call.res, 200, { id, role: learner ? 'learner' : 'voter', raft, api: api ?? null });
  }

  async removeMember(call: Call): Promise<void> {
    const id = pathNodeId(call.rest);
    this.assertMember(id);
    await this.agent.removeMember(id);
    sendJson(call.res, 200, { id, removed: true });
  }

  /** A member records where its API listens, so that others can forward to it once it leads. */
  async setMemberApi(call: Call, body: Buffer): Promise<void> {
    const id = pathNodeId(call.rest);
    const api = address(parseJsonObject(body).api, 'api', true)!;
    this.assertMember(id);
    const r = await this.agent.propose({ op: Op.MemberMeta, nodeId: id, apiAddress: api });
    sendJson(call.res, 200, { id, api, index: r.index });
  }

  async waitSync(call: Call, body: Buffer): Promise<void> {
    const id = pathNodeId(call.rest);
    const b = parseJsonObject(body);
    const timeoutMs = timeout(b.timeoutMs, DEFAULT_CATCH_UP_TIMEOUT_MS);
    this.assertMember(id);
    await this.agent.waitCaughtUp(id, timeoutMs);
    const pr = this.agent.progress()?.get(id);
    sendJson(call.res, 200, { id, inSync: true, matchIndex: pr?.match ?? null, lastIndex: this.agent.status().lastIndex });
  }

  async transferLeadership(call: Call, body: Buffer): Promise<void> {
    const b = parseJsonObject(body);
    const target = b.target === undefined || b.target === null ? undefined : nodeId(b.target, 'target');
    if (target !== undefined) this.assertMember(target);
    const from = this.agent.id;
    const leader = await this.agent.transferLeadership(target);
    sendJson(call.res, 200, { from, leaderId: leader });
  }

  async snapshot(call: Call): Promise<void> {
    try {
      const s = await this.agent.takeSnapshot();
      sendJson(call.res, 200, { nodeId: this.agent.id, index: s.index, term: s.term });
    } catch (e) {
      const err = fromAgentError(e);
      // "nothing applied yet" and "one is being taken" are about the node's state, not the request.
      throw err.status === 400 ? new ApiError(409, err.message, 'write something first, then take the snapshot') : err;
    }
  }

  private assertMember(id: NodeId): void {
    const conf = this.agent.status().config;
    if (!conf.voters.includes(id) && !conf.learners.includes(id)) {
      throw new ApiError(404, `node ${id} is not a member of the cluster (members: ${[...conf.voters, ...conf.learners].sort((a, b) => a - b).join(', ')})`, 'pgraft status lists the members');
    }
  }
}

function nodeId(v: unknown, what: string): NodeId {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_NODE_ID) {
    throw new ApiError(400, `${what} must be a node id, an integer from 1 to ${MAX_NODE_ID}; got ${JSON.stringify(v) ?? 'nothing'}`);
  }
  return v;
}

function pathNodeId(text: string): NodeId {
  if (!/^\d{1,10}$/.test(text)) throw new ApiError(400, `"${text}" in the path is not a node id`, 'use the number of the node, e.g. /v1/members/3');
  return nodeId(Number(text), 'the node id in the path');
}

function address(v: unknown, field: string, required: boolean): string | null {
  if (v === undefined || v === null || v === '') {
    if (required) throw new ApiError(400, `"${field}" is missing: give the node's ${field === 'raft' ? 'Raft' : 'API'} address as host:port`);
    return null;
  }
  if (typeof v !== 'string') throw new ApiError(400, `"${field}" must be a string host:port`);
  try {
    const { port } = splitHostPort(v);
    if (port < 1 || port > 65535) throw new Error('port');
  } catch {
    throw new ApiError(400, `"${field}" is "${v}", which is not host:port`, 'e.g. "10.0.0.4:7001"');
  }
  return v;
}

function timeout(v: unknown, def: number): number {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0 || v > 3_600_000) {
    throw new ApiError(400, `"timeoutMs" must be a number of milliseconds from 1 to 3600000; got ${JSON.stringify(v)}`);
  }
  return v;
}

function requestedTimeout(body: Buffer): number {
  try {
    const t = (JSON.parse(body.toString('utf8')) as { timeoutMs?: unknown }).timeoutMs;
    return typeof t === 'number' && Number.isFinite(t) && t > 0 ? Math.min(t, 3_600_000) : DEFAULT_CATCH_UP_TIMEOUT_MS;
  } catch {
    return DEFAULT_CATCH_UP_TIMEOUT_MS;
  }
}

const ROUTES: Route[] = [
  { method: 'GET', path: '/health', mutating: false, leaderOnly: false, handle: ApiServer.prototype.health },
  { method: 'GET', path: '/leader', mutating: false, leaderOnly: false, handle: ApiServer.prototype.leader },
  { method: 'GET', path: '/v1/status', mutating: false, leaderOnly: false, handle: ApiServer.prototype.status },
  { method: 'GET', path: /^\/v1\/kv\/(.*)$/, mutating: false, leaderOnly: false, handle: ApiServer.prototype.kvGet },
  {
    method: 'PUT',
    path: /^\/v1\/kv\/(.*)$/,
    mutating: true,
    // Any node proposes key writes: the core forwards them to the leader through Raft, and
    // the answer comes once the write is applied on this node (read-your-writes here).
    leaderOnly: false,
    body: { limit: (s) => s.maxValueBytes, what: 'value' },
    handle: ApiServer.prototype.kvPut,
  },
  { method: 'DELETE', path: /^\/v1\/kv\/(.*)$/, mutating: true, leaderOnly: false, handle: ApiServer.prototype.kvDelete },
  {
    method: 'POST',
    path: '/v1/members',
    mutating: true,
    leaderOnly: true,
    body: controlBody,
    forwardExtraMs: requestedTimeout,
    handle: ApiServer.prototype.addMember,
  },
  {
    method: 'PUT',
    path: /^\/v1\/members\/([^/]+)\/api$/,
    mutating: true,
    leaderOnly: true,
    body: controlBody,
    handle: ApiServer.prototype.setMemberApi,
  },
  { method: 'DELETE', path: /^\/v1\/members\/([^/]+)$/, mutating: true, leaderOnly: true, handle: ApiServer.prototype.removeMember },
  {
    method: 'POST',
    path: /^\/v1\/members\/([^/]+)\/wait-sync$/,
    mutating: true,
    leaderOnly: true,
    body: controlBody,
    forwardExtraMs: requestedTimeout,
    handle: ApiServer.prototype.waitSync,
  },
  { method: 'POST', path: '/v1/transfer-leadership', mutating: true, leaderOnly: true, body: controlBody, handle: ApiServer.prototype.transferLeadership },
  { method: 'POST', path: '/v1/snapshot', mutating: true, leaderOnly: false, body: controlBody, handle: ApiServer.prototype.snapshot },
];
