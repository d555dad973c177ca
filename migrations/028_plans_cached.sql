-- The API token lookup, with a plan PostgreSQL keeps (see 027).
--
-- A LANGUAGE sql function that cannot be inlined (a FROM clause, a
-- subquery, SECURITY DEFINER) is planned again in every statement that
-- calls it; in plpgsql each statement is planned once per connection.
-- (024's Lunch functions are written in plpgsql from the start.)

-- Every REST API request asks it first.
CREATE OR REPLACE FUNCTION conch_api_token_team(p_hash text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	RETURN (SELECT team_id FROM api_tokens WHERE token_hash = p_hash LIMIT 1);
END $$;
