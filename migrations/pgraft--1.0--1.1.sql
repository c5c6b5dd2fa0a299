-- pgraft 1.0 -> 1.1: replication progress per follower and key-value store figures,
-- both answered by the agent (on the leader, where replication progress is known).

\echo Use "ALTER EXTENSION pgraft UPDATE TO '1.1'" to load this file. \quit

CREATE FUNCTION @extschema@.pgraft_log_get_replication_status(
  OUT node_id integer, OUT address text, OUT port integer, OUT role text,
  OUT match_index bigint, OUT next_index bigint, OUT lag bigint, OUT state text,
  OUT inflight integer, OUT last_contact timestamptz)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (f->>'nodeId')::integer,
         f->>'address',
         (f->>'port')::integer,
         f->>'role',
         (f->>'matchIndex')::bigint,
         (f->>'nextIndex')::bigint,
         (f->>'lag')::bigint,
         f->>'state',
         (f->>'inflight')::integer,
         to_timestamp((f->>'lastContactMs')::float8 / 1000)
  FROM jsonb_array_elements(pgraft._rpc('replicationStatus', '{}')) AS f
  ORDER BY 1
$$;
COMMENT ON FUNCTION @extschema@.pgraft_log_get_replication_status() IS 'one row per follower: how far the leader has replicated to it (run on the leader)';

CREATE FUNCTION @extschema@.pgraft_kv_get_stats(
  OUT num_keys bigint, OUT total_bytes bigint, OUT puts bigint, OUT gets bigint,
  OUT deletes bigint, OUT applied_index bigint)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT (k->>'numKeys')::bigint,
         (k->>'totalBytes')::bigint,
         (k->>'puts')::bigint,
         (k->>'gets')::bigint,
         (k->>'deletes')::bigint,
         (k->>'appliedIndex')::bigint
  FROM pgraft._rpc('kvGetStats', '{}') AS k
$$;
COMMENT ON FUNCTION @extschema@.pgraft_kv_get_stats() IS 'size of the replicated key-value store and its operation counters';

SELECT pgraft._admin_only(ARRAY[
  '@extschema@.pgraft_log_get_replication_status()', '@extschema@.pgraft_kv_get_stats()']::regprocedure[]);
