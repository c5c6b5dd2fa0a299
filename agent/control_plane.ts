import { Op, decodeProposal } from './fsm/commands';
import { decodeConfChange } from './raft/confchange';
import { ConfChangeType, EntryType, NONE, StateRole } from './raft/types';
import { Agent, AgentError, NotLeaderError, splitHostPort } from './node';
import {
  ControlError,
  ControlPlane,
  FollowerProgress,
  KvStats,
  LogEntryInfo,
  NodeStatus,
  RaftRole,
  SqlState,
  StatusSnapshot,
  changeInProgressError,
  notLeaderError,
} from './postgres/control';

/**
 * The SQL control surface's view of an agent: each pgraft_* control function becomes one
 * Agent operation, and every Agent failure becomes the ERROR (SQLSTATE, message, hint) a
 * DBA would expect to see.
 */
export class AgentControlPlane implements ControlPlane {
  private gets = 0;

  constructor(private readonly agent: Agent) {}

  init(): Promise<boolean> {
    return this.run(async () => {
      await this.agent.initCluster();
      return true;
    });
  }

  addNode(nodeId: number, address: string, port: number): Promise<boolean> {
    return this.run(async () => {
      const raft = address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
      await this.agent.addMember(nodeId, raft, undefined, false);
      return true;
    });
  }

  removeNode(nodeId: number): Promise<boolean> {
    return this.run(async () => {
      await this.agent.removeMember(nodeId);
      return true;
    });
  }

  transferLeadership(target: number | null): Promise<boolean> {
    return this.run(async () => {
      await this.agent.transferLeadership(target ?? undefined);
      return true;
    });
  }

  logAppend(data: string): Promise<number> {
    return this.run(async () => (await this.agent.propose({ op: Op.Append, data })).index);
  }

  logGetEntry(index: number): Promise<LogEntryInfo | null> {
    return this.run(async () => {
      const e = this.agent.entry(index);
      if (!e) return null;
      if (e.type === EntryType.ConfChange) {
        const cc = decodeConfChange(e.data);
        const what = { [ConfChangeType.AddVoter]: 'add voter', [ConfChangeType.AddLearner]: 'add learner', [ConfChangeType.RemoveNode]: 'remove node' }[cc.type];
        return { index: e.index, term: e.term, type: 'conf_change', data: `${what} ${cc.nodeId}` };
      }
      if (e.data.length === 0) return { index: e.index, term: e.term, type: 'normal', data: null };
      const { command } = decodeProposal(e.data);
      const data =
        command.op === Op.Append
          ? command.data
          : command.op === Op.Put
            ? `put ${command.key}`
            : command.op === Op.Delete
              ? `delete ${command.key}`
              : `member ${command.nodeId} api ${command.apiAddress}`;
      return { index: e.index, term: e.term, type: 'normal', data };
    });
  }

  kvPut(key: string, value: string): Promise<boolean> {
    return this.run(async () => (await this.agent.propose({ op: Op.Put, key, value })).value === true);
  }

  kvGet(key: string): Promise<string | null> {
    return this.run(async () => {
      this.gets++;
      return this.agent.get(key);
    });
  }

  kvDelete(key: string): Promise<boolean> {
    return this.run(async () => (await this.agent.propose({ op: Op.Delete, key })).value === true);
  }

  kvListKeys(): Promise<string[]> {
    return this.run(async () => {
      await this.agent.readBarrier();
      return this.agent.fsm.keys();
    });
  }

  kvGetStats(): Promise<KvStats> {
    return this.run(async () => {
      const s = this.agent.fsm.kvStats();
      return { numKeys: s.keys, totalBytes: s.bytes, puts: s.puts, gets: this.gets, deletes: s.deletes, appliedIndex: this.agent.fsm.appliedIndex };
    });
  }

