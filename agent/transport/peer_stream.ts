import * as net from 'net';
import { Message, MessageType, NodeId, Removal, Rng } from '../raft/types';
import { Backoff, BackoffOptions } from './backoff';
import { CodecError } from './codec';
import { FRAME_HEADER_BYTES, FrameDecoder, FrameKind, encodeMessageFrame } from './frame';
import {
  MAX_HANDSHAKE_FRAME_BYTES,
  PROTOCOL_VERSION,
  WelcomeStatus,
  decodeSnapshotAck,
  decodeWelcome,
  encodeHello,
} from './handshake';
import { LogThrottle, Logger } from './logger';
import { SendQueue } from './send_queue';

/**
 * Bytes handed to the socket but not yet taken by the kernel, beyond which the stream keeps
 * frames in its own bounded queue instead. Without this, a peer that stops reading would let
 * the socket buffer grow without limit and the queue bound would mean nothing.
 */
const SOCKET_HIGH_WATER_BYTES = 1024 * 1024;

/** Frames below this size are batched into one socket write; larger ones are written as they are. */
const BATCH_FRAME_BYTES = 16 * 1024;
/** Size at which a batch of small frames is written out. */
const BATCH_BYTES = 64 * 1024;

/** A refusal by the peer (wrong cluster, version or node): retrying soon will not cure it. */
class Refusal extends Error {}

export interface StreamContext {
  nodeId: NodeId;
  clusterId: string;
  /** host:port where this node accepts peers, told to every peer in the handshake. */
  advertise(): string;
  logger: Logger;
  /** Whether connect() opens TLS connections (for clearer failure messages). */
  tls: boolean;
  /** Opens a plain or TLS connection. */
  connect(host: string, port: number): net.Socket;
  maxQueueBytes: number;
  maxQueueMessages: number;
  handshakeTimeoutMs: number;
  snapshotAckTimeoutMs: number;
  backoff: BackoffOptions;
  rng: Rng;
  throttle: LogThrottle;
  onUnreachable(peer: NodeId): void;
  onSnapshotStatus(peer: NodeId, ok: boolean): void;
  /** `peer` refused this node as removed from the cluster by the log entry `removal`. */
  onRemoved(peer: NodeId, removal: Removal): void;
}

export type OfferResult = 'queued' | 'full' | 'snapshot-busy';

export interface PeerStats {
  connected: boolean;
  /** Ordinary messages waiting (the count bound applies to these). */
  queuedMessages: number;
  /** Bytes of ordinary messages waiting (the byte bound applies to these). */
  queuedBytes: number;
  /** Bytes of a waiting snapshot, counted apart. */
  queuedSnapshotBytes: number;
  /** Bytes handed to the socket that the kernel has not taken yet. */
  socketBytes: number;
  sentMessages: number;
  droppedMessages: number;
}

type State = 'idle' | 'connecting' | 'ready' | 'waiting' | 'closed';

/**
 * The one outbound connection to one peer, as etcd keeps a stream per peer: it dials,
 * handshakes, sends queued frames in order, and redials with back-off when the connection
 * fails. Everything it holds for the peer is bounded, so a slow or dead peer costs the
 * sender at most maxQueueBytes + one snapshot + SOCKET_HIGH_WATER_BYTES.
 */
export class PeerStream {
  private state: State = 'idle';
  private socket: net.Socket | null = null;
  private decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
  private readonly queue = new SendQueue();
  private readonly backoff: Backoff;
  private handshakeTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  /** The one snapshot waiting, being written, or awaiting the peer's acknowledgement. */
  private snapshot: { index: number; ackTimer: NodeJS.Timeout | null } | null = null;
  /** A failure was logged at warn, so the recovery is worth an info line. */
  private failureLogged = false;
  private dropping = false;
  private sent = 0;
  private dropped = 0;

  constructor(
    readonly id: NodeId,
    private host: string,
    private port: number,
    private readonly ctx: StreamContext,
  ) {
    this.backoff = new Backoff(ctx.backoff, ctx.rng);
  }

  get address(): string {
    return `${this.host}:${this.port}`;
  }

