-- The install flow: OAuth states, and the purge that keeps the data-retention
-- promise ("if you uninstall, we delete your tokens at once and all your
-- workspace's data 30 days later, unless you reinstall").

-- One row per /slack/install: the SHA-256 of the state sent to Slack and of
-- the nonce in the browser's conch_oauth cookie, so a leaked database holds
-- nothing that completes an install. Not a team's data: only system
-- transactions (tx_begin_system) see it.
CREATE TABLE oauth_states (
	state_hash text PRIMARY KEY,
	cookie_hash text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	used_at timestamptz
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
ALTER TABLE oauth_states ENABLE ROW LEVEL SECURITY;
ALTER TABLE oauth_states FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON oauth_states
	USING (conch_all_teams()) WITH CHECK (conch_all_teams());

-- Deletes every row of a team: from each table of the public schema that
-- has a team_id column (found in the catalog when it runs, so tables that
-- later migrations add are covered without editing this list), then the
-- team's jobs that are not running (the purge job itself is running), then
-- the teams row. Partitions are reached through their parent. Returns the
-- number of rows deleted. The caller's transaction must be scoped to the
-- team (tx_begin) or span teams (tx_begin_system); RLS still applies.
--
-- Tables that reference one another without ON DELETE CASCADE have to be
-- emptied child first. Rather than sort by the catalog's foreign keys, a
-- delete that a reference blocks is retried after the others; a pass that
-- makes no progress is an error (the transaction rolls back, the job retries).
CREATE FUNCTION conch_purge_team(team text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	pending text[];
	blocked text[];
	tbl text;
	n bigint;
	total bigint := 0;
BEGIN
	IF team IS NULL OR team = '' THEN
		RAISE EXCEPTION 'conch_purge_team: no team given';
	END IF;
	IF NOT (conch_all_teams() OR conch_team() = team) THEN
		RAISE EXCEPTION 'conch_purge_team: the transaction is not scoped to team %', team;
	END IF;

	SELECT coalesce(array_agg(c.relname::text ORDER BY c.relname), '{}') INTO pending
	FROM pg_class c
	JOIN pg_namespace ns ON ns.oid = c.relnamespace
	JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'team_id' AND NOT a.attisdropped
	WHERE ns.nspname = 'public'
	  AND c.relkind IN ('r', 'p')
	  AND NOT c.relispartition
	  AND c.relname NOT IN ('jobs', 'teams');

	LOOP
		blocked := '{}';
		FOREACH tbl IN ARRAY pending LOOP
			BEGIN
				EXECUTE format('DELETE FROM public.%I WHERE team_id = $1', tbl) USING team;
				GET DIAGNOSTICS n = ROW_COUNT;
				total := total + n;
			EXCEPTION WHEN foreign_key_violation THEN
				blocked := blocked || tbl;
			END;
		END LOOP;
		EXIT WHEN cardinality(blocked) = 0;
		IF cardinality(blocked) = cardinality(pending) THEN
			RAISE EXCEPTION 'conch_purge_team: foreign keys keep rows in %', blocked;
		END IF;
		pending := blocked;
	END LOOP;

	DELETE FROM jobs WHERE team_id = team AND state <> 'running';
	GET DIAGNOSTICS n = ROW_COUNT;
	total := total + n;
	DELETE FROM teams WHERE team_id = team;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN total + n;
END $$;
