-- Dibs from Slack: /dibs add (several things at once, all or none) and
-- /dibs mine (the caller's holds and places in line).

-- Creates every name of p_things that is not a thing yet, or none of them
-- when that would take the team over p_max_things (NULL: no limit). The
-- names may be in any case (each first spelling becomes the display name)
-- and are distinct ignoring case. Runs under the same per-team lock as
-- dibs_create_thing(), so concurrent creations cannot overshoot the limit.
-- status: added | limit. created, existing: display names, comma-separated,
-- NULL when none; new_count: how many names are new; things: the team's
-- things before the call.
CREATE FUNCTION dibs_add(p_team text, p_things text[], p_user text, p_channel text,
                         p_max_things int,
                         OUT status text, OUT created text, OUT existing text,
                         OUT new_count int, OUT things int)
LANGUAGE plpgsql AS $$
DECLARE
	v_name text;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('conch.dibs.things:' || p_team, 0));
	SELECT count(*) INTO things FROM things t WHERE t.team_id = p_team;
	SELECT string_agg(t.display_name, ', ' ORDER BY t.name) INTO existing
	  FROM things t WHERE t.team_id = p_team AND t.name IN (SELECT lower(x) FROM unnest(p_things) x);
	SELECT count(*) INTO new_count FROM unnest(p_things) x
	 WHERE NOT EXISTS (SELECT 1 FROM things t WHERE t.team_id = p_team AND t.name = lower(x));
	IF p_max_things IS NOT NULL AND new_count > 0 AND things + new_count > p_max_things THEN
		status := 'limit';
		existing := NULL;
		RETURN;
	END IF;
	FOREACH v_name IN ARRAY p_things LOOP
		INSERT INTO things (team_id, name, display_name, channel_id, created_by)
		VALUES (p_team, lower(v_name), v_name, p_channel, p_user)
		ON CONFLICT (team_id, name) DO NOTHING;
		IF FOUND THEN
			PERFORM dibs_log(p_team, lower(v_name), p_user, 'create');
			created := coalesce(created || ', ', '') || v_name;
		END IF;
	END LOOP;
	status := 'added';
END $$;

-- The caller's holds (place NULL) then their places in line (1 = next),
-- release_at: when a hold ends (NULL: until released; always NULL for a
-- place in line).
CREATE FUNCTION dibs_mine(p_team text, p_user text)
RETURNS TABLE (display_name text, place bigint, release_at timestamptz)
LANGUAGE sql STABLE AS $$
	SELECT t.display_name, NULL::bigint, h.release_at
	  FROM holds h JOIN things t ON t.team_id = h.team_id AND t.name = h.thing
	 WHERE h.team_id = p_team AND h.user_id = p_user
	UNION ALL
	SELECT t.display_name,
	       (SELECT count(*) FROM queue o
	         WHERE o.team_id = q.team_id AND o.thing = q.thing AND o.position <= q.position),
	       NULL
	  FROM queue q JOIN things t ON t.team_id = q.team_id AND t.name = q.thing
	 WHERE q.team_id = p_team AND q.user_id = p_user
	 ORDER BY 2 NULLS FIRST, 1
$$;

