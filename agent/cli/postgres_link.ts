import type { Logger } from 'pino';
import { AgentControlPlane } from '../control_plane';
import { Agent } from '../node';
import { PostgresBridge } from '../postgres/bridge';

/** How often a bridge that could not reach PostgreSQL tries again. */
const RETRY_MS = 1000;

/**
 * The agent's link to its local PostgreSQL: the SQL control surface and the status file.
 * PostgreSQL may start after the agent or restart under it, so a failed start is retried
 * in the background (once connected, the bridge reconnects by itself); the agent's Raft
 * work never waits on it.
 */
export class PostgresLink {
  private bridge: PostgresBridge | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  private warned = false;
  private readonly control: AgentControlPlane;
  private readonly onChange = () => this.bridge?.statusChanged();

  constructor(
    private readonly agent: Agent,
    private readonly conninfo: string,
    private readonly logger: Logger,
    private readonly publishIntervalMs: number,
  ) {
    this.control = new AgentControlPlane(agent);
  }

  start(): void {
    this.agent.on('leader', this.onChange);
    this.agent.on('membership', this.onChange);
    void this.attempt();
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const bridge = new PostgresBridge({
      conninfo: this.conninfo,
      control: this.control,
      status: () => this.control.snapshot(),
      publishIntervalMs: this.publishIntervalMs,
      logger: this.logger,
    });
    try {
      await bridge.start();
    } catch (e) {
      if (!this.warned) {
        this.logger.warn(
          { err: (e as Error).message },
          `PostgreSQL is not reachable yet (${(e as Error).message}); the SQL functions will work once it is — retrying every ${RETRY_MS} ms`,
        );
        this.warned = true;
      }
      if (!this.stopped) {
        this.timer = setTimeout(() => void this.attempt(), RETRY_MS);
        this.timer.unref?.();
      }
      return;
    }
    if (this.stopped) {
      await bridge.stop();
      return;
    }
    this.bridge = bridge;
    this.logger.info({}, 'connected to PostgreSQL: the pgraft SQL functions are served');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.agent.off('leader', this.onChange);
    this.agent.off('membership', this.onChange);
    await this.bridge?.stop();
  }
}
