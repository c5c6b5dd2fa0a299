-- pgraft 1.0: the SQL control surface of the pgraft agent.
--
-- Two paths connect SQL to the agent that runs beside this PostgreSQL:
--
-- * Status (pgraft_get_leader, pgraft_is_leader, pgraft_get_term, pgraft_get_worker_state,
--   pgraft_get_cluster_status, pgraft_get_nodes, pgraft_log_get_stats) reads the JSON file
--   the agent rewrites atomically at <data_directory>/pgraft/status.json. Reading a file
--   needs no write and no NOTIFY, so these work on a hot standby, and a file older than
--   pgraft.status_timeout means the agent is dead or hung: the picture turns to STOPPED.
--
-- * Requests (everything that asks the agent to act or to answer from the Raft state)
--   are rows in pgraft.request. NOTIFY is transactional, so a request written and waited
--   for in the caller's transaction would never leave; instead the caller's backend opens
--   a loopback connection to this server (dblink) and runs pgraft._call there: it inserts
--   the row, notifies the agent and commits, then waits for the answer in fresh snapshots.
--   The caller's own transaction and isolation level play no part.
--
-- Authority: only the extension owner (a superuser) can write pgraft.request, and the
-- functions that make it do so are executable only by superusers and pgraft_admin. The
-- NOTIFY payload is never trusted: the agent claims pending rows from the table.

\echo Use "CREATE EXTENSION pgraft" to load this file. \quit

DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'pgraft_admin') THEN
    CREATE ROLE pgraft_admin NOLOGIN;
  END IF;
END
$$;
COMMENT ON ROLE pgraft_admin IS 'may call the pgraft control functions (GRANT pgraft_admin TO a role)';

-- Internal objects: no privilege for anyone but the owner.
CREATE SCHEMA pgraft;
REVOKE ALL ON SCHEMA pgraft FROM PUBLIC;

-- The dblink entry points pgraft needs, bound straight to contrib's library.
CREATE FUNCTION pgraft._dblink_connect(text, text) RETURNS text
  AS '$libdir/dblink', 'dblink_connect' LANGUAGE C STRICT;
CREATE FUNCTION pgraft._dblink_disconnect(text) RETURNS text
  AS '$libdir/dblink', 'dblink_disconnect' LANGUAGE C STRICT;
CREATE FUNCTION pgraft._dblink_exec(text, text) RETURNS text
  AS '$libdir/dblink', 'dblink_exec' LANGUAGE C STRICT;
CREATE FUNCTION pgraft._dblink(text, text) RETURNS SETOF record
  AS '$libdir/dblink', 'dblink_record' LANGUAGE C STRICT;
CREATE FUNCTION pgraft._dblink_get_connections() RETURNS text[]
  AS '$libdir/dblink', 'dblink_get_connections' LANGUAGE C;

-- Requests to the agent. Unlogged: a request lives for a few milliseconds and is
-- worthless after a crash, so it costs no WAL and its commit no fsync.
CREATE UNLOGGED TABLE pgraft.request (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  op           text NOT NULL,
  args         jsonb NOT NULL,
  requested_by name NOT NULL,
  requested_at timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
  deadline     timestamptz NOT NULL,
  state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'working', 'done')),
  -- {"result": ...} or {"error": {"message", "sqlstate", "hint", "detail"}}
  reply        jsonb
);
REVOKE ALL ON pgraft.request FROM PUBLIC;
CREATE INDEX request_pending ON pgraft.request (id) WHERE state = 'pending';

----------------------------------------------------------------------------------------
-- Helpers
----------------------------------------------------------------------------------------

-- A duration setting in milliseconds: a plain number is milliseconds (as for
-- statement_timeout); units us, ms, s, min, h, d are accepted.
CREATE FUNCTION pgraft._setting_ms(setting text, default_ms integer) RETURNS integer
LANGUAGE plpgsql STABLE AS $$
DECLARE
  v text := pg_catalog.btrim(pg_catalog.current_setting(setting, true));
  m text[];
