import { Entry, EntryType, Message, MessageType, NodeId, Snapshot, isLocalMessage } from '../raft/types';

/**
 * Binary form of a raft Message as it travels between agents (the body of a Message frame,
 * see frame.ts). Fixed-width big-endian fields: encoding is a single pass into a buffer whose
 * size is computed up front, and decoding needs no allocation beyond the objects returned.
 *
 *   type u8 | flags u8 | to u32 | from u32 | term u64 | logTerm u64 | index u64 | commit u64
 *   | rejectHint u64 | entryCount u32 | entries... | [context] | [snapshot]
 *   entry    = term u64 | index u64 | type u8 | dataLen u32 | data
 *   context  = len u32 | bytes                      (present when flags has CONTEXT)
 *   snapshot = index u64 | term u64 | voterCount u32 | voters u32... | learnerCount u32
 *              | learners u32... | dataLen u32 | data    (present when flags has SNAPSHOT)
 *
 * u64 fields carry integers up to 2^53-1, the range a JS number holds exactly; a larger value
 * on the wire is treated as corruption. Node ids are u32, as in the conf change codec.
 */

const FLAG_REJECT = 1 << 0;
const FLAG_CONTEXT = 1 << 1;
const FLAG_SNAPSHOT = 1 << 2;
const KNOWN_FLAGS = FLAG_REJECT | FLAG_CONTEXT | FLAG_SNAPSHOT;

/** Bytes of the fixed part: type, flags, to, from, five u64 fields, entry count. */
const HEADER_BYTES = 1 + 1 + 4 + 4 + 5 * 8 + 4;
/** Bytes of an entry without its data. */
const ENTRY_OVERHEAD = 8 + 8 + 1 + 4;
const TWO_32 = 0x100000000;
/** Largest high word that keeps a u64 within Number.MAX_SAFE_INTEGER. */
const MAX_SAFE_HIGH = 0x1fffff;

/** A frame body that is not a valid message: the connection it came on cannot be trusted. */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
}

/** Exact number of bytes encodeMessageInto writes for m. */
export function encodedMessageSize(m: Message): number {
  let size = HEADER_BYTES;
  for (const e of m.entries) size += ENTRY_OVERHEAD + e.data.length;
  if (m.context !== null) size += 4 + m.context.length;
  if (m.snapshot !== null) {
    const cs = m.snapshot.metadata.confState;
    size += 8 + 8 + 4 + 4 * cs.voters.length + 4 + 4 * cs.learners.length + 4 + m.snapshot.data.length;
  }
  return size;
}

/**
 * Writes m into buf at offset and returns the offset after it. buf must have
 * encodedMessageSize(m) bytes from offset. Throws RangeError for a message that cannot be
 * sent (a local message type, a negative or fractional number): that is a bug in the caller.
 */
export function encodeMessageInto(m: Message, buf: Buffer, offset: number): number {
  if (isLocalMessage(m.type) || !(m.type in MessageType)) {
    throw new RangeError(`message type ${m.type} is local to a node and is never sent to a peer`);
  }
  let o = offset;
  let flags = 0;
  if (m.reject) flags |= FLAG_REJECT;
  if (m.context !== null) flags |= FLAG_CONTEXT;
  if (m.snapshot !== null) flags |= FLAG_SNAPSHOT;
  buf[o++] = m.type;
  buf[o++] = flags;
  o = writeU32(buf, o, m.to, 'to');
  o = writeU32(buf, o, m.from, 'from');
  o = writeU64(buf, o, m.term, 'term');
  o = writeU64(buf, o, m.logTerm, 'logTerm');
  o = writeU64(buf, o, m.index, 'index');
  o = writeU64(buf, o, m.commit, 'commit');
  o = writeU64(buf, o, m.rejectHint, 'rejectHint');
  o = writeU32(buf, o, m.entries.length, 'entry count');
  for (const e of m.entries) {
    if (e.type !== EntryType.Normal && e.type !== EntryType.ConfChange) {
      throw new RangeError(`entry ${e.index} has unknown type ${e.type}`);
    }
    o = writeU64(buf, o, e.term, 'entry term');
    o = writeU64(buf, o, e.index, 'entry index');
    buf[o++] = e.type;
    o = writeBytes(buf, o, e.data);
  }
  if (m.context !== null) o = writeBytes(buf, o, m.context);
  if (m.snapshot !== null) o = writeSnapshot(buf, o, m.snapshot);
  return o;
}

function writeSnapshot(buf: Buffer, offset: number, s: Snapshot): number {
  let o = writeU64(buf, offset, s.metadata.index, 'snapshot index');
  o = writeU64(buf, o, s.metadata.term, 'snapshot term');
  o = writeIds(buf, o, s.metadata.confState.voters);
  o = writeIds(buf, o, s.metadata.confState.learners);
  return writeBytes(buf, o, s.data);
}

