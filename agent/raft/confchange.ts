import { ConfChange, ConfChangeType, ConfState, NodeId } from './types';

/**
 * Membership changes, one server at a time (Raft thesis §4.1). A change takes effect when
 * its entry commits; the leader refuses a second change while one is pending, so any two
 * configurations in use at once differ by a single server and their majorities overlap.
 */

/** Wire form of a ConfChange inside an entry: [type u8][nodeId u32 BE][context...]. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const out = new Uint8Array(5 + cc.context.length);
  out[0] = cc.type;
  new DataView(out.buffer).setUint32(1, cc.nodeId >>> 0, false);
  out.set(cc.context, 5);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.length < 5) throw new Error(`conf change entry too short (${data.length} bytes)`);
  const type = data[0];
  if (type !== ConfChangeType.AddVoter && type !== ConfChangeType.AddLearner && type !== ConfChangeType.RemoveNode) {
    throw new Error(`unknown conf change type ${type}`);
  }
  const nodeId = new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(1, false);
  return { type, nodeId, context: data.slice(5) };
}

/**
 * Why a change cannot be made to `cs`, or null when it can. Adding a voter that is already a
 * voter, removing an unknown node, demoting a voter to learner, or removing the last voter
 * are refused: they are operator mistakes, not no-ops.
 */
export function validateConfChange(cs: ConfState, cc: ConfChange): string | null {
  if (!Number.isInteger(cc.nodeId) || cc.nodeId <= 0) return `node id must be a positive integer, got ${cc.nodeId}`;
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddVoter:
      return isVoter ? `node ${cc.nodeId} is already a voter` : null;
    case ConfChangeType.AddLearner:
      if (isVoter) return `node ${cc.nodeId} is a voter; remove it first to make it a learner`;
      return isLearner ? `node ${cc.nodeId} is already a learner` : null;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return `node ${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return `node ${cc.nodeId} is the last voter; removing it would leave no quorum`;
      return null;
  }
}

/**
 * The configuration after `cc`. Pure; invalid changes (already validated by the leader when
 * proposed) are applied as the nearest sensible no-op so that every node computes the same
 * result from the same log.
 */
export function applyConfChange(cs: ConfState, cc: ConfChange): ConfState {
  const without = (ids: NodeId[]) => ids.filter((id) => id !== cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddVoter:
      return { voters: sorted([...without(cs.voters), cc.nodeId]), learners: without(cs.learners) };
    case ConfChangeType.AddLearner:
      if (cs.voters.includes(cc.nodeId)) return cloneConfState(cs);
      return { voters: [...cs.voters], learners: sorted([...without(cs.learners), cc.nodeId]) };
    case ConfChangeType.RemoveNode:
      if (cs.voters.length === 1 && cs.voters[0] === cc.nodeId) return cloneConfState(cs);
      return { voters: without(cs.voters), learners: without(cs.learners) };
  }
}

export function cloneConfState(cs: ConfState): ConfState {
  return { voters: [...cs.voters], learners: [...cs.learners] };
}

export function confStateEquals(a: ConfState, b: ConfState): boolean {
  const eq = (x: NodeId[], y: NodeId[]) => x.length === y.length && sorted(x).every((v, i) => v === sorted(y)[i]);
  return eq(a.voters, b.voters) && eq(a.learners, b.learners);
}

function sorted(ids: NodeId[]): NodeId[] {
  return [...ids].sort((a, b) => a - b);
}