BEGIN
  IF v IS NULL OR v = '' THEN
    RETURN default_ms;
  END IF;
  m := pg_catalog.regexp_match(v, '^(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?$');
  IF m IS NULL THEN
    RAISE EXCEPTION 'invalid value for setting "%": "%"', setting, v
      USING ERRCODE = '22023',
            HINT = 'Give milliseconds or a number with a unit, e.g. 5000, 5s or 500ms.';
  END IF;
  RETURN pg_catalog.ceil(m[1]::numeric * CASE coalesce(m[2], 'ms')
    WHEN 'us' THEN 0.001 WHEN 'ms' THEN 1 WHEN 's' THEN 1000
    WHEN 'min' THEN 60000 WHEN 'h' THEN 3600000 ELSE 86400000 END)::integer;
END
$$;

-- RAISE with the optional parts only when present (RAISE rejects NULL options).
CREATE FUNCTION pgraft._raise(message text, errstate text, hint text, detail text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  code text := CASE WHEN errstate ~ '^[0-9A-Z]{5}$' THEN errstate ELSE 'XX000' END;
BEGIN
  IF hint IS NOT NULL AND detail IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = code, HINT = hint, DETAIL = detail;
  ELSIF hint IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = code, HINT = hint;
  ELSIF detail IS NOT NULL THEN
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = code, DETAIL = detail;
  ELSE
    RAISE EXCEPTION USING MESSAGE = message, ERRCODE = code;
  END IF;
END
$$;

----------------------------------------------------------------------------------------
-- Status: the agent's state file
----------------------------------------------------------------------------------------

-- The agent's last published state, with "serving" telling whether the agent is up. A
-- file that is missing, unreadable or older than pgraft.status_timeout (default 1500ms)
-- means the agent is dead or hung: STOPPED. Unless the agent is RUNNING or INITIALIZING,
-- no leader is known and this node is not one (role: stopped, stopping, error); term,
-- membership and log figures stay as last published, since they were true then.
CREATE FUNCTION pgraft._status() RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  raw text := pg_catalog.pg_read_file('pgraft/status.json', 0, 1048576, true);
  s jsonb;
  serving boolean;
BEGIN
  IF raw IS NOT NULL THEN
    BEGIN
      s := raw::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
      s := NULL;  -- torn by a crash of the machine: as good as missing
    END;
  END IF;
  IF pg_catalog.jsonb_typeof(s) IS DISTINCT FROM 'object' THEN
    s := '{}';
  END IF;
  IF NOT s ? 'updatedAtMs'
     OR extract(epoch FROM pg_catalog.clock_timestamp()) * 1000 - (s->>'updatedAtMs')::float8
        > pgraft._setting_ms('pgraft.status_timeout', 1500) THEN
    s := s || '{"workerState": "STOPPED"}';
  END IF;
  serving := s->>'workerState' IN ('RUNNING', 'INITIALIZING');
  IF NOT serving THEN
    s := s || pg_catalog.jsonb_build_object('leaderId', 0, 'role', pg_catalog.lower(s->>'workerState'));
  END IF;
  RETURN s || pg_catalog.jsonb_build_object(
    'serving', serving,
    'nodeId', coalesce(s->'nodeId', pg_catalog.to_jsonb(pgraft._setting_node_id())),
    'term', coalesce(s->'term', '0'),
    'leaderId', coalesce(s->'leaderId', '0'),
    'nodes', coalesce(s->'nodes', '[]'),
    'log', coalesce(s->'log', '{}'),
    'counters', coalesce(s->'counters', '{}'));
END
$$;

-- pgraft.node_id from postgresql.conf, when the agent has not yet said who it is.
CREATE FUNCTION pgraft._setting_node_id() RETURNS integer
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN v ~ '^\s*\d{1,9}\s*$' THEN v::integer END
  FROM pg_catalog.current_setting('pgraft.node_id', true) AS v
$$;

CREATE FUNCTION @extschema@.pgraft_get_leader() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (pgraft._status()->>'leaderId')::bigint
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_leader() IS 'id of the Raft leader as this node knows it; 0 when none is known';

CREATE FUNCTION @extschema@.pgraft_is_leader() RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (s->>'leaderId')::bigint > 0 AND (s->>'leaderId')::bigint = (s->>'nodeId')::bigint
  FROM pgraft._status() AS s
$$;
COMMENT ON FUNCTION @extschema@.pgraft_is_leader() IS 'whether this node is the Raft leader';

CREATE FUNCTION @extschema@.pgraft_get_term() RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (pgraft._status()->>'term')::bigint
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_term() IS 'current Raft term of this node (the last one known when the agent is stopped)';

CREATE FUNCTION @extschema@.pgraft_get_worker_state() RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT pgraft._status()->>'workerState'
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_worker_state() IS 'state of the agent: RUNNING, INITIALIZING, STOPPING, STOPPED or ERROR';

CREATE FUNCTION @extschema@.pgraft_get_cluster_status(
  OUT node_id integer, OUT current_term bigint, OUT leader_id bigint, OUT state text,
  OUT num_nodes integer, OUT messages_processed bigint, OUT heartbeats_sent bigint,
  OUT elections_triggered bigint, OUT worker_state text, OUT status_updated_at timestamptz)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (s->>'nodeId')::integer,
         (s->>'term')::bigint,
         (s->>'leaderId')::bigint,
         s->>'role',
         jsonb_array_length(s->'nodes'),
         coalesce((s->'counters'->>'messagesProcessed')::bigint, 0),
         coalesce((s->'counters'->>'heartbeatsSent')::bigint, 0),
         coalesce((s->'counters'->>'electionsTriggered')::bigint, 0),
         s->>'workerState',
         to_timestamp((s->>'updatedAtMs')::float8 / 1000)
  FROM pgraft._status() AS s
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_cluster_status() IS 'this node''s view of the cluster: term, leader, Raft role, size, counters';

CREATE FUNCTION @extschema@.pgraft_get_nodes(
  OUT node_id integer, OUT address text, OUT port integer, OUT is_leader boolean,
  OUT role text, OUT match_index bigint, OUT lag bigint, OUT last_contact timestamptz)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (n->>'id')::integer,
         n->>'address',
         (n->>'port')::integer,
         (n->>'id')::bigint = (s->>'leaderId')::bigint,
         n->>'role',
         (n->>'matchIndex')::bigint,
         (n->>'lag')::bigint,
         to_timestamp((n->>'lastContactMs')::float8 / 1000)
  FROM pgraft._status() AS s, jsonb_array_elements(s->'nodes') AS n
  ORDER BY 1
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_nodes() IS 'cluster members: address, voter or learner, replication progress as this node knows it';

CREATE FUNCTION @extschema@.pgraft_log_get_stats(
  OUT log_size bigint, OUT last_index bigint, OUT commit_index bigint, OUT last_applied bigint,
  OUT replicated bigint, OUT committed bigint, OUT applied bigint, OUT errors bigint)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce((l->>'logSize')::bigint, 0),
         coalesce((l->>'lastIndex')::bigint, 0),
         coalesce((l->>'commitIndex')::bigint, 0),
         coalesce((l->>'lastApplied')::bigint, 0),
         coalesce((l->>'replicated')::bigint, 0),
         coalesce((l->>'committed')::bigint, 0),
         coalesce((l->>'applied')::bigint, 0),
         coalesce((l->>'errors')::bigint, 0)
  FROM (SELECT pgraft._status()->'log') AS t(l)
$$;
COMMENT ON FUNCTION @extschema@.pgraft_log_get_stats() IS 'Raft log figures of this node: size, last/commit/applied index, counters';

CREATE FUNCTION @extschema@.pgraft_get_version() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pgraft'
$$;
COMMENT ON FUNCTION @extschema@.pgraft_get_version() IS 'installed version of the pgraft extension';

----------------------------------------------------------------------------------------
-- Requests: the loopback RPC
----------------------------------------------------------------------------------------

-- Advisory lock namespace of requests ('pgrf'): the agent holds (1885827686, key) while
-- it works on a request, so a waiting caller blocks on it instead of polling.
CREATE FUNCTION pgraft._lock_key(id bigint) RETURNS integer
LANGUAGE sql IMMUTABLE AS $$ SELECT (id % 2147483648)::integer $$;

-- Runs in the loopback session (autocommit, READ COMMITTED): send, commit, wait.
-- Returns the reply, or {"timeout": "withdrawn"} when the agent never picked the request
-- up (it is deleted and will not run), or {"timeout": "running"} when it did.
CREATE PROCEDURE pgraft._call(op text, args jsonb, requested_by name, timeout_ms integer,
                              INOUT reply jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
  rid bigint;
  st text;
  deadline timestamptz := pg_catalog.clock_timestamp() + timeout_ms * interval '1 ms';
  nap float8 := 0.001;
  blocked boolean := false;
  remaining_ms integer;
BEGIN
  INSERT INTO pgraft.request (op, args, requested_by, deadline)
    VALUES (op, args, requested_by, deadline) RETURNING id INTO rid;
  PERFORM pg_catalog.pg_notify('pgraft_rpc', rid::text);
  COMMIT;  -- the notification leaves now
  LOOP
    SELECT r.state, r.reply INTO st, reply FROM pgraft.request AS r WHERE r.id = rid;
    IF st = 'done' THEN
      DELETE FROM pgraft.request AS r WHERE r.id = rid;
      RETURN;
    END IF;
    remaining_ms := pg_catalog.ceil(extract(epoch FROM deadline - pg_catalog.clock_timestamp()) * 1000);
    IF remaining_ms <= 0 THEN
      DELETE FROM pgraft.request AS r WHERE r.id = rid AND r.state = 'pending';
      reply := pg_catalog.jsonb_build_object('timeout', CASE WHEN FOUND THEN 'withdrawn' ELSE 'running' END);
      RETURN;
    END IF;
    IF st = 'working' AND NOT blocked THEN
      -- The agent took its lock before it marked the row working and releases it after
      -- the reply is committed: waiting for the lock is waiting for the reply. If the
      -- agent's session ends first, the lock frees early; poll from then on.
      blocked := true;
      PERFORM pg_catalog.set_config('lock_timeout', remaining_ms::text, true);
      BEGIN
        PERFORM pg_catalog.pg_advisory_xact_lock_shared(1885827686, pgraft._lock_key(rid));
      EXCEPTION WHEN lock_not_available THEN
        NULL;
      END;
    ELSE
      PERFORM pg_catalog.pg_sleep(nap);  -- the pickup usually takes well under one nap
      nap := least(nap * 1.25, 0.01);
    END IF;
  END LOOP;
END
$$;

-- Agent side: take every pending request (locking each as described above) and forget
-- requests whose caller gave up long ago.
CREATE FUNCTION pgraft._claim_pending()
RETURNS TABLE (id bigint, op text, args jsonb, requested_by name)
LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  DELETE FROM pgraft.request AS q WHERE q.deadline < pg_catalog.clock_timestamp() - interval '1 minute';
  FOR r IN
    SELECT q.id, q.op, q.args, q.requested_by FROM pgraft.request AS q
    WHERE q.state = 'pending' AND q.deadline > pg_catalog.clock_timestamp()
    ORDER BY q.id FOR UPDATE SKIP LOCKED
  LOOP
    PERFORM pg_catalog.pg_advisory_lock(1885827686, pgraft._lock_key(r.id));
    UPDATE pgraft.request AS q SET state = 'working' WHERE q.id = r.id;
    id := r.id; op := r.op; args := r.args; requested_by := r.requested_by;
    RETURN NEXT;
  END LOOP;
END
$$;

-- Agent side: store the reply (committed by the agent's autocommit statement), then
-- pgraft._release wakes the caller.
CREATE FUNCTION pgraft._reply(rid bigint, reply jsonb) RETURNS boolean
LANGUAGE sql AS $$
  UPDATE pgraft.request AS q SET state = 'done', reply = _reply.reply
  WHERE q.id = rid AND q.state = 'working'
  RETURNING true
$$;

CREATE FUNCTION pgraft._release(rid bigint) RETURNS boolean
LANGUAGE sql AS $$
  SELECT pg_catalog.pg_advisory_unlock(1885827686, pgraft._lock_key(rid))
$$;

-- conninfo value quoting (libpq: single quotes, backslash escapes).
CREATE FUNCTION pgraft._conninfo_quote(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT '''' || replace(replace(v, '\', '\\'), '''', '\''') || ''''
$$;

-- The caller backend's loopback connection, opened once per session. It connects as the
-- extension owner over this server's first unix socket (the TCP loopback when sockets are
-- off), so pg_hba.conf must admit that role locally without a password ("local all
-- postgres peer", Debian's default, does when the owner is postgres).
CREATE FUNCTION pgraft._loopback() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  sockdir text := pg_catalog.btrim(pg_catalog.split_part(pg_catalog.current_setting('unix_socket_directories'), ',', 1));
  conninfo text;
BEGIN
  IF 'pgraft_rpc' = ANY (coalesce(pgraft._dblink_get_connections(), '{}')) THEN
    RETURN;
  END IF;
  conninfo := pg_catalog.format('host=%s port=%s dbname=%s user=%s application_name=pgraft_rpc',
    pgraft._conninfo_quote(coalesce(nullif(sockdir, ''), 'localhost')),
    pg_catalog.current_setting('port'),
    pgraft._conninfo_quote(pg_catalog.current_database()),
    pgraft._conninfo_quote(current_user));
  BEGIN
    PERFORM pgraft._dblink_connect('pgraft_rpc', conninfo);
  EXCEPTION WHEN OTHERS THEN
    PERFORM pgraft._raise('pgraft could not open its loopback connection to this server',
      '08001',
      pg_catalog.format('pg_hba.conf must let role %I connect to database %I over the local socket without a password, e.g. "local all %s peer" when that role is the operating system user running PostgreSQL.',
        current_user, pg_catalog.current_database(), current_user),
      SQLERRM || ' (' || conninfo || ')');
  END;
  -- Whatever the database or role defaults are, the loopback waits in fresh snapshots,
  -- may write, and is bounded by pgraft.rpc_timeout alone.
  PERFORM pgraft._dblink_exec('pgraft_rpc',
    'SET default_transaction_isolation = ''read committed''; SET default_transaction_read_only = off; '
    'SET synchronous_commit = off; SET statement_timeout = 0; SET lock_timeout = 0; '
    'SET idle_in_transaction_session_timeout = 0; SET idle_session_timeout = 0; '
    'SET search_path = pg_catalog, pg_temp');
END
$$;

-- Send a request to the agent and return its result, or raise its error.
CREATE FUNCTION pgraft._rpc(op text, args jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  s jsonb;
  timeout_ms integer;
  reply jsonb;
  err jsonb;
BEGIN
  IF pg_catalog.pg_is_in_recovery() THEN
    RAISE EXCEPTION 'pgraft cannot send requests to its agent from a hot standby'
      USING ERRCODE = '25006',
            HINT = 'Run this function on the primary; status functions such as pgraft_get_leader() work here.';
  END IF;
  s := pgraft._status();
  IF NOT (s->>'serving')::boolean THEN
    RAISE EXCEPTION 'the pgraft agent is not running on this server (%)', s->>'workerState'
      USING ERRCODE = '58000',
            DETAIL = CASE WHEN s ? 'updatedAtMs'
              THEN pg_catalog.format('Its status file was last written at %s.', pg_catalog.to_timestamp((s->>'updatedAtMs')::float8 / 1000))
              ELSE 'It has not written its status file (pgraft/status.json in the data directory).' END,
            HINT = 'Start the agent, or read its log; pgraft_get_worker_state() shows RUNNING once it is up.';
  END IF;
  IF s ? 'database' AND s->>'database' <> pg_catalog.current_database() THEN
    RAISE EXCEPTION 'the pgraft agent serves database %, not %', pg_catalog.quote_ident(s->>'database'), pg_catalog.quote_ident(pg_catalog.current_database())
      USING ERRCODE = '55000',
            HINT = pg_catalog.format('Connect to database %I to run pgraft control functions.', s->>'database');
  END IF;
  timeout_ms := pgraft._setting_ms('pgraft.rpc_timeout', 5000);
  PERFORM pgraft._loopback();
  BEGIN
    SELECT t.reply INTO reply
    FROM pgraft._dblink('pgraft_rpc', pg_catalog.format('CALL pgraft._call(%L, %L, %L, %s)',
                        op, args, session_user, timeout_ms)) AS t(reply jsonb);
  EXCEPTION WHEN OTHERS THEN
    -- A broken loopback is reopened by the next call.
    IF 'pgraft_rpc' = ANY (coalesce(pgraft._dblink_get_connections(), '{}')) THEN
      PERFORM pgraft._dblink_disconnect('pgraft_rpc');
    END IF;
    RAISE;
  END;
  IF reply ? 'timeout' THEN
    IF reply->>'timeout' = 'withdrawn' THEN
      RAISE EXCEPTION 'the pgraft agent did not answer within % ms', timeout_ms
        USING ERRCODE = '58000',
              DETAIL = 'The request was withdrawn and will not be carried out.',
              HINT = 'Check that the agent is running and connected to this database (pgraft_get_worker_state(), the agent''s log).';
    END IF;
    RAISE EXCEPTION 'the pgraft agent did not finish the request within % ms', timeout_ms
      USING ERRCODE = '58000',
            DETAIL = 'The agent is working on it; it may still take effect.',
            HINT = 'Check the outcome before retrying (e.g. pgraft_get_nodes()); raise pgraft.rpc_timeout for slow operations.';
  END IF;
  err := reply->'error';
  IF err IS NOT NULL THEN
    PERFORM pgraft._raise(err->>'message', err->>'sqlstate', err->>'hint', err->>'detail');
  END IF;
  RETURN reply->'result';
END
$$;

----------------------------------------------------------------------------------------
-- Argument checks
----------------------------------------------------------------------------------------

CREATE FUNCTION pgraft._check_not_null(v anyelement, what text, example text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF v IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', what USING ERRCODE = '22004', HINT = example;
  END IF;
END
$$;

CREATE FUNCTION pgraft._check_node_id(node_id integer, example text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM pgraft._check_not_null(node_id, 'node_id', example);
  IF node_id < 1 THEN
    RAISE EXCEPTION 'node_id must be a positive integer, not %', node_id
      USING ERRCODE = '22023', HINT = 'Node ids are the pgraft.node_id values of the nodes, 1 and up.';
  END IF;
END
$$;

CREATE FUNCTION pgraft._check_address(address text, port integer) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  example text := 'e.g. pgraft_add_node(4, ''10.0.1.14'', 7001)';
BEGIN
  PERFORM pgraft._check_not_null(address, 'address', 'Give the host name or IP address of the new node, ' || example || '.');
  PERFORM pgraft._check_not_null(port, 'port', 'Give the Raft port (pgraft.port) of the new node, ' || example || '.');
  IF pg_catalog.btrim(address) = '' THEN
    RAISE EXCEPTION 'address must not be empty'
      USING ERRCODE = '22023', HINT = 'Give the host name or IP address of the new node, ' || example || '.';
  END IF;
  IF pg_catalog.length(address) > 253
     OR NOT (address ~ '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$'             -- host name, IPv4
             OR address ~ '^\[?[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*(%[A-Za-z0-9]+)?\]?$') -- IPv6
  THEN
    RAISE EXCEPTION 'address % is not a host name or IP address', pg_catalog.quote_literal(address)
      USING ERRCODE = '22023',
            HINT = 'Give the address alone, without port, scheme or spaces, ' || example || '.';
  END IF;
  IF port < 1 OR port > 65535 THEN
    RAISE EXCEPTION 'port must be between 1 and 65535, not %', port
      USING ERRCODE = '22023', HINT = 'Give the Raft port (pgraft.port) of the new node, ' || example || '.';
  END IF;
END
$$;

-- Keys up to 1 KiB, values and log entries up to 1 MiB (Raft replicates them whole).
CREATE FUNCTION pgraft._check_text(v text, what text, max_bytes integer, example text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  PERFORM pgraft._check_not_null(v, what, example);
  IF what = 'key' AND v = '' THEN
    RAISE EXCEPTION 'key must not be empty' USING ERRCODE = '22023', HINT = example;
  END IF;
  IF pg_catalog.octet_length(v) > max_bytes THEN
    RAISE EXCEPTION '% is % bytes long, more than the limit of % bytes', what, pg_catalog.octet_length(v), max_bytes
      USING ERRCODE = '54000',
            HINT = 'Store large data in a table and keep a reference in pgraft.';
  END IF;
END
$$;

----------------------------------------------------------------------------------------
-- Control functions
----------------------------------------------------------------------------------------

CREATE FUNCTION @extschema@.pgraft_init() RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT pgraft._rpc('init', '{}')::boolean
$$;
COMMENT ON FUNCTION @extschema@.pgraft_init() IS 'start a new cluster with this node as its only member';

CREATE FUNCTION @extschema@.pgraft_add_node(node_id integer, address text, port integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_node_id(node_id, 'e.g. pgraft_add_node(4, ''10.0.1.14'', 7001)');
  PERFORM pgraft._check_address(address, port);
  RETURN pgraft._rpc('addNode', jsonb_build_object('nodeId', node_id, 'address', address, 'port', port))::boolean;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_add_node(integer, text, integer) IS 'add a node; returns true once it is a voter (run on the leader)';

CREATE FUNCTION @extschema@.pgraft_remove_node(node_id integer) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_node_id(node_id, 'e.g. pgraft_remove_node(4)');
  RETURN pgraft._rpc('removeNode', jsonb_build_object('nodeId', node_id))::boolean;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_remove_node(integer) IS 'remove a node from the cluster (run on the leader)';

CREATE FUNCTION @extschema@.pgraft_transfer_leadership(target_node integer DEFAULT NULL) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF target_node IS NOT NULL THEN
    PERFORM pgraft._check_node_id(target_node, 'e.g. pgraft_transfer_leadership(2), or pgraft_transfer_leadership() to let pgraft choose');
  END IF;
  RETURN pgraft._rpc('transferLeadership', jsonb_build_object('target', target_node))::boolean;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_transfer_leadership(integer) IS 'hand leadership to target_node (NULL: the most up-to-date voter); true once it leads';

CREATE FUNCTION @extschema@.pgraft_log_append(data text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_text(data, 'data', 1048576, 'e.g. pgraft_log_append(''deploy 42 finished'')');
  RETURN pgraft._rpc('logAppend', jsonb_build_object('data', data))::bigint;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_log_append(text) IS 'append an entry to the replicated log; returns its index once committed';

CREATE FUNCTION @extschema@.pgraft_log_get_entry(index bigint) RETURNS jsonb
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF index < 1 THEN
    RAISE EXCEPTION 'index must be 1 or more, not %', index
      USING ERRCODE = '22023', HINT = 'Log indexes start at 1; pgraft_log_get_stats() shows the last one.';
  END IF;
  RETURN pgraft._rpc('logGetEntry', jsonb_build_object('index', index));
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_log_get_entry(bigint) IS 'one entry of the replicated log as jsonb (index, term, type, data); NULL when there is none';

CREATE FUNCTION @extschema@.pgraft_kv_put(key text, value text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_text(key, 'key', 1024, 'e.g. pgraft_kv_put(''config/mode'', ''active'')');
  PERFORM pgraft._check_text(value, 'value', 1048576, 'Use pgraft_kv_delete(key) to remove a key.');
  RETURN pgraft._rpc('kvPut', jsonb_build_object('key', key, 'value', value))::boolean;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_kv_put(text, text) IS 'store a key in the replicated key-value store; true once committed';

CREATE FUNCTION @extschema@.pgraft_kv_get(key text) RETURNS text
LANGUAGE plpgsql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_text(key, 'key', 1024, 'e.g. pgraft_kv_get(''config/mode'')');
  RETURN pgraft._rpc('kvGet', jsonb_build_object('key', key)) #>> '{}';
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_kv_get(text) IS 'linearizable read of a key; NULL when absent';

CREATE FUNCTION @extschema@.pgraft_kv_delete(key text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM pgraft._check_text(key, 'key', 1024, 'e.g. pgraft_kv_delete(''config/mode'')');
  RETURN pgraft._rpc('kvDelete', jsonb_build_object('key', key))::boolean;
END
$$;
COMMENT ON FUNCTION @extschema@.pgraft_kv_delete(text) IS 'delete a key; true when it existed';

CREATE FUNCTION @extschema@.pgraft_kv_list_keys(OUT key text) RETURNS SETOF text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_array_elements_text(pgraft._rpc('kvListKeys', '{}'))
$$;
COMMENT ON FUNCTION @extschema@.pgraft_kv_list_keys() IS 'every key of the replicated key-value store';

-- Control and request functions: superusers and pgraft_admin only (upgrade scripts too).
CREATE FUNCTION pgraft._admin_only(functions regprocedure[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  f regprocedure;
BEGIN
  FOREACH f IN ARRAY functions LOOP
    EXECUTE pg_catalog.format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION %s TO pgraft_admin', f);
  END LOOP;
END
$$;

SELECT pgraft._admin_only(ARRAY[
  '@extschema@.pgraft_init()', '@extschema@.pgraft_add_node(integer, text, integer)',
  '@extschema@.pgraft_remove_node(integer)', '@extschema@.pgraft_transfer_leadership(integer)',
  '@extschema@.pgraft_log_append(text)', '@extschema@.pgraft_log_get_entry(bigint)',
  '@extschema@.pgraft_kv_put(text, text)', '@extschema@.pgraft_kv_get(text)',
  '@extschema@.pgraft_kv_delete(text)', '@extschema@.pgraft_kv_list_keys()']::regprocedure[]);

-- Internals: the owner (and so the SECURITY DEFINER functions above) only.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA pgraft FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA pgraft FROM PUBLIC;