  stats(): PeerStats {
    return {
      connected: this.state === 'ready',
      queuedMessages: this.queue.count,
      queuedBytes: this.queue.bytes,
      queuedSnapshotBytes: this.queue.totalBytes - this.queue.bytes,
      socketBytes: this.socket?.writableLength ?? 0,
      sentMessages: this.sent,
      droppedMessages: this.dropped,
    };
  }

  start(): void {
    if (this.state === 'idle') this.dial();
  }

  /**
   * The peer has just connected to this node, so it is up: a redial waiting out its back-off
   * (a restarted node's peers may wait up to backoff.maxMs) goes now.
   */
  retryNow(): void {
    if (this.state !== 'waiting') return;
    this.clearRetry();
    this.backoff.reset();
    this.dial();
  }

  /** Points the stream at a new address; an open connection to the old one is dropped. */
  setAddress(host: string, port: number): void {
    if (host === this.host && port === this.port) return;
    this.host = host;
    this.port = port;
    if (this.state === 'idle' || this.state === 'closed') return;
    this.dropConnection();
    this.failSnapshot();
    this.clearRetry();
    this.backoff.reset();
    this.dial();
  }

  /**
   * Queues m if the bounds allow. Ordinary messages are refused when the queue is at its
   * message or byte limit; a snapshot is refused while another one to this peer is pending.
   * bodyBytes is encodedMessageSize(m), which the caller has already computed. Throws
   * RangeError when m cannot be encoded.
   */
  offer(m: Message, bodyBytes: number): OfferResult {
    if (this.state === 'closed') return 'full';
    const isSnap = m.type === MessageType.Snap && m.snapshot !== null;
    if (isSnap) {
      if (this.snapshot !== null) return 'snapshot-busy';
      const frame = encodeMessageFrame(m);
      this.snapshot = { index: m.snapshot!.metadata.index, ackTimer: null };
      this.queue.push({ frame, snapshotIndex: this.snapshot.index });
      return 'queued';
    }
    const size = FRAME_HEADER_BYTES + bodyBytes;
    if (this.queue.count >= this.ctx.maxQueueMessages || this.queue.bytes + size > this.ctx.maxQueueBytes) {
      this.dropped++;
      this.logDrop();
      return 'full';
    }
    this.queue.push({ frame: encodeMessageFrame(m), snapshotIndex: null });
    return 'queued';
  }

  /** Hands queued frames to the socket while it has room; called after offers and on drain. */
  flush(): void {
    const sock = this.socket;
    if (this.state !== 'ready' || sock === null) return;
    // Small frames are copied into one buffer per write: a socket write costs far more
    // than copying a heartbeat, so this is what keeps small-message throughput high.
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const writeBatch = () => {
      if (batch.length === 0) return;
      sock.write(batch.length === 1 ? batch[0] : Buffer.concat(batch, batchBytes));
      batch = [];
      batchBytes = 0;
    };
    while (sock.writableLength + batchBytes < SOCKET_HIGH_WATER_BYTES) {
      const item = this.queue.shift();
      if (item === undefined) break;
      this.sent++;
      if (item.snapshotIndex !== null) {
        writeBatch();
        const index = item.snapshotIndex;
        sock.write(item.frame, (err) => {
          if (!err) this.awaitSnapshotAck(index);
        });
      } else if (item.frame.length >= BATCH_FRAME_BYTES) {
        writeBatch();
        sock.write(item.frame);
      } else {
        batch.push(item.frame);
        batchBytes += item.frame.length;
        if (batchBytes >= BATCH_BYTES) writeBatch();
      }
    }
    writeBatch();
    if (this.dropping && this.queue.length === 0) {
      this.dropping = false;
      this.ctx.throttle.reset(`queue-full:${this.id}`);
    }
  }

  /** Closes the connection and forgets everything queued, without reporting to callbacks. */
  close(): void {
    this.state = 'closed';
    this.dropConnection();
    this.clearRetry();
    if (this.snapshot?.ackTimer) clearTimeout(this.snapshot.ackTimer);
    this.snapshot = null;
    this.queue.clear();
  }

  /** Fails the pending snapshot (reported) and closes, for a peer leaving the configuration. */
  remove(): void {
    this.failSnapshot();
    this.close();
  }

