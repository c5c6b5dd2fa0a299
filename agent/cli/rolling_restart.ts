import { spawn } from 'node:child_process';
import type { MemberView, StatusView } from '../http/status';
import { splitHostPort } from '../node';
import { ApiAnswer, CommandError, callApi, expectOk } from './client';
import type { ControlOptions } from './control';
import { ExitCode } from './exit_codes';

/**
 * `pgraft rolling-restart`: restart every member's agent in turn with an operator's command
 * (an upgrade is a restart onto new code), keeping a quorum and a leader throughout:
 * learners first, then the followers, the leader last after it has handed over leadership.
 * Before each restart every other member must be healthy; after it, the member must run
 * again (its agent's start time changed), be healthy and hold the leader's whole log before
 * the next one goes.
 */
export interface RollingRestartOptions extends ControlOptions {
  /** Shell command that restarts one node's agent; NODE_ID, NODE_HOST, NODE_API, NODE_RAFT and NODE_ROLE in its environment name the node. */
  exec: string;
  /** Per node: how long the command, the return and the catch-up may take. */
  nodeTimeoutMs: number;
  /** Print the plan only. */
  dryRun: boolean;
  /** Restart only these members (say, one first, to watch the new version); default all. */
  nodes?: number[];
}

/** One node to restart, in the order they are restarted. */
export interface RestartStep {
  id: number;
  api: string;
  raft: string;
  /** Its part when the plan was made. */
  part: 'learner' | 'follower' | 'leader';
}

/** Learners first, then the voters that follow, then the leader; by id within each. */
export function restartOrder(members: readonly MemberView[], leaderId: number): RestartStep[] {
  const part = (m: MemberView): RestartStep['part'] => (m.id === leaderId ? 'leader' : m.role === 'learner' ? 'learner' : 'follower');
  const rank = { learner: 0, follower: 1, leader: 2 };
  return members
    .map((m) => ({ id: m.id, api: m.apiAddress, raft: m.raftAddress, part: part(m) }))
    .sort((a, b) => rank[a.part] - rank[b.part] || a.id - b.id);
}

/** The environment the restart command sees for one node. */
export function stepEnv(step: RestartStep): Record<string, string> {
  return {
    NODE_ID: String(step.id),
    NODE_API: step.api,
    NODE_HOST: splitHostPort(step.api).host,
    NODE_RAFT: step.raft,
    NODE_ROLE: step.part,
  };
}

const POLL_MS = 200;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** What --json prints for one node restarted. */
interface Restarted {
  id: number;
  seconds: number;
  versionBefore: string;
  versionAfter: string;
}

class Run {
  readonly done: Restarted[] = [];

  constructor(private readonly o: RollingRestartOptions) {}

  /** A progress line: on stdout, or on stderr when stdout carries --json's answer. */
  out(line: string): void {
    (this.o.json ? process.stderr : process.stdout).write(`${line}\n`);
  }

  /** The same options aimed at another agent's API; `timeoutMs` to answer (default --request-timeout). */
  private at(api: string, timeoutMs = this.o.timeoutMs): ControlOptions {
    return { ...this.o, api, timeoutMs: Math.max(1, timeoutMs) };
  }

  private async status(api: string, limitMs?: number): Promise<StatusView> {
    return expectOk(await callApi(this.at(api, limitMs), 'GET', '/v1/status'), this.at(api)) as unknown as StatusView;
  }

  /** The leader's view of the cluster, reached through --api. */
  async leaderView(): Promise<StatusView> {
    const local = await this.status(this.o.api);
    if (local.role === 'leader') return local;
    if (!local.leaderApi) {
      throw new CommandError(
        local.leaderId
          ? `node ${local.nodeId} knows node ${local.leaderId} as the leader but not its API address yet, and a rolling restart starts from the leader`
          : `node ${local.nodeId} knows no leader, and a rolling restart needs one`,
        ExitCode.UNAVAILABLE,
        'wait for the cluster to elect a leader (pgraft health), then run the command again',
      );
    }
    const view = await this.status(local.leaderApi);
    if (view.role !== 'leader') {
      throw new CommandError(`leadership is moving (node ${view.nodeId} no longer leads)`, ExitCode.UNAVAILABLE, 'run the command again in a moment');
    }
    return view;
  }

