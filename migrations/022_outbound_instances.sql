-- Live instances, so that Slack's rate limits hold across all of them:
-- each running instance keeps a heartbeat row here and paces its calls to
-- Slack at its share of each limit (limit / live instances; see
-- src/instances.c and docs/operations.md). A row not renewed within the
-- stale interval belongs to an instance that is gone, and is dropped.
CREATE TABLE outbound_instances (
	id text PRIMARY KEY,
	started_at timestamptz NOT NULL DEFAULT now(),
	seen_at timestamptz NOT NULL DEFAULT now()
);

-- Renews p_id's row, drops stale ones, and returns how many are live
-- (p_id's own included).
CREATE FUNCTION outbound_heartbeat(p_id text, p_stale interval) RETURNS integer
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
	INSERT INTO outbound_instances AS i (id) VALUES (p_id)
		ON CONFLICT (id) DO UPDATE SET seen_at = now();
	DELETE FROM outbound_instances WHERE seen_at < now() - p_stale;
	RETURN (SELECT count(*) FROM outbound_instances);
END $$;