function writeIds(buf: Buffer, offset: number, ids: NodeId[]): number {
  let o = writeU32(buf, offset, ids.length, 'node id count');
  for (const id of ids) o = writeU32(buf, o, id, 'node id');
  return o;
}

function writeBytes(buf: Buffer, offset: number, data: Uint8Array): number {
  const o = writeU32(buf, offset, data.length, 'byte length');
  buf.set(data, o);
  return o + data.length;
}

function writeU32(buf: Buffer, offset: number, n: number, field: string): number {
  if (!(Number.isInteger(n) && n >= 0 && n < TWO_32)) {
    throw new RangeError(`cannot encode ${field} ${n}: it must be an integer in [0, 2^32)`);
  }
  buf.writeUInt32BE(n, offset);
  return offset + 4;
}

export function writeU64(buf: Buffer, offset: number, n: number, field: string): number {
  if (!(Number.isSafeInteger(n) && n >= 0)) {
    throw new RangeError(`cannot encode ${field} ${n}: it must be an integer in [0, 2^53)`);
  }
  buf.writeUInt32BE(Math.floor(n / TWO_32), offset);
  buf.writeUInt32BE(n >>> 0, offset + 4);
  return offset + 8;
}

/**
 * Decodes a message body. Byte fields (entry data, context, snapshot data) are views into
 * `body`, not copies: the caller must hand in memory that is never rewritten afterwards
 * (FrameDecoder guarantees this for the frames it returns). Throws CodecError for anything
 * that is not exactly one well-formed peer message.
 */
export function decodeMessage(body: Uint8Array): Message {
  const r = new Reader(body);
  const type = r.u8();
  if (!(type in MessageType) || isLocalMessage(type)) throw new CodecError(`unknown or local message type ${type}`);
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) throw new CodecError(`unknown message flags 0x${flags.toString(16)}`);
  const to = r.u32();
  const from = r.u32();
  const term = r.u64();
  const logTerm = r.u64();
  const index = r.u64();
  const commit = r.u64();
  const rejectHint = r.u64();
  const entryCount = r.count(ENTRY_OVERHEAD);
  const entries: Entry[] = new Array(entryCount);
  for (let i = 0; i < entryCount; i++) {
    const eTerm = r.u64();
    const eIndex = r.u64();
    const eType = r.u8();
    if (eType !== EntryType.Normal && eType !== EntryType.ConfChange) throw new CodecError(`unknown entry type ${eType}`);
    entries[i] = { term: eTerm, index: eIndex, type: eType, data: r.bytes() };
  }
  const context = (flags & FLAG_CONTEXT) !== 0 ? r.bytes() : null;
  let snapshot: Snapshot | null = null;
  if ((flags & FLAG_SNAPSHOT) !== 0) {
    const sIndex = r.u64();
    const sTerm = r.u64();
    const voters = r.ids();
    const learners = r.ids();
    snapshot = { metadata: { index: sIndex, term: sTerm, confState: { voters, learners } }, data: r.bytes() };
  }
  if (r.remaining() !== 0) throw new CodecError(`${r.remaining()} unexpected bytes after the message`);
  return {
    type,
    to,
    from,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (flags & FLAG_REJECT) !== 0,
    rejectHint,
    snapshot,
    context,
  };
}

/** Bounds-checked big-endian reader; every overrun is a CodecError, never a RangeError. */
export class Reader {
  private readonly view: DataView;
  private off = 0;

  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  remaining(): number {
    return this.buf.length - this.off;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.off++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.off, false);
    this.off += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.off, false);
    this.off += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const hi = this.view.getUint32(this.off, false);
    if (hi > MAX_SAFE_HIGH) throw new CodecError('integer field exceeds 2^53-1');
    const lo = this.view.getUint32(this.off + 4, false);
    this.off += 8;
    return hi * TWO_32 + lo;
  }

  /** A u32 element count, checked against the bytes left so a lying count cannot allocate much. */
  count(minElementBytes: number): number {
    const n = this.u32();
    if (n * minElementBytes > this.remaining()) throw new CodecError(`count ${n} does not fit in the ${this.remaining()} bytes left`);
    return n;
  }

  /** u32 length then that many bytes, as a view into the input. */
  bytes(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const v = new Uint8Array(this.buf.buffer, this.buf.byteOffset + this.off, n);
    this.off += n;
    return v;
  }

  /** u16 length then that many bytes of UTF-8. */
  string(): string {
    const n = this.u16();
    this.need(n);
    const s = Buffer.from(this.buf.buffer, this.buf.byteOffset + this.off, n).toString('utf8');
    this.off += n;
    return s;
  }

  ids(): NodeId[] {
    const n = this.count(4);
    const ids: NodeId[] = new Array(n);
    for (let i = 0; i < n; i++) ids[i] = this.u32();
    return ids;
  }

  private need(n: number): void {
    if (this.off + n > this.buf.length) {
      throw new CodecError(`truncated: needs ${n} more bytes at offset ${this.off}, has ${this.buf.length - this.off}`);
    }
  }
}
