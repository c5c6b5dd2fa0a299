/** pgraft.pg_conninfo as libpq writes it, turned into `pg` client settings (no server needed). */
import { parseConninfo } from '../../../agent/postgres/conninfo';

test('keyword/value pairs, spaces around "=", quoted values with escapes', () => {
  expect(parseConninfo("host=/var/run/postgresql port = 5433 dbname='my db' user=postgres password='it\\'s'")).toEqual({
    host: '/var/run/postgresql', port: 5433, database: 'my db', user: 'postgres', password: "it's",
  });
  expect(parseConninfo('hostaddr=127.0.0.1 connect_timeout=3 sslmode=require application_name=agent')).toEqual({
    host: '127.0.0.1', connectionTimeoutMillis: 3000, ssl: { rejectUnauthorized: false }, application_name: 'agent',
  });
  expect(parseConninfo('')).toEqual({});
});

test('URIs are passed to pg as they are', () => {
  expect(parseConninfo('postgresql://postgres@localhost:5432/postgres')).toEqual({
    connectionString: 'postgresql://postgres@localhost:5432/postgres',
  });
});

test('mistakes are named', () => {
  expect(() => parseConninfo('host=x servicefile=y')).toThrow(/unsupported keyword "servicefile"/);
  expect(() => parseConninfo('port=99999')).toThrow(/port must be 1-65535, not "99999"/);
  expect(() => parseConninfo("dbname='open")).toThrow(/unterminated quoted value for "dbname"/);
  expect(() => parseConninfo('host')).toThrow(/expected keyword=value/);
  expect(() => parseConninfo('sslmode=sometimes')).toThrow(/unknown sslmode "sometimes"/);
});