  private dial(): void {
    this.state = 'connecting';
    this.decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
    let sock: net.Socket;
    try {
      sock = this.ctx.connect(this.host, this.port);
    } catch (err) {
      // connect() throws synchronously for a malformed host or port; treat it like a refused dial.
      this.socket = null;
      this.onFailure(errorOf(err));
      return;
    }
    this.socket = sock;
    sock.setNoDelay(true);
    sock.setKeepAlive(true, 5000);
    this.handshakeTimer = setTimeout(() => {
      this.fail(sock, new Error(`no handshake answer within ${this.ctx.handshakeTimeoutMs} ms`));
    }, this.ctx.handshakeTimeoutMs);
    sock.on('data', (chunk: Buffer) => this.onData(sock, chunk));
    sock.on('drain', () => {
      if (this.socket === sock) this.flush();
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      // A reset during the handshake is how a TLS or handshake refusal often shows up here.
      const reset = this.state === 'connecting' && (err.code === 'ECONNRESET' || err.code === 'EPIPE');
      this.fail(sock, reset ? new Error(`${err.message}: ${this.closedMessage()}`) : err);
    });
    sock.on('close', () => this.fail(sock, new Error(this.closedMessage())));
    sock.write(encodeHello({ nodeId: this.ctx.nodeId, toNodeId: this.id, clusterId: this.ctx.clusterId, advertise: this.ctx.advertise() }));
  }

