import * as http from 'node:http';
import type { Logger } from 'pino';
import type { Agent } from '../node';
import { close, listen } from './listen';

export interface MetricsServerOptions {
  agent: Agent;
  host: string;
  port: number;
  logger: Logger;
}

/**
 * GET /metrics on pgraft.metrics_port: the agent's registry (AgentMetrics) in the Prometheus
 * text format. Gauges that describe other members are refreshed at each scrape, so a member
 * that left, or a leader that stepped down, leaves no stale series behind.
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

  /** Per-member gauges from the current state: lag as the leader sees it, time since contact. */
  private refresh(): void {
    const a = this.opts.agent;
    const m = a.metrics;
    m.running.set(a.state === 'RUNNING' ? 1 : 0);
    m.peerLag.reset();
    const progress = a.progress();
    if (progress && a.state === 'RUNNING') {
      const last = a.status().lastIndex;
      for (const [id, pr] of progress) {
        if (id !== a.id) m.peerLag.set({ peer: String(id) }, Math.max(0, last - pr.match));
      }
    }
    m.peerLastContact.reset();
    const conf = a.status().config;
    const now = Date.now();
    for (const id of [...conf.voters, ...conf.learners]) {
      const seen = a.lastContact.get(id);
      if (id !== a.id && seen !== undefined) m.peerLastContact.set({ peer: String(id) }, Math.max(0, now - seen) / 1000);
    }
  }
}
