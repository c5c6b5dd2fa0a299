import type * as http from 'node:http';
import type * as net from 'node:net';
import type * as https from 'node:https';

/** The API's server, plain or over TLS. */
type HttpServer = http.Server | https.Server;

/**
 * Starts `server` on host:port; resolves with the bound port. A failure says which
 * listener and which setting to change.
 */
export async function listen(server: net.Server, host: string, port: number, what: string, setting: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((e: NodeJS.ErrnoException) => {
    throw new Error(
      `cannot listen for ${what} on ${host}:${port}: ${e.message}` +
        (e.code === 'EADDRINUSE' ? `; another process uses this port: stop it or set ${setting} to a free port` : ''),
    );
  });
  return (server.address() as { port: number }).port;
}

/** Stops accepting, and closes every open connection (idle keep-alive ones too). */
export function close(server: HttpServer): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