  /** Why a member is not fit to lose a peer now; null when it is healthy. */
  private async unhealthy(step: RestartStep): Promise<string | null> {
    let a: ApiAnswer;
    try {
      a = await callApi(this.at(step.api), 'GET', '/health');
    } catch (e) {
      return (e as Error).message;
    }
    if (a.status === 200) return null;
    return typeof a.body?.error === 'string' ? a.body.error : `its API answered HTTP ${a.status}`;
  }

  /** Refuses to go on unless every member other than `except` is healthy. */
  async requireHealthy(plan: readonly RestartStep[], except: number | null): Promise<void> {
    for (const s of plan) {
      if (s.id === except) continue;
      const why = await this.unhealthy(s);
      if (why === null) continue;
      const next = except === null ? 'restarting any node now' : `restarting node ${except} now`;
      throw new CommandError(
        `node ${s.id} (${s.api}) is not healthy: ${why}; ${next} could leave the cluster without a quorum`,
        ExitCode.UNAVAILABLE,
        `bring node ${s.id} back (pgraft health --api ${s.api}), then run the command again${this.progress()}`,
      );
    }
  }

  private progress(): string {
    return this.done.length === 0 ? '' : `; node ${this.done.map((d) => d.id).join(', ')} restarted already (restarting again is harmless)`;
  }

  /** Runs the operator's restart command for one node; fails unless it exits 0 within the node's time. */
  runCommand(step: RestartStep): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', this.o.exec], { env: { ...process.env, ...stepEnv(step) }, stdio: ['ignore', 'inherit', 'inherit'] });
      const timer = setTimeout(() => child.kill('SIGKILL'), this.o.nodeTimeoutMs);
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new CommandError(`cannot run the restart command for node ${step.id}: ${e.message}`, ExitCode.FAILED));
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) return resolve();
        const how = signal === 'SIGKILL' ? `did not finish within ${seconds(this.o.nodeTimeoutMs)} and was killed` : signal ? `was killed by ${signal}` : `exited with ${code}`;
        reject(
          new CommandError(
            `the restart command for node ${step.id} ${how}`,
            ExitCode.FAILED,
            `node ${step.id}'s agent may or may not have restarted: check it with pgraft status --api ${step.api}, fix the command, and run it again${this.progress()}`,
          ),
        );
      });
    });
  }

  /** Waits until the node's agent runs again (a new start time), is healthy, and holds the leader's log. */
  async waitBack(step: RestartStep, before: StatusView, deadline: number): Promise<StatusView> {
    let last = 'its API did not answer';
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CommandError(
          `node ${step.id} did not come back within ${seconds(this.o.nodeTimeoutMs)}: ${last}`,
          ExitCode.TIMEOUT,
          `check node ${step.id}'s agent and its log; run the command again once it is healthy${this.progress()}`,
        );
      }
      try {
        // Each probe gets at least a second, so that one cut short by the deadline does not
        // hide what the probes before it found.
        const now = await this.status(step.api, Math.min(this.o.timeoutMs, Math.max(left, 1000)));
        if (now.startedAt === before.startedAt) {
          last = `its agent still runs since ${before.startedAt}: the restart command did not restart it`;
        } else {
          const why = await this.unhealthy(step);
          if (why === null && now.leaderApi) return this.caughtUp(step, now, deadline);
          last = why ?? 'it knows no leader yet';
        }
      } catch (e) {
        last = (e as Error).message;
      }
      await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
    }
  }

  private async caughtUp(step: RestartStep, now: StatusView, deadline: number): Promise<StatusView> {
    const timeoutMs = Math.max(1, deadline - Date.now());
    const leader = this.at(now.leaderApi!, timeoutMs + 10_000);
    expectOk(await callApi(leader, 'POST', `/v1/members/${step.id}/wait-sync`, { timeoutMs }), leader);
    return now;
  }

  async restart(step: RestartStep, plan: readonly RestartStep[]): Promise<void> {
    const started = Date.now();
    const deadline = started + this.o.nodeTimeoutMs;
    await this.requireHealthy(plan, step.id);
    const before = await this.status(step.api);
    if (before.role === 'leader') {
      const voters = before.members.filter((m) => m.role === 'voter').length;
      if (voters > 1) {
        const moved = expectOk(await callApi(this.at(step.api), 'POST', '/v1/transfer-leadership', {}), this.at(step.api));
        this.out(`node ${step.id}: handed leadership to node ${String(moved.leaderId)}`);
      } else {
        this.out(`node ${step.id} is the only voter: the cluster cannot take writes while it restarts`);
      }
    }
    this.out(`node ${step.id}: restarting (${before.version}, running since ${before.startedAt})`);
    await this.runCommand(step);
    const after = await this.waitBack(step, before, deadline);
    const took = Date.now() - started;
    this.done.push({ id: step.id, seconds: Math.round(took / 100) / 10, versionBefore: before.version, versionAfter: after.version });
    const upgrade = after.version === before.version ? after.version : `${before.version} -> ${after.version}`;
    this.out(`node ${step.id}: back and caught up in ${seconds(took)} (${upgrade})`);
  }
}

