import { applyConfChange, cloneConfState, decodeConfChange } from '../raft/confchange';
import { ConfChangeType, ConfState, Entry, EntryType, NodeId, Removal } from '../raft/types';
import type { SnapshotImage } from '../storage/format';
import { LoggedCommand, Op, ProposalId, decodeProposal } from './commands';
import { ValueArena, ValueRef } from './value_arena';

/** How to reach a member: its Raft address (from the membership change) and HTTP API address. */
export interface MemberInfo {
  id: NodeId;
  raftAddress: string;
  apiAddress: string;
}

/** The context of a membership change entry: how to reach the node being added. */
export interface MemberContext {
  raft: string;
  api?: string;
}

export function encodeMemberContext(c: MemberContext): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(c));
}

function decodeMemberContext(b: Uint8Array): MemberContext | null {
  if (b.length === 0) return null;
  try {
    const v = JSON.parse(new TextDecoder().decode(b)) as MemberContext;
    return typeof v.raft === 'string' ? v : null;
  } catch {
    return null;
  }
}

export interface ApplyResult {
  index: number;
  /** Who proposed the entry (null for a leader's empty entry and membership changes). */
  proposal: ProposalId | null;
  /** put: true; delete: whether the key existed; append: the entry's index. */
  value: boolean | number | null;
}

/**
 * The image of the state at one applied index, open until close(): the state goes on changing
 * meanwhile, and the image does not see it.
 */
export interface OpenImage extends SnapshotImage {
  readonly index: number;
  /** Ends the image (idempotent); the changes made while it was open move into the store. */
  close(): void;
}

export interface KvStats {
  keys: number;
  /** UTF-8 bytes of the keys and values. */
  bytes: number;
  puts: number;
  deletes: number;
  appends: number;
}

/**
 * The replicated state machine: membership (with addresses), the key-value store and the
 * application log. Deterministic: every node applying the same entries reaches the same
 * state. Its image (image(), for snapshots) is written piece by piece.
 */
export class StateMachine {
  /** The key-value store: each key's value, kept in `values`. */
  private kv = new Map<string, ValueRef>();
  private values = new ValueArena();
  /**
   * While an image is open: the key-value changes made since it was opened (null: deleted),
   * kept apart so that `kv` and the values it refers to stay as the image has them. Reads
   * look here first.
   */
  private changes: Map<string, ValueRef | null> | null = null;
  private members = new Map<NodeId, MemberInfo>();
  /**
   * Nodes removed from the cluster and not added back since: the entry that removed each. A
   * removed node that comes back with its old data never saw that entry; the peers tell it
   * so (removedAt) instead of letting it take part.
   */
  private removed = new Map<NodeId, Removal>();
  conf: ConfState = { voters: [], learners: [] };
  appliedIndex = 0;
  private stats = { puts: 0, deletes: 0, appends: 0 };

  apply(e: Entry): ApplyResult {
    this.appliedIndex = e.index;
    if (e.type === EntryType.ConfChange) {
      this.applyConfChange(e.data, { index: e.index, term: e.term });
      return { index: e.index, proposal: null, value: true };
    }
    if (e.data.length === 0) return { index: e.index, proposal: null, value: null };
    const { id, command } = decodeProposal(e.data);
    return { index: e.index, proposal: id, value: this.applyCommand(command, e.index) };
  }

  private applyCommand(c: LoggedCommand, index: number): boolean | number | null {
    switch (c.op) {
      case Op.Put:
        this.set(c.key, this.values.store(c.value));
        this.stats.puts++;
        return true;
      case Op.Delete: {
        this.stats.deletes++;
        const existed = this.ref(c.key) !== null;
        if (existed) this.set(c.key, null);
        return existed;
      }
      case Op.Append:
        this.stats.appends++;
        return index;
      case Op.MemberMeta: {
        const m = this.members.get(c.nodeId);
        if (m) m.apiAddress = c.apiAddress;
        return m !== undefined;
      }
    }
  }

  private applyConfChange(data: Uint8Array, at: Removal): void {
    const cc = decodeConfChange(data);
    this.conf = applyConfChange(this.conf, cc);
    if (cc.type === ConfChangeType.RemoveNode) {
      this.members.delete(cc.nodeId);
      this.removed.set(cc.nodeId, at);
      return;
    }
    this.removed.delete(cc.nodeId);
    const ctx = decodeMemberContext(cc.context);
    const prev = this.members.get(cc.nodeId);
    this.members.set(cc.nodeId, {
      id: cc.nodeId,
      raftAddress: ctx?.raft ?? prev?.raftAddress ?? '',
      apiAddress: ctx?.api ?? prev?.apiAddress ?? '',
    });
  }

