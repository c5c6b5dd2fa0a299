/**
 * libpq connection strings for the `pg` client. pgraft.pg_conninfo is written as libpq
 * takes it, either keyword/value (`host=/var/run/postgresql dbname=postgres`) or a URI
 * (`postgresql://...`); `pg` itself understands only URIs.
 */
import type { ClientConfig } from 'pg';

/** Keywords pgraft understands; libpq has more, and naming another is an error. */
const KEYWORDS = new Set([
  'host', 'hostaddr', 'port', 'dbname', 'user', 'password', 'application_name',
  'connect_timeout', 'options', 'sslmode',
]);

export function parseConninfo(conninfo: string): ClientConfig {
  if (/^postgres(ql)?:\/\//.test(conninfo.trim())) {
    return { connectionString: conninfo.trim() };
  }
  const config: ClientConfig = {};
  for (const [key, value] of keywordValues(conninfo)) {
    if (!KEYWORDS.has(key)) {
      throw new Error(
        `pgraft.pg_conninfo: unsupported keyword "${key}"; use ${[...KEYWORDS].join(', ')}, or a postgresql:// URI`,
      );
    }
    switch (key) {
      case 'host':
      case 'hostaddr':
        config.host = value;
        break;
      case 'port':
        config.port = Number(value);
        if (!Number.isInteger(config.port) || config.port < 1 || config.port > 65535) {
          throw new Error(`pgraft.pg_conninfo: port must be 1-65535, not "${value}"`);
        }
        break;
      case 'dbname':
        config.database = value;
        break;
      case 'user':
        config.user = value;
        break;
      case 'password':
        config.password = value;
        break;
      case 'application_name':
        config.application_name = value;
        break;
      case 'connect_timeout':
        config.connectionTimeoutMillis = Number(value) * 1000;
        break;
      case 'options':
        config.options = value;
        break;
      case 'sslmode':
        config.ssl = sslFor(value);
        break;
    }
  }
  return config;
}

function sslFor(mode: string): ClientConfig['ssl'] {
  switch (mode) {
    case 'disable':
    case 'allow':
    case 'prefer':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-ca':
    case 'verify-full':
      return true;
    default:
      throw new Error(`pgraft.pg_conninfo: unknown sslmode "${mode}"`);
  }
}

/** libpq's keyword/value syntax: spaces around '=', values bare or in single quotes, backslash escapes. */
function* keywordValues(s: string): Generator<[string, string]> {
  let i = 0;
  const skipSpace = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  for (;;) {
    skipSpace();
    if (i >= s.length) return;
    const keyStart = i;
    while (i < s.length && /[A-Za-z0-9_]/.test(s[i])) i++;
    const key = s.slice(keyStart, i);
    skipSpace();
    if (!key || s[i] !== '=') {
      throw new Error(`pgraft.pg_conninfo: expected keyword=value at "${s.slice(keyStart, keyStart + 20)}"`);
    }
    i++;
    skipSpace();
    let value = '';
    const quoted = s[i] === "'";
    if (quoted) i++;
    for (; i < s.length; i++) {
      const c = s[i];
      if (quoted ? c === "'" : /\s/.test(c)) break;
      if (c === '\\' && i + 1 < s.length) {
        value += s[++i];
        continue;
      }
      value += c;
    }
    if (quoted) {
      if (s[i] !== "'") throw new Error(`pgraft.pg_conninfo: unterminated quoted value for "${key}"`);
      i++;
    }
    yield [key, value];
  }
}
