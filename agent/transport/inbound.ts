import * as net from 'net';
import { Message, MessageType, NodeId, Removal } from '../raft/types';
import { decodeMessage } from './codec';
import { FrameDecoder, FrameKind } from './frame';
import {
  MAX_HANDSHAKE_FRAME_BYTES,
  PROTOCOL_VERSION,
  WelcomeStatus,
  decodeHello,
  encodeSnapshotAck,
  encodeWelcome,
} from './handshake';
import { LogThrottle, Logger } from './logger';
import { errorOf } from './peer_stream';

/** How long a refused peer gets to read the refusal before its socket is destroyed. */
const REFUSAL_LINGER_MS = 1000;

export interface InboundContext {
  nodeId: NodeId;
  clusterId: string;
  logger: Logger;
  maxFrameBytes: number;
  handshakeTimeoutMs: number;
  throttle: LogThrottle;
  /** The entry that removed `peer` from the cluster, if it was and is not back. */
  removedAt(peer: NodeId): Removal | undefined;
  /** A handshake was refused (after the warning is logged). */
  onRefused(status: Exclude<WelcomeStatus, WelcomeStatus.Accepted>): void;
  onMessage(m: Message): void;
  /** The peer completed the handshake as node `conn.peerId`. */
  onIdentified(conn: InboundConnection): void;
  onClosed(conn: InboundConnection): void;
}

type State = 'handshaking' | 'open' | 'closing' | 'closed';

/**
 * One connection a peer dialed to this agent. It must open with a Hello that names this
 * cluster, this protocol version and this node; after that it carries the peer's raft
 * messages, which are handed to onMessage in arrival order. Anything that breaks the rules
 * closes this connection only, with a warning.
 */
export class InboundConnection {
  peerId: NodeId = 0;
  /** Where the peer says it accepts connections (from its Hello). */
  peerAdvertise = '';
  private state: State = 'handshaking';
  private readonly decoder = new FrameDecoder(MAX_HANDSHAKE_FRAME_BYTES);
  private timer: NodeJS.Timeout | null;
  private readonly remote: string;

