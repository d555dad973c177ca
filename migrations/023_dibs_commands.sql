-- /dibs on and /dibs off (and the REST API's take and release, the buttons
-- and the form, which share them) in one round trip: one function call,
-- run as a statement of its own (its own transaction), that scopes the
-- transaction to the team, reads the plan and the names setting, makes the
-- change with its jobs and events, and returns what the reply needs.
-- Before, the same took BEGIN and the scope, the plan, the setting, the
-- change, the announcement and COMMIT: six round trips.

-- The scope of the statement's transaction: the team (Row-Level Security)
-- and generic plans, as tx_begin() sets them. plpgsql, so that its
-- statement is planned once per connection (a SQL function is planned at
-- every call).
CREATE FUNCTION conch_scope(p_team text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true),
	        set_config('plan_cache_mode', 'force_generic_plan', true);
END $$;

-- The response_url mark (dibs_respond_via) runs only when dibs_announce()
-- queued an announcement (it returns the channel then).

-- status: that of dibs_on(), or no_such_thing (names are strict and there
-- is no such thing), or needs_plan (a timed hold on a plan without them).
CREATE FUNCTION dibs_cmd_on(p_team text, p_thing text, p_user text, p_channel text,
                            p_seconds int, p_reason text, p_response_url text,
                            OUT o_status text, OUT o_position int, OUT o_release_at float8,
                            OUT o_holder text)
LANGUAGE plpgsql AS $$
DECLARE
	v_max int;
	v_timed boolean;
	v_strict boolean;
	r record;
BEGIN
	PERFORM conch_scope(p_team);
	SELECT p.max_things, p.timed_release INTO v_max, v_timed FROM plans p
	 WHERE p.name = coalesce((SELECT t.plan FROM teams t WHERE t.team_id = p_team), 'free');
	IF NOT FOUND THEN
		RAISE EXCEPTION 'team % has no plan', p_team;
	END IF;
	SELECT s.names = 'strict' INTO v_strict FROM dibs_settings s WHERE s.team_id = p_team;
	IF coalesce(v_strict, false)
	   AND NOT EXISTS (SELECT 1 FROM things t WHERE t.team_id = p_team AND t.name = lower(p_thing)) THEN
		o_status := 'no_such_thing';
		RETURN;
	END IF;
	IF p_seconds IS NOT NULL AND NOT v_timed THEN
		o_status := 'needs_plan';
		RETURN;
	END IF;
	SELECT * INTO r FROM dibs_on(p_team, p_thing, p_user, p_channel, p_seconds, p_reason, v_max);
	o_status := r.status;
	o_position := r."position";
	o_release_at := extract(epoch FROM r.release_at);
	o_holder := r.holder;
	IF r.status = 'queued' THEN
		-- The holder hears that someone waits (at most every 10 minutes).
		PERFORM dibs_tell_holder(p_team, p_thing);
	ELSIF r.status = 'holding' THEN
		IF dibs_announce(p_team, p_thing, p_channel, 'took', p_user, NULL) IS NOT NULL THEN
			PERFORM dibs_respond_via(p_team, p_user, p_response_url);
		END IF;
	END IF;
END $$;

-- status: that of dibs_off(); next_user is the new holder, if any.
CREATE FUNCTION dibs_cmd_off(p_team text, p_thing text, p_user text, p_channel text,
                             p_response_url text, OUT o_status text, OUT o_next_user text)
LANGUAGE plpgsql AS $$
DECLARE
	r record;
BEGIN
	PERFORM conch_scope(p_team);
	SELECT * INTO r FROM dibs_off(p_team, p_thing, p_user);
	o_status := r.status;
	o_next_user := r.next_user;
	IF r.status = 'released' THEN
		IF dibs_announce(p_team, p_thing, p_channel, 'released', p_user, r.next_user) IS NOT NULL THEN
			PERFORM dibs_respond_via(p_team, p_user, p_response_url);
		END IF;
	END IF;
END $$;

-- /dibs list and /dibs q NAME (and GET /api/v1/things[/NAME]): the rows of
-- dibs_things() up to p_limit, with how many there are in all, in one
-- round trip.
CREATE FUNCTION dibs_cmd_things(p_team text, p_thing text, p_limit int)
RETURNS TABLE (o_name text, o_display_name text, o_holder text, o_since numeric,
               o_release_at numeric, o_reason text, o_hold_id bigint, o_queue text,
               o_total bigint)
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM conch_scope(p_team);
	RETURN QUERY
	SELECT t.name, t.display_name, t.holder, extract(epoch FROM t.since),
	       extract(epoch FROM t.release_at), t.reason, t.hold_id, t.queue::text, count(*) OVER ()
	  FROM dibs_things(p_team, p_thing) t
	 LIMIT p_limit;
END $$;
