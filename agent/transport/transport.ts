import { promises as fs } from 'fs';
import * as net from 'net';
import * as tls from 'tls';
import { Message, MessageType, NodeId, Removal, Rng, isLocalMessage } from '../raft/types';
import { BackoffOptions, DEFAULT_BACKOFF, mathRandomRng } from './backoff';
import { DEFAULT_MAX_FRAME_BYTES } from './frame';
import { encodedMessageSize } from './codec';
import { WelcomeStatus, validateClusterId } from './handshake';
import { InboundConnection, InboundContext } from './inbound';
import { LogThrottle, Logger } from './logger';
import { PeerStats, PeerStream, StreamContext, errorOf } from './peer_stream';

export const DEFAULT_PEER_PORT = 7001;
export const DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024;
/** As etcd's per-peer stream buffer: enough for a burst of appends and heartbeats. */
export const DEFAULT_MAX_QUEUE_MESSAGES = 4096;
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
export const DEFAULT_SNAPSHOT_ACK_TIMEOUT_MS = 60_000;
export const DEFAULT_LOG_REPEAT_INTERVAL_MS = 60_000;

/** Mutual TLS: this node's certificate and key, and the CA that signs every node's certificate. */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile: string;
  /**
   * Also require the peer's certificate to name the host it was dialed at (subjectAltName).
   * Off by default: the cluster's own CA is the trust anchor, and node certificates are often
   * issued for names other than the addresses peers use.
   */
  verifyHostname?: boolean;
}

/** Why a handshake was refused, as metrics label it. */
export type RefusalReason = 'wrong_cluster' | 'wrong_version' | 'wrong_node' | 'removed';

const REFUSAL_REASONS: Record<Exclude<WelcomeStatus, WelcomeStatus.Accepted>, RefusalReason> = {
  [WelcomeStatus.WrongCluster]: 'wrong_cluster',
  [WelcomeStatus.WrongVersion]: 'wrong_version',
  [WelcomeStatus.WrongNode]: 'wrong_node',
  [WelcomeStatus.Removed]: 'removed',
};

export interface PeerTransportOptions {
  nodeId: NodeId;
  clusterId: string;
  listenHost: string;
  /** pgraft.port; 0 picks a free port (see `port` after start()). */
  listenPort: number;
  tls?: TlsFiles;
  logger: Logger;
  /** Bytes of ordinary messages waiting per peer before new ones are dropped. */
  maxQueueBytes?: number;
  /** Ordinary messages waiting per peer before new ones are dropped. */
  maxQueueMessages?: number;
  /** Largest frame accepted or sent; a snapshot must fit in one. Same value on every node. */
  maxFrameBytes?: number;
  /** A connection that has not completed its handshake by then is closed. */
  handshakeTimeoutMs?: number;
  /** After a snapshot is written, how long to wait for the peer to confirm it. */
  snapshotAckTimeoutMs?: number;
  backoff?: Partial<BackoffOptions>;
  /** Jitter for redial back-off; Math.random when absent. */
  rng?: Rng;
  /** A recurring warning (peer down, refused, queue full) is logged at most once per interval. */
  logRepeatIntervalMs?: number;
  /** The host peers should dial to reach this node, with the bound port; default listenHost. */
  advertiseHost?: string;
  onMessage(m: Message): void;
  /** A peer connected to us and told where it accepts connections (see Hello.advertise). */
  onPeerIdentified?(peer: NodeId, advertise: string): void;
  /** The connection a peer had opened to us closed (it stopped, crashed or was cut off). */
  onPeerDisconnected?(peer: NodeId): void;
  onUnreachable(peer: NodeId): void;
  onSnapshotStatus(peer: NodeId, ok: boolean): void;
  /**
   * The log entry that removed `peer` from the cluster, when it was removed and not added
   * back: its connections are refused, naming that entry. Default: nobody is.
   */
  removedAt?(peer: NodeId): Removal | undefined;
  /** `peer` refused this node as removed from the cluster by the log entry `removal` (see removedAt). */
  onRemoved?(peer: NodeId, removal: Removal): void;
  /** This node refused a peer's handshake, for `reason` (logged as a warning). */
  onRefused?(reason: RefusalReason): void;
}

