/**
 * node-postgres and pg-listen, loaded without the cost of pg's runtime probe.
 *
 * As it loads, pg asks whether it runs in a Cloudflare Worker. Where `navigator.userAgent` is
 * missing (Node 20) it constructs a fetch `Response` to find out, and the first touch of the
 * global `Response` makes Node load its fetch implementation: undici, web streams, HTTP/2 and
 * TLS code that the agent never uses. That cost about 6 MB of RSS in a bare process, and 3.5 MB
 * at the peak of an agent under load. While pg loads, `Response` reads as undefined, so the
 * probe concludes at once what it would have concluded anyway (not a Worker: Node's sockets);
 * then the global is put back exactly as it was, still unloaded until someone uses it.
 */
import type * as Pg from 'pg';
import type * as PgListen from 'pg-listen';

/** Runs `load` with `globalThis.Response` hidden; restores its property as it was. */
export function withResponseHidden<T>(load: () => T): T {
  const response = Object.getOwnPropertyDescriptor(globalThis, 'Response');
  if (response === undefined || !response.configurable) return load();
  Object.defineProperty(globalThis, 'Response', { value: undefined, configurable: true, writable: true });
  try {
    return load();
  } finally {
    Object.defineProperty(globalThis, 'Response', response);
  }
}

const modules = withResponseHidden(() => ({
  // pg-listen requires pg itself: both load here, inside the window.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  pg: require('pg') as typeof Pg,
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  listen: require('pg-listen') as typeof PgListen,
}));

export const Client = modules.pg.Client;
export type Client = Pg.Client;
export type ClientConfig = Pg.ClientConfig;
export const createSubscriber = modules.listen.default;
export type Subscriber = PgListen.Subscriber;
