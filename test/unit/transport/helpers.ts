import * as net from 'net';
import { SeededRng } from '../../../agent/raft/rng';
import { Entry, EntryType, Message, MessageType, NodeId, emptyMessage } from '../../../agent/raft/types';
import { Logger } from '../../../agent/transport/logger';
import { PeerTransport, PeerTransportOptions } from '../../../agent/transport/transport';

/** Message types that travel between nodes (all but the local ones). */
export const WIRE_TYPES: MessageType[] = [
  MessageType.Prop,
  MessageType.App,
  MessageType.AppResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.PreVote,
  MessageType.PreVoteResp,
  MessageType.Snap,
  MessageType.Heartbeat,
  MessageType.HeartbeatResp,
  MessageType.ReadIndex,
  MessageType.ReadIndexResp,
  MessageType.TransferLeader,
  MessageType.TimeoutNow,
];

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  message: string;
}

export class RecordingLogger implements Logger {
  readonly lines: LogLine[] = [];
  debug = (fields: Record<string, unknown>, message: string) => this.lines.push({ level: 'debug', fields, message });
  info = (fields: Record<string, unknown>, message: string) => this.lines.push({ level: 'info', fields, message });
  warn = (fields: Record<string, unknown>, message: string) => this.lines.push({ level: 'warn', fields, message });
  error = (fields: Record<string, unknown>, message: string) => this.lines.push({ level: 'error', fields, message });

  has(level: LogLine['level'], pattern: RegExp): boolean {
    return this.lines.some((l) => l.level === level && pattern.test(l.message));
  }

  dump(): string {
    return this.lines.map((l) => `${l.level}: ${l.message}`).join('\n');
  }
}

/** Polls `cond` until it holds; fails with `what` (and optional diagnostics) after the deadline. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000, diag?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${diag ? `\n${diag()}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function randomBytes(rng: SeededRng, maxLen: number): Uint8Array {
  const b = new Uint8Array(rng.intn(maxLen + 1));
  for (let i = 0; i < b.length; i++) b[i] = rng.intn(256);
  return b;
}

/** A non-negative integer anywhere in [0, 2^53): small, near 2^32, or huge. */
export function randomU53(rng: SeededRng): number {
  switch (rng.intn(3)) {
    case 0:
      return rng.intn(1000);
    case 1:
      return 0xffffffff - 5 + rng.intn(10);
    default:
      return rng.intn(0x200000) * 0x100000000 + rng.intn(0x100000000);
  }
}

function randomIds(rng: SeededRng): NodeId[] {
  return Array.from({ length: rng.intn(6) }, () => 1 + rng.intn(0xfffffffe));
}

export function randomMessage(rng: SeededRng, type = WIRE_TYPES[rng.intn(WIRE_TYPES.length)]): Message {
  const entries: Entry[] = Array.from({ length: rng.intn(5) }, () => ({
    term: randomU53(rng),
    index: randomU53(rng),
    type: rng.chance(0.5) ? EntryType.Normal : EntryType.ConfChange,
    data: randomBytes(rng, 64),
  }));
  return {
    type,
    to: 1 + rng.intn(0xfffffffe),
    from: 1 + rng.intn(0xfffffffe),
    term: randomU53(rng),
    logTerm: randomU53(rng),
    index: randomU53(rng),
    entries,
    commit: randomU53(rng),
    reject: rng.chance(0.5),
    rejectHint: randomU53(rng),
    snapshot:
      type === MessageType.Snap || rng.chance(0.2)
        ? {
            metadata: { index: randomU53(rng), term: randomU53(rng), confState: { voters: randomIds(rng), learners: randomIds(rng) } },
            data: randomBytes(rng, 256),
          }
        : null,
    context: rng.chance(0.5) ? randomBytes(rng, 32) : null,
  };
}