/**
 * Raft peer traffic between agents over TCP (optionally mutual TLS). Each node keeps one
 * outbound connection per peer for what it sends, and accepts the peers' connections for
 * what it receives, like etcd's streams. Delivery is best effort, in order per peer: raft
 * tolerates loss, so a slow or dead peer costs bounded memory and is reported through
 * onUnreachable rather than buffered without end.
 */
export class PeerTransport {
  private readonly opts: Required<
    Omit<PeerTransportOptions, 'tls' | 'backoff' | 'rng' | 'advertiseHost' | 'onPeerIdentified' | 'onPeerDisconnected' | 'removedAt' | 'onRemoved' | 'onRefused'>
  > &
    Pick<PeerTransportOptions, 'tls' | 'advertiseHost' | 'onPeerIdentified' | 'onPeerDisconnected'>;
  private readonly streams = new Map<NodeId, PeerStream>();
  private readonly inbound = new Set<InboundConnection>();
  private readonly inboundByPeer = new Map<NodeId, InboundConnection>();
  /** Every accepted socket, including ones still in their TLS handshake, so stop() can close them. */
  private readonly sockets = new Set<net.Socket>();
  private readonly streamCtx: StreamContext;
  private readonly inboundCtx: InboundContext;
  private readonly throttle: LogThrottle;
  private readonly onPeerIdentified: (peer: NodeId, advertise: string) => void;
  private readonly onPeerDisconnected: (peer: NodeId) => void;
  private server: net.Server | null = null;
  private boundPort = 0;
  private state: 'new' | 'starting' | 'running' | 'stopped' = 'new';
  private tlsClientOptions: tls.ConnectionOptions | null = null;

  constructor(options: PeerTransportOptions) {
    if (!Number.isInteger(options.nodeId) || options.nodeId <= 0 || options.nodeId > 0xffffffff) {
      throw new RangeError(`node id must be an integer from 1 to 4294967295, got ${options.nodeId}`);
    }
    validateClusterId(options.clusterId);
    this.opts = {
      ...options,
      maxQueueBytes: options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES,
      maxQueueMessages: options.maxQueueMessages ?? DEFAULT_MAX_QUEUE_MESSAGES,
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      handshakeTimeoutMs: options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS,
      snapshotAckTimeoutMs: options.snapshotAckTimeoutMs ?? DEFAULT_SNAPSHOT_ACK_TIMEOUT_MS,
      logRepeatIntervalMs: options.logRepeatIntervalMs ?? DEFAULT_LOG_REPEAT_INTERVAL_MS,
    };
    if (this.opts.maxFrameBytes > 0xffffffff - 1) throw new RangeError('maxFrameBytes must be below 4 GiB (the frame length is a u32)');
    const log = options.logger;
    this.throttle = new LogThrottle(this.opts.logRepeatIntervalMs);
    const guarded = <A extends unknown[]>(name: string, fn: (...args: A) => void) => (...args: A): void => {
      if (this.state === 'stopped') return;
      try {
        fn(...args);
      } catch (err) {
        // A throwing callback runs inside a socket event handler, where it would crash the
        // process; the transport logs it and carries on.
        log.error({ err: errorOf(err).message, callback: name }, `the ${name} callback threw: ${errorOf(err).stack}`);
      }
    };
    const onUnreachable = guarded('onUnreachable', (peer: NodeId) => options.onUnreachable(peer));
    const onSnapshotStatus = guarded('onSnapshotStatus', (peer: NodeId, ok: boolean) => options.onSnapshotStatus(peer, ok));
    this.onPeerIdentified = guarded('onPeerIdentified', (peer: NodeId, advertise: string) => options.onPeerIdentified?.(peer, advertise));
    this.onPeerDisconnected = guarded('onPeerDisconnected', (peer: NodeId) => options.onPeerDisconnected?.(peer));
    this.streamCtx = {
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      advertise: () => `${this.opts.advertiseHost ?? this.opts.listenHost}:${this.boundPort}`,
      logger: log,
      tls: options.tls !== undefined,
      connect: (host, port) => this.connect(host, port),
      maxQueueBytes: this.opts.maxQueueBytes,
      maxQueueMessages: this.opts.maxQueueMessages,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      snapshotAckTimeoutMs: this.opts.snapshotAckTimeoutMs,
      backoff: { ...DEFAULT_BACKOFF, ...options.backoff },
      rng: options.rng ?? mathRandomRng,
      throttle: this.throttle,
      onUnreachable,
      onSnapshotStatus,
      onRemoved: guarded('onRemoved', (peer: NodeId, removal: Removal) => options.onRemoved?.(peer, removal)),
    };
    this.inboundCtx = {
      nodeId: options.nodeId,
      clusterId: options.clusterId,
      logger: log,
      maxFrameBytes: this.opts.maxFrameBytes,
      handshakeTimeoutMs: this.opts.handshakeTimeoutMs,
      throttle: this.throttle,
      removedAt: (peer) => options.removedAt?.(peer),
      onRefused: guarded('onRefused', (status: Exclude<WelcomeStatus, WelcomeStatus.Accepted>) => options.onRefused?.(REFUSAL_REASONS[status])),
      onMessage: guarded('onMessage', (m: Message) => options.onMessage(m)),
      onIdentified: (conn) => this.onIdentified(conn),
      onClosed: (conn) => this.onInboundClosed(conn),
    };
  }

