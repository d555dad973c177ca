-- Dibs depth: the invite notice through the command's response_url, and
-- check-ins for the open-ended holds that began before 015.
--
-- This file may be applied again (tests do, to check that the backfill is
-- idempotent): it only replaces functions and inserts keyed jobs.

-- When the bot may not post an announcement in a channel, the person who
-- made the change is told how to invite it (release.c). When the change
-- came from a slash command or a button, that notice goes through its
-- response_url (Slack honours one for 30 minutes and 5 posts), falling
-- back to chat.postEphemeral and then a DM. Called in the transaction of
-- the change, after it (in the same statement: dibs_announce() in a
-- subquery, dibs_kick() in FROM, so no round trip is added): the
-- announcement jobs that transaction queued for p_user (a take or release
-- it made, a kick it announced) carry p_url and when it was given
-- (response_url_at, unix seconds). Jobs of this transaction are those
-- created at now() (its start); jobs_team (team_id, created_at) finds
-- them. Returns how many jobs it marked; none for a NULL or empty p_url.
CREATE OR REPLACE FUNCTION dibs_respond_via(p_team text, p_user text, p_url text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	IF p_url IS NULL OR p_url = '' THEN
		RETURN 0;
	END IF;
	UPDATE jobs j
	   SET payload = j.payload || jsonb_build_object('response_url', p_url,
	                                                 'response_url_at', dibs_epoch(now()))
	 WHERE j.team_id = p_team AND j.created_at = now() AND j.state = 'queued'
	   AND ((j.kind = 'dibs.announce' AND j.payload->>'user' = p_user)
	     OR (j.kind = 'dibs.notify' AND j.payload->>'event' = 'kick_announce'
	         AND j.payload->>'by' = p_user));
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

-- Check-ins began with 015: an open-ended hold gets its 'dibs.checkin'
-- job when it begins (the holds_checkin trigger), so the holds that began
-- before 015 was applied have none and would never be asked. Each of
-- those (of a team whose check-ins are on now) gets the check-in of its
-- current generation, keyed as the trigger and Keep key theirs
-- ('checkin:HOLD:GEN', so a second run adds nothing), due one interval
-- after the hold began (at once when that is past). Holds that began
-- later are left as they are: one made while its team had check-ins off
-- keeps none (a setting applies to holds that start after it), and one
-- whose asked check-in was cleaned up is not asked again. Where no
-- migration log exists (a database migrated by hand) every open-ended
-- hold without a check-in job counts as old. One pass over holds and one
-- over the check-in jobs (a hash anti-join on team and hold). Runs as the
-- schema owner, whom RLS does not bind.
DO $$
DECLARE
	v_before timestamptz := 'infinity';
BEGIN
	IF to_regclass('schema_migrations') IS NOT NULL THEN
		EXECUTE 'SELECT coalesce(min(applied_at), ''infinity'') FROM schema_migrations '
		        'WHERE version = $1'
		   INTO v_before USING '015_dibs_slack.sql';
	END IF;
	INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
	SELECT 'dibs.checkin', h.team_id,
	       jsonb_build_object('thing', h.thing, 'hold_id', h.hold_id, 'gen', h.checkin_gen),
	       greatest(h.since + make_interval(secs => dibs_checkin_seconds(h.team_id)), now()),
	       'checkin:' || h.hold_id || ':' || h.checkin_gen
	  FROM holds h
	 WHERE h.release_at IS NULL AND h.since < v_before
	   AND dibs_checkin_seconds(h.team_id) IS NOT NULL
	   AND NOT EXISTS (SELECT 1 FROM jobs j
	                    WHERE j.kind = 'dibs.checkin' AND j.team_id = h.team_id
	                      AND split_part(j.dedupe_key, ':', 2) = h.hold_id::text)
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
END $$;
