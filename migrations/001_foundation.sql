-- Foundation: plans, teams, installations, jobs, and the team-partitioned
-- convention (see README.md in this folder).

-- The team a transaction is scoped to (set by tx_begin), and whether it may
-- span teams (set only by tx_begin_system).
CREATE FUNCTION conch_team() RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT current_setting('conch.team_id', true) $$;

CREATE FUNCTION conch_all_teams() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('conch.all_teams', true), '') = 'on' $$;

-- Turns on forced Row-Level Security for one table (forced, so the owning
-- role the application connects as is subject to it too), letting through
-- only the rows of the transaction's team.
CREATE FUNCTION conch_team_policy(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
	EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', tbl);
	EXECUTE format('CREATE POLICY team_scope ON %I USING (team_id = conch_team() OR conch_all_teams()) '
	               'WITH CHECK (team_id = conch_team() OR conch_all_teams())', tbl);
END $$;

-- Makes a table declared PARTITION BY HASH (team_id) into a team table:
-- its partitions, and the team policy on the table and on every partition
-- (a query naming a partition directly is held to the same rule).
CREATE FUNCTION conch_team_table(tbl text, parts int DEFAULT 16) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 0 .. parts - 1 LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
		               tbl || '_p' || i, tbl, parts, i);
		PERFORM conch_team_policy(tbl || '_p' || i);
	END LOOP;
	PERFORM conch_team_policy(tbl);
END $$;

CREATE TABLE plans (
	name text PRIMARY KEY,
	display_name text NOT NULL,
	max_things int,                  -- NULL: no limit
	timed_release boolean NOT NULL,
	api_access boolean NOT NULL,
	max_poll_size int,               -- NULL: no limit
	monthly_price_cents int NOT NULL DEFAULT 0,
	stripe_price text,
	sort int NOT NULL
);

INSERT INTO plans (name, display_name, max_things, timed_release, api_access, max_poll_size,
                   monthly_price_cents, sort)
VALUES ('free', 'Free', 5, false, false, 12, 0, 1),
       ('pro', 'Pro', NULL, true, true, NULL, 900, 2);

CREATE TABLE teams (
	team_id text NOT NULL,
	name text NOT NULL DEFAULT '',
	domain text NOT NULL DEFAULT '',
	plan text NOT NULL DEFAULT 'free' REFERENCES plans (name),
	created_at timestamptz NOT NULL DEFAULT now(),
	installed_at timestamptz,
	uninstalled_at timestamptz,
	PRIMARY KEY (team_id)
) PARTITION BY HASH (team_id);
SELECT conch_team_table('teams');

CREATE TABLE installations (
	team_id text NOT NULL,
	app_id text NOT NULL DEFAULT '',
	bot_user_id text NOT NULL DEFAULT '',
	scopes text NOT NULL DEFAULT '',
	bot_token text,                  -- sealed by the vault; NULL once revoked
	refresh_token text,              -- sealed; with token rotation
	token_expires_at timestamptz,
	installer_user_id text NOT NULL DEFAULT '',
	active boolean NOT NULL DEFAULT true,
	inactive_reason text,
	installed_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('installations');

-- Whether a team has an active installation, as one statement that scopes
-- itself: every Slack request asks this first, and as a statement of its own
-- (its own implicit transaction) it costs one round trip, not four. Called
-- inside an explicit transaction it would leave that transaction scoped to
-- p_team, so the application calls it only on its own.
CREATE FUNCTION conch_team_installed(p_team text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true);
	RETURN EXISTS (SELECT 1 FROM installations i JOIN teams t ON t.team_id = i.team_id
	                WHERE i.team_id = p_team AND t.team_id = p_team AND i.active
	                  AND t.uninstalled_at IS NULL);
END $$;

-- Jobs are the one mechanism for slow and scheduled work. The table spans
-- teams (runners claim by due time), so it is not partitioned by team, but
-- it has the same RLS policy: a team transaction sees only its own jobs.
CREATE TABLE jobs (
	id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	kind text NOT NULL,
	team_id text,
	payload jsonb NOT NULL DEFAULT '{}',
	state text NOT NULL DEFAULT 'queued'
		CHECK (state IN ('queued', 'running', 'done', 'dead', 'cancelled')),
	due_at timestamptz NOT NULL DEFAULT now(),
	attempts int NOT NULL DEFAULT 0,
	max_attempts int NOT NULL DEFAULT 8,
	lease_until timestamptz,
	last_error text,
	dedupe_key text,
	created_at timestamptz NOT NULL DEFAULT now(),
	started_at timestamptz,
	finished_at timestamptz
);
CREATE UNIQUE INDEX jobs_dedupe ON jobs (kind, dedupe_key) WHERE dedupe_key IS NOT NULL;
CREATE INDEX jobs_due ON jobs (due_at) WHERE state = 'queued';
CREATE INDEX jobs_lease ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_team ON jobs (team_id, created_at DESC);
CREATE INDEX jobs_state_kind ON jobs (state, kind);
SELECT conch_team_policy('jobs');

-- Runners LISTEN on conch_jobs; a job becoming runnable wakes them.
-- Identical notifications in one transaction collapse into one.
CREATE FUNCTION jobs_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('conch_jobs', '');
	RETURN NULL;
END $$;

CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state, due_at ON jobs
	FOR EACH ROW WHEN (NEW.state = 'queued') EXECUTE FUNCTION jobs_notify();