  /** The port the listener is bound to (the chosen one when listenPort was 0). */
  get port(): number {
    if (this.state !== 'running') throw new Error('the peer transport is not listening; call start() first');
    return this.boundPort;
  }

  /** Listens for peers and starts dialing the peers known so far; resolves once listening. */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error(`the peer transport cannot start: it is ${this.state}`);
    this.state = 'starting';
    let server: net.Server | null = null;
    try {
      server = this.opts.tls ? await this.createTlsServer(this.opts.tls) : net.createServer();
      this.throwIfStopped();
      this.server = server;
      server.on('connection', (sock: net.Socket) => this.track(sock));
      server.on(this.opts.tls ? 'secureConnection' : 'connection', (sock: net.Socket) => this.accept(sock));
      await this.listen(server);
      this.throwIfStopped();
    } catch (err) {
      this.state = 'stopped';
      if (server?.listening) server.close();
      this.server = null;
      throw err;
    }
    server.on('error', (err) => {
      this.opts.logger.error({ err: err.message }, `peer listener failed: ${err.message}`);
    });
    this.state = 'running';
    this.opts.logger.info(
      { host: this.opts.listenHost, port: this.boundPort, tls: this.opts.tls !== undefined },
      `listening for peers on ${this.opts.listenHost}:${this.boundPort}${this.opts.tls ? ' (mutual TLS)' : ''}`,
    );
    for (const s of this.streams.values()) s.start();
  }

  /** Adds a peer or changes its address; a changed address drops the connection to the old one. */
  setPeer(id: NodeId, host: string, port: number): void {
    if (this.state === 'stopped') return;
    if (id === this.opts.nodeId) throw new RangeError(`node ${id} is this node; it needs no peer address`);
    if (!Number.isInteger(id) || id <= 0 || id > 0xffffffff) throw new RangeError(`peer node id must be an integer from 1 to 4294967295, got ${id}`);
    if (host === '') throw new RangeError(`peer ${id} needs a host name or address`);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`peer ${id} port must be from 1 to 65535, got ${port}`);
    const existing = this.streams.get(id);
    if (existing) {
      existing.setAddress(host, port);
      return;
    }
    const stream = new PeerStream(id, host, port, this.streamCtx);
    this.streams.set(id, stream);
    if (this.state === 'running') stream.start();
  }

  /**
   * Forgets a peer: its connections close both ways (it must handshake again, and is refused
   * if removedAt names it), its queue is dropped, a pending snapshot is reported failed.
   */
  removePeer(id: NodeId): void {
    this.inboundByPeer.get(id)?.close();
    const stream = this.streams.get(id);
    if (!stream) return;
    this.streams.delete(id);
    stream.remove();
  }

  /**
   * Queues messages for their peers and starts writing them. Never blocks and never throws
   * for a peer's condition: a message to an unknown peer or a full queue is dropped and the
   * peer reported through onUnreachable (once per call); a refused snapshot is reported
   * through onSnapshotStatus(peer, false).
   */
  send(messages: Message[]): void {
    if (this.state === 'stopped') return;
    const unreachable = new Set<NodeId>();
    const touched = new Set<PeerStream>();
    for (const m of messages) {
      const isSnap = m.type === MessageType.Snap;
      if (isLocalMessage(m.type)) {
        this.opts.logger.error({ type: MessageType[m.type], to: m.to }, `message type ${MessageType[m.type]} is local and was not sent`);
        continue;
      }
      const stream = this.streams.get(m.to);
      if (!stream) {
        this.opts.logger.debug({ peer: m.to, type: MessageType[m.type] }, `no address for peer ${m.to}; message dropped`);
        unreachable.add(m.to);
        if (isSnap) this.streamCtx.onSnapshotStatus(m.to, false);
        continue;
      }
      let result;
      try {
        const bodyBytes = encodedMessageSize(m);
        if (!this.fitsInFrame(m, bodyBytes)) {
          if (isSnap) this.streamCtx.onSnapshotStatus(m.to, false);
          continue;
        }
        result = stream.offer(m, bodyBytes);
      } catch (err) {
        this.opts.logger.error(
          { peer: m.to, type: MessageType[m.type], err: errorOf(err).message },
          `cannot encode a ${MessageType[m.type]} message for peer ${m.to}: ${errorOf(err).message}; it was dropped`,
        );
        if (isSnap) this.streamCtx.onSnapshotStatus(m.to, false);
        continue;
      }
      if (result === 'full') unreachable.add(m.to);
      else if (result === 'snapshot-busy') {
        this.opts.logger.warn({ peer: m.to }, `a snapshot to peer ${m.to} is still in flight; the new one was dropped`);
        this.streamCtx.onSnapshotStatus(m.to, false);
      } else touched.add(stream);
    }
    for (const s of touched) s.flush();
    for (const peer of unreachable) this.streamCtx.onUnreachable(peer);
  }

  /** Queue and connection figures for one peer (for metrics and tests); undefined for an unknown peer. */
  peerStats(id: NodeId): PeerStats | undefined {
    return this.streams.get(id)?.stats();
  }

  /** Node ids with an open, identified inbound connection. */
  connectedInbound(): NodeId[] {
    return [...this.inboundByPeer.keys()];
  }

  /** Closes every connection, timer and the listener. No callback runs after stop() is called. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    for (const s of this.streams.values()) s.close();
    this.streams.clear();
    for (const c of [...this.inbound]) c.close();
    for (const sock of this.sockets) sock.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = null;
    if (server?.listening) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** stop() may run while start() awaits; start must then not go on listening. */
  private throwIfStopped(): void {
    if (this.state === 'stopped') throw new Error('the peer transport was stopped while it was starting');
  }

  private fitsInFrame(m: Message, bodyBytes: number): boolean {
    // As the receiver counts it: the kind byte and the body.
    const frameBytes = 1 + bodyBytes;
    if (frameBytes <= this.opts.maxFrameBytes) return true;
    this.opts.logger.error(
      { peer: m.to, type: MessageType[m.type], bytes: frameBytes, maxFrameBytes: this.opts.maxFrameBytes },
      `a ${MessageType[m.type]} message of ${frameBytes} bytes for peer ${m.to} exceeds the frame limit of ` +
        `${this.opts.maxFrameBytes} bytes and was dropped; raise the limit on every node or reduce the message size`,
    );
    return false;
  }

  private connect(host: string, port: number): net.Socket {
    if (!this.tlsClientOptions) return net.connect({ host, port });
    return tls.connect({ ...this.tlsClientOptions, host, port, servername: net.isIP(host) ? undefined : host });
  }

  private async createTlsServer(files: TlsFiles): Promise<tls.Server> {
    const material = await readTlsMaterial(files);
    const common = { ...material, minVersion: 'TLSv1.2' as const };
    this.tlsClientOptions = agentTlsClient(material, files.verifyHostname);
    let server: tls.Server;
    try {
      server = tls.createServer({
        ...common,
        requestCert: true,
        rejectUnauthorized: true,
        handshakeTimeout: this.opts.handshakeTimeoutMs,
      });
    } catch (err) {
      throw new Error(
        `cannot set up TLS for peer traffic: ${errorOf(err).message}. Check that ${files.certFile} and ` +
          `${files.keyFile} are a matching PEM certificate and key`,
      );
    }
    server.on('tlsClientError', (err: Error & { code?: string; reason?: string }, sock: tls.TLSSocket) => {
      // Node destroys a socket whose certificate fails verification before reporting it, so
      // the address may be gone; authorizationError still names the verification failure.
      const remote = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'an address no longer known';
      const msg = sock.authorizationError
        ? `refused a peer connection from ${remote}: its certificate was not accepted (${sock.authorizationError}); ` +
          `only nodes with certificates signed by the cluster CA in ${files.caFile} may connect`
        : `refused a peer connection from ${remote}: TLS handshake failed (${err.reason ?? err.code ?? err.message}); ` +
          'the peer does not speak TLS or presented no certificate. Every node needs the same TLS settings';
      const fields = { remote, err: err.message, authorizationError: sock.authorizationError };
      if (this.throttle.shouldLog(`tls:${sock.remoteAddress}`)) this.opts.logger.warn(fields, msg);
      else this.opts.logger.debug(fields, msg);
      sock.destroy();
    });
    return server;
  }

  private listen(server: net.Server): Promise<void> {
    const { listenHost: host, listenPort: port } = this.opts;
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) => {
        const hint =
          err.code === 'EADDRINUSE'
            ? 'another process holds the port (another agent on this machine?); stop it or change pgraft.port'
            : err.code === 'EADDRNOTAVAIL'
              ? 'the address is not one of this machine\'s; fix the listen address'
              : 'check the listen address and port';
        reject(new Error(`cannot listen for peer traffic on ${host}:${port}: ${err.message}; ${hint}`));
      };
      server.once('error', onError);
      server.listen(port, host, () => {
        server.off('error', onError);
        this.boundPort = (server.address() as net.AddressInfo).port;
        resolve();
      });
    });
  }

  private track(sock: net.Socket): void {
    if (this.state === 'stopped') {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.once('close', () => this.sockets.delete(sock));
  }

  private accept(sock: net.Socket): void {
    if (this.state === 'stopped') {
      sock.destroy();
      return;
    }
    this.inbound.add(new InboundConnection(sock, this.inboundCtx));
  }

  /** A peer that reconnects (after a restart, say) replaces its older, possibly half-dead connection. */
  private onIdentified(conn: InboundConnection): void {
    const old = this.inboundByPeer.get(conn.peerId);
    this.inboundByPeer.set(conn.peerId, conn);
    if (conn.peerAdvertise) this.onPeerIdentified(conn.peerId, conn.peerAdvertise);
    this.streams.get(conn.peerId)?.retryNow();
    if (old && old !== conn) {
      this.opts.logger.debug({ peer: conn.peerId }, `peer ${conn.peerId} reconnected; closing its older connection`);
      old.close();
    }
  }

  private onInboundClosed(conn: InboundConnection): void {
    this.inbound.delete(conn);
    if (conn.peerId !== 0 && this.inboundByPeer.get(conn.peerId) === conn) {
      this.inboundByPeer.delete(conn.peerId);
      this.onPeerDisconnected(conn.peerId);
    }
  }
}

