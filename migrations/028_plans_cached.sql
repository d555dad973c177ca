-- Functions on hot paths whose plans PostgreSQL now keeps (see 027).
--
-- A LANGUAGE sql function that cannot be inlined (a FROM clause, a
-- subquery, SECURITY DEFINER) is planned again in every statement that
-- calls it. lunch_opted_out(), in the query of every Lunch DM job
-- (src/lunch/dm.c), joins two team tables of 16 partitions each and cost
-- about 1 ms of planning per DM: with 1,000 teams polling at once it was
-- most of PostgreSQL's time (BENCH_PG_STATS=1 of bench/fanout.mjs). In
-- plpgsql each statement is planned once per connection.

CREATE OR REPLACE FUNCTION lunch_opted_out(p_team text, p_poll bigint, p_user text)
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM lunch_optouts o JOIN lunch_polls p
	                 ON p.team_id = o.team_id AND p.channel_id = o.channel_id
	                WHERE o.team_id = p_team AND p.poll_id = p_poll AND o.user_id = p_user);
END $$;

-- The poll's channel is read once, and the opt-outs are an anti-join.
CREATE OR REPLACE FUNCTION lunch_reach(p_team text, p_poll bigint) RETURNS int
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v_channel text;
	n int;
BEGIN
	SELECT p.channel_id INTO v_channel FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.poll_id = p_poll;
	SELECT count(*)::int INTO n FROM lunch_roster r
	 WHERE r.team_id = p_team AND r.poll_id = p_poll AND r.eligible
	   AND NOT EXISTS (SELECT 1 FROM lunch_optouts o
	                    WHERE o.team_id = p_team AND o.channel_id = v_channel
	                      AND o.user_id = r.user_id);
	RETURN n;
END $$;

CREATE OR REPLACE FUNCTION lunch_instants(p_date date, p_times int[], p_tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT string_agg(floor(extract(epoch FROM lunch_local(p_date, t, p_tz)))::bigint::text,
	                          ',' ORDER BY o)
	          FROM unnest(p_times) WITH ORDINALITY AS x(t, o));
END $$;

-- Every REST API request asks it first.
CREATE OR REPLACE FUNCTION conch_api_token_team(p_hash text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
	RETURN (SELECT team_id FROM api_tokens WHERE token_hash = p_hash LIMIT 1);
END $$;
