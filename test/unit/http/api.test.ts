/**
 * The HTTP API against agents in this process: the key-value calls, every refusal with its
 * status code and JSON {error, hint}, size limits, token auth, and forwarding to the leader.
 */
import * as net from 'node:net';
import pino from 'pino';
import { ApiServer } from '../../../agent/http/api';
import { tokenMatches } from '../../../agent/http/respond';
import { Agent } from '../../../agent/node';
import { InProcessCluster, freePorts, waitFor } from '../../support/in_process_cluster';

interface Answer {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(port: number, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method, body, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
}

const silent = pino({ level: 'silent' });

/** Agents 1..n, each with its API on a port announced to the cluster. */
async function startWithApis(c: InProcessCluster, n: number, token: () => string | null = () => null): Promise<{ agents: Agent[]; apis: ApiServer[] }> {
  const ports = await freePorts(2 * n);
  const members = Array.from({ length: n }, (_, i) => ({ id: i + 1, raftAddress: `127.0.0.1:${ports[2 * i]}` }));
  const agents = await Promise.all(
    members.map((m, i) => Agent.start({ ...c.options(m.id, ports[2 * i], members), apiAddress: `127.0.0.1:${ports[2 * i + 1]}`, requestTimeoutMs: 1000 })),
  );
  c.agents.push(...agents);
  const apis = agents.map(
    (agent, i) =>
      new ApiServer({
        agent,
        clusterId: 'test',
        host: '127.0.0.1',
        port: ports[2 * i + 1],
        authToken: token,
        electionTimeoutMs: () => 300,
        maxKeyBytes: 64,
        maxValueBytes: 1024,
        logger: silent,
      }),
  );
  await Promise.all(apis.map((a) => a.start()));
  return { agents, apis };
}

describe('HTTP API on a one-node cluster', () => {
  let c: InProcessCluster;
  let apis: ApiServer[];
  let port: number;
  let token: string | null = null;

  beforeAll(async () => {
    c = new InProcessCluster();
    ({ apis } = await startWithApis(c, 1, () => token));
    port = apis[0].port;
    await c.leader();
  });
  afterAll(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    await c.close();
  });
  afterEach(() => {
    token = null;
  });

  test('keys: put, linearizable and stale get, delete, 404 when absent', async () => {
    const put = await call(port, 'PUT', '/v1/kv/config%2Fprimary', 'node-1');
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ key: 'config/primary', index: expect.any(Number) });
    expect((await call(port, 'GET', '/v1/kv/config/primary')).body).toEqual({ key: 'config/primary', value: 'node-1' });
    expect((await call(port, 'GET', '/v1/kv/config/primary?consistency=stale')).body.value).toBe('node-1');
    expect((await call(port, 'DELETE', '/v1/kv/config/primary')).body).toMatchObject({ deleted: true });
    expect((await call(port, 'DELETE', '/v1/kv/config/primary')).body).toMatchObject({ deleted: false });
    const absent = await call(port, 'GET', '/v1/kv/config/primary');
    expect(absent.status).toBe(404);
    expect(absent.body.error).toMatch(/no key "config\/primary"/);
  });

  test.each([
    [404, 'GET', '/v1/nothing', undefined, /no such endpoint/],
    [400, 'GET', '/v1/kv/', undefined, /the key is empty/],
    [400, 'GET', '/v1/kv/a?consistency=eventual', undefined, /consistency=eventual is not known/],
    [400, 'GET', '/v1/kv/%E0%A4%A', undefined, /not valid percent-encoding/],
    [400, 'PUT', '/v1/kv/bin', Buffer.from([0xc3, 0x28]), /not valid UTF-8/],
    [400, 'POST', '/v1/members', '{not json', /not valid JSON/],
    [400, 'POST', '/v1/members', '[1]', /must be a JSON object/],
    [400, 'POST', '/v1/members', '{"id": 0, "raft": "127.0.0.1:7001"}', /id must be a node id/],
    [400, 'POST', '/v1/members', '{"id": 2}', /"raft" is missing/],
    [400, 'POST', '/v1/members', '{"id": 2, "raft": "nowhere"}', /not host:port/],
    [400, 'POST', '/v1/members', '{"id": 2, "raft": "127.0.0.1:7001", "learner": "yes"}', /"learner" must be true or false/],
    [409, 'POST', '/v1/members', '{"id": 1, "raft": "127.0.0.1:7001"}', /node 1 is already a voter/],
    [404, 'DELETE', '/v1/members/7', undefined, /node 7 is not a member/],
    [400, 'DELETE', '/v1/members/seven', undefined, /"seven" in the path is not a node id/],
    [404, 'POST', '/v1/members/7/wait-sync', '{"timeoutMs": 100}', /node 7 is not a member/],
    [400, 'POST', '/v1/members/1/wait-sync', '{"timeoutMs": -1}', /"timeoutMs" must be/],
    [400, 'POST', '/v1/transfer-leadership', '{}', /no other voter/],
    [404, 'POST', '/v1/transfer-leadership', '{"target": 9}', /node 9 is not a member/],
  ])('%i for %s %s', async (status, method, path, body, error) => {
    const a = await call(port, method as string, path as string, body as string | Buffer | undefined);
    expect({ status: a.status, error: a.body?.error }).toEqual({ status, error: expect.stringMatching(error as RegExp) });
  });

  test('a method the path does not take is 405 with Allow', async () => {
    const a = await call(port, 'POST', '/v1/status');
    expect(a.status).toBe(405);
    expect(a.headers.get('allow')).toBe('GET');
  });

  test('keys and values over the limits are refused with 413', async () => {
    const key = await call(port, 'PUT', `/v1/kv/${'k'.repeat(65)}`, 'v');
    expect(key.status).toBe(413);
    expect(key.body).toMatchObject({ error: expect.stringMatching(/key is 65 bytes, longer than the 64 bytes/), limitBytes: 64 });
    const value = await call(port, 'PUT', '/v1/kv/big', 'x'.repeat(1025));
    expect(value.status).toBe(413);
    expect(value.body).toMatchObject({ error: expect.stringMatching(/larger than the 1024 bytes/), hint: expect.any(String) });
    expect((await call(port, 'PUT', '/v1/kv/big', 'x'.repeat(1024))).status).toBe(200);
  });

  test('a body streamed past the limit without a length is cut off with 413', async () => {
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write('PUT /v1/kv/streamed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
        const chunk = 'y'.repeat(600);
        s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
        s.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      });
      let got = '';
      s.on('data', (d) => (got += d.toString()));
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).toMatch(/larger than the 1024 bytes/);
  });

  test('with a token set, changes need it and reads do not', async () => {
    token = 'right';
    const anonymous = await call(port, 'PUT', '/v1/kv/t', 'v');
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect(anonymous.body.hint).toMatch(/Authorization: Bearer/);
    expect((await call(port, 'PUT', '/v1/kv/t', 'v', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await call(port, 'POST', '/v1/snapshot', '', { authorization: 'Basic cmlnaHQ=' })).status).toBe(401);
    expect((await call(port, 'PUT', '/v1/kv/t', 'v', { authorization: 'Bearer right' })).status).toBe(200);
    expect((await call(port, 'GET', '/v1/kv/t')).status).toBe(200);
    expect((await call(port, 'GET', '/v1/status')).status).toBe(200);
    // A new token (reload) applies to the next request.
    token = 'rotated';
    expect((await call(port, 'PUT', '/v1/kv/t', 'v', { authorization: 'Bearer right' })).status).toBe(401);
    expect((await call(port, 'PUT', '/v1/kv/t', 'v', { authorization: 'Bearer rotated' })).status).toBe(200);
  });

  test('health, leader and status of the only node', async () => {
    expect((await call(port, 'GET', '/health')).body).toMatchObject({ status: 'ok', nodeId: 1, role: 'leader', leaderId: 1 });
    expect((await call(port, 'GET', '/leader')).status).toBe(200);
    const head = await fetch(`http://127.0.0.1:${port}/health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const st = (await call(port, 'GET', '/v1/status')).body;
    expect(st).toMatchObject({ nodeId: 1, clusterId: 'test', state: 'RUNNING', role: 'leader', leaderId: 1, failure: null });
    expect(st.members).toEqual([
      expect.objectContaining({ id: 1, role: 'voter', leader: true, matchIndex: st.lastIndex, lag: 0, lastContactMs: 0, apiAddress: `127.0.0.1:${port}` }),
    ]);
  });

  test('a snapshot on demand', async () => {
    await call(port, 'PUT', '/v1/kv/s', 'v');
    const a = await call(port, 'POST', '/v1/snapshot');
    expect(a.status).toBe(200);
    expect(a.body).toMatchObject({ nodeId: 1, index: expect.any(Number), term: expect.any(Number) });
  });
});

describe('HTTP API forwarding to the leader', () => {
  let c: InProcessCluster;
  let apis: ApiServer[] = [];

  beforeEach(() => {
    c = new InProcessCluster();
  });
  afterEach(async () => {
    await Promise.all(apis.map((a) => a.stop()));
    apis = [];
    await c.close();
  });

  test('every member records its own API address through Raft, followers as well as the leader', async () => {
    const started = await startWithApis(c, 3);
    apis = started.apis;
    await c.leader();
    const expected = started.agents.map((a, i) => ({ id: a.id, apiAddress: `127.0.0.1:${apis[i].port}` }));
    await waitFor('every member to know every API address', () =>
      started.agents.every((a) => expected.every((m) => a.fsm.member(m.id)?.apiAddress === m.apiAddress)),
    );
    const st = await call(apis[0].port, 'GET', '/v1/status');
    expect(st.body.members.map((m: { id: number; apiAddress: string }) => ({ id: m.id, apiAddress: m.apiAddress }))).toEqual(expected);
  });

  test("key writes are taken by any node (Raft carries them to the leader); leader-only calls are proxied to the leader's API, 503 when it is down", async () => {
    const started = await startWithApis(c, 3);
    apis = started.apis;
    const leader = await c.leader();
    const li = started.agents.indexOf(leader);
    const fi = (li + 1) % 3;
    const follower = apis[fi];
    const followerId = started.agents[fi].id;

    // A key write through a follower is proposed there and answered once applied there.
    const put = await call(follower.port, 'PUT', '/v1/kv/fwd', 'v');
    expect(put.status).toBe(200);
    expect(put.headers.get('x-pgraft-handled-by')).toBe(String(followerId));
    expect(started.agents[fi].fsm.get('fwd')).toBe('v');
    await waitFor('the write to reach the leader', () => leader.fsm.get('fwd') === 'v');

    // A leader-only call is proxied to the leader, whose own answer comes back.
    await waitFor("the leader's API address to reach the follower", () => started.agents[fi].memberAddress(leader.id)?.api || started.agents[fi].fsm.member(leader.id)?.apiAddress);
    const remove = await call(follower.port, 'DELETE', '/v1/members/99');
    expect(remove.status).toBe(404);
    expect(remove.headers.get('x-pgraft-handled-by')).toBe(String(leader.id));

    // A request already forwarded once is not forwarded again.
    const twice = await call(follower.port, 'DELETE', '/v1/members/99', undefined, { 'x-pgraft-forwarded-by': '9' });
    expect(twice.status).toBe(503);
    expect(twice.body.error).toMatch(/received a forwarded request but is not the leader/);

    await apis[li].stop();
    const down = await call(follower.port, 'DELETE', '/v1/members/99');
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(down.body).toMatchObject({ leaderId: leader.id, error: expect.stringMatching(/cannot reach the leader/), hint: expect.any(String) });
    // Key writes do not need the leader's API at all.
    expect((await call(follower.port, 'PUT', '/v1/kv/fwd', 'w')).status).toBe(200);
  });

  test('without a quorum: no leader, 503 on writes and health, 504 on a linearizable read', async () => {
    const started = await startWithApis(c, 3);
    apis = started.apis;
    const leader = await c.leader();
    const li = started.agents.indexOf(leader);
    for (const a of started.agents) if (a !== leader) await a.stop();
    await waitFor('the leader to step down', () => !leader.isLeader(), 5000);
    const port = apis[li].port;
    // The write waits for a leader up to the request timeout, then says none was elected.
    const put = await call(port, 'PUT', '/v1/kv/x', 'v');
    expect(put.status).toBe(504);
    expect(put.body).toMatchObject({ error: expect.stringMatching(/no leader was elected within/) });
    const health = await call(port, 'GET', '/health');
    expect(health.status).toBe(503);
    expect(health.body).toMatchObject({ status: 'unhealthy', error: expect.stringMatching(/no leader/) });
    expect((await call(port, 'GET', '/leader')).status).toBe(503);
    const read = await call(port, 'GET', '/v1/kv/x');
    expect(read.status).toBe(504);
    expect((await call(port, 'GET', '/v1/kv/x?consistency=stale')).status).toBe(404);
  });
});

test('tokens compare equal only when identical', () => {
  expect(tokenMatches('abc', 'abc')).toBe(true);
  expect(tokenMatches('abc', 'abd')).toBe(false);
  expect(tokenMatches('abc', 'abcd')).toBe(false);
  expect(tokenMatches('', 'x')).toBe(false);
});
