-- The installation that serves a team, with plans PostgreSQL keeps.
--
-- 021 wrote conch_installation_of() and the functions around it in
-- LANGUAGE sql. A SQL function that cannot be inlined (these are SECURITY
-- DEFINER with a SET clause) is planned again at every call, and the OR
-- over the team's and its org's installation, across 16 partitions, cost
-- about 350 us of planning each time. It was called about six times per
-- command (the installed check of every request, the token of every Slack
-- call, each evaluating it more than once): measured with the benchmark's
-- pg_stat_statements (BENCH_PG_STATS=1), 1,037 us per token lookup and
-- 617 us per request admission. In plpgsql the statements are planned
-- once per connection, and the team's own installation (the common case)
-- is one primary-key probe; the org's is looked up only when there is none.
-- Same results as 021 for every team: the tests of 021 (enterprise.test)
-- check them.

CREATE OR REPLACE FUNCTION conch_installation_of(p_team text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	v text;
BEGIN
	SELECT i.team_id INTO v FROM installations i WHERE i.team_id = p_team AND i.active;
	IF FOUND THEN
		RETURN v;
	END IF;
	SELECT i.team_id INTO v
	  FROM teams t JOIN installations i ON i.team_id = t.enterprise_id
	 WHERE t.team_id = p_team AND t.enterprise_id IS NOT NULL AND i.active;
	RETURN v;
END $$;

CREATE OR REPLACE FUNCTION conch_installation_token(p_team text, OUT installation text,
                                                    OUT bot_token text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
	v text;
BEGIN
	IF p_team IS DISTINCT FROM conch_team() THEN
		RETURN;
	END IF;
	v := conch_installation_of(p_team);
	IF v IS NULL THEN
		RETURN;
	END IF;
	SELECT i.team_id, i.bot_token INTO installation, bot_token
	  FROM installations i WHERE i.team_id = v AND i.bot_token IS NOT NULL;
END $$;

CREATE OR REPLACE FUNCTION conch_installation_deactivate(p_team text, p_reason text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	UPDATE installations
	   SET active = false, bot_token = NULL, refresh_token = NULL, inactive_reason = p_reason,
	       updated_at = now()
	 WHERE p_team = conch_team() AND team_id = coalesce(conch_installation_of(p_team), p_team);
END $$;

-- Installed: the team is not uninstalled and an installation serves it.
CREATE OR REPLACE FUNCTION conch_team_installed(p_team text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true);
	IF NOT EXISTS (SELECT 1 FROM teams t WHERE t.team_id = p_team AND t.uninstalled_at IS NULL) THEN
		RETURN false;
	END IF;
	RETURN conch_installation_of(p_team) IS NOT NULL;
END $$;
