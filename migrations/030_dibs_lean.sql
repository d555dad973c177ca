-- Less work in /dibs on and /dibs off for the same result (measured with
-- the benchmark's pg_stat_statements, BENCH_PG_STATS=1):
--
-- - dibs_announce() writes a thing's last channel only when it changed: a
--   thing used from one channel no longer gets a new row version (and its
--   WAL) on every take and release.
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

DROP TRIGGER dibs_events_history ON dibs_events;
CREATE TRIGGER dibs_events_history AFTER INSERT ON dibs_events
	FOR EACH ROW WHEN (NEW.action IN ('kick', 'expire', 'auto_release', 'promote'))
	EXECUTE FUNCTION dibs_history_event();
