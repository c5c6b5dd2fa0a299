import * as http from 'node:http';
import type { Logger } from 'pino';
import type { Agent } from '../node';
import { StateRole } from '../raft/types';
import { close, listen } from './listen';

export interface MetricsServerOptions {
  agent: Agent;
  host: string;
  port: number;
  logger: Logger;
}

/**
 * GET /metrics on pgraft.metrics_port: the agent's registry (AgentMetrics) in the Prometheus
 * text format. Gauges are read from the agent's state at each scrape.
 */
export class MetricsServer {
  private server: http.Server | null = null;
  private boundPort = 0;

  constructor(private readonly opts: MetricsServerOptions) {}

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => void this.serve(req, res));
    this.boundPort = await listen(server, this.opts.host, this.opts.port, 'metrics', 'pgraft.metrics_port');
    this.server = server;
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await close(s);
  }

  private async serve(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.resume();
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found: metrics are served at /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${req.method} is not allowed on /metrics; use GET\n`);
      return;
    }
    try {
      this.refresh();
      const registry = this.opts.agent.metrics.registry;
      const text = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType, 'content-length': Buffer.byteLength(text) });
      res.end(req.method === 'HEAD' ? undefined : text);
    } catch (e) {
      this.opts.logger.warn({ err: (e as Error).message }, `cannot collect metrics: ${(e as Error).message}`);
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`cannot collect metrics: ${(e as Error).message}\n`);
    }
  }

  /**
   * Every gauge from the agent's state as it is now. They are read here rather than kept up
   * to date as the agent runs: a scrape every few seconds costs less than a set of gauge
   * updates after every batch of writes.
   */
  private refresh(): void {
    const a = this.opts.agent;
    const m = a.metrics;
    const st = a.status();
    m.running.set(a.state === 'RUNNING' ? 1 : 0);
    m.term.set(st.hardState.term);
    m.leaderId.set(st.softState.lead);
    m.isLeader.set(st.softState.role === StateRole.Leader ? 1 : 0);
    m.commitIndex.set(st.hardState.commit);
    m.appliedIndex.set(a.fsm.appliedIndex);
    m.lastIndex.set(st.lastIndex);
    m.logSize.set(Math.max(0, st.lastIndex - st.firstIndex + 1));
    m.members.set({ role: 'voter' }, st.config.voters.length);
    m.members.set({ role: 'learner' }, st.config.learners.length);
    // Per-member gauges start empty at each scrape, so a member that left, or a leader that
    // stepped down, leaves no stale series behind.
    m.peerLag.reset();
    if (st.progress && a.state === 'RUNNING') {
      for (const [id, pr] of st.progress) {
        if (id !== a.id) m.peerLag.set({ peer: String(id) }, Math.max(0, st.lastIndex - pr.match));
      }
    }
    m.peerLastContact.reset();
    const now = Date.now();
    for (const id of [...st.config.voters, ...st.config.learners]) {
      const seen = a.lastContact.get(id);
      if (id !== a.id && seen !== undefined) m.peerLastContact.set({ peer: String(id) }, Math.max(0, now - seen) / 1000);
    }
  }
}
