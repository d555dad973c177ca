-- Less work in /dibs on and /dibs off for the same result (measured with
-- the benchmark's pg_stat_statements, BENCH_PG_STATS=1):
--
-- - dibs_announce() writes a thing's last channel only when it changed: a
--   thing used from one channel no longer gets a new row version (and its
--   WAL) on every take and release.
-- - The one-call commands mark announcement jobs with the response_url
--   only when dibs_announce() queued one (it returns the channel then);
--   before, the UPDATE of jobs ran on every take and release.
-- - The history trigger on dibs_events runs only for the actions it acts
--   on (a WHEN clause, checked without calling the function).

-- p_channel: where the command was typed (NULL from the API: the thing's
-- last channel). p_event: took | released. Returns the channel announced
-- in, or NULL when none.
CREATE OR REPLACE FUNCTION dibs_announce(p_team text, p_thing text, p_channel text, p_event text,
                                         p_user text, p_next text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := lower(p_thing);
	v_channel text;
BEGIN
	IF p_channel IS NOT NULL AND p_channel <> '' THEN
		UPDATE things t SET last_channel = p_channel
		 WHERE t.team_id = p_team AND t.name = v_name AND t.last_channel IS DISTINCT FROM p_channel;
	END IF;
	SELECT coalesce(nullif(p_channel, ''), t.last_channel, t.channel_id) INTO v_channel
	  FROM things t WHERE t.team_id = p_team AND t.name = v_name;
	IF v_channel IS NULL OR v_channel !~ '^[CG][A-Z0-9]+$' THEN
		RETURN NULL;
	END IF;
	IF EXISTS (SELECT 1 FROM dibs_channel_settings s
	            WHERE s.team_id = p_team AND s.channel_id = v_channel AND NOT s.announce) THEN
		RETURN NULL;
	END IF;
	PERFORM dibs_job(p_team, 'dibs.announce',
	                 jsonb_build_object('event', p_event, 'thing', v_name, 'user', p_user,
	                                    'next_user', p_next, 'channel', v_channel),
	                 now(), NULL);
	RETURN v_channel;
END $$;

CREATE OR REPLACE FUNCTION dibs_cmd_on(p_team text, p_thing text, p_user text, p_channel text,
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

CREATE OR REPLACE FUNCTION dibs_cmd_off(p_team text, p_thing text, p_user text, p_channel text,
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


DROP TRIGGER dibs_events_history ON dibs_events;
CREATE TRIGGER dibs_events_history AFTER INSERT ON dibs_events
	FOR EACH ROW WHEN (NEW.action IN ('kick', 'expire', 'auto_release', 'promote'))
	EXECUTE FUNCTION dibs_history_event();
