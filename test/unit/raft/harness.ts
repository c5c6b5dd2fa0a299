import { MemoryStorage } from '../../../agent/raft/memory_storage';
import { RaftConfig, RawNode, bootstrapLog } from '../../../agent/raft/rawnode';
import { SeededRng } from '../../../agent/raft/rng';
import { applyConfChange, decodeConfChange } from '../../../agent/raft/confchange';
import { ConfState, Entry, EntryType, Message, MessageType, NodeId, ReadState } from '../../../agent/raft/types';

const enc = new TextEncoder();

/** A storage holding the bootstrap entries for `voters` followed by entries of the given terms. */
export function storageWithLog(voters: NodeId[], terms: number[], hard?: { term?: number; vote?: NodeId; commit?: number }): MemoryStorage {
  const boot = bootstrapLog(voters);
  const storage = new MemoryStorage();
  const ents: Entry[] = [...boot.entries];
  for (const t of terms) ents.push({ term: t, index: ents.length + 1, type: EntryType.Normal, data: enc.encode(`e${ents.length + 1}`) });
  storage.append(ents);
  const lastTerm = ents[ents.length - 1].term;
  storage.setHardState({
    term: hard?.term ?? lastTerm,
    vote: hard?.vote ?? 0,
    commit: hard?.commit ?? boot.hardState.commit,
  });
  return storage;
}

/**
 * A scripted cluster for rule-by-rule tests: every node follows the Ready contract over
 * MemoryStorage, and messages are delivered synchronously until the cluster is quiet.
 * Tests cut links, drop message types, or intercept messages to set up each scenario.
 */
export interface TestNode {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
  /** Membership as of the applied index (what a snapshot taken now must record). */
  conf: ConfState;
}

export class Cluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Links cut in one direction: "from->to". */
  private cut = new Set<string>();
  private dropTypes = new Set<MessageType>();
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];
  /** Called for every message before delivery; return false to drop it. */
  filter: ((m: Message) => boolean) | null = null;
  /** Call broadcastCommit() after every Ready, as the agent's commit timer does shortly after. */
  flushCommits = true;

  constructor(
    ids: NodeId[],
    readonly opts: Partial<RaftConfig> = {},
    seed = 1,
    storages?: Map<NodeId, MemoryStorage>,
  ) {
    const boot = bootstrapLog(ids);
    for (const id of ids) {
      let storage = storages?.get(id);
      if (!storage) {
        storage = new MemoryStorage();
        storage.append(boot.entries);
        storage.setHardState(boot.hardState);
      }
      this.add(id, storage, seed + id);
    }
  }

  /** A cluster whose members start with the given logs (terms of the entries after bootstrap). */
  static withLogs(logs: Record<number, number[]>, opts: Partial<RaftConfig> = {}): Cluster {
    const ids = Object.keys(logs).map(Number);
    const storages = new Map<NodeId, MemoryStorage>();
    for (const id of ids) storages.set(id, storageWithLog(ids, logs[id]));
    return new Cluster(ids, opts, 1, storages);
  }

  /** Adds a node over the given storage (a fresh one for a joiner). */
  add(id: NodeId, storage = new MemoryStorage(), seed = id, applied?: number): TestNode {
    const node = new RawNode({
      id,
      storage,
      rng: new SeededRng(seed),
      electionTick: 10,
      heartbeatTick: 1,
      applied,
      ...this.opts,
    });
    const tn: TestNode = { id, node, storage, applied: [], readStates: [], conf: storage.snapshot().metadata.confState };
    this.nodes.set(id, tn);
    return tn;
  }

  get(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Crash and restart: everything not persisted is lost. */
  restart(id: NodeId): TestNode {
    const old = this.get(id);
    return this.add(id, old.storage, id * 7919, old.storage.snapshot().metadata.index);
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  heal(): void {
    this.cut.clear();
    this.dropTypes.clear();
    this.filter = null;
  }

  drop(t: MessageType): void {
    this.dropTypes.add(t);
  }

  /** Processes one node's Ready per the contract; returns the messages it sends. */
  processReady(tn: TestNode): Message[] {
    if (!tn.node.hasReady()) return [];
    const rd = tn.node.ready();
    if (rd.snapshot) {
      tn.storage.applySnapshot(rd.snapshot);
      tn.conf = rd.snapshot.metadata.confState;
    }
    tn.storage.append(rd.entries);
    if (rd.hardState) tn.storage.setHardState(rd.hardState);
    for (const e of rd.committedEntries) {
      tn.applied.push(e);
      if (e.type === EntryType.ConfChange) tn.conf = applyConfChange(tn.conf, decodeConfChange(e.data));
    }
    for (const rs of rd.readStates) tn.readStates.push(rs);
    tn.node.advance(rd);
    // As the agent does a moment later (its commit timer): followers learn the new commit index.
    if (this.flushCommits && tn.node.commitBroadcastPending()) tn.node.broadcastCommit();
    return rd.messages;
  }

  /** Delivers messages (and whatever they cause) until nothing is left to do. */
  settle(maxRounds = 10000): void {
    for (let round = 0; round < maxRounds; round++) {
      let moved = false;
      for (const tn of this.nodes.values()) {
        const msgs = this.processReady(tn);
        for (const m of msgs) {
          moved = true;
          this.deliver(m);
        }
        if (msgs.length === 0 && tn.node.hasReady()) moved = true;
      }
      if (!moved) return;
    }
    throw new Error('cluster did not settle');
  }

  private deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`) || this.dropTypes.has(m.type)) return;
    if (this.filter && !this.filter(m)) return;
    const target = this.nodes.get(m.to);
    if (!target) return;
    this.delivered.push(m);
    target.node.step(m);
  }

  tick(id: NodeId, n = 1): void {
    for (let i = 0; i < n; i++) {
      this.get(id).node.tick();
      this.settle();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const tn of this.nodes.values()) tn.node.tick();
      this.settle();
    }
  }

  campaign(id: NodeId): void {
    this.get(id).node.campaign();
    this.settle();
  }

  leader(): NodeId {
    const leaders = [...this.nodes.values()].filter((n) => n.node.status().softState.role === 'leader');
    return leaders.length === 1 ? leaders[0].id : 0;
  }

  propose(id: NodeId, text: string): { index: number; term: number } | null {
    const r = this.get(id).node.propose(enc.encode(text));
    this.settle();
    return r;
  }

  /** Takes a snapshot at the node's applied index and compacts its log up to it. */
  snapshotAndCompact(id: NodeId): number {
    const tn = this.get(id);
    const idx = tn.node.status().applied;
    tn.storage.createSnapshot(idx, tn.conf, enc.encode(JSON.stringify(this.appliedData(id))));
    tn.storage.compact(idx);
    return idx;
  }

  /** Messages a node has queued, taken without delivering them (its Ready is processed). */
  takeMessages(id: NodeId): Message[] {
    return this.processReady(this.get(id));
  }

  /** Delivers one message by hand. */
  stepInto(m: Message): void {
    this.get(m.to).node.step(m);
  }

  /** Application data applied on a node, in order (empty leader entries and conf changes skipped). */
  appliedData(id: NodeId): string[] {
    return this.get(id)
      .applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }
}
