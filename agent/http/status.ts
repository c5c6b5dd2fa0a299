import type { Agent } from '../node';
import { NONE, NodeId, StateRole } from '../raft/types';
import { VERSION } from '../version';

/** One member as GET /v1/status shows it. */
export interface MemberView {
  id: NodeId;
  /** host:port of its Raft port; '' when not known to this node. */
  raftAddress: string;
  /** host:port of its HTTP API; '' when it has not been announced. */
  apiAddress: string;
  role: 'voter' | 'learner';
  leader: boolean;
  /** Highest log index known to be on that member: only the leader knows (null elsewhere). */
  matchIndex: number | null;
  /** Entries it is behind the leader's last index (leader's view; null elsewhere). */
  lag: number | null;
  /** Milliseconds since this node last heard from it; 0 for this node itself, null if never. */
  lastContactMs: number | null;
}

/** The body of GET /v1/status. */
export interface StatusView {
  nodeId: NodeId;
  clusterId: string;
  /** The agent's lifecycle state (RUNNING, ERROR, ...). */
  state: string;
  /** Why the agent is in ERROR, else null. */
  failure: string | null;
  /** The pgraft version the agent runs. */
  version: string;
  /** When the agent process started (ISO 8601): a restart changes it. */
  startedAt: string;
  role: StateRole;
  term: number;
  leaderId: NodeId | null;
  leaderApi: string | null;
  commitIndex: number;
  appliedIndex: number;
  lastIndex: number;
  firstIndex: number;
  members: MemberView[];
}

/** Where a member's HTTP API listens, as this node knows it; '' when unknown (or for NONE). */
export function apiAddressOf(agent: Agent, id: NodeId): string {
  if (id === NONE) return '';
  return agent.memberAddress(id)?.api || agent.fsm.member(id)?.apiAddress || '';
}

export function statusView(agent: Agent, clusterId: string, startedAt: string, now = Date.now()): StatusView {
  const st = agent.status();
  const lead = st.softState.lead;
  const progress = st.progress;
  const ids = new Set<NodeId>([...st.config.voters, ...st.config.learners]);
  const members: MemberView[] = [...ids]
    .sort((a, b) => a - b)
    .map((id) => {
      const raft = agent.memberAddress(id)?.raft || agent.fsm.member(id)?.raftAddress || '';
      const pr = progress?.get(id);
      const match = pr ? (id === agent.id ? st.lastIndex : pr.match) : null;
      const contact = id === agent.id ? now : agent.lastContact.get(id);
      return {
        id,
        raftAddress: raft,
        apiAddress: apiAddressOf(agent, id),
        role: st.config.learners.includes(id) ? 'learner' : 'voter',
        leader: id === lead,
        matchIndex: match,
        lag: match === null ? null : Math.max(0, st.lastIndex - match),
        lastContactMs: contact === undefined ? null : Math.max(0, now - contact),
      };
    });
  const leaderApi = apiAddressOf(agent, lead);
  return {
    nodeId: agent.id,
    clusterId,
    state: agent.state,
    failure: agent.failure?.message ?? null,
    version: VERSION,
    startedAt,
    role: st.softState.role,
    term: st.hardState.term,
    leaderId: lead === NONE ? null : lead,
    leaderApi: leaderApi || null,
    commitIndex: st.hardState.commit,
    appliedIndex: agent.fsm.appliedIndex,
    lastIndex: st.lastIndex,
    firstIndex: st.firstIndex,
    members,
  };
}
