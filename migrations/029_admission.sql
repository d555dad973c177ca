-- conch_scope() (023) was a SQL function planned at every call (about
-- 30 us each, twice per command); in plpgsql its statement is planned
-- once per connection.
CREATE OR REPLACE FUNCTION conch_scope(p_team text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true),
	        set_config('plan_cache_mode', 'force_generic_plan', true);
END $$;