-- The team's Dibs settings; no row: the defaults (names open, anyone may
-- kick, remove and add). Changed only by /dibs settings, which checks that
-- the caller is a workspace owner or admin or the installer.
CREATE TABLE dibs_settings (
	team_id text NOT NULL,
	names text NOT NULL DEFAULT 'open' CHECK (names IN ('open', 'strict')),
	manage text NOT NULL DEFAULT 'anyone' CHECK (manage IN ('anyone', 'admins')),
	updated_by text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('dibs_settings');

-- The holder hears when someone joins the queue: at most one DM a thing
-- every 10 minutes (things.queue_dm_at: when the last was queued).
ALTER TABLE things ADD COLUMN queue_dm_at timestamptz;

-- Called in the transaction of a take whose caller joined the queue (the
-- thing's row is locked by dibs_on, so two joins cannot both pass the
-- 10-minute check). Queues a 'queue_joined' notify job for the holder, or
-- does nothing (false) when one went out in the last 10 minutes.
CREATE FUNCTION dibs_tell_holder(p_team text, p_thing text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := lower(p_thing);
	h holds;
BEGIN
	SELECT * INTO h FROM holds x WHERE x.team_id = p_team AND x.thing = v_name;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	UPDATE things t SET queue_dm_at = now()
	 WHERE t.team_id = p_team AND t.name = v_name
	   AND (t.queue_dm_at IS NULL OR t.queue_dm_at <= now() - interval '10 minutes');
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM dibs_job(p_team, 'dibs.notify',
	                 jsonb_build_object('event', 'queue_joined', 'thing', v_name,
	                                    'user', h.user_id, 'hold_id', h.hold_id),
	                 now(), 'notify:queue_joined:' || h.hold_id || ':' ||
	                        floor(extract(epoch FROM now()) * 1000000)::bigint);
	RETURN true;
END $$;

-- Channel announcements. A thing remembers the last channel it was used
-- from; takes, releases and hand-overs are posted there by a
-- 'dibs.announce' job (payload {event, thing, user, next_user, channel}),
-- unless that channel turned announcements off. Only channels (C..., G...)
-- get them, never DMs.
ALTER TABLE things ADD COLUMN last_channel text;

CREATE TABLE dibs_channel_settings (
	team_id text NOT NULL,
	channel_id text NOT NULL,
	announce boolean NOT NULL,
	updated_by text,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, channel_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('dibs_channel_settings');

-- p_channel: where the command was typed (NULL from the API: the thing's
-- last channel). p_event: took | released. Returns the channel announced
-- in, or NULL when none.
CREATE FUNCTION dibs_announce(p_team text, p_thing text, p_channel text, p_event text,
                              p_user text, p_next text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := lower(p_thing);
	v_channel text;
BEGIN
	IF p_channel IS NOT NULL AND p_channel <> '' THEN
		UPDATE things t SET last_channel = p_channel WHERE t.team_id = p_team AND t.name = v_name;
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

-- Check-ins. An open-ended hold gets a 'dibs.checkin' job due checkin
-- seconds after it starts (the team's setting; default 4 hours; NULL:
-- off). It asks the holder "Still using it?" (Keep, Release) and, with
-- autorelease set, queues a 'dibs.autorelease' job due that much later.
-- Keep moves holds.checkin_gen on and queues the next check-in; jobs carry
-- the hold_id and the generation they were made for and do nothing when
-- either changed, so they never act on a later hold or an answered ask.
ALTER TABLE dibs_settings ADD COLUMN checkin_seconds int DEFAULT 14400
	CHECK (checkin_seconds BETWEEN 1 AND 2592000);
ALTER TABLE dibs_settings ADD COLUMN autorelease_seconds int
	CHECK (autorelease_seconds BETWEEN 1 AND 2592000);
ALTER TABLE holds ADD COLUMN checkin_gen int NOT NULL DEFAULT 0;

-- The team's check-in interval in seconds, NULL when off.
CREATE FUNCTION dibs_checkin_seconds(p_team text) RETURNS int
LANGUAGE plpgsql STABLE AS $$
DECLARE
	v int;
BEGIN
	SELECT s.checkin_seconds INTO v FROM dibs_settings s WHERE s.team_id = p_team;
	IF NOT FOUND THEN
		RETURN 14400;
	END IF;
	RETURN v;
END $$;

CREATE FUNCTION dibs_schedule_checkin(p_team text, p_thing text, p_hold bigint, p_gen int)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	v int := dibs_checkin_seconds(p_team);
BEGIN
	IF v IS NULL THEN
		RETURN;
	END IF;
	PERFORM dibs_job(p_team, 'dibs.checkin',
	                 jsonb_build_object('thing', p_thing, 'hold_id', p_hold, 'gen', p_gen),
	                 now() + make_interval(secs => v), 'checkin:' || p_hold || ':' || p_gen);
END $$;

CREATE FUNCTION dibs_holds_checkin() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM dibs_schedule_checkin(NEW.team_id, NEW.thing, NEW.hold_id, 0);
	RETURN NULL;
END $$;

CREATE TRIGGER dibs_holds_checkin AFTER INSERT ON holds
	FOR EACH ROW WHEN (NEW.release_at IS NULL) EXECUTE FUNCTION dibs_holds_checkin();

-- The check-in job's step: whether to ask (the hold stands, open-ended,
-- unanswered at this generation), and then the autorelease job. user: the
-- holder to ask, NULL when there is nothing to do.
CREATE FUNCTION dibs_checkin_due(p_team text, p_thing text, p_hold bigint, p_gen int,
                                 OUT user_id text, OUT autorelease_seconds int)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	h holds;
BEGIN
	SELECT * INTO h FROM holds x
	 WHERE x.team_id = p_team AND x.thing = p_thing AND x.hold_id = p_hold
	   AND x.checkin_gen = p_gen AND x.release_at IS NULL;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	user_id := h.user_id;
	SELECT s.autorelease_seconds INTO autorelease_seconds FROM dibs_settings s
	 WHERE s.team_id = p_team;
	IF autorelease_seconds IS NOT NULL THEN
		PERFORM dibs_job(p_team, 'dibs.autorelease',
		                 jsonb_build_object('thing', p_thing, 'hold_id', p_hold, 'gen', p_gen),
		                 now() + make_interval(secs => autorelease_seconds),
		                 'autorelease:' || p_hold || ':' || p_gen);
	END IF;
END $$;

-- Keep: the holder (only) answers the check-in of generation p_gen; the
-- next one is scheduled. status: kept | stale.
CREATE FUNCTION dibs_checkin_keep(p_team text, p_thing text, p_user text, p_hold bigint,
                                  p_gen int) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM dibs_lock_thing(p_team, p_thing);
	UPDATE holds x SET checkin_gen = x.checkin_gen + 1
	 WHERE x.team_id = p_team AND x.thing = p_thing AND x.user_id = p_user
	   AND x.hold_id = p_hold AND x.checkin_gen = p_gen;
	IF NOT FOUND THEN
		RETURN 'stale';
	END IF;
	UPDATE jobs SET state = 'cancelled', finished_at = now()
	 WHERE team_id = p_team AND state = 'queued' AND kind = 'dibs.autorelease'
	   AND dedupe_key = 'autorelease:' || p_hold || ':' || p_gen;
	PERFORM dibs_schedule_checkin(p_team, p_thing, p_hold, p_gen + 1);
	RETURN 'kept';
END $$;

-- The autorelease job: ends the hold when its check-in of p_gen is still
-- unanswered; the next in line gets it (and its DM) as after an off.
-- status: released | stale. next_user: the new holder or NULL.
CREATE FUNCTION dibs_autorelease_due(p_team text, p_thing text, p_hold bigint, p_gen int,
                                     OUT status text, OUT holder text, OUT next_user text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
	PERFORM dibs_lock_thing(p_team, p_thing);
	SELECT x.user_id INTO holder FROM holds x
	 WHERE x.team_id = p_team AND x.thing = p_thing AND x.hold_id = p_hold
	   AND x.checkin_gen = p_gen AND x.release_at IS NULL;
	IF NOT FOUND THEN
		status := 'stale';
		RETURN;
	END IF;
	SELECT o.next_user INTO next_user FROM dibs_off(p_team, p_thing, holder) o;
	PERFORM dibs_log(p_team, p_thing, holder, 'auto-release');
	status := 'released';
END $$;