/** The contents of TlsFiles. */
export interface TlsMaterial {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
}

/**
 * How one agent connects to another over TLS (the Raft port, and the HTTP API with
 * pgraft.api_tls): the cluster CA is the trust anchor and the node presents its own
 * certificate; host names are checked only when asked (see TlsFiles.verifyHostname).
 */
export function agentTlsClient(m: TlsMaterial, verifyHostname = false): tls.ConnectionOptions {
  return {
    ...m,
    minVersion: 'TLSv1.2',
    rejectUnauthorized: true,
    ...(verifyHostname ? {} : { checkServerIdentity: () => undefined }),
  };
}

/** Reads the three files; a failure names the file and what to check. */
export async function readTlsMaterial(files: TlsFiles): Promise<TlsMaterial> {
  const [cert, key, ca] = await Promise.all([
    readTlsFile(files.certFile, 'certificate'),
    readTlsFile(files.keyFile, 'private key'),
    readTlsFile(files.caFile, 'CA certificate'),
  ]);
  return { cert, key, ca };
}

async function readTlsFile(path: string, what: string): Promise<Buffer> {
  try {
    return await fs.readFile(path);
  } catch (err) {
    throw new Error(`cannot read the TLS ${what} file ${path}: ${errorOf(err).message}; check the path and its permissions`);
  }
}
