-- Org-wide (Enterprise Grid) installs. An org installs conch once: the
-- token is the org's, stored as the installation of a teams row whose
-- team_id is the enterprise id (E...). Each workspace of the org stays its
-- own team (data, settings, plan, bill): its teams row names the org in
-- enterprise_id, and it uses the org's installation. Which installation
-- serves a team is decided in one place, conch_installation_of().

ALTER TABLE teams ADD COLUMN enterprise_id text;

-- The installation that serves p_team (its team_id): the team's own active
-- installation, else the active one of the org it belongs to; NULL when
-- none. Reads another team's row (the org's), so a definer function.
CREATE FUNCTION conch_installation_of(p_team text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT i.team_id FROM installations i
	 WHERE i.active
	   AND (i.team_id = p_team
	        OR i.team_id = (SELECT t.enterprise_id FROM teams t WHERE t.team_id = p_team))
	 ORDER BY i.team_id = p_team DESC
	 LIMIT 1
$$;

-- The sealed bot token that serves the transaction's team, with the
-- installation it belongs to (the vault binds the token to that id).
CREATE FUNCTION conch_installation_token(p_team text, OUT installation text, OUT bot_token text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT i.team_id, i.bot_token FROM installations i
	 WHERE p_team = conch_team() AND i.team_id = conch_installation_of(p_team)
	   AND i.bot_token IS NOT NULL
$$;

-- Slack refused the token that serves the transaction's team: that
-- installation (the org's, for a workspace of an org) stops being used.
CREATE FUNCTION conch_installation_deactivate(p_team text, p_reason text) RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	UPDATE installations
	   SET active = false, bot_token = NULL, refresh_token = NULL, inactive_reason = p_reason,
	       updated_at = now()
	 WHERE p_team = conch_team() AND team_id = coalesce(conch_installation_of(p_team), p_team)
$$;

-- A request from workspace p_team of org p_enterprise, where the org has
-- installed conch: the workspace becomes (or again is) a team of that
-- org. True when it is one now. Writes nothing when nothing changed.
CREATE FUNCTION conch_join_enterprise(p_team text, p_enterprise text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
	IF p_team IS NULL OR p_enterprise IS NULL OR p_team = p_enterprise
	   OR p_enterprise NOT LIKE 'E%' THEN
		RETURN false;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM installations i JOIN teams t ON t.team_id = i.team_id
	                WHERE i.team_id = p_enterprise AND t.team_id = p_enterprise AND i.active
	                  AND t.uninstalled_at IS NULL) THEN
		RETURN false;
	END IF;
	INSERT INTO teams AS t (team_id, enterprise_id, installed_at)
	VALUES (p_team, p_enterprise, now())
	ON CONFLICT (team_id) DO UPDATE
	   SET enterprise_id = EXCLUDED.enterprise_id, installed_at = now(), uninstalled_at = NULL
	 WHERE t.enterprise_id IS DISTINCT FROM EXCLUDED.enterprise_id
	    OR t.uninstalled_at IS NOT NULL;
	RETURN true;
END $$;

-- The workspaces of an org, for its uninstall; only from the org's own
-- scope or from no team's.
CREATE FUNCTION conch_enterprise_workspaces(p_enterprise text) RETURNS SETOF text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT t.team_id FROM teams t
	 WHERE t.enterprise_id = p_enterprise AND t.team_id <> p_enterprise
	   AND (conch_team() = p_enterprise OR conch_unscoped())
	 ORDER BY 1
$$;

-- Installed: the team is not uninstalled and an installation serves it.
CREATE OR REPLACE FUNCTION conch_team_installed(p_team text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true);
	RETURN EXISTS (SELECT 1 FROM teams t WHERE t.team_id = p_team AND t.uninstalled_at IS NULL)
	   AND conch_installation_of(p_team) IS NOT NULL;
END $$;

-- conch_slack_request/3 (009) with the org of an org-wide install
-- (p_enterprise, NULL otherwise): the workspace joins the org's
-- installation before the installed check. The 3-argument form now calls
-- this one, so the steps are written once.
CREATE FUNCTION conch_slack_request(p_team text, p_signature text, p_signed_at bigint,
                                    p_enterprise text)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true);
	INSERT INTO slack_signatures (signature, team_id, signed_at)
	VALUES (p_signature, p_team, to_timestamp(p_signed_at))
	ON CONFLICT (signature) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'replayed';
	END IF;
	IF p_enterprise IS NOT NULL THEN
		PERFORM conch_join_enterprise(p_team, p_enterprise);
	END IF;
	RETURN CASE WHEN conch_team_installed(p_team) THEN 'installed' ELSE 'not_installed' END;
END $$;

CREATE OR REPLACE FUNCTION conch_slack_request(p_team text, p_signature text, p_signed_at bigint)
RETURNS text
LANGUAGE sql AS $$ SELECT conch_slack_request(p_team, p_signature, p_signed_at, NULL) $$;

-- Scopes: an install that lacks a scope conch now asks for (slack_scopes)
-- gets one DM to its installer with the reinstall link. scopes_notified_at
-- marks it done; a reinstall (a later installed_at) makes it eligible again.
ALTER TABLE installations ADD COLUMN scopes_notified_at timestamptz;

-- Active installs not told since they were installed, with the scopes of
-- p_wanted (comma-separated) they lack, in p_wanted's order; at most
-- p_limit. Spans teams: only from a transaction scoped to no team (the
-- oauth.scopes_check job).
CREATE FUNCTION conch_installs_missing_scopes(p_wanted text, p_limit int)
RETURNS TABLE (team_id text, missing text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
	SELECT i.team_id, string_agg(w.scope, ',' ORDER BY w.ord)
	  FROM installations i
	  JOIN teams t ON t.team_id = i.team_id AND t.uninstalled_at IS NULL
	  CROSS JOIN LATERAL (SELECT btrim(u.s) AS scope, u.ord
	                        FROM unnest(string_to_array(p_wanted, ',')) WITH ORDINALITY AS u(s, ord)) w
	 WHERE conch_unscoped() AND i.active AND i.bot_token IS NOT NULL
	   AND (i.scopes_notified_at IS NULL OR i.scopes_notified_at < i.installed_at)
	   AND w.scope <> ''
	   AND NOT w.scope = ANY (SELECT btrim(x) FROM unnest(string_to_array(i.scopes, ',')) AS x)
	 GROUP BY i.team_id
	 ORDER BY i.team_id
	 LIMIT p_limit
$$;