  /**
   * Sets (null: deletes) a key's value. The value a change replaces gives its slot back, unless
   * an open image still reads it (it is in `kv`, which stays as it was while the image is open).
   */
  private set(key: string, ref: ValueRef | null): void {
    if (this.changes) {
      const prev = this.changes.get(key);
      if (prev !== undefined && prev !== null) this.values.release(prev);
      this.changes.set(key, ref);
      return;
    }
    const prev = this.kv.get(key);
    if (prev !== undefined) this.values.release(prev);
    if (ref === null) this.kv.delete(key);
    else this.kv.set(key, ref);
  }

  private ref(key: string): ValueRef | null {
    const changed = this.changes?.get(key);
    if (changed !== undefined) return changed;
    return this.kv.get(key) ?? null;
  }

  get(key: string): string | null {
    const ref = this.ref(key);
    return ref === null ? null : this.values.read(ref);
  }

  keys(): string[] {
    if (!this.changes) return [...this.kv.keys()].sort();
    const all = new Set([...this.kv.keys(), ...this.changes.keys()]);
    return [...all].filter((k) => this.ref(k) !== null).sort();
  }

  kvStats(): KvStats {
    let keys = 0;
    let bytes = 0;
    const count = (k: string, ref: ValueRef | null): void => {
      if (ref === null) return;
      keys++;
      bytes += Buffer.byteLength(k) + this.values.byteLength(ref);
    };
    for (const [k, ref] of this.kv) if (!this.changes?.has(k)) count(k, ref);
    for (const [k, ref] of this.changes ?? []) count(k, ref);
    return { ...this.stats, keys, bytes };
  }

  member(id: NodeId): MemberInfo | undefined {
    return this.members.get(id);
  }

