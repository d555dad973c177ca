-- The member directory (who is an admin, owner, bot or deactivated, in
-- which time zone), and the API token lifecycle (ids, expiry, an atomic
-- per-user cap). Team tables, see README.md.

-- One row per Slack user conch has seen in a team: from users.list (the
-- sync), the user_change and team_join events, and users.info lookups.
-- updated_at is when conch observed the user; an older observation never
-- overwrites a newer one (a slow page of users.list against an event).
CREATE TABLE members (
	team_id text NOT NULL,
	user_id text NOT NULL CHECK (user_id ~ '^[UW][A-Z0-9]{2,20}$'),
	name text NOT NULL DEFAULT '',
	deleted boolean NOT NULL DEFAULT false,
	is_bot boolean NOT NULL DEFAULT false,
	is_restricted boolean NOT NULL DEFAULT false, -- a guest (single- or multi-channel)
	is_admin boolean NOT NULL DEFAULT false,
	is_owner boolean NOT NULL DEFAULT false,
	is_primary_owner boolean NOT NULL DEFAULT false,
	tz text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, user_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('members');
CREATE INDEX members_admins ON members (team_id, user_id)
	WHERE (is_admin OR is_owner OR is_primary_owner) AND NOT deleted;

-- The sync's standing per team. lookup_only: the workspace is too large to
-- list (more members than the sync pages through); unknown users are then
-- looked up one at a time with users.info.
CREATE TABLE member_directory (
	team_id text NOT NULL,
	synced_at timestamptz,          -- the last users.list that reached its end
	started_at timestamptz,         -- the last sync started
	listed int NOT NULL DEFAULT 0,  -- members seen by the sync running (or last run)
	lookup_only boolean NOT NULL DEFAULT false,
	PRIMARY KEY (team_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('member_directory');

-- A flag of a Slack user object: true only when Slack says JSON true
-- (a missing or malformed flag is false).
CREATE FUNCTION members_flag(u jsonb, k text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT coalesce(u -> k = 'true'::jsonb, false) $$;

-- Stores Slack user objects (a JSON array, as users.list, users.info and
-- the events give them) seen at p_seen, for a team conch knows. Objects
-- without a Slack user id are skipped. Returns the number of objects that
-- changed a row.
CREATE FUNCTION members_upsert(p_team text, p_users jsonb, p_seen timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	IF jsonb_typeof(p_users) <> 'array'
	   OR NOT EXISTS (SELECT 1 FROM teams t WHERE t.team_id = p_team) THEN
		RETURN 0;
	END IF;
	INSERT INTO members AS m (team_id, user_id, name, deleted, is_bot, is_restricted, is_admin,
	                          is_owner, is_primary_owner, tz, updated_at)
	SELECT DISTINCT ON (u->>'id')
	       p_team, u->>'id',
	       left(coalesce(nullif(u->'profile'->>'display_name', ''), nullif(u->>'real_name', ''),
	                     u->>'name', ''), 200),
	       members_flag(u, 'deleted'), members_flag(u, 'is_bot'),
	       members_flag(u, 'is_restricted') OR members_flag(u, 'is_ultra_restricted'),
	       members_flag(u, 'is_admin'), members_flag(u, 'is_owner'),
	       members_flag(u, 'is_primary_owner'),
	       CASE WHEN jsonb_typeof(u->'tz') = 'string' THEN left(u->>'tz', 64) END,
	       p_seen
	  FROM jsonb_array_elements(p_users) u
	 WHERE jsonb_typeof(u) = 'object' AND jsonb_typeof(u->'id') = 'string'
	   AND u->>'id' ~ '^[UW][A-Z0-9]{2,20}$'
	ON CONFLICT (team_id, user_id) DO UPDATE
	   SET name = EXCLUDED.name, deleted = EXCLUDED.deleted, is_bot = EXCLUDED.is_bot,
	       is_restricted = EXCLUDED.is_restricted, is_admin = EXCLUDED.is_admin,
	       is_owner = EXCLUDED.is_owner, is_primary_owner = EXCLUDED.is_primary_owner,
	       tz = EXCLUDED.tz, updated_at = EXCLUDED.updated_at
	 WHERE m.updated_at <= EXCLUDED.updated_at;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- Whether a user may manage the team's billing and settings: a workspace
-- owner or admin, or whoever installed conch, and active (not deactivated,
-- not a bot, not a guest). 'yes', 'no', or 'unknown' when the directory
-- has not seen the user: never a yes by default.
CREATE FUNCTION members_may_manage(p_team text, p_user text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
	m members;
BEGIN
	SELECT * INTO m FROM members WHERE team_id = p_team AND user_id = p_user;
	IF NOT FOUND THEN
		RETURN 'unknown';
	END IF;
	IF m.deleted OR m.is_bot OR m.is_restricted THEN
		RETURN 'no';
	END IF;
	IF m.is_admin OR m.is_owner OR m.is_primary_owner
	   OR EXISTS (SELECT 1 FROM installations i
	               WHERE i.team_id = p_team AND i.installer_user_id = p_user) THEN
		RETURN 'yes';
	END IF;
	RETURN 'no';
END $$;

-- Who to name when someone else asks: the installer (unless the directory
-- says they left), then active owners and admins, at most p_limit in all.
CREATE FUNCTION members_managers(p_team text, p_limit int)
RETURNS TABLE (user_id text)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
	RETURN QUERY
	SELECT x.user_id FROM (
		SELECT i.installer_user_id AS user_id, 0 AS rank
		  FROM installations i
		 WHERE i.team_id = p_team AND i.installer_user_id <> ''
		   AND NOT EXISTS (SELECT 1 FROM members m
		                    WHERE m.team_id = p_team AND m.user_id = i.installer_user_id
		                      AND (m.deleted OR m.is_bot OR m.is_restricted))
		UNION ALL
		SELECT m.user_id, CASE WHEN m.is_primary_owner THEN 1 WHEN m.is_owner THEN 2 ELSE 3 END
		  FROM members m
		 WHERE m.team_id = p_team AND (m.is_admin OR m.is_owner OR m.is_primary_owner)
		   AND NOT m.deleted AND NOT m.is_bot AND NOT m.is_restricted
	) x
	GROUP BY x.user_id
	ORDER BY min(x.rank), x.user_id
	LIMIT p_limit;
END $$;

-- API tokens: an id to list and revoke them by, and an expiry. Tokens made
-- before this migration expire 90 days (api_token_days' default) after it
-- ran: ADD COLUMN evaluates now() once, for the existing rows.
CREATE SEQUENCE api_token_ids;
ALTER TABLE api_tokens ADD COLUMN id bigint NOT NULL DEFAULT nextval('api_token_ids');
ALTER TABLE api_tokens ADD COLUMN expires_at timestamptz NOT NULL DEFAULT now() + interval '90 days';
CREATE UNIQUE INDEX api_tokens_id ON api_tokens (team_id, id);
CREATE INDEX api_tokens_user ON api_tokens (team_id, user_id);

-- Makes a token for a user unless they already have p_cap live ones. The
-- count and the insert run under a transaction-level advisory lock on the
-- user, so concurrent requests take turns and the cap holds; expired
-- tokens are dropped first and do not count.
CREATE FUNCTION api_token_create(p_team text, p_user text, p_hash text, p_days int, p_cap int,
                                 OUT status text, OUT token_id bigint, OUT expires_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	n int;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('conch.api_tokens:' || p_team || ':' || p_user, 0));
	DELETE FROM api_tokens t WHERE t.team_id = p_team AND t.user_id = p_user AND t.expires_at <= now();
	SELECT count(*) INTO n FROM api_tokens t WHERE t.team_id = p_team AND t.user_id = p_user;
	IF n >= p_cap THEN
		status := 'limit';
		RETURN;
	END IF;
	INSERT INTO api_tokens AS t (team_id, token_hash, user_id, expires_at)
	VALUES (p_team, p_hash, p_user, now() + make_interval(days => p_days))
	RETURNING t.id, t.expires_at INTO token_id, expires_at;
	status := 'created';
END $$;

-- The token behind a request (a system transaction: the token names the
-- team). status: 'ok', 'unknown', 'expired', or 'deactivated' (the
-- directory says its user was deactivated). last_used_at is written at most
-- once a minute, so a busy pipeline does not rewrite the row on every call.
CREATE FUNCTION api_token_auth(p_hash text, OUT status text, OUT team_id text, OUT user_id text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	t api_tokens;
BEGIN
	SELECT * INTO t FROM api_tokens a WHERE a.token_hash = p_hash;
	IF NOT FOUND THEN
		status := 'unknown';
		RETURN;
	END IF;
	team_id := t.team_id;
	user_id := t.user_id;
	IF t.expires_at <= now() THEN
		status := 'expired';
	ELSIF EXISTS (SELECT 1 FROM members m
	               WHERE m.team_id = t.team_id AND m.user_id = t.user_id AND m.deleted) THEN
		status := 'deactivated';
	ELSE
		status := 'ok';
		IF t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute' THEN
			UPDATE api_tokens a SET last_used_at = now()
			 WHERE a.team_id = t.team_id AND a.token_hash = t.token_hash;
		END IF;
	END IF;
END $$;
