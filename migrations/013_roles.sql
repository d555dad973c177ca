-- Two roles. The owner (the role `conch migrate` connects as, through
-- database_migrate_url) owns the schema, every table and every function.
-- The server connects as a login role that is a member of the group role
-- conch_runtime and owns nothing: it may read and write rows, never alter
-- or drop a table or a policy, and Row-Level Security binds it (no FORCE
-- is needed for a role that is not the owner).
--
-- The scope rules after this migration:
--   team tables (every table with team_id but the four below, partitions
--     included): only the rows of the transaction's team (conch.team_id);
--     no setting lifts it;
--   global tables by nature (jobs, slack_events, stripe_events,
--     stripe_customers): the team's rows in a team transaction, every row
--     in a transaction scoped to no team (the job runner, the dedupe logs);
--   tables without team_id that had the all-teams policy (operator
--     accounts and sessions, OAuth states): only transactions scoped to no
--     team, so no team-scoped query reads a password hash;
--   the few reads that must span team tables: SECURITY DEFINER functions
--     owned by the owner (who bypasses RLS), each doing one fixed thing.
--
-- Everything is found in the catalog, so tables that migrations 009-012
-- add are covered too. A later team table needs nothing: conch_team_table()
-- makes the new kind of policy and default privileges grant the rows (a
-- new global table writes its own policy: migrations/README.md).

DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'conch_runtime') THEN
		BEGIN
			CREATE ROLE conch_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS;
		EXCEPTION WHEN insufficient_privilege THEN
			RAISE EXCEPTION 'role conch_runtime does not exist and % may not create it: '
			                'run deploy/db-bootstrap.sql as an administrator first', current_user;
		END;
	END IF;
	-- The migrator must be the owner, never a runtime login.
	IF EXISTS (SELECT 1 FROM pg_auth_members m
	            WHERE m.roleid = 'conch_runtime'::regrole AND m.member = current_user::regrole) THEN
		RAISE EXCEPTION 'conch migrate connects as %, a member of conch_runtime: set '
		                'database_migrate_url to the role that owns the schema', current_user;
	END IF;
END $$;

-- The setting no longer means anything: kept (constant false) because old
-- policies and functions name it, and a policy that still does fails closed.
CREATE OR REPLACE FUNCTION conch_all_teams() RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT false $$;

-- A transaction scoped to no team (tx_begin_system, tx_begin(NULL)).
CREATE FUNCTION conch_unscoped() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(current_setting('conch.team_id', true), '') = '' $$;

-- The team policy from now on: the transaction's team, nothing else.
CREATE OR REPLACE FUNCTION conch_team_policy(tbl text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', tbl);
	EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', tbl);
	EXECUTE format('DROP POLICY IF EXISTS team_scope ON %I', tbl);
	EXECUTE format('CREATE POLICY team_scope ON %I USING (team_id = conch_team()) '
	               'WITH CHECK (team_id = conch_team())', tbl);
END $$;

-- Every table of public: RLS not forced (the owner, who runs migrations
-- and the definer functions, sees every row); policies naming the old
-- setting replaced; a team_id table without RLS gets the team policy.
DO $$
DECLARE
	rel record;
	pol record;
	global_tables constant text[] := ARRAY['jobs', 'slack_events', 'slack_signatures', 'stripe_events',
	                                       'stripe_customers'];
BEGIN
	FOR rel IN
		SELECT c.relname::text AS name, c.relrowsecurity AS rls,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
		                  AND a.attname = 'team_id' AND NOT a.attisdropped) AS has_team
		  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
		 ORDER BY 1
	LOOP
		EXECUTE format('ALTER TABLE %I NO FORCE ROW LEVEL SECURITY', rel.name);
		IF rel.has_team THEN
			-- Whatever policies it had: exactly the one below (fails closed).
			FOR pol IN SELECT policyname FROM pg_policies
			            WHERE schemaname = 'public' AND tablename = rel.name LOOP
				EXECUTE format('DROP POLICY %I ON %I', pol.policyname, rel.name);
			END LOOP;
			EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', rel.name);
			IF rel.name = ANY (global_tables) THEN
				EXECUTE format('CREATE POLICY team_scope ON %I '
				               'USING (team_id = conch_team() OR conch_unscoped()) '
				               'WITH CHECK (team_id = conch_team() OR conch_unscoped())', rel.name);
			ELSE
				EXECUTE format('CREATE POLICY team_scope ON %I USING (team_id = conch_team()) '
				               'WITH CHECK (team_id = conch_team())', rel.name);
			END IF;
		ELSIF rel.rls THEN
			FOR pol IN SELECT policyname FROM pg_policies
			            WHERE schemaname = 'public' AND tablename = rel.name
			              AND (coalesce(qual, '') LIKE '%conch_all_teams%'
			                   OR coalesce(with_check, '') LIKE '%conch_all_teams%') LOOP
				EXECUTE format('DROP POLICY %I ON %I', pol.policyname, rel.name);
				EXECUTE format('CREATE POLICY %I ON %I USING (conch_unscoped()) '
				               'WITH CHECK (conch_unscoped())', pol.policyname, rel.name);
			END LOOP;
		END IF;
	END LOOP;
