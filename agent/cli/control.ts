import type { StatusView } from '../http/status';
import { ClientOptions, CommandError, callApi, expectOk } from './client';
import { ExitCode } from './exit_codes';
import { formatStatus } from './status_table';

/** The options every control command shares. */
export interface ControlOptions extends ClientOptions {
  /** Print the API's JSON answer instead of a sentence. */
  json: boolean;
}

/** A catch-up wait gets this much more time on the client than on the leader. */
const MARGIN_MS = 10_000;

function print(o: ControlOptions, body: Record<string, unknown>, sentence: string): void {
  process.stdout.write(o.json ? `${JSON.stringify(body, null, 2)}\n` : `${sentence}\n`);
}

export async function status(o: ControlOptions): Promise<number> {
  const local = expectOk(await callApi(o, 'GET', '/v1/status'), o) as unknown as StatusView;
  let leaderView: StatusView | null = null;
  if (local.role === 'leader') leaderView = local;
  else if (local.leaderApi) {
    // Only the leader tracks replication progress; ask it, and do without if it does not answer.
    leaderView = await callApi({ ...o, api: local.leaderApi }, 'GET', '/v1/status').then(
      (a) => (a.status === 200 ? (a.body as unknown as StatusView) : null),
      () => null,
    );
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(leaderView && leaderView !== local ? { ...local, leaderView } : local, null, 2)}\n`);
  } else {
    const known = leaderView ? [local, leaderView] : [local];
    process.stdout.write(`${formatStatus(local, leaderView, await memberVersions(leaderView ?? local, known, o))}\n`);
  }
  return ExitCode.OK;
}

/** How long `status` waits for each other member to tell its version. */
const VERSION_TIMEOUT_MS = 2000;

/**
 * The pgraft version each member runs (what a rolling upgrade changes), asked of each member
 * not already heard from; a member that does not answer in time is left out.
 */
async function memberVersions(view: StatusView, known: StatusView[], o: ControlOptions): Promise<Map<number, string>> {
  const versions = new Map(known.map((s) => [s.nodeId, s.version]));
  const ask = view.members.filter((m) => !versions.has(m.id) && m.apiAddress !== '');
  await Promise.all(
    ask.map(async (m) => {
      const a = await callApi({ ...o, api: m.apiAddress, timeoutMs: Math.min(o.timeoutMs, VERSION_TIMEOUT_MS) }, 'GET', '/v1/status').catch(() => null);
      if (a?.status === 200 && typeof a.body?.version === 'string') versions.set(m.id, a.body.version);
    }),
  );
  return versions;
}

export async function health(o: ControlOptions): Promise<number> {
  const a = await callApi(o, 'GET', '/health');
  const b = a.body ?? {};
  if (a.status === 200) {
    print(o, b, `healthy: node ${String(b.nodeId)} is ${String(b.role)}, leader ${String(b.leaderId)}, term ${String(b.term)}`);
    return ExitCode.OK;
  }
  if (a.status === 503) {
    if (o.json) process.stdout.write(`${JSON.stringify(b, null, 2)}\n`);
    else process.stdout.write(`unhealthy: ${String(b.error ?? 'no reason given')}${typeof b.hint === 'string' ? `\n    hint: ${b.hint}` : ''}\n`);
    return ExitCode.UNAVAILABLE;
  }
  expectOk(a, o);
  return ExitCode.FAILED;
}

export async function addMember(o: ControlOptions, id: number, raft: string, api: string | undefined, learner: boolean, timeoutMs: number): Promise<number> {
  const body: Record<string, unknown> = { id, raft, learner, timeoutMs };
  if (api) body.api = api;
  const answer = expectOk(await callApi({ ...o, timeoutMs: timeoutMs + MARGIN_MS }, 'POST', '/v1/members', body), o);
  print(o, answer, learner ? `node ${id} added as a learner (${raft})` : `node ${id} added as a voter (${raft}); it had caught up with the log first`);
  return ExitCode.OK;
}

export async function remove(o: ControlOptions, id: number): Promise<number> {
  const answer = expectOk(await callApi(o, 'DELETE', `/v1/members/${id}`), o);
  print(o, answer, `node ${id} removed from the cluster`);
  return ExitCode.OK;
}

export async function transferLeadership(o: ControlOptions, target: number | undefined): Promise<number> {
  const answer = expectOk(await callApi(o, 'POST', '/v1/transfer-leadership', target === undefined ? {} : { target }), o);
  print(o, answer, `leadership moved from node ${String(answer.from)} to node ${String(answer.leaderId)}`);
  return ExitCode.OK;
}

export async function waitSync(o: ControlOptions, node: number, timeoutMs: number): Promise<number> {
  const answer = expectOk(await callApi({ ...o, timeoutMs: timeoutMs + MARGIN_MS }, 'POST', `/v1/members/${node}/wait-sync`, { timeoutMs }), o);
  print(o, answer, `node ${node} has caught up (match index ${String(answer.matchIndex)})`);
  return ExitCode.OK;
}

export async function snapshot(o: ControlOptions): Promise<number> {
  const answer = expectOk(await callApi(o, 'POST', '/v1/snapshot', {}), o);
  print(o, answer, `node ${String(answer.nodeId)} took a snapshot at index ${String(answer.index)} (term ${String(answer.term)})`);
  return ExitCode.OK;
}

/** A node id from the command line, or a usage error. */
export function parseNodeId(v: unknown, what: string): number {
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 2_147_483_647) {
    throw new CommandError(`${what} must be a node id (an integer from 1); got "${String(v)}"`, ExitCode.USAGE);
  }
  return n;
}
