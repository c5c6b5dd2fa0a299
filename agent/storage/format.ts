import { ConfState, Entry, EntryType, HardState, Snapshot, SnapshotMetadata } from '../raft/types';
import { crc32 } from './crc32';

/**
 * On-disk encodings. Everything is little-endian and binary; integers that Raft lets grow
 * (indexes, terms, node ids) take 8 bytes and must stay within Number.MAX_SAFE_INTEGER.
 *
 * Segment file `log/segment-NNNN` (32-byte header, then records):
 *   0  8  magic "PGRFTLOG"
 *   8  4  format version
 *   12 4  segment number (the NNNN of the name)
 *   16 8  number of the first record in this segment (records are numbered across segments)
 *   24 4  reserved, 0
 *   28 4  CRC-32 of bytes 0..27
 *
 * Record: what one save wrote, framed so that a crash in the middle of the write is detectable.
 *   0  4  payload length
 *   4  4  CRC-32 of the payload
 *   8     payload:
 *         0  8  record number
 *         8  8  commit index known when the record was written (commit rides along for free)
 *         16 4  entry count
 *         20 8  index of the first entry (the others follow without gaps)
 *         28    entries: term u64, type u8, data length u32, data
 *
 * Hard state `state/hardstate` (40 bytes): magic "PGRFTHST", version u32, term u64, vote u64,
 * commit u64, CRC-32 of the preceding 36 bytes.
 *
 * Snapshot `snapshots/snapshot-<index>-<term>.dat`: magic "PGRFTSNP", version u32, index u64,
 * term u64, log start segment u32, log start record u64, voter count u32 + voters u64 each,
 * learner count u32 + learners u64 each, data length u64, data, CRC-32 of all preceding bytes.
 * The log start says where replay begins after this snapshot: the record holding entry
 * index+1, or the next record to be written if there was none.
 */

export const FORMAT_VERSION = 1;

export const SEGMENT_HEADER_BYTES = 32;
export const RECORD_FRAME_BYTES = 8;
const RECORD_PAYLOAD_MIN = 28;
const ENTRY_OVERHEAD = 13;
/** A larger length can only be damage; a save this large is refused before it is written. */
export const MAX_RECORD_BYTES = 512 * 1024 * 1024;
export const HARD_STATE_BYTES = 40;

const SEGMENT_MAGIC = Buffer.from('PGRFTLOG', 'latin1');
const HARD_STATE_MAGIC = Buffer.from('PGRFTHST', 'latin1');
const SNAPSHOT_MAGIC = Buffer.from('PGRFTSNP', 'latin1');

/** Where replay starts: a segment and a record number within the log. */
export interface LogPosition {
  segment: number;
  record: number;
}

export interface LogRecord {
  record: number;
  commit: number;
  entries: Entry[];
}

/** Thrown by Reader on data that cannot be what the writer produced. */
class Malformed extends Error {}

class Writer {
  readonly buf: Buffer;
  pos = 0;

  /** `own`: a buffer of its own, not a slice of Node's shared pool (for buffers kept long). */
  constructor(size: number, own = false) {
    this.buf = own ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
  }

  u8(n: number): void {
    this.buf[this.pos++] = n;
  }

  u32(n: number): void {
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }

