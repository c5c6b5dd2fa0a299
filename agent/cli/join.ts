import type * as tls from 'node:tls';
import type { Logger } from 'pino';
import type { Agent } from '../node';
import { ApiAnswer, CommandError, callApi } from './client';
import { ExitCode, exitCodeForStatus } from './exit_codes';

export interface JoinOptions {
  agent: Agent;
  logger: Logger;
  /** host:port of a member's API. */
  target: string;
  self: { id: number; raft: string; api: string };
  token?: string;
  /** The cluster's API is HTTPS (pgraft.api_tls): how to connect to the member. */
  tls?: tls.ConnectionOptions;
  timeoutMs: number;
  /** Join as a learner only; an operator promotes it later (pgraft add-voter). */
  learner: boolean;
}

const RETRY_MS = 500;
/** A retried failure is logged at most this often. */
const REPORT_EVERY_MS = 5000;

/**
 * Asks a member to add this node: as a learner first, then, once it has caught up, as a
 * voter (the leader does both; see Agent.addMember). The node learns the members'
 * addresses from that member's status first (the leader's handshake would tell it too).
 * Retries while the cluster cannot serve (no leader, member down,
 * another change in progress) until the deadline; refusals that a retry cannot fix end it.
 */
export async function joinCluster(o: JoinOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs;
  const client = (timeoutMs: number) => ({ api: o.target, token: o.token, tls: o.tls, timeoutMs });
  let last = 'no attempt finished';
  let lastReport = Date.now();
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new CommandError(`not added within ${o.timeoutMs} ms; last problem: ${last}`, ExitCode.TIMEOUT, 'check pgraft status on the cluster, then start this node again');
    }
    try {
      const st = await callApi(client(Math.min(left, 3000)), 'GET', '/v1/status');
      if (st.status === 200 && st.body && Array.isArray(st.body.members)) {
        for (const m of st.body.members as { id: number; raftAddress: string; apiAddress: string; role: string }[]) {
          if (m.raftAddress) o.agent.learnMemberAddress(m.id, m.raftAddress, m.apiAddress || undefined);
          if (m.id === o.self.id && (m.role === 'voter' || o.learner)) {
            o.logger.info({ via: o.target, role: m.role }, `this node is already a ${m.role} of the cluster`);
            return;
          }
        }
      }
      const answer = await callApi(client(left + 5000), 'POST', '/v1/members', {
        id: o.self.id,
        raft: o.self.raft,
        api: o.self.api,
        learner: o.learner,
        timeoutMs: Math.max(1000, left - 1000),
      });
      const role = o.learner ? 'learner' : 'voter';
      if (answer.status === 200) {
        o.logger.info({ via: o.target, role }, `joined the cluster as a ${role}`);
        return;
      }
      if (answer.status === 409 && (answer.body?.role === 'voter' || answer.body?.role === role)) {
        o.logger.info({ via: o.target, role: answer.body.role }, `this node is already a ${String(answer.body.role)} of the cluster`);
        return;
      }
      last = describe(answer);
      if (!retryable(answer)) throw new CommandError(`the cluster refused to add this node: ${last}`, exitCodeForStatus(answer.status));
    } catch (e) {
      if (!(e instanceof CommandError)) throw e;
      if (e.exitCode !== ExitCode.UNREACHABLE && e.exitCode !== ExitCode.TIMEOUT) throw e;
      last = e.message;
    }
    if (Date.now() - lastReport >= REPORT_EVERY_MS) {
      lastReport = Date.now();
      o.logger.warn({ via: o.target }, `still trying to join the cluster: ${last}`);
    }
    await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, Math.max(0, deadline - Date.now()))));
  }
}

function retryable(a: ApiAnswer): boolean {
  return a.status === 503 || a.status === 504 || a.status === 502 || a.status === 409 || a.status === 500;
}

function describe(a: ApiAnswer): string {
  const error = typeof a.body?.error === 'string' ? a.body.error : `HTTP ${a.status}`;
  return `${error} (HTTP ${a.status})`;
}
