import { NodeId, Removal } from '../raft/types';
import { CodecError, Reader, writeU64 } from './codec';
import { FrameKind, encodeFrame } from './frame';

/**
 * The handshake that opens every peer connection. The dialer sends Hello, the listener
 * answers Welcome, and no raft message flows before an accepting Welcome: a node of another
 * cluster, or one speaking another protocol version, is refused before it can vote or
 * append anything.
 *
 *   Hello   = magic u32 | version u16 | nodeId u32 | toNodeId u32 | clusterId str
 *   Welcome = magic u32 | version u16 | status u8 | nodeId u32 | clusterId str | reason str
 *             | [removal index u64 | removal term u64, when status = Removed]
 *   str     = len u16 | UTF-8 bytes
 *
 * magic and version come first and stay where they are in every future version, so two
 * agents of different versions can always tell each other so in a readable way.
 */

export const MAGIC = 0x50475246; // "PGRF"
export const PROTOCOL_VERSION = 1;
/** Handshake frames are tiny; before a peer is identified it may not send anything bigger. */
export const MAX_HANDSHAKE_FRAME_BYTES = 4096;
/** Cluster ids are short names; this keeps a Hello within MAX_HANDSHAKE_FRAME_BYTES. */
export const MAX_CLUSTER_ID_BYTES = 1024;
/** A refusal reason is for a log line; longer text is cut. */
const MAX_REASON_BYTES = 1024;

export enum WelcomeStatus {
  Accepted = 0,
  WrongCluster = 1,
  WrongVersion = 2,
  WrongNode = 3,
  /** The dialer was removed from the cluster (by the entry Welcome.removal) and not added back. */
  Removed = 4,
}

export interface Hello {
  version: number;
  nodeId: NodeId;
  /** The node the dialer means to reach (0: any); catches an address that points at the wrong agent. */
  toNodeId: NodeId;
  clusterId: string;
  /**
   * host:port where the dialer itself accepts peers (its pgraft.address and pgraft.port), so
   * a node that knows nothing yet (an empty node being added) can answer the leader.
   */
  advertise: string;
}

export interface Welcome {
  version: number;
  status: WelcomeStatus;
  nodeId: NodeId;
  clusterId: string;
  reason: string;
  /** With status Removed: the log entry that removed the dialer. */
  removal?: Removal;
}

export function encodeHello(h: Omit<Hello, 'version'>): Buffer {
  const cluster = Buffer.from(h.clusterId, 'utf8');
  const advertise = Buffer.from(h.advertise, 'utf8').subarray(0, MAX_REASON_BYTES);
  const body = Buffer.allocUnsafe(4 + 2 + 4 + 4 + 2 + cluster.length + 2 + advertise.length);
  let o = body.writeUInt32BE(MAGIC, 0);
  o = body.writeUInt16BE(PROTOCOL_VERSION, o);
  o = body.writeUInt32BE(h.nodeId, o);
  o = body.writeUInt32BE(h.toNodeId, o);
  o = writeString(body, o, cluster);
  o = writeString(body, o, advertise);
  return encodeFrame(FrameKind.Hello, body.subarray(0, o));
}

export function encodeWelcome(w: Omit<Welcome, 'version'>): Buffer {
  const cluster = Buffer.from(w.clusterId, 'utf8');
  const reason = Buffer.from(w.reason, 'utf8').subarray(0, MAX_REASON_BYTES);
  const body = Buffer.allocUnsafe(4 + 2 + 1 + 4 + 2 + cluster.length + 2 + reason.length + 16);
  let o = body.writeUInt32BE(MAGIC, 0);
  o = body.writeUInt16BE(PROTOCOL_VERSION, o);
  o = body.writeUInt8(w.status, o);
  o = body.writeUInt32BE(w.nodeId, o);
  o = writeString(body, o, cluster);
  o = writeString(body, o, reason);
  if (w.status === WelcomeStatus.Removed) {
    o = writeU64(body, o, w.removal?.index ?? 0, 'removal index');
    o = writeU64(body, o, w.removal?.term ?? 0, 'removal term');
  }
  return encodeFrame(FrameKind.Welcome, body.subarray(0, o));
}

/**
 * Decodes a Hello body. `hello` is null when the version differs from ours, because the
 * layout after the version is then unknown. Throws CodecError when the bytes are not a
 * pgraft handshake at all.
 */
export function decodeHello(body: Uint8Array): { version: number; hello: Hello | null } {
  const r = new Reader(body);
  const version = readPreamble(r);
  if (version !== PROTOCOL_VERSION) return { version, hello: null };
  const nodeId = r.u32();
  const toNodeId = r.u32();
  const clusterId = r.string();
  const advertise = r.string();
  if (r.remaining() !== 0) throw new CodecError('unexpected bytes after the hello');
  return { version, hello: { version, nodeId, toNodeId, clusterId, advertise } };
}

export function decodeWelcome(body: Uint8Array): { version: number; welcome: Welcome | null } {
  const r = new Reader(body);
  const version = readPreamble(r);
  if (version !== PROTOCOL_VERSION) return { version, welcome: null };
  const status = r.u8();
  if (!(status in WelcomeStatus)) throw new CodecError(`unknown welcome status ${status}`);
  const nodeId = r.u32();
  const clusterId = r.string();
  const reason = r.string();
  const welcome: Welcome = { version, status, nodeId, clusterId, reason };
  if (status === WelcomeStatus.Removed) welcome.removal = { index: r.u64(), term: r.u64() };
  if (r.remaining() !== 0) throw new CodecError('unexpected bytes after the welcome');
  return { version, welcome };
}

/** A SnapshotAck frame: the receiving node was handed the snapshot at `index`. */
export function encodeSnapshotAck(index: number): Buffer {
  const body = Buffer.allocUnsafe(8);
  writeU64(body, 0, index, 'snapshot index');
  return encodeFrame(FrameKind.SnapshotAck, body);
}

export function decodeSnapshotAck(body: Uint8Array): number {
  const r = new Reader(body);
  const index = r.u64();
  if (r.remaining() !== 0) throw new CodecError('unexpected bytes after the snapshot acknowledgement');
  return index;
}

/** Checks a cluster id before anything is sent, so a bad setting fails at start, not per connection. */
export function validateClusterId(clusterId: string): void {
  const n = Buffer.byteLength(clusterId, 'utf8');
  if (n === 0 || n > MAX_CLUSTER_ID_BYTES) {
    throw new RangeError(`cluster id must be 1 to ${MAX_CLUSTER_ID_BYTES} bytes of UTF-8, got ${n} bytes`);
  }
}

function readPreamble(r: Reader): number {
  const magic = r.u32();
  if (magic !== MAGIC) {
    throw new CodecError(`bad magic 0x${magic.toString(16).padStart(8, '0')}: the other side is not a pgraft agent`);
  }
  return r.u16();
}

function writeString(buf: Buffer, offset: number, s: Buffer): number {
  const o = buf.writeUInt16BE(s.length, offset);
  s.copy(buf, o);
  return o + s.length;
}
