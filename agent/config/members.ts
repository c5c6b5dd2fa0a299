/**
 * Host names and the static member list used to bootstrap a cluster
 * (pgraft.initial_cluster = '1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001').
 */
import * as net from 'net';

export interface Member {
  readonly id: number;
  readonly host: string;
  readonly port: number;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string; readonly hint?: string };

const LABEL = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** Null when `host` is an IPv4 or IPv6 address or a DNS name; otherwise what is wrong with it. */
export function hostProblem(host: string): string | null {
  if (host === '') return 'the host is empty';
  if (net.isIP(host)) return null;
  if (/^[0-9.]+$/.test(host)) return `"${host}" is not a valid IPv4 address`;
  if (host.length > 253 || !host.split('.').every((l) => LABEL.test(l))) {
    return `"${host}" is neither an IP address nor a valid host name`;
  }
  return null;
}

export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || (net.isIPv4(h) && h.startsWith('127.'));
}

function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::';
}

export function formatEndpoint(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

export function formatMembers(members: readonly Member[]): string {
  return members.map((m) => `${m.id}=${formatEndpoint(m.host, m.port)}`).join(',');
}

const ENTRY = /^(\d+)=(?:\[([^\]]*)\]|([^:[\]]*)):(\d+)$/;
const EXAMPLE = "'1=10.0.0.1:7001,2=10.0.0.2:7001,3=10.0.0.3:7001'";

/** Parses `id=host:port` entries separated by commas; an empty text is an empty list. */
export function parseMembers(text: string, maxId: number): Checked<Member[]> {
  const members: Member[] = [];
  if (text.trim() === '') return { ok: true, value: members };
  const entries = text.split(',').map((e) => e.trim());
  for (const [i, entry] of entries.entries()) {
    const m = ENTRY.exec(entry.replace(/\s*=\s*/, '='));
    const bad = (problem: string): Checked<Member[]> => ({
      ok: false,
      problem: `entry ${i + 1} ("${entry}") ${problem}`,
      hint: `write node_id=host:port for each member, separated by commas, e.g. ${EXAMPLE}`,
    });
    if (!m) return bad('is not of the form node_id=host:port');
    const id = Number(m[1]);
    const host = m[2] ?? m[3];
    const port = Number(m[4]);
    if (id < 1 || id > maxId) return bad(`has node id ${m[1]}, outside 1 .. ${maxId}`);
    if (port < 1 || port > 65535) return bad(`has port ${m[4]}, outside 1 .. 65535`);
    const problem = hostProblem(host);
    if (problem) return bad(`has a bad host: ${problem}`);
    if (isWildcard(host)) return bad(`has ${host}, which is a listen-on-all address other nodes cannot connect to`);
    const sameId = members.find((o) => o.id === id);
    if (sameId) return bad(`repeats node id ${id}`);
    const sameEndpoint = members.find((o) => o.host.toLowerCase() === host.toLowerCase() && o.port === port);
    if (sameEndpoint) return bad(`gives node ${id} the address of node ${sameEndpoint.id} (${formatEndpoint(host, port)})`);
    members.push({ id, host, port });
  }
  return { ok: true, value: members };
}