  memberList(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  /** The entry that removed node `id`, unless it is a member again since; else undefined. */
  removedAt(id: NodeId): Removal | undefined {
    return this.removed.get(id);
  }

  /**
   * The state machine's image, for a snapshot: a small JSON header (members, membership,
   * counters) and the key-value pairs as length-prefixed UTF-8. JSON for the pairs cost several
   * times the CPU and memory.
   *
   * The pairs are written piece by piece into one reused buffer of IMAGE_PIECE_BYTES (a pair
   * larger than that gets a buffer of its own), so a snapshot of a store of any size costs that
   * buffer, not a copy of the store.
   *
   * The image is of the state at appliedIndex as it is now, and stays so while entries go on
   * being applied: until close(), key-value changes are kept apart (`changes`) and the store
   * the image reads is left alone. Writing a large image thus never holds up the log. One
   * image is open at a time (restore() ends it for the store, though the image itself goes on
   * reading the state it was opened on).
   */
  image(): OpenImage {
    // A second image would fold the first one's changes into the store it is reading, and
    // reuse the slots of values it has yet to write.
    if (this.changes) throw new Error('a state machine image is already open: close it before opening another');
    const index = this.appliedIndex;
    const header = Buffer.from(
      JSON.stringify({
        members: this.memberList(),
        removed: [...this.removed].sort((a, b) => a[0] - b[0]),
        conf: this.conf,
        stats: this.stats,
        appliedIndex: this.appliedIndex,
      }),
    );
    const kv = this.kv;
    const values = this.values;
    let size = IMAGE_MAGIC.length + 4 + header.length + 4;
    for (const [k, ref] of kv) size += 8 + Buffer.byteLength(k) + values.byteLength(ref);
    const changes = new Map<string, ValueRef | null>();
    this.changes = changes;
    // After restore(), this image's changes are gone with the state they belonged to.
    const close = (): void => {
      if (this.changes === changes) this.foldChanges();
    };
    function* pieces(): Generator<Uint8Array> {
      const start = Buffer.allocUnsafe(IMAGE_MAGIC.length + 4 + header.length + 4);
      let at = start.write(IMAGE_MAGIC, 0, 'latin1');
      at = start.writeUInt32BE(header.length, at);
      at += header.copy(start, at);
      start.writeUInt32BE(kv.size, at);
      yield start;
      const buf = Buffer.allocUnsafeSlow(IMAGE_PIECE_BYTES);
      at = 0;
      for (const [k, ref] of kv) {
        const v = values.bytes(ref);
        const need = 8 + Buffer.byteLength(k) + v.length;
        if (at + need > buf.length && at > 0) {
          yield buf.subarray(0, at);
          at = 0;
        }
        if (need <= buf.length) {
          at = writePair(buf, at, k, v);
        } else {
          const own = Buffer.allocUnsafe(need);
          writePair(own, 0, k, v);
          yield own;
        }
      }
      if (at > 0) yield buf.subarray(0, at);
    }
    return { index, size, pieces, close };
  }

  /** Moves the changes kept apart for an open image into the store. */
  private foldChanges(): void {
    const changes = this.changes;
    if (!changes) return;
    this.changes = null;
    for (const [k, ref] of changes) this.set(k, ref);
  }

  /** The whole image in one buffer (image(), collected). */
  serialize(): Uint8Array {
    const image = this.image();
    try {
      const out = Buffer.allocUnsafe(image.size);
      let at = 0;
      for (const piece of image.pieces()) {
        out.set(piece, at);
        at += piece.length;
      }
      return out;
    } finally {
      image.close();
    }
  }

  /** Replaces the whole state; an image still open keeps reading the state it was opened on. */
  restore(data: Uint8Array, index: number, conf: ConfState): void {
    this.changes = null;
    this.kv = new Map();
    this.values = new ValueArena();
    this.members = new Map();
    this.removed = new Map();
    this.stats = { puts: 0, deletes: 0, appends: 0 };
    this.conf = cloneConfState(conf);
    this.appliedIndex = index;
    if (data.length === 0) return;
    const image = decodeImage(Buffer.from(data.buffer, data.byteOffset, data.byteLength), this.values);
    this.kv = image.kv;
    for (const m of image.members) this.members.set(m.id, m);
    this.removed = new Map(image.removed);
    this.stats = image.stats;
  }
}

/** Writes one key-value pair of an image (length-prefixed UTF-8 each) at `at`; returns where it ends. */
function writePair(to: Buffer, at: number, k: string, v: Uint8Array): number {
  const kl = to.write(k, at + 4);
  to.writeUInt32BE(kl, at);
  at += 4 + kl;
  to.writeUInt32BE(v.length, at);
  to.set(v, at + 4);
  return at + 4 + v.length;
}

/** Size of the buffer that image() reuses for its pieces. */
const IMAGE_PIECE_BYTES = 256 * 1024;

/** First bytes of a state machine image; images written before it are one JSON document. */
const IMAGE_MAGIC = 'PGRAFTSM';

interface Image {
  kv: Map<string, ValueRef>;
  members: MemberInfo[];
  /** [node, the entry that removed it]; absent from images written before it was kept. */
  removed: [NodeId, Removal][];
  stats: { puts: number; deletes: number; appends: number };
}

/** Reads an image; its values go into `values`. */
function decodeImage(buf: Buffer, values: ValueArena): Image {
  if (buf.length > 0 && buf[0] === 0x7b) {
    // '{': an image in the earlier JSON form, from a snapshot taken before the binary one.
    const j = JSON.parse(buf.toString('utf8')) as { kv: [string, string][]; members: MemberInfo[]; stats: Image['stats'] };
    return { kv: new Map(j.kv.map(([k, v]) => [k, values.storeString(v)])), members: j.members, removed: [], stats: j.stats };
  }
  const fail = (what: string): never => {
    throw new Error(`the snapshot's state machine image is damaged: ${what}`);
  };
  if (buf.toString('latin1', 0, IMAGE_MAGIC.length) !== IMAGE_MAGIC) fail('it does not start with the image marker');
  let at = IMAGE_MAGIC.length;
  const take = (n: number): number => {
    if (at + n > buf.length) fail(`it ends at byte ${buf.length}, inside a field that needs ${at + n}`);
    const from = at;
    at += n;
    return from;
  };
  const headerLen = buf.readUInt32BE(take(4));
  const header = JSON.parse(buf.toString('utf8', take(headerLen), at)) as Pick<Image, 'members' | 'stats'> & Partial<Pick<Image, 'removed'>>;
  const count = buf.readUInt32BE(take(4));
  const kv = new Map<string, ValueRef>();
  const field = (): Buffer => {
    const n = buf.readUInt32BE(take(4));
    return buf.subarray(take(n), at);
  };
  for (let i = 0; i < count; i++) {
    const k = field().toString('utf8');
    kv.set(k, values.store(field()));
  }
  if (at !== buf.length) fail(`${buf.length - at} bytes follow the last key`);
  return { kv, members: header.members, removed: header.removed ?? [], stats: header.stats };
}