export async function rollingRestart(o: RollingRestartOptions): Promise<number> {
  const run = new Run(o);
  const view = await run.leaderView();
  const members = restartOrder(view.members, view.nodeId);
  const strangers = (o.nodes ?? []).filter((id) => !members.some((s) => s.id === id));
  if (strangers.length > 0) {
    throw new CommandError(
      `--nodes names ${strangers.length === 1 ? 'a node that is not a member' : 'nodes that are not members'}: ${strangers.join(', ')}`,
      ExitCode.USAGE,
      `the members are ${members
        .map((s) => s.id)
        .sort((a, b) => a - b)
        .join(', ')}`,
    );
  }
  const plan = o.nodes ? members.filter((s) => o.nodes!.includes(s.id)) : members;
  const unknown = members.filter((s) => !s.api);
  if (unknown.length > 0) {
    throw new CommandError(
      `the API address of node ${unknown.map((s) => s.id).join(', ')} is not known, so its health cannot be checked`,
      ExitCode.UNAVAILABLE,
      'each agent records its API address once it runs and knows a leader: start it, or wait a moment and run the command again',
    );
  }
  const some = plan.length < members.length ? ` of ${members.length}` : '';
  run.out(`cluster ${view.clusterId}: restarting ${plan.length}${some} node${plan.length === 1 && !some ? '' : 's'} one at a time: ${plan.map((s) => `${s.id} (${s.part})`).join(', ')}`);
  if (o.dryRun) {
    for (const s of plan) run.out(`  node ${s.id}: ${Object.entries(stepEnv(s)).map(([k, v]) => `${k}=${v}`).join(' ')}`);
    run.out('dry run: nothing was restarted');
    if (o.json) process.stdout.write(`${JSON.stringify({ plan: plan.map((s) => ({ ...s, env: stepEnv(s) })) }, null, 2)}\n`);
    return ExitCode.OK;
  }
  // Every member's health counts, restarted or not: each one is part of the quorum.
  await run.requireHealthy(members, null);
  for (const step of plan) await run.restart(step, members);
  const end = await run.leaderView();
  run.out(`done: ${plan.length} node${plan.length === 1 ? '' : 's'} restarted; node ${end.nodeId} leads in term ${end.term}`);
  if (o.json) process.stdout.write(`${JSON.stringify({ restarted: run.done, leaderId: end.nodeId, term: end.term }, null, 2)}\n`);
  return ExitCode.OK;
}