/** A small App message whose `index` tells messages apart. */
export function app(from: NodeId, to: NodeId, index: number, payloadBytes = 16): Message {
  const m = emptyMessage(MessageType.App, to, from, 1);
  m.index = index;
  m.entries = [{ term: 1, index: index + 1, type: EntryType.Normal, data: new Uint8Array(payloadBytes).fill(index & 0xff) }];
  return m;
}

/** A snapshot message carrying `dataBytes` of image. */
export function snap(from: NodeId, to: NodeId, index: number, dataBytes = 1024): Message {
  const m = emptyMessage(MessageType.Snap, to, from, 2);
  m.snapshot = { metadata: { index, term: 2, confState: { voters: [1, 2, 3], learners: [] } }, data: new Uint8Array(dataBytes).fill(7) };
  return m;
}

/** Turns byte arrays into plain arrays so that equality does not depend on Buffer vs Uint8Array. */
export function normalize(m: Message): unknown {
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: Array.from(e.data) })),
    context: m.context === null ? null : Array.from(m.context),
    snapshot: m.snapshot === null ? null : { metadata: m.snapshot.metadata, data: Array.from(m.snapshot.data) },
  };
}

export interface Node {
  id: NodeId;
  transport: PeerTransport;
  logger: RecordingLogger;
  received: Message[];
  unreachable: NodeId[];
  snapshotStatus: Array<{ peer: NodeId; ok: boolean }>;
}

/**
 * Owns every transport, server and socket a test creates, so afterEach can close them all
 * whatever the test did or where it failed.
 */
export class Harness {
  private readonly transports: PeerTransport[] = [];
  private readonly servers: net.Server[] = [];
  private readonly sockets: net.Socket[] = [];

  async node(
    nodeId: NodeId,
    extra: Partial<PeerTransportOptions> = {},
    clusterId = 'test-cluster',
  ): Promise<Node> {
    const logger = new RecordingLogger();
    const n: Node = { id: nodeId, transport: undefined as unknown as PeerTransport, logger, received: [], unreachable: [], snapshotStatus: [] };
    n.transport = new PeerTransport({
      nodeId,
      clusterId,
      listenHost: '127.0.0.1',
      listenPort: 0,
      logger,
      handshakeTimeoutMs: 2000,
      logRepeatIntervalMs: 0,
      rng: new SeededRng(nodeId),
      onMessage: (m) => n.received.push(m),
      onUnreachable: (peer) => n.unreachable.push(peer),
      onSnapshotStatus: (peer, ok) => n.snapshotStatus.push({ peer, ok }),
      ...extra,
    });
    this.transports.push(n.transport);
    await n.transport.start();
    return n;
  }

  trackTransport(t: PeerTransport): PeerTransport {
    this.transports.push(t);
    return t;
  }

  trackServer(s: net.Server): net.Server {
    this.servers.push(s);
    return s;
  }

  trackSocket<S extends net.Socket>(s: S): S {
    this.sockets.push(s);
    s.on('error', () => undefined);
    return s;
  }

  /** A raw TCP client, for speaking the protocol (or not) by hand. */
  async rawConnect(port: number): Promise<RawClient> {
    const sock = this.trackSocket(net.connect({ host: '127.0.0.1', port }));
    const client = new RawClient(sock);
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', () => resolve());
      sock.once('error', reject);
    });
    return client;
  }

  /** A port on which nothing listens (bound once, then released). */
  async deadPort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  async closeAll(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.transports.map((t) => t.stop()));
    await Promise.all(
      this.servers.map((s) => new Promise<void>((r) => (s.listening ? s.close(() => r()) : r()))),
    );
    this.transports.length = 0;
    this.servers.length = 0;
    this.sockets.length = 0;
  }
}

export class RawClient {
  closed = false;
  readonly data: Buffer[] = [];

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => this.data.push(c));
    socket.on('close', () => (this.closed = true));
  }

  write(b: Uint8Array): void {
    this.socket.write(b);
  }

  received(): Buffer {
    return Buffer.concat(this.data);
  }
}
