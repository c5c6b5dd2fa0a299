import { SeededRng } from '../../agent/raft/rng';
import { ConfChangeType, NodeId } from '../../agent/raft/types';
import { FaultRates } from './network';
import { NodeDriver } from './node_driver';

/**
 * The operations the chaos workload can ask of the cluster. The simulator implements them
 * (each one is a step, checked like any other); the workload only decides what happens when.
 */
export interface ClusterOps {
  readonly rng: SeededRng;
  /** Founding voter count; membership changes keep the cluster around this size. */
  readonly size: number;
  /** The fewest voters membership changes may leave (see drawMinVoters). */
  readonly minVoters: number;
  /** Every node that exists and is not decommissioned, up or down. */
  members(): NodeDriver[];
  /**
   * An operator's change that no fault may interrupt is under way (the leader of two voters
   * removing itself): until it commits, the workload sends only client traffic.
   */
  quiet(): boolean;
  /** The up node that believes it leads the highest term, if any. */
  leader(): NodeDriver | null;
  propose(n: NodeDriver): void;
  read(n: NodeDriver): void;
  crash(n: NodeDriver): void;
  /** `n` crashes in the middle of its next write to disk. */
  tornCrash(n: NodeDriver): void;
  /** `n` stops (a long GC pause, a stopped VM) and resumes `ticks` later with its state intact. */
  pause(n: NodeDriver, ticks: number): void;
  restart(n: NodeDriver): void;
  setFaults(f: FaultRates): void;
  partition(a: NodeId[], b: NodeId[]): void;
  cut(from: NodeId[], to: NodeId[]): void;
  healPartitions(): void;
  /** Ends the partitions of one node only. */
  reconnect(n: NodeDriver): void;
  /** Proposes a membership change at `at`; AddLearner of a fresh id also starts that node. */
  changeMembership(at: NodeDriver, type: ConfChangeType, nodeId: NodeId | 'fresh'): void;
  transferLeadership(at: NodeDriver, target: NodeId): void;
  /** Makes `n` start an election now, as if its election timeout had elapsed. */
  campaign(n: NodeDriver): void;
  /** A configuration reload on `n` changes its timeouts (healing restores the defaults). */
  setTimeouts(n: NodeDriver, electionTick: number, heartbeatTick: number): void;
  snapshot(n: NodeDriver, tail: number): void;
}

/**
 * Most runs keep at least three voters: with fewer, one crash stalls the cluster. Some shrink
 * to a single voter and grow again, as a cluster started with `pgraft init` does: a lone
 * voter wins its elections by itself, so one Ready can both change its term and carry its
 * leader messages, which the agent must then send only after the write (see Agent.processReady).
 */
const SHRINK_CHANCE = 0.3;

export function drawMinVoters(rng: SeededRng, size: number): number {
  return size < 3 || rng.chance(SHRINK_CHANCE) ? 1 : 3;
}

const MAX_LEARNERS = 2;
/** Up to four election timeouts: long enough for the others to move on without the paused node. */
const MAX_PAUSE_TICKS = 40;

/**
 * Per-tick chances of each kind of event during the chaos phase. Forced campaigns are
 * frequent on purpose: elections racing with replication are where Raft's subtle bugs live.
 */
const P = {
  write: 0.6,
  read: 0.3,
  faultChange: 0.03,
  partition: 0.012,
  heal: 0.03,
  reconnect: 0.05,
  crash: 0.012,
  tornCrash: 0.006,
  pause: 0.01,
  restart: 0.06,
  membership: 0.025,
  /** Clusters founded with one voter exist to grow and shrink. */
  growMembership: 0.1,
  transfer: 0.012,
  campaign: 0.2,
  reloadTimeouts: 0.01,
  snapshot: 0.06,
};

const LOSS = [0, 0, 0.05, 0.2, 0.5];
const DUPLICATE = [0, 0, 0.05, 0.2];
const DELAY = [0, 0.1, 0.3];