END $$;

-- --- the reads that span teams, one fixed thing each --------------------

-- The team of an API token (by its SHA-256); the caller then works in
-- that team's scope.
CREATE FUNCTION conch_api_token_team(p_hash text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT team_id FROM api_tokens WHERE token_hash = p_hash LIMIT 1 $$;

-- The team a Stripe object belongs to: the one its customer pays for, else
-- the one its metadata names; either must exist (src/billing/apply.c).
CREATE FUNCTION billing_find_team(p_customer text, p_named text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT t.team_id FROM teams t
	 WHERE t.team_id = (SELECT c.team_id FROM stripe_customers c WHERE c.customer = p_customer)
	    OR t.team_id = p_named
	 ORDER BY t.team_id = p_named LIMIT 1
$$;

-- A checkout ties its customer to the team it was opened for, even when
-- the customer paid for another team before (a row the team's scope does
-- not see, so billing_link_checkout could not move it). Only for the team
-- the transaction is scoped to; src/billing/apply.c calls it first.
CREATE FUNCTION billing_map_customer(p_customer text, p_team text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	IF p_team IS NULL OR p_team IS DISTINCT FROM conch_team() THEN
		RAISE EXCEPTION 'billing_map_customer: the transaction is not scoped to team %', p_team;
	END IF;
	INSERT INTO stripe_customers (customer, team_id) VALUES (p_customer, p_team)
	ON CONFLICT (customer) DO UPDATE SET team_id = EXCLUDED.team_id;
END $$;

-- Every team's id, for `conch rotate-keys`, which then re-seals each
-- team's secrets in that team's scope.
CREATE FUNCTION conch_team_ids() RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT team_id FROM teams ORDER BY team_id $$;

-- Operator pages (src/admin/pages.c): counts and one page of teams.
CREATE FUNCTION admin_plan_counts()
RETURNS TABLE (plan text, teams bigint, installed bigint, uninstalled bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT t.plan, count(*),
	       count(*) FILTER (WHERE t.installed_at IS NOT NULL AND t.uninstalled_at IS NULL),
	       count(*) FILTER (WHERE t.uninstalled_at IS NOT NULL)
	  FROM teams t GROUP BY t.plan
$$;

-- Activity of the last 14 days (UTC) from p_since, per day.
CREATE FUNCTION admin_dibs_days(p_since timestamptz)
RETURNS TABLE (day timestamp, events bigint, holds bigint, teams bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT date_trunc('day', e.at AT TIME ZONE 'UTC'), count(*),
	       count(*) FILTER (WHERE e.action IN ('hold', 'promote')), count(DISTINCT e.team_id)
	  FROM dibs_events e WHERE e.at >= p_since GROUP BY 1
$$;

CREATE FUNCTION admin_poll_days(p_since timestamptz)
RETURNS TABLE (day timestamp, polls bigint, grouped bigint, teams bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT date_trunc('day', p.created_at AT TIME ZONE 'UTC'), count(*),
	       count(*) FILTER (WHERE p.state = 'grouped'), count(DISTINCT p.team_id)
	  FROM lunch_polls p WHERE p.created_at >= p_since GROUP BY 1
$$;

-- Newest first, keyset-paged on teams_created.
CREATE FUNCTION admin_teams_page(p_limit int, p_at timestamptz, p_id text)
RETURNS TABLE (team_id text, name text, plan text, created text, installed_at text,
               uninstalled boolean, cursor_at text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT t.team_id, t.name, t.plan, admin_ts(t.created_at), admin_ts(t.installed_at),
	       t.uninstalled_at IS NOT NULL, admin_cursor(t.created_at)
	  FROM teams t WHERE (t.created_at, t.team_id) < (p_at, p_id)
	 ORDER BY t.created_at DESC, t.team_id DESC LIMIT p_limit
$$;

-- Prefix of the id or of the lower-case name, ordered bytewise (the
-- pattern indexes of 005_admin.sql); each branch reads at most a page.
CREATE FUNCTION admin_teams_search(p_limit int, p_offset bigint, p_q text)
RETURNS TABLE (name_lower text, team_id text, name text, plan text, created text,
               installed_at text, uninstalled boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT * FROM (
	  (SELECT t.name_lower, t.team_id, t.name, t.plan, admin_ts(t.created_at),
	          admin_ts(t.installed_at), t.uninstalled_at IS NOT NULL
	     FROM teams t WHERE t.team_id ~>=~ upper(p_q) AND t.team_id ~<~ (upper(p_q) || chr(1114111))
	    ORDER BY t.name_lower USING ~<~, t.team_id USING ~<~ LIMIT p_limit + p_offset)
	  UNION
	  (SELECT t.name_lower, t.team_id, t.name, t.plan, admin_ts(t.created_at),
	          admin_ts(t.installed_at), t.uninstalled_at IS NOT NULL
	     FROM teams t WHERE t.name_lower ~>=~ lower(p_q) AND t.name_lower ~<~ (lower(p_q) || chr(1114111))
	    ORDER BY t.name_lower USING ~<~, t.team_id USING ~<~ LIMIT p_limit + p_offset)) m
	 ORDER BY m.name_lower USING ~<~, m.team_id USING ~<~ LIMIT p_limit OFFSET p_offset
$$;

-- Facts about the teams of one page (at most 50 ids).
CREATE FUNCTION admin_team_installed(p_ids text[])
RETURNS TABLE (team_id text, active boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT i.team_id, i.active FROM installations i WHERE i.team_id = ANY (p_ids)
$$;

CREATE FUNCTION admin_team_things(p_ids text[])
RETURNS TABLE (team_id text, things bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT t.team_id, count(*) FROM things t WHERE t.team_id = ANY (p_ids) GROUP BY t.team_id
$$;

CREATE FUNCTION admin_team_subscriptions(p_ids text[])
RETURNS TABLE (team_id text, subscription_status text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT b.team_id, b.subscription_status FROM billing b WHERE b.team_id = ANY (p_ids)
$$;

-- The daily directory refresh (src/members.c): a members.sync job for every
-- active installation not synced in the last 20 hours, spread over
-- p_spread, once a day. Returns how many were queued.
CREATE FUNCTION members_refresh_enqueue(p_spread interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	WITH queued AS (
		INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
		SELECT 'members.sync', i.team_id, '{"listed": 0}', now() + random() * p_spread,
		       i.team_id || ':daily:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')
		  FROM installations i LEFT JOIN member_directory d ON d.team_id = i.team_id
		 WHERE i.active AND NOT coalesce(d.lookup_only, false)
		   AND (d.synced_at IS NULL OR d.synced_at < now() - interval '20 hours')
		ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
		RETURNING 1)
	SELECT count(*) FROM queued
$$;

-- Daily (src/dibs/store.c): deletes up to p_batch API tokens of any team
-- that expired more than 30 days ago; returns how many.
CREATE FUNCTION api_tokens_purge_expired(p_batch int) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	WITH gone AS (
		DELETE FROM api_tokens WHERE (team_id, token_hash) IN (
			SELECT team_id, token_hash FROM api_tokens
			 WHERE expires_at < now() - interval '30 days' LIMIT p_batch)
		RETURNING 1)
	SELECT count(*) FROM gone
$$;

-- --- privileges ------------------------------------------------------------

-- Rows, not structure: no TRUNCATE, REFERENCES or TRIGGER, and nothing to
-- own. The migration log and the plans are read-only to the server.
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO conch_runtime;
REVOKE INSERT, UPDATE, DELETE ON plans FROM conch_runtime;
DO $$
BEGIN
	IF to_regclass('schema_migrations') IS NOT NULL THEN
		REVOKE INSERT, UPDATE, DELETE ON schema_migrations FROM conch_runtime;
	END IF;
END $$;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO conch_runtime;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO conch_runtime;

-- What the owner creates later (migrations after this one) is granted the
-- same way without naming it.
ALTER DEFAULT PRIVILEGES IN SCHEMA public
	GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO conch_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO conch_runtime;
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT EXECUTE ON FUNCTIONS TO conch_runtime;
