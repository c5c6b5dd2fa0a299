import type { Logger } from 'pino';
import type { Agent } from '../node';
import { NONE } from '../raft/types';
import { apiAddressOf } from './status';

const CHECK_EVERY_MS = 1000;

/**
 * Records this node's API address in the replicated state when it is not there yet (a
 * founding member's bootstrap entry carries only its Raft address), by asking the leader
 * through PUT /v1/members/<id>/api. A leader records its own when elected (Agent); this
 * covers the followers, so that `pgraft status` shows every member's API and a client can
 * be sent to any of them. Quiet: failures are retried at the next check and logged at debug.
 */
export class ApiAddressAnnouncer {
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly agent: Agent,
    private readonly apiAddress: string,
    private readonly token: () => string | null,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), CHECK_EVERY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    const a = this.agent;
    if (this.inFlight || a.state !== 'RUNNING' || a.apiAddressRecorded() || a.isLeader()) return;
    const lead = a.leaderId();
    const conf = a.status().config;
    if (lead === NONE || (!conf.voters.includes(a.id) && !conf.learners.includes(a.id))) return;
    const leaderApi = apiAddressOf(a, lead);
    if (!leaderApi) return;
    this.inFlight = true;
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      const token = this.token();
      if (token) headers.authorization = `Bearer ${token}`;
      const res = await fetch(`http://${leaderApi}/v1/members/${a.id}/api`, {
        method: 'PUT',
        headers,
        body: JSON.stringify({ api: this.apiAddress }),
        signal: AbortSignal.timeout(5000),
      });
      const text = await res.text();
      if (res.status === 200) this.logger.debug({ api: this.apiAddress, leader: lead }, 'API address recorded in the cluster');
      else this.logger.debug({ status: res.status, answer: text.slice(0, 200) }, 'the leader did not record this node\'s API address yet');
    } catch (e) {
      this.logger.debug({ err: (e as Error).message }, 'cannot reach the leader to record this node\'s API address');
    } finally {
      this.inFlight = false;
    }
  }
}