  private onData(sock: net.Socket, chunk: Buffer): void {
    if (this.socket !== sock) return;
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.fail(sock, new Error(`malformed data from the peer: ${errorOf(err).message}`));
      return;
    }
    for (const f of frames) {
      if (this.socket !== sock) return;
      try {
        if (this.state === 'connecting') {
          if (f.kind !== FrameKind.Welcome) throw new CodecError(`expected a handshake answer, got frame kind ${f.kind}`);
          this.onWelcome(f.body);
        } else if (f.kind === FrameKind.SnapshotAck) {
          this.onSnapshotAck(decodeSnapshotAck(f.body));
        } else {
          throw new CodecError(`unexpected frame kind ${f.kind} on an outbound connection`);
        }
      } catch (err) {
        const e = errorOf(err);
        this.fail(sock, e instanceof Refusal ? e : new Error(`protocol error: ${e.message}`));
        return;
      }
    }
  }

  private onWelcome(body: Buffer): void {
    const { version, welcome } = decodeWelcome(body);
    if (welcome === null) {
      throw new Refusal(
        `it speaks peer protocol version ${version} and this agent speaks version ${PROTOCOL_VERSION}; ` +
          'run the same pgraft release on every node (upgrade one node at a time within one protocol version)',
      );
    }
    if (welcome.status === WelcomeStatus.Removed && welcome.removal) this.ctx.onRemoved(this.id, welcome.removal);
    if (welcome.status !== WelcomeStatus.Accepted) {
      throw new Refusal(`it refused this agent (${WelcomeStatus[welcome.status]}): ${welcome.reason}`);
    }
    if (welcome.nodeId !== this.id) {
      throw new Refusal(`the agent there is node ${welcome.nodeId}, not node ${this.id}; fix the address configured for node ${this.id}`);
    }
    if (welcome.clusterId !== this.ctx.clusterId) {
      throw new Refusal(`the agent there belongs to cluster "${welcome.clusterId}", not "${this.ctx.clusterId}"; it was not joined`);
    }
    this.clearHandshakeTimer();
    this.state = 'ready';
    this.backoff.reset();
    this.ctx.throttle.reset(`dial:${this.id}`);
    const fields = { peer: this.id, addr: this.address };
    if (this.failureLogged) this.ctx.logger.info(fields, `connected to peer ${this.id} again`);
    else this.ctx.logger.debug(fields, `connected to peer ${this.id}`);
    this.failureLogged = false;
    this.flush();
  }

  private closedMessage(): string {
    if (this.state !== 'connecting') return 'connection closed by the peer';
    return this.ctx.tls
      ? 'the peer closed the connection during the handshake; it may not accept this node\'s certificate ' +
          '(are both signed by the same cluster CA?) or may not use TLS'
      : 'the peer closed the connection during the handshake; it may expect TLS (every node needs the same TLS settings)';
  }

  private awaitSnapshotAck(index: number): void {
    const snap = this.snapshot;
    if (snap === null || snap.index !== index || snap.ackTimer !== null) return;
    snap.ackTimer = setTimeout(() => {
      if (this.snapshot !== snap) return;
      this.snapshot = null;
      this.ctx.logger.warn(
        { peer: this.id, addr: this.address, index },
        `peer ${this.id} did not confirm snapshot ${index} within ${this.ctx.snapshotAckTimeoutMs} ms; ` +
          'reporting it as failed so the leader sends a new one',
      );
      this.ctx.onSnapshotStatus(this.id, false);
    }, this.ctx.snapshotAckTimeoutMs);
  }

  private onSnapshotAck(index: number): void {
    const snap = this.snapshot;
    if (snap === null || snap.index !== index) {
      this.ctx.logger.debug({ peer: this.id, index }, 'ignoring a confirmation for a snapshot that is no longer pending');
      return;
    }
    if (snap.ackTimer) clearTimeout(snap.ackTimer);
    this.snapshot = null;
    this.ctx.onSnapshotStatus(this.id, true);
  }

  /** Handles the end of `sock`, once: whichever of error, close, timeout or refusal comes first. */
  private fail(sock: net.Socket, err: Error): void {
    if (this.socket !== sock) return;
    this.dropConnection();
    this.onFailure(err);
  }

  private onFailure(err: Error): void {
    const wasReady = this.state === 'ready';
    this.failSnapshot();
    if (err instanceof Refusal) this.backoff.toMax();
    const delay = this.backoff.next();
    this.state = 'waiting';
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.dial();
    }, delay);
    this.logFailure(err, wasReady);
    this.ctx.onUnreachable(this.id);
  }

  private logFailure(err: Error, wasReady: boolean): void {
    const fields = { peer: this.id, addr: this.address, err: err.message };
    const what = err instanceof Refusal ? `peer ${this.id} at ${this.address} refused the connection: ${err.message}` : wasReady
        ? `lost the connection to peer ${this.id} at ${this.address}: ${err.message}; reconnecting with back-off`
        : `cannot connect to peer ${this.id} at ${this.address}: ${err.message}; retrying with back-off`;
    if (this.ctx.throttle.shouldLog(`dial:${this.id}`)) {
      if (err instanceof Refusal) this.ctx.logger.error(fields, what);
      else this.ctx.logger.warn(fields, what);
      this.failureLogged = true;
    } else {
      this.ctx.logger.debug(fields, what);
    }
  }

  private logDrop(): void {
    const key = `queue-full:${this.id}`;
    const fields = { peer: this.id, addr: this.address, queuedMessages: this.queue.count, queuedBytes: this.queue.bytes };
    const msg =
      `send queue to peer ${this.id} is full (${this.queue.count} messages, ${this.queue.bytes} bytes); dropping messages ` +
      'until it drains: the peer is slow, down or unreachable';
    this.dropping = true;
    if (this.ctx.throttle.shouldLog(key)) this.ctx.logger.warn(fields, msg);
    else this.ctx.logger.debug(fields, msg);
  }

  /**
   * A connection failure fails the pending snapshot even if it never left the queue: the
   * leader then retries with a fresh snapshot instead of one that may be stale by the time
   * the peer is back.
   */
  private failSnapshot(): void {
    const snap = this.snapshot;
    if (snap === null) return;
    if (snap.ackTimer) clearTimeout(snap.ackTimer);
    this.queue.removeSnapshot();
    this.snapshot = null;
    this.ctx.onSnapshotStatus(this.id, false);
  }

  private dropConnection(): void {
    this.clearHandshakeTimer();
    const sock = this.socket;
    this.socket = null;
    sock?.destroy();
  }

  private clearHandshakeTimer(): void {
    if (this.handshakeTimer) clearTimeout(this.handshakeTimer);
    this.handshakeTimer = null;
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }
}

export function errorOf(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