  replicationStatus(): Promise<FollowerProgress[]> {
    return this.run(async () => {
      const progress = this.agent.progress();
      if (!progress) throw new NotLeaderError(this.agent.leaderId(), '', this.agent.memberAddress(this.agent.leaderId())?.raft ?? '');
      const last = this.agent.status().lastIndex;
      const out: FollowerProgress[] = [];
      for (const [id, pr] of progress) {
        if (id === this.agent.id) continue;
        const { host, port } = this.address(id);
        out.push({
          nodeId: id,
          address: host,
          port,
          role: pr.isLearner ? 'learner' : 'voter',
          matchIndex: pr.match,
          nextIndex: pr.next,
          lag: Math.max(0, last - pr.match),
          state: pr.state,
          inflight: pr.inflight,
          lastContactMs: this.agent.lastContact.get(id) ?? null,
        });
      }
      return out.sort((a, b) => a.nodeId - b.nodeId);
    });
  }

  private address(id: number): { host: string; port: number } {
    const raft = this.agent.memberAddress(id)?.raft ?? this.agent.fsm.member(id)?.raftAddress ?? '';
    try {
      return splitHostPort(raft);
    } catch {
      return { host: '', port: 0 };
    }
  }

  /** Runs an operation and turns agent failures into the ERRORs SQL raises. */
  private async run<T>(op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (e) {
      throw this.toControlError(e);
    }
  }

  private toControlError(e: unknown): unknown {
    if (e instanceof ControlError) return e;
    if (e instanceof NotLeaderError) {
      if (e.leaderId === NONE) return notLeaderError(null);
      const { host, port } = this.address(e.leaderId);
      return notLeaderError({ id: e.leaderId, address: host, port });
    }
    if (e instanceof AgentError) {
      switch (e.code) {
        case 'conflict':
          return /membership change/.test(e.message) ? changeInProgressError() : new ControlError(e.message, SqlState.ChangeInProgress);
        case 'invalid':
          return new ControlError(e.message, SqlState.InvalidParameter);
        case 'timeout':
          return new ControlError(e.message, SqlState.AgentTimeout, 'Check that a majority of the nodes is up and reachable: SELECT * FROM pgraft_get_nodes();');
        case 'unavailable':
          return new ControlError(e.message, SqlState.NotLeader, 'Retry shortly; SELECT pgraft_get_leader() shows whether a leader is known.');
        default:
          return new ControlError(e.message, SqlState.Internal);
      }
    }
    return e;
  }

  /** What the state file publishes for the read-only status functions. */
  snapshot(): StatusSnapshot {
    const a = this.agent;
    const st = a.status();
    const role: RaftRole = st.config.learners.includes(a.id)
      ? 'learner'
      : ({ [StateRole.Leader]: 'leader', [StateRole.Follower]: 'follower', [StateRole.Candidate]: 'candidate', [StateRole.PreCandidate]: 'pre-candidate' } as const)[
          st.softState.role
        ];
    const progress = st.progress;
    const nodes: NodeStatus[] = [];
    for (const id of [...st.config.voters, ...st.config.learners].sort((x, y) => x - y)) {
      const { host, port } = this.address(id);
      const pr = progress?.get(id);
      nodes.push({
        id,
        address: host,
        port,
        role: st.config.learners.includes(id) ? 'learner' : 'voter',
        matchIndex: pr ? pr.match : null,
        lag: pr ? Math.max(0, st.lastIndex - pr.match) : null,
        lastContactMs: id === a.id ? null : (a.lastContact.get(id) ?? null),
      });
    }
    const c = a.counters;
    return {
      nodeId: a.id,
      term: st.hardState.term,
      leaderId: st.softState.lead,
      role,
      workerState: a.workerState(),
      nodes,
      log: {
        logSize: Math.max(0, st.lastIndex - st.firstIndex + 1),
        lastIndex: st.lastIndex,
        commitIndex: st.hardState.commit,
        lastApplied: a.fsm.appliedIndex,
        replicated: c.messagesSent,
        committed: c.proposalsCommitted,
        applied: a.fsm.appliedIndex,
        errors: c.storageErrors + c.proposalsFailed,
      },
      counters: {
        messagesProcessed: c.messagesReceived,
        heartbeatsSent: c.heartbeatsSent,
        electionsTriggered: c.electionsTriggered,
      },
    };
  }
}
