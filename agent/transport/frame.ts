import { Message } from '../raft/types';
import { encodeMessageInto, encodedMessageSize } from './codec';

/**
 * Framing of the peer byte stream: every frame is
 *
 *   length u32 (bytes that follow: kind + body) | kind u8 | body
 *
 * Kinds: Hello and Welcome open a connection (handshake.ts), Message carries one raft
 * message (codec.ts), SnapshotAck tells the sender that a snapshot reached the receiving
 * node. The length prefix comes first so that an oversized frame is refused from its first
 * four bytes, before any of it is buffered.
 */
export enum FrameKind {
  Hello = 1,
  Welcome = 2,
  Message = 3,
  SnapshotAck = 4,
}

export const FRAME_HEADER_BYTES = 5;

/** Default limit on one frame: a snapshot must fit in one Message frame. */
export const DEFAULT_MAX_FRAME_BYTES = 128 * 1024 * 1024;

export interface Frame {
  kind: FrameKind;
  /** Owned by the receiver: never rewritten by the decoder, so views into it stay valid. */
  body: Buffer;
}

/** The byte stream broke the framing rules; the connection must be closed. */
export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/** One Message frame in a single buffer of exactly the right size. */
export function encodeMessageFrame(m: Message): Buffer {
  const bodyBytes = encodedMessageSize(m);
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + bodyBytes);
  buf.writeUInt32BE(1 + bodyBytes, 0);
  buf[4] = FrameKind.Message;
  const end = encodeMessageInto(m, buf, FRAME_HEADER_BYTES);
  if (end !== buf.length) throw new Error(`message encoder wrote ${end} bytes into a ${buf.length}-byte frame`);
  return buf;
}

/** A frame around an already encoded body (handshake and acknowledgement frames). */
export function encodeFrame(kind: FrameKind, body: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  buf.writeUInt32BE(1 + body.length, 0);
  buf[4] = kind;
  buf.set(body, FRAME_HEADER_BYTES);
  return buf;
}

/**
 * Splits a byte stream into frames. Chunks handed to push() become the decoder's: a frame
 * that lies inside one chunk is returned as a view of it, and a frame that spans chunks is
 * copied into a fresh buffer of its own. No buffer is ever reused, so message fields decoded
 * as views into a frame body stay valid for as long as anyone holds them. (Node allocates a
 * new buffer for every socket read unless a socket is created with the `onread` option,
 * which this transport does not use.)
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  /** Bytes of chunks[0] already consumed. */
  private head = 0;
  private buffered = 0;
  private failed = false;

  /** maxFrameBytes limits kind + body; it may be lowered or raised between pushes. */
  constructor(public maxFrameBytes: number) {}

  /** Bytes received but not yet returned as frames. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Adds a chunk and returns the frames completed by it. Throws FrameError when the stream
   * breaks the rules (zero length, unknown kind, over the limit); the decoder then refuses
   * further input, because a stream that lost its framing cannot be resynchronised.
   */
  push(chunk: Buffer): Frame[] {
    if (this.failed) throw new FrameError('the stream already broke the framing rules');
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.buffered < 4) break;
        const length = this.peekLength();
        if (length === 0) throw new FrameError('frame of length 0');
        if (length > this.maxFrameBytes) {
          throw new FrameError(`frame of ${length} bytes exceeds the limit of ${this.maxFrameBytes} bytes`);
        }
        if (this.buffered < 4 + length) break;
        this.skip(4);
        const frame = this.take(length);
        const kind = frame[0];
        if (!(kind in FrameKind)) throw new FrameError(`unknown frame kind ${kind}`);
        frames.push({ kind, body: frame.subarray(1) });
      }
    } catch (err) {
      this.failed = true;
      this.chunks = [];
      this.buffered = 0;
      throw err;
    }
    return frames;
  }

  private peekLength(): number {
    const first = this.chunks[0];
    if (first.length - this.head >= 4) return first.readUInt32BE(this.head);
    const b = Buffer.alloc(4);
    let got = 0;
    let off = this.head;
    for (let i = 0; got < 4; i++) {
      const c = this.chunks[i];
      const n = Math.min(4 - got, c.length - off);
      c.copy(b, got, off, off + n);
      got += n;
      off = 0;
    }
    return b.readUInt32BE(0);
  }

  private skip(n: number): void {
    this.take(n);
  }

  /** Removes n buffered bytes (n <= buffered): a view when they lie in one chunk, else a fresh copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length - this.head >= n) {
      out = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
    } else {
      out = Buffer.allocUnsafe(n);
      let got = 0;
      let i = 0;
      let off = this.head;
      while (got < n) {
        const c = this.chunks[i];
        const k = Math.min(n - got, c.length - off);
        c.copy(out, got, off, off + k);
        got += k;
        off += k;
        if (off === c.length) {
          i++;
          off = 0;
        }
      }
      // One splice, not a shift per chunk: a large frame arrives in thousands of chunks.
      this.chunks.splice(0, i);
      this.head = off;
    }
    this.buffered -= n;
    return out;
  }
}
