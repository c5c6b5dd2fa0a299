/**
 * Application commands carried in Normal log entries. Binary, one opcode byte first: the
 * replication path never sees JSON. An empty entry (a new leader's) is a no-op.
 */
export enum Op {
  Put = 1,
  Delete = 2,
  /** pgraft_log_append: an opaque application record. */
  Append = 3,
  /** A member announces how to reach its HTTP API (so followers can forward writes to it). */
  MemberMeta = 4,
}

export type Command =
  | { op: Op.Put; key: string; value: string }
  | { op: Op.Delete; key: string }
  | { op: Op.Append; data: string }
  | { op: Op.MemberMeta; nodeId: number; apiAddress: string };

/** A command as read back from the log: a put's value stays UTF-8 bytes (a view of the entry). */
export type LoggedCommand = Exclude<Command, { op: Op.Put }> | { op: Op.Put; key: string; value: Uint8Array };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeCommand(c: Command): Uint8Array {
  switch (c.op) {
    case Op.Put: {
      const k = enc.encode(c.key);
      const v = enc.encode(c.value);
      const out = new Uint8Array(5 + k.length + v.length);
      out[0] = Op.Put;
      new DataView(out.buffer).setUint32(1, k.length);
      out.set(k, 5);
      out.set(v, 5 + k.length);
      return out;
    }
    case Op.Delete:
      return withOp(Op.Delete, enc.encode(c.key));
    case Op.Append:
      return withOp(Op.Append, enc.encode(c.data));
    case Op.MemberMeta: {
      const a = enc.encode(c.apiAddress);
      const out = new Uint8Array(5 + a.length);
      out[0] = Op.MemberMeta;
      new DataView(out.buffer).setUint32(1, c.nodeId);
      out.set(a, 5);
      return out;
    }
  }
}

function withOp(op: Op, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + body.length);
  out[0] = op;
  out.set(body, 1);
  return out;
}

/**
 * A proposal as it travels in the log: who proposed it (node id and a per-process epoch)
 * and its sequence number, then the command. Any node may propose: a follower's proposal is
 * forwarded to the leader by the core, and the proposer recognises its own entry when it
 * applies it. The epoch keeps entries proposed before a restart from answering new callers.
 */
export interface ProposalId {
  origin: number;
  epoch: number;
  seq: number;
}

const TRACKED = 0xfe;
const ENVELOPE_BYTES = 13;

export function encodeProposal(id: ProposalId, c: Command): Uint8Array {
  // A put, the hot path, is written straight into one buffer; the rarer commands are copied.
  if (c.op === Op.Put) {
    const klen = Buffer.byteLength(c.key);
    const out = Buffer.allocUnsafe(ENVELOPE_BYTES + 5 + klen + Buffer.byteLength(c.value));
    writeEnvelope(out, id);
    out[ENVELOPE_BYTES] = Op.Put;
    out.writeUInt32BE(klen, ENVELOPE_BYTES + 1);
    out.write(c.key, ENVELOPE_BYTES + 5);
    out.write(c.value, ENVELOPE_BYTES + 5 + klen);
    return out;
  }
  const body = encodeCommand(c);
  const out = Buffer.allocUnsafe(ENVELOPE_BYTES + body.length);
  writeEnvelope(out, id);
  out.set(body, ENVELOPE_BYTES);
  return out;
}

function writeEnvelope(out: Buffer, id: ProposalId): void {
  out[0] = TRACKED;
  out.writeUInt32BE(id.origin, 1);
  out.writeUInt32BE(id.epoch, 5);
  out.writeUInt32BE(id.seq, 9);
}

/** Splits an entry's data into the proposer's id (null for untracked data) and the command. */
export function decodeProposal(data: Uint8Array): { id: ProposalId | null; command: LoggedCommand } {
  if (data[0] !== TRACKED) return { id: null, command: decodeCommand(data) };
  if (data.length < ENVELOPE_BYTES + 1) throw new Error(`proposal envelope too short (${data.length} bytes)`);
  const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    id: { origin: v.getUint32(1), epoch: v.getUint32(5), seq: v.getUint32(9) },
    command: decodeCommand(data.subarray(ENVELOPE_BYTES)),
  };
}

export function decodeCommand(data: Uint8Array): LoggedCommand {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  switch (data[0]) {
    case Op.Put: {
      const klen = view.getUint32(1);
      return { op: Op.Put, key: dec.decode(data.subarray(5, 5 + klen)), value: data.subarray(5 + klen) };
    }
    case Op.Delete:
      return { op: Op.Delete, key: dec.decode(data.subarray(1)) };
    case Op.Append:
      return { op: Op.Append, data: dec.decode(data.subarray(1)) };
    case Op.MemberMeta:
      return { op: Op.MemberMeta, nodeId: view.getUint32(1), apiAddress: dec.decode(data.subarray(5)) };
    default:
      throw new Error(`unknown command opcode ${data[0]} in log entry`);
  }
}