  u64(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot store ${n}: not a non-negative safe integer`);
    this.buf.writeUInt32LE(n % 0x100000000, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x100000000), this.pos + 4);
    this.pos += 8;
  }

  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }

  /** Appends the CRC-32 of everything from `from` up to here. */
  crcFrom(from: number): void {
    this.u32(crc32(this.buf.subarray(from, this.pos)));
  }
}

class Reader {
  pos: number;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  private need(n: number): void {
    if (this.pos + n > this.end) throw new Malformed(`truncated: needed ${n} more bytes at offset ${this.pos}`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++];
  }

  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
  }

  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi >= 0x200000) throw new Malformed(`integer at offset ${this.pos - 8} exceeds 2^53`);
    return hi * 0x100000000 + lo;
  }

  /** The next n bytes, as a view into the buffer (no copy). */
  view(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** A copy, so that what is kept does not pin the whole buffer it was read from. */
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  magic(m: Buffer): void {
    this.need(m.length);
    if (!m.equals(this.buf.subarray(this.pos, this.pos + m.length))) throw new Malformed('bad magic number');
    this.pos += m.length;
  }

  version(): void {
    const v = this.u32();
    if (v !== FORMAT_VERSION) throw new Malformed(`format version ${v}, this build reads version ${FORMAT_VERSION}`);
  }
}

function u32At(b: Uint8Array, p: number): number {
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

function reason(e: unknown): string {
  if (e instanceof Malformed) return e.message;
  throw e;
}

// ---- segment header ----

export function encodeSegmentHeader(segment: number, firstRecord: number): Buffer {
  const w = new Writer(SEGMENT_HEADER_BYTES);
  w.bytes(SEGMENT_MAGIC);
  w.u32(FORMAT_VERSION);
  w.u32(segment);
  w.u64(firstRecord);
  w.u32(0);
  w.crcFrom(0);
  return w.buf;
}

export function decodeSegmentHeader(buf: Uint8Array): { segment: number; firstRecord: number } | { error: string } {
  if (buf.length < SEGMENT_HEADER_BYTES) return { error: `file is ${buf.length} bytes, shorter than a segment header` };
  if (crc32(buf.subarray(0, SEGMENT_HEADER_BYTES - 4)) !== u32At(buf, SEGMENT_HEADER_BYTES - 4)) {
    return { error: 'segment header checksum mismatch' };
  }
  try {
    const r = new Reader(buf, 0, SEGMENT_HEADER_BYTES);
    r.magic(SEGMENT_MAGIC);
    r.version();
    const segment = r.u32();
    const firstRecord = r.u64();
    return { segment, firstRecord };
  } catch (e) {
    return { error: reason(e) };
  }
}

// ---- records ----

/**
 * One buffer for the whole save, so that it reaches the disk in one write. The buffer is its
 * own allocation: the log cache keeps the entries as views into it (entriesInRecord).
 */
export function encodeRecord(record: number, commit: number, entries: Entry[]): Buffer {
  let size = RECORD_FRAME_BYTES + RECORD_PAYLOAD_MIN;
  for (const e of entries) size += ENTRY_OVERHEAD + e.data.length;
  if (size - RECORD_FRAME_BYTES > MAX_RECORD_BYTES) {
    throw new RangeError(
      `a save of ${entries.length} entries needs ${size} bytes, above the ${MAX_RECORD_BYTES}-byte record limit; ` +
        'propose smaller entries or fewer at once',
    );
  }
  const w = new Writer(size, true);
  w.u32(size - RECORD_FRAME_BYTES);
  w.u32(0); // checksum, filled in below
  w.u64(record);
  w.u64(commit);
  w.u32(entries.length);
  w.u64(entries.length > 0 ? entries[0].index : 0);
  for (const e of entries) {
    w.u64(e.term);
    w.u8(e.type);
    w.u32(e.data.length);
    w.bytes(e.data);
  }
  w.buf.writeUInt32LE(crc32(w.buf.subarray(RECORD_FRAME_BYTES)), 4);
  return w.buf;
}

/**
 * The entries that encodeRecord wrote into `record`, with their data as views into it. Held in
 * memory, they then cost the record's bytes, not the larger buffers (socket reads, pool slabs)
 * that their data arrived in and would otherwise keep alive.
 */
export function entriesInRecord(record: Buffer, entries: Entry[]): Entry[] {
  const out = new Array<Entry>(entries.length);
  let at = RECORD_FRAME_BYTES + RECORD_PAYLOAD_MIN;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    at += ENTRY_OVERHEAD;
    out[i] = { term: e.term, index: e.index, type: e.type, data: record.subarray(at, at + e.data.length) };
    at += e.data.length;
  }
  return out;
}

/** The commit index inside a record that encodeRecord built. */
export function recordCommit(buf: Uint8Array): number {
  return new Reader(buf, RECORD_FRAME_BYTES + 8).u64();
}

export type FrameResult =
  | { ok: true; record: LogRecord; end: number }
  | {
      ok: false;
      reason: string;
      /**
       * The damage looks like a write that a crash cut short: the frame runs past the end of
       * the file, only zeros follow it (the end of the file or preallocated space), or
       * everything from here on is zeros (the file grew but the data blocks never arrived).
       * Only acceptable at the end of the last segment.
       */
      tornLike: boolean;
    };

/** Whether every byte of `buf` from `off` on is zero. */
export function zerosFrom(buf: Uint8Array, off: number): boolean {
  for (let i = off; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/**
 * Where, from `off` on, the first record numbered `from` or later begins (null: none), and
 * where the run of plausibly framed records ends. Reads only frame lengths and record
 * numbers: no checksum, no decoding; readFrame judges every record this passes over.
 */
export function recordSpan(buf: Uint8Array, off: number, from: number): { start: number | null; end: number } {
  let start: number | null = null;
  while (buf.length - off >= RECORD_FRAME_BYTES + RECORD_PAYLOAD_MIN) {
    const len = u32At(buf, off);
    if (len < RECORD_PAYLOAD_MIN || len > MAX_RECORD_BYTES || off + RECORD_FRAME_BYTES + len > buf.length) break;
    const record = u32At(buf, off + RECORD_FRAME_BYTES) + u32At(buf, off + RECORD_FRAME_BYTES + 4) * 0x100000000;
    if (start === null && record >= from) start = off;
    off += RECORD_FRAME_BYTES + len;
  }
  return { start, end: off };
}

/**
 * Reads the record framed at `off`. Its entries' data are views into `buf`: a caller that
 * keeps them reads from a copy of what it keeps (recovery: see recordSpan).
 */
export function readFrame(buf: Uint8Array, off: number): FrameResult {
  const remaining = buf.length - off;
  if (remaining < RECORD_FRAME_BYTES) {
    return { ok: false, reason: `incomplete record header (${remaining} bytes)`, tornLike: true };
  }
  const len = u32At(buf, off);
  const sum = u32At(buf, off + 4);
  if (len < RECORD_PAYLOAD_MIN || len > MAX_RECORD_BYTES) {
    return { ok: false, reason: `implausible record length ${len}`, tornLike: zerosFrom(buf, off) };
  }
  const end = off + RECORD_FRAME_BYTES + len;
  if (end > buf.length) {
    return { ok: false, reason: `record of ${len} bytes runs past the end of the file`, tornLike: true };
  }
  if (crc32(buf.subarray(off + RECORD_FRAME_BYTES, end)) !== sum) {
    return { ok: false, reason: 'record checksum mismatch', tornLike: zerosFrom(buf, end) };
  }
  try {
    return { ok: true, record: decodePayload(buf, off + RECORD_FRAME_BYTES, end), end };
  } catch (e) {
    // The checksum matched, so these bytes are what was written: not a torn write.
    return { ok: false, reason: `malformed record: ${reason(e)}`, tornLike: false };
  }
}

function decodePayload(buf: Uint8Array, start: number, end: number): LogRecord {
  const r = new Reader(buf, start, end);
  const record = r.u64();
  const commit = r.u64();
  const count = r.u32();
  const first = r.u64();
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const term = r.u64();
    const type = r.u8();
    if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new Malformed(`unknown entry type ${type}`);
    const data = r.view(r.u32());
    entries.push({ index: first + i, term, type, data });
  }
  if (r.pos !== end) throw new Malformed(`${end - r.pos} unexpected bytes after the entries`);
  return { record, commit, entries };
}

// ---- hard state ----

export function encodeHardState(hs: HardState): Buffer {
  const w = new Writer(HARD_STATE_BYTES);
  w.bytes(HARD_STATE_MAGIC);
  w.u32(FORMAT_VERSION);
  w.u64(hs.term);
  w.u64(hs.vote);
  w.u64(hs.commit);
  w.crcFrom(0);
  return w.buf;
}

export function decodeHardState(buf: Uint8Array): HardState | { error: string } {
  if (buf.length !== HARD_STATE_BYTES) return { error: `file is ${buf.length} bytes, expected ${HARD_STATE_BYTES}` };
  if (crc32(buf.subarray(0, HARD_STATE_BYTES - 4)) !== u32At(buf, HARD_STATE_BYTES - 4)) {
    return { error: 'checksum mismatch' };
  }
  try {
    const r = new Reader(buf);
    r.magic(HARD_STATE_MAGIC);
    r.version();
    return { term: r.u64(), vote: r.u64(), commit: r.u64() };
  } catch (e) {
    return { error: reason(e) };
  }
}

// ---- snapshots ----

/**
 * A state machine image, produced piece by piece so that taking a snapshot never holds a
 * second copy of the state in memory. `size` is known up front (the file's header records it);
 * a piece may be a view into a buffer that the next piece reuses, so each must be consumed
 * before the next is asked for.
 */
export interface SnapshotImage {
  readonly size: number;
  pieces(): Iterable<Uint8Array>;
}

/** An image already in memory, as one piece. */
export function imageOf(data: Uint8Array): SnapshotImage {
  return { size: data.length, pieces: () => [data] };
}

/**
 * A snapshot file, piece by piece: the header, the image's pieces as they come and the
 * checksum over all of them, continued across the pieces.
 */
export function* encodeSnapshot(meta: SnapshotMetadata, start: LogPosition, image: SnapshotImage): Generator<Uint8Array> {
  const { index, term, confState } = meta;
  const ids = confState.voters.length + confState.learners.length;
  const w = new Writer(8 + 4 + 8 + 8 + 4 + 8 + 4 + 4 + 8 * ids + 8);
  w.bytes(SNAPSHOT_MAGIC);
  w.u32(FORMAT_VERSION);
  w.u64(index);
  w.u64(term);
  w.u32(start.segment);
  w.u64(start.record);
  w.u32(confState.voters.length);
  for (const id of confState.voters) w.u64(id);
  w.u32(confState.learners.length);
  for (const id of confState.learners) w.u64(id);
  w.u64(image.size);
  let sum = crc32(w.buf);
  yield w.buf;
  let written = 0;
  for (const piece of image.pieces()) {
    sum = crc32(piece, sum);
    written += piece.length;
    yield piece;
  }
  if (written !== image.size) throw new Error(`the state machine image was ${written} bytes long, not the ${image.size} it announced`);
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32LE(sum, 0);
  yield tail;
}

export function decodeSnapshot(
  buf: Uint8Array,
): { snapshot: Snapshot; start: LogPosition } | { error: string; offset: number } {
  if (buf.length < 4) return { error: 'file too short', offset: 0 };
  const sumAt = buf.length - 4;
  if (crc32(buf.subarray(0, sumAt)) !== u32At(buf, sumAt)) return { error: 'snapshot checksum mismatch', offset: sumAt };
  const r = new Reader(buf, 0, sumAt);
  try {
    r.magic(SNAPSHOT_MAGIC);
    r.version();
    const index = r.u64();
    const term = r.u64();
    const start = { segment: r.u32(), record: r.u64() };
    const ids = (): number[] => Array.from({ length: r.u32() }, () => r.u64());
    const confState: ConfState = { voters: ids(), learners: ids() };
    const data = r.bytes(r.u64());
    if (r.pos !== sumAt) throw new Malformed(`${sumAt - r.pos} unexpected bytes after the data`);
    return { snapshot: { metadata: { index, term, confState }, data }, start };
  } catch (e) {
    return { error: reason(e), offset: r.pos };
  }
}
