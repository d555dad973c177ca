-- Operator pages: accounts, sessions and the login throttle, plus the
-- indexes the pages' cross-team queries need to stay fast with 100,000
-- teams.
--
-- The admin_* tables are operator data, not a team's: no team_id, not
-- partitioned. Like oauth_states they carry a policy that lets only system
-- transactions (tx_begin_system) see them, so no team-scoped query can
-- read a password hash or a session.

CREATE TABLE admin_users (
	name text PRIMARY KEY CHECK (name ~ '^[a-z0-9._-]{1,64}$'),
	password_hash text NOT NULL,     -- scrypt$N$r$p$salt$hash
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now()
);

-- The browser's cookie holds a random token; only its SHA-256 is here, so
-- a copy of the database signs nobody in.
CREATE TABLE admin_sessions (
	id_hash text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
	user_name text NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE,
	csrf_token text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	expires_at timestamptz NOT NULL,
	last_seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_sessions_user ON admin_sessions (user_name);
CREATE INDEX admin_sessions_expires ON admin_sessions (expires_at);

-- One row per failed (or still running) sign-in, keyed 'user:NAME' and
-- 'ip:ADDRESS'.
CREATE TABLE admin_login_failures (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key text NOT NULL,
	at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX admin_login_failures_key ON admin_login_failures (key, at);
CREATE INDEX admin_login_failures_at ON admin_login_failures (at);

DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['admin_users', 'admin_sessions', 'admin_login_failures'] LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY system_only ON %I USING (conch_all_teams()) '
		               'WITH CHECK (conch_all_teams())', t);
	END LOOP;
END $$;

-- Minutes to wait before the next sign-in attempt under key: 0 while it
-- has fewer than lim failures in the last 15 minutes, else until the
-- oldest of its last lim failures is 15 minutes old (at least 1).
CREATE FUNCTION admin_login_wait(k text, lim int) RETURNS int
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN count(*) < lim THEN 0
	            ELSE greatest(1, ceil(extract(epoch FROM
	                     min(recent.at) + interval '15 minutes' - now()) / 60))::int END
	  FROM (SELECT f.at FROM admin_login_failures f
	         WHERE f.key = k AND f.at > now() - interval '15 minutes'
	         ORDER BY f.at DESC LIMIT lim) recent
$$;

-- Team search. Under Row-Level Security only leakproof operators on plain
-- columns reach an index, and lower() is not leakproof, so an expression
-- index on lower(name) would never be used: the lower-case name is a
-- stored column instead. text_pattern_ops serves prefix ranges (~>=~ ~<~).
ALTER TABLE teams ADD COLUMN name_lower text GENERATED ALWAYS AS (lower(name)) STORED;
CREATE INDEX teams_name_lower ON teams (name_lower text_pattern_ops, team_id text_pattern_ops);
CREATE INDEX teams_id_pattern ON teams (team_id text_pattern_ops);
-- The unfiltered list, newest first.
CREATE INDEX teams_created ON teams (created_at DESC, team_id DESC);

-- Activity per day across teams; dibs_events' own index leads with team_id.
DO $$
BEGIN
	IF to_regclass('dibs_events') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS dibs_events_at_all ON dibs_events (at);
	END IF;
END $$;

-- How the pages print times: UTC, to the second.
CREATE FUNCTION admin_ts(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') $$;

-- Keyset cursors in page links: exact to the microsecond, read back with
-- ::timestamptz.
CREATE FUNCTION admin_cursor(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') $$;

-- "in 5m", "3h ago": how far t is from now, in the largest whole unit.
CREATE FUNCTION admin_rel(t timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN t IS NULL THEN NULL
	            ELSE CASE WHEN t >= now() THEN 'in ' ELSE '' END ||
	                 CASE WHEN s < 60 THEN s || 's'
	                      WHEN s < 3600 THEN s / 60 || 'm'
	                      WHEN s < 86400 THEN s / 3600 || 'h'
	                      ELSE s / 86400 || 'd' END ||
	                 CASE WHEN t < now() THEN ' ago' ELSE '' END END
	  FROM (SELECT abs(floor(extract(epoch FROM t - now())))::bigint AS s) x
$$;
