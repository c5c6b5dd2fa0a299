import * as net from 'node:net';
import type * as https from 'node:https';

/** A TLS connection starts with a handshake record (content type 22). */
const TLS_HANDSHAKE = 0x16;
/** A client that connects and sends nothing is dropped after this long. */
const FIRST_BYTE_TIMEOUT_MS = 10_000;

/**
 * The listener of an API served over HTTPS. TLS connections go to `tls`; a plain HTTP
 * request, which a TLS server would drop without a word (curl: "empty reply from server"),
 * gets a 400 that says to use https://. The first byte tells them apart.
 */
export class HttpsPort {
  readonly server: net.Server;
  /** Connections whose first byte has not arrived yet. */
  private readonly waiting = new Set<net.Socket>();

  constructor(private readonly tls: https.Server) {
    this.server = net.createServer((socket) => this.accept(socket));
  }

  private accept(socket: net.Socket): void {
    this.waiting.add(socket);
    socket.on('error', () => socket.destroy());
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once('close', () => this.waiting.delete(socket));
    socket.once('data', (first: Buffer) => {
      this.waiting.delete(socket);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(first);
      if (first[0] === TLS_HANDSHAKE) this.tls.emit('connection', socket);
      else socket.end(plainHttpRefusal(first));
    });
  }

  /** Stops accepting and closes every connection. */
  close(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.waiting) s.destroy();
      this.tls.closeAllConnections();
    });
  }
}

/** The answer to a plain HTTP request, naming the address the client used when it said. */
export function plainHttpRefusal(request: Buffer): string {
  const host = /\r\nhost:[ \t]*([^\r\n\s]+)/i.exec(request.toString('latin1'))?.[1] ?? 'HOST:PORT';
  const body = JSON.stringify({
    error: "this is pgraft's HTTP API over HTTPS (pgraft.api_tls = on), and the request came as plain HTTP",
    hint: `use https://${host} and trust the cluster CA (pgraft.tls_ca_file): give --api https://${host} --cacert CA_FILE to pgraft, --cacert CA_FILE to curl`,
  });
  return (
    'HTTP/1.1 400 Bad Request\r\n' +
    'content-type: application/json\r\n' +
    `content-length: ${Buffer.byteLength(body)}\r\n` +
    'connection: close\r\n\r\n' +
    body
  );
}