  constructor(
    private readonly socket: net.Socket,
    private readonly ctx: InboundContext,
  ) {
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    this.timer = setTimeout(() => {
      this.warn('handshake-timeout', `peer connection from ${this.remote} sent no valid handshake within ${ctx.handshakeTimeoutMs} ms; closing it`);
      this.close();
    }, ctx.handshakeTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      ctx.logger.debug({ peer: this.peerId, remote: this.remote, err: err.message }, 'peer connection error');
      this.close();
    });
    socket.on('close', () => this.close());
  }

  /** Closes the connection now; safe to call more than once. */
  close(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.clearTimer();
    this.socket.destroy();
    this.ctx.onClosed(this);
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closing' || this.state === 'closed') return;
    let frames;
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.violation(`malformed data: ${errorOf(err).message}`);
      return;
    }
    for (const f of frames) {
      if (this.state !== 'handshaking' && this.state !== 'open') return;
      try {
        if (this.state === 'handshaking') {
          if (f.kind !== FrameKind.Hello) throw new Error(`expected a handshake, got frame kind ${f.kind}`);
          this.onHello(f.body);
        } else if (f.kind === FrameKind.Message) {
          this.onMessageFrame(f.body);
        } else {
          throw new Error(`unexpected frame kind ${f.kind} after the handshake`);
        }
      } catch (err) {
        this.violation(errorOf(err).message);
        return;
      }
    }
  }

  private onHello(body: Buffer): void {
    const { version, hello } = decodeHello(body);
    const self = this.ctx.nodeId;
    if (hello === null) {
      this.refuse(
        WelcomeStatus.WrongVersion,
        `peer at ${this.remote} speaks protocol version ${version}; this agent speaks version ${PROTOCOL_VERSION}. ` +
          'Run the same pgraft release on every node',
      );
      return;
    }
    if (hello.clusterId !== this.ctx.clusterId) {
      this.refuse(
        WelcomeStatus.WrongCluster,
        `node ${hello.nodeId} at ${this.remote} belongs to cluster "${hello.clusterId}", this agent to cluster ` +
          `"${this.ctx.clusterId}"; it was not joined. Check pgraft.cluster_id and the peer addresses on both nodes`,
      );
      return;
    }
    if (hello.toNodeId !== 0 && hello.toNodeId !== self) {
      this.refuse(
        WelcomeStatus.WrongNode,
        `node ${hello.nodeId} at ${this.remote} dialed this agent as node ${hello.toNodeId}, but this is node ${self}; ` +
          `fix the address it has for node ${hello.toNodeId}`,
      );
      return;
    }
    if (hello.nodeId === 0 || hello.nodeId === self) {
      this.refuse(
        WelcomeStatus.WrongNode,
        `a peer at ${this.remote} claims node id ${hello.nodeId}, which is ${hello.nodeId === 0 ? 'invalid' : "this agent's own id"}; ` +
          'every node needs its own pgraft.node_id',
      );
      return;
    }
    const removal = this.ctx.removedAt(hello.nodeId);
    if (removal !== undefined) {
      this.refuse(
        WelcomeStatus.Removed,
        `node ${hello.nodeId} at ${this.remote} was removed from the cluster by log entry ${removal.index} and not added back; ` +
          'to bring it back, empty its pgraft.data_dir and add it again',
        removal,
      );
      return;
    }
    this.clearTimer();
    this.state = 'open';
    this.peerId = hello.nodeId;
    this.peerAdvertise = hello.advertise;
    this.decoder.maxFrameBytes = this.ctx.maxFrameBytes;
    this.socket.write(encodeWelcome({ status: WelcomeStatus.Accepted, nodeId: self, clusterId: this.ctx.clusterId, reason: '' }));
    this.ctx.logger.debug({ peer: this.peerId, remote: this.remote }, `accepted a connection from peer ${this.peerId}`);
    this.ctx.onIdentified(this);
  }

  private onMessageFrame(body: Buffer): void {
    const m = decodeMessage(body);
    // The handshake identified the sender; a message claiming another origin or addressed to
    // another node means a confused or hostile peer, not a routing choice to honour.
    if (m.from !== this.peerId) throw new Error(`message claims to come from node ${m.from} on node ${this.peerId}'s connection`);
    if (m.to !== this.ctx.nodeId) throw new Error(`message addressed to node ${m.to} arrived at node ${this.ctx.nodeId}`);
    this.ctx.onMessage(m);
    if (m.type === MessageType.Snap && m.snapshot !== null && this.state === 'open') {
      this.socket.write(encodeSnapshotAck(m.snapshot.metadata.index));
    }
  }

  /** Tells the peer why it is refused (so it can log it too), then closes. */
  private refuse(status: Exclude<WelcomeStatus, WelcomeStatus.Accepted>, reason: string, removal?: Removal): void {
    this.warn(`refused:${WelcomeStatus[status]}`, `refused a peer connection: ${reason}`);
    this.ctx.onRefused(status);
    this.clearTimer();
    this.state = 'closing';
    this.socket.end(encodeWelcome({ status, nodeId: this.ctx.nodeId, clusterId: this.ctx.clusterId, reason, removal }));
    this.timer = setTimeout(() => this.close(), REFUSAL_LINGER_MS);
  }

  private violation(what: string): void {
    const who = this.peerId !== 0 ? `peer ${this.peerId} (${this.remote})` : this.remote;
    this.warn('violation', `closing the peer connection from ${who}: ${what}`);
    this.close();
  }

  private warn(kind: string, message: string): void {
    const fields = { peer: this.peerId, remote: this.remote };
    if (this.ctx.throttle.shouldLog(`${kind}:${this.socket.remoteAddress}`)) this.ctx.logger.warn(fields, message);
    else this.ctx.logger.debug(fields, message);
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
