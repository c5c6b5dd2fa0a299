/**
 * A lean HTTP/1.1 keep-alive connection for the load generator: requests are prepared once
 * as bytes, answers are parsed only as far as the status code and the end of the body
 * (Content-Length or chunked). node:http costs several times more CPU per request, and on a
 * small machine the generator's CPU is taken from the servers it measures.
 */
import * as net from 'node:net';
import type { PreparedWrite } from './kv_request';

export function requestBytes(port: number, w: PreparedWrite): Buffer {
  const type = w.method === 'PUT' ? 'text/plain' : 'application/json';
  const head = `${w.method} ${w.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: ${type}\r\nContent-Length: ${w.body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), w.body]);
}

const HEADER_END = Buffer.from('\r\n\r\n');

/** Where the answer at the start of `buf` ends, with its status; null while incomplete. */
export function parseAnswer(buf: Buffer): { status: number; end: number; close: boolean } | null {
  const h = buf.indexOf(HEADER_END);
  if (h < 0) return null;
  const head = buf.toString('latin1', 0, h);
  const status = Number(head.slice(9, 12));
  const close = /\r\nconnection:\s*close/i.test(head);
  const cl = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  let at = h + 4;
  if (cl) {
    const end = at + Number(cl[1]);
    return buf.length >= end ? { status, end, close } : null;
  }
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) {
    for (;;) {
      const nl = buf.indexOf('\r\n', at, 'latin1');
      if (nl < 0) return null;
      const size = parseInt(buf.toString('latin1', at, nl), 16);
      if (size === 0) {
        const end = buf.indexOf(HEADER_END, nl, 'latin1');
        return end < 0 ? null : { status, end: end + 4, close };
      }
      at = nl + 2 + size + 2;
      if (buf.length < at) return null;
    }
  }
  // No body framing: a status without a body (204, 304) or one that ends with the connection.
  return { status, end: at, close };
}

/** One connection, one request at a time (closed loop). Reconnects after an error or close. */
export class RawConnection {
  private socket: net.Socket | null = null;
  private buf: Buffer = Buffer.alloc(0);
  private pending: { resolve(status: number): void; reject(e: Error): void } | null = null;

  constructor(private readonly port: number) {}

  private open(): net.Socket {
    const s = net.connect({ host: '127.0.0.1', port: this.port, noDelay: true });
    s.on('data', (chunk: Buffer) => {
      if (this.socket !== s) return;
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      const a = parseAnswer(this.buf);
      if (!a || !this.pending) return;
      this.buf = this.buf.subarray(a.end);
      const p = this.pending;
      this.pending = null;
      if (a.close) this.drop(s, new Error('closed by the server'));
      p.resolve(a.status);
    });
    s.on('error', (e) => this.drop(s, e));
    s.on('close', () => this.drop(s, new Error('connection closed')));
    return s;
  }

  /** Forgets a connection; the request outstanding on it (if any) fails with `why`. */
  private drop(s: net.Socket, why: Error): void {
    s.destroy();
    if (this.socket !== s) return; // an old connection, already replaced
    this.socket = null;
    this.buf = Buffer.alloc(0);
    const p = this.pending;
    this.pending = null;
    p?.reject(why);
  }

  /** Sends one prepared request; resolves with the answer's status code. */
  send(bytes: Buffer): Promise<number> {
    if (this.pending) return Promise.reject(new Error('a request is already outstanding on this connection'));
    this.socket ??= this.open();
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket!.write(bytes);
    });
  }

  close(): void {
    if (this.socket) this.drop(this.socket, new Error('closed by the load generator'));
  }
}