/** One tick's worth of chaos: client traffic and faults, chosen by the seeded rng. */
export function chaosTick(c: ClusterOps): void {
  const rng = c.rng;
  const members = c.members();
  const up = members.filter((n) => n.up);
  const down = members.filter((n) => !n.up);

  if (up.length > 0 && rng.chance(P.write)) c.propose(pickClientTarget(c, up));
  if (up.length > 0 && rng.chance(P.read)) c.read(pickClientTarget(c, up));
  if (c.quiet()) return;
  if (rng.chance(P.faultChange)) {
    c.setFaults({ loss: pick(rng, LOSS), duplicate: pick(rng, DUPLICATE), delay: pick(rng, DELAY) });
  }
  if (rng.chance(P.partition)) injectPartition(c, members);
  if (rng.chance(P.heal)) c.healPartitions();
  if (rng.chance(P.reconnect)) c.reconnect(pick(rng, members));
  if (up.length > 0 && rng.chance(P.crash)) c.crash(pick(rng, up));
  if (up.length > 0 && rng.chance(P.tornCrash)) c.tornCrash(pick(rng, up));
  if (up.length > 0 && rng.chance(P.pause)) {
    const l = c.leader();
    c.pause(l !== null && rng.chance(0.5) ? l : pick(rng, up), 1 + rng.intn(MAX_PAUSE_TICKS));
  }
  if (down.length > 0 && rng.chance(P.restart)) c.restart(pick(rng, down));
  if (rng.chance(c.size < 3 ? P.growMembership : P.membership)) changeMembership(c);
  if (c.quiet()) return;
  if (up.length > 0 && rng.chance(P.transfer)) {
    const at = pick(rng, up);
    const voters = at.confState.voters;
    if (voters.length > 0) c.transferLeadership(at, pick(rng, voters));
  }
  if (up.length > 0 && rng.chance(P.campaign)) c.campaign(pick(rng, up));
  if (up.length > 0 && rng.chance(P.reloadTimeouts)) c.setTimeouts(pick(rng, up), 6 + rng.intn(10), 1 + rng.intn(2));
  if (up.length > 0 && rng.chance(P.snapshot)) c.snapshot(pick(rng, up), rng.intn(12));
}

/** Clients mostly find the leader, but sometimes talk to whichever node they know. */
function pickClientTarget(c: ClusterOps, up: NodeDriver[]): NodeDriver {
  const l = c.leader();
  return l !== null && c.rng.chance(0.5) ? l : pick(c.rng, up);
}

function injectPartition(c: ClusterOps, members: NodeDriver[]): void {
  const rng = c.rng;
  const ids = members.map((n) => n.id);
  if (ids.length < 2) return;
  const l = c.leader();
  const victim = l !== null && rng.chance(0.5) ? l.id : pick(rng, ids);
  const rest = ids.filter((id) => id !== victim);
  switch (rng.intn(4)) {
    case 0: // isolate one node (often the leader) completely
      c.partition([victim], rest);
      break;
    case 1: {
      // a random split into two sides
      const side = ids.filter(() => rng.chance(0.5));
      c.partition(side, ids.filter((id) => !side.includes(id)));
      break;
    }
    case 2: // the victim can send but hears nothing (e.g. a leader whose followers' replies are lost)
      c.cut(rest, [victim]);
      break;
    default: // the victim hears everyone but nobody hears it
      c.cut([victim], rest);
  }
}

/** Add a learner, promote one, or remove a voter (possibly the leader itself) or a learner. */
function changeMembership(c: ClusterOps): void {
  const rng = c.rng;
  const l = c.leader();
  if (l === null) return;
  // The leader's newest configuration, not its applied one: a removal that is committed but
  // not yet applied must not make its node look like a learner to promote.
  const { voters, learners } = l.latestConfState();
  const options: (() => void)[] = [];
  // Room for two learners beside two voters, even in clusters founded with one voter.
  const maxMembers = Math.max(c.size + 2, 4);
  if (learners.length < MAX_LEARNERS && voters.length + learners.length < maxMembers) {
    const add = () => c.changeMembership(l, ConfChangeType.AddLearner, 'fresh');
    options.push(add);
    // A voter that will soon be alone should have someone to replicate to.
    if (voters.length <= 2 && learners.length === 0) options.push(add, add);
  }
  if (learners.length > 0 && voters.length < c.size + 2) {
    options.push(() => c.changeMembership(l, ConfChangeType.AddVoter, pick(rng, learners)));
  }
  if (voters.length > c.minVoters) {
    // Removing the leader itself is the interesting case; give it extra weight, most of all
    // from two voters (replacing the node of a cluster begun with `pgraft init`): the other
    // voter then wins alone, while it is still writing what the leader last sent it.
    const self = voters.length === 2 ? 0.8 : 0.3;
    options.push(() => c.changeMembership(l, ConfChangeType.RemoveNode, rng.chance(self) ? l.id : pick(rng, voters)));
  }
  if (learners.length > 0) options.push(() => c.changeMembership(l, ConfChangeType.RemoveNode, pick(rng, learners)));
  if (options.length > 0) pick(rng, options)();
}

export function pick<T>(rng: SeededRng, xs: readonly T[]): T {
  return xs[rng.intn(xs.length)];
}
