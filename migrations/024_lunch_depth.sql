-- Lunch depth: opt-outs per person and channel, where each channel's groups
-- are announced, a poll's zone and closing time, polls that close
-- themselves and remind those who have not answered, cancel, and the
-- figures of /lunch stats. Team tables, see README.md.
--
-- New job kinds: 'lunch.remind' (dedupe 'poll:ID:remind'). New keys of
-- existing kinds: 'poll:ID:close' for one-off polls too,
-- 'poll:ID:remind:USER' and 'poll:ID:cancelled:USER' (slack.call DMs).

-- Every job here is queued through job_enqueue() (023) with its kind's
-- attempts.
INSERT INTO job_kinds (kind, max_attempts) VALUES ('lunch.remind', 8)
ON CONFLICT (kind) DO NOTHING;

-- Who asked not to be asked in a channel. Kept while the team exists, so a
-- reinstall within the purge delay (30 days) keeps them; the team's purge
-- deletes them.
CREATE TABLE lunch_optouts (
	team_id text NOT NULL,
	channel_id text NOT NULL,
	user_id text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, channel_id, user_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_optouts');

-- /lunch settings groups dm|channel: overrides the team's
-- lunch_settings.groups_in_channel for one channel.
CREATE TABLE lunch_channel_settings (
	team_id text NOT NULL,
	channel_id text NOT NULL,
	groups_in_channel boolean NOT NULL,
	updated_by text NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, channel_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_channel_settings');

-- tz: the poll's IANA zone (its starter's, or its schedule's), set by the
-- members job before the fan-out; lunch_date: the local date its times
-- are on; close_minute and remind: what `close HH:MM remind=D` asked for;
-- close_at: when it closes by itself; cancelled_by: who typed /lunch cancel.
ALTER TABLE lunch_polls
	ADD COLUMN tz text,
	ADD COLUMN lunch_date date,
	ADD COLUMN close_minute int CHECK (close_minute BETWEEN 0 AND 1439),
	ADD COLUMN remind interval,
	ADD COLUMN close_at timestamptz,
	ADD COLUMN cancelled_by text;

ALTER TABLE lunch_members ADD COLUMN reminded_at timestamptz;

-- /lunch start: lunch_start, plus the closing minute and the reminder, and
-- the command's response_url on the members job (which answers through
-- it: the plan check). Same outputs as lunch_start.
CREATE FUNCTION lunch_start_with(p_team text, p_channel text, p_user text, p_times int[],
                                 p_size int, p_close int, p_remind_min int, p_url text,
                                 OUT status text, OUT poll_id bigint, OUT started_by text)
LANGUAGE plpgsql AS $$
BEGIN
	SELECT s.status, s.poll_id, s.started_by INTO status, poll_id, started_by
	  FROM lunch_start(p_team, p_channel, p_user, p_times, p_size) s;
	IF status <> 'started' THEN
		RETURN;
	END IF;
	UPDATE lunch_polls p
	   SET close_minute = p_close,
	       remind = CASE WHEN p_remind_min > 0 THEN make_interval(mins => p_remind_min) END
	 WHERE p.team_id = p_team AND p.poll_id = lunch_start_with.poll_id;
	IF p_url IS NOT NULL AND p_url <> '' THEN
		UPDATE jobs j SET payload = j.payload || jsonb_build_object('response_url', p_url)
		 WHERE j.team_id = p_team AND j.kind = 'lunch.members' AND j.state = 'queued'
		   AND j.dedupe_key = 'poll:' || lunch_start_with.poll_id || ':members';
	END IF;
END $$;

-- The members job, before the fan-out: fixes the poll's zone (its
-- schedule's, else p_tz, the starter's from the member directory or
-- users.info; UTC when unknown), the date of its times and its closing
-- instant, and enqueues the close and the reminder. A closing time already
-- past today means tomorrow. Idempotent: a poll with a zone is left alone.
CREATE FUNCTION lunch_poll_zone(p_team text, p_poll bigint, p_tz text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	p lunch_polls;
	s lunch_schedules;
	v_tz text;
	v_date date;
	v_minute int;
	v_close timestamptz;
BEGIN
	SELECT * INTO p FROM lunch_polls x
	 WHERE x.team_id = p_team AND x.poll_id = p_poll AND x.state = 'open' FOR UPDATE;
	IF NOT FOUND OR p.tz IS NOT NULL THEN
		RETURN;
	END IF;
	SELECT * INTO s FROM lunch_schedules x
	 WHERE x.team_id = p_team AND x.schedule_id = p.schedule_id;
	v_tz := lunch_known_tz(coalesce(s.tz, p_tz));
	v_minute := coalesce(s.close_at, p.close_minute);
	v_date := (p.created_at AT TIME ZONE v_tz)::date;
	IF v_minute IS NOT NULL THEN
		v_close := lunch_local(v_date, v_minute, v_tz);
		IF v_close <= p.created_at THEN
			v_date := v_date + 1;
			v_close := lunch_local(v_date, v_minute, v_tz);
		END IF;
	END IF;
	UPDATE lunch_polls x SET tz = v_tz, lunch_date = v_date, close_at = v_close
	 WHERE x.team_id = p_team AND x.poll_id = p_poll;
	IF v_close IS NULL THEN
		RETURN;
	END IF;
	PERFORM lunch_job(p_team, 'lunch.close', jsonb_build_object('poll_id', p_poll), v_close,
	                  'poll:' || p_poll || ':close');
	-- A reminder whose time has passed already would nag people who got the
	-- poll a moment ago: there is none then.
	IF p.remind IS NOT NULL AND v_close - p.remind > now() THEN
		PERFORM lunch_job(p_team, 'lunch.remind', jsonb_build_object('poll_id', p_poll),
		                  v_close - p.remind, 'poll:' || p_poll || ':remind');
	END IF;
END $$;

-- As 007's, leaving out those who opted out of the channel.
CREATE OR REPLACE FUNCTION lunch_fan_out(p_team text, p_poll bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_asked int;
BEGIN
	SELECT p.state INTO v_state FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.poll_id = p_poll FOR UPDATE;
	IF v_state IS DISTINCT FROM 'open' THEN
		RETURN -1;
	END IF;
	INSERT INTO lunch_members (team_id, poll_id, user_id)
	SELECT p_team, p_poll, r.user_id FROM lunch_roster r
	 WHERE r.team_id = p_team AND r.poll_id = p_poll AND r.eligible
	   AND NOT lunch_opted_out(p_team, p_poll, r.user_id)
	ON CONFLICT DO NOTHING;
	PERFORM job_enqueue('lunch.dm', p_team, jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	                    NULL, 'poll:' || p_poll || ':dm:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = p_poll
	          ORDER BY m.user_id) m;
	UPDATE lunch_polls p SET fanned_out_at = coalesce(p.fanned_out_at, now())
	 WHERE p.team_id = p_team AND p.poll_id = p_poll;
	SELECT count(*) INTO v_asked FROM lunch_members m
	 WHERE m.team_id = p_team AND m.poll_id = p_poll;
	RETURN v_asked;
END $$;

-- Whether p_user opted out of the channel of poll p_poll.
CREATE FUNCTION lunch_opted_out(p_team text, p_poll bigint, p_user text)
RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN EXISTS (SELECT 1 FROM lunch_optouts o JOIN lunch_polls p
	                 ON p.team_id = o.team_id AND p.channel_id = o.channel_id
	                WHERE o.team_id = p_team AND p.poll_id = p_poll AND o.user_id = p_user);
END $$;

-- How many people the plan check counts: eligible and not opted out (the
-- poll's channel read once, the opt-outs an anti-join).
CREATE FUNCTION lunch_reach(p_team text, p_poll bigint) RETURNS int
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

-- /lunch optout and the Stop asking me here button. In the channel's open
-- poll the person's answer becomes No (they are not grouped) and their DM
-- is brought up to date. Returns false when they had opted out already.
CREATE FUNCTION lunch_optout(p_team text, p_channel text, p_user text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_new boolean;
	v_poll bigint;
BEGIN
	INSERT INTO lunch_optouts (team_id, channel_id, user_id) VALUES (p_team, p_channel, p_user)
	ON CONFLICT DO NOTHING;
	v_new := FOUND;
	SELECT p.poll_id INTO v_poll FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.channel_id = p_channel AND p.state = 'open' FOR SHARE;
	IF FOUND THEN
		UPDATE lunch_members m SET answer = -1, answered_at = now()
		 WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.user_id = p_user;
		IF FOUND THEN
			PERFORM lunch_job(p_team, 'lunch.dm_update',
			                  jsonb_build_object('poll_id', v_poll, 'user', p_user), now(), NULL);
		END IF;
	END IF;
	RETURN v_new;
END $$;

-- /lunch optin: false when they had not opted out.
CREATE FUNCTION lunch_optin(p_team text, p_channel text, p_user text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM lunch_optouts o
	 WHERE o.team_id = p_team AND o.channel_id = p_channel AND o.user_id = p_user;
	RETURN FOUND;
END $$;

-- /lunch cancel: the channel's open poll ends without groups; its queued
-- close and reminder are cancelled, and everyone whose poll DM went out
-- gets p_text as one DM (slack.call jobs) and their DM updated.
-- status: cancelled | none_open.
CREATE FUNCTION lunch_cancel_open(p_team text, p_channel text, p_user text, p_text text,
                                  OUT status text, OUT poll_id bigint, OUT told int)
LANGUAGE plpgsql AS $$
DECLARE
	v_poll bigint;
BEGIN
	UPDATE lunch_polls p
	   SET state = 'cancelled', closed_at = now(), cancel_reason = 'cancelled',
	       cancelled_by = p_user
	 WHERE p.team_id = p_team AND p.channel_id = p_channel AND p.state = 'open'
	RETURNING p.poll_id INTO v_poll;
	IF NOT FOUND THEN
		status := 'none_open';
		told := 0;
		RETURN;
	END IF;
	UPDATE jobs j SET state = 'cancelled', finished_at = now()
	 WHERE j.team_id = p_team AND j.state = 'queued' AND j.kind IN ('lunch.close', 'lunch.remind')
	   AND j.dedupe_key IN ('poll:' || v_poll || ':close', 'poll:' || v_poll || ':remind');
	-- Told: the notices queued now (a repeat of one already queued is not).
	SELECT count(q.id) INTO told FROM (
		SELECT job_enqueue('slack.call', p_team,
		                   jsonb_build_object('method', 'chat.postMessage',
		                                      'args', jsonb_build_object('channel', m.dm_channel,
		                                                                 'text', p_text)),
		                   NULL, 'poll:' || v_poll || ':cancelled:' || m.user_id) AS id
		  FROM lunch_members m
		 WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.dm_ts IS NOT NULL
		 ORDER BY m.user_id) q;
	PERFORM job_enqueue('lunch.dm_update', p_team,
	                    jsonb_build_object('poll_id', v_poll, 'user', m.user_id), NULL,
	                    'poll:' || v_poll || ':closed:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.dm_ts IS NOT NULL
	          ORDER BY m.user_id) m;
	status := 'cancelled';
	poll_id := v_poll;
END $$;

-- The reminder: marks the members of an open poll who have not answered
-- (and whose DM went out) reminded, once, and returns them with their DM
-- channel; the caller queues their DMs in the same transaction.
CREATE FUNCTION lunch_remind_due(p_team text, p_poll bigint)
RETURNS TABLE (user_id text, dm_channel text)
LANGUAGE sql AS $$
	UPDATE lunch_members m SET reminded_at = now()
	  FROM lunch_polls p
	 WHERE p.team_id = m.team_id AND p.poll_id = m.poll_id AND p.state = 'open'
	   AND m.team_id = p_team AND m.poll_id = p_poll AND m.answer IS NULL
	   AND m.reminded_at IS NULL AND m.dm_ts IS NOT NULL
	RETURNING m.user_id, m.dm_channel
$$;

-- /lunch settings groups: one channel's choice.
CREATE FUNCTION lunch_set_groups(p_team text, p_channel text, p_in_channel boolean, p_user text)
RETURNS void
LANGUAGE sql AS $$
	INSERT INTO lunch_channel_settings (team_id, channel_id, groups_in_channel, updated_by)
	VALUES (p_team, p_channel, p_in_channel, p_user)
	ON CONFLICT (team_id, channel_id) DO UPDATE
	   SET groups_in_channel = EXCLUDED.groups_in_channel, updated_by = EXCLUDED.updated_by,
	       updated_at = now()
$$;

-- As 007's, with the channel's own setting before the team's.
CREATE OR REPLACE FUNCTION lunch_save_groups(p_team text, p_poll bigint, p_groups jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_in_channel boolean;
	v_n int;
BEGIN
	UPDATE lunch_polls p SET state = 'grouped'
	 WHERE p.team_id = p_team AND p.poll_id = p_poll AND p.state = 'closed';
	IF NOT FOUND THEN
		RETURN -1;
	END IF;
	INSERT INTO lunch_groups (team_id, poll_id, group_no, "time", members, picker)
	SELECT p_team, p_poll, (g ->> 'no')::int, (g ->> 'time')::int,
	       ARRAY(SELECT jsonb_array_elements_text(g -> 'members')), g ->> 'picker'
	  FROM jsonb_array_elements(p_groups) g;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	SELECT coalesce((SELECT c.groups_in_channel FROM lunch_channel_settings c
	                   JOIN lunch_polls p ON p.team_id = c.team_id AND p.channel_id = c.channel_id
	                  WHERE c.team_id = p_team AND p.poll_id = p_poll),
	                (SELECT s.groups_in_channel FROM lunch_settings s WHERE s.team_id = p_team),
	                false)
	  INTO v_in_channel;
	-- Someone alone at their time always gets a DM of their own.
	PERFORM job_enqueue('lunch.notify_group', p_team,
	                    jsonb_build_object('poll_id', p_poll, 'group_no', g.group_no), NULL,
	                    'poll:' || p_poll || ':group:' || g.group_no)
	   FROM (SELECT g.group_no FROM lunch_groups g
	          WHERE g.team_id = p_team AND g.poll_id = p_poll
	            AND (NOT v_in_channel OR cardinality(g.members) = 1)
	          ORDER BY g.group_no) g;
	IF v_in_channel AND EXISTS (SELECT 1 FROM lunch_groups g
	                             WHERE g.team_id = p_team AND g.poll_id = p_poll
	                               AND cardinality(g.members) > 1) THEN
		PERFORM lunch_job(p_team, 'lunch.notify_channel', jsonb_build_object('poll_id', p_poll),
		                  now(), 'poll:' || p_poll || ':channel');
	END IF;
	-- A DM still being sent has no dm_ts yet; its job updates it itself.
	PERFORM job_enqueue('lunch.dm_update', p_team,
	                    jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	                    now() + interval '1 second', 'poll:' || p_poll || ':closed:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = p_poll AND m.dm_ts IS NOT NULL
	          ORDER BY m.user_id) m;
	RETURN v_n;
END $$;

-- /lunch stats (p_channel) and the App Home (p_channel NULL: every
-- channel): the grouped rounds closed in the last p_days days, the people
-- in their groups, the groups of two or more, the pairs those groups made
-- and how many of the pairs had not been in one group in the team's
-- rounds of the 90 days before theirs. O(pairs x groups of 90 days), both
-- bounded by the groups of 8.
CREATE FUNCTION lunch_stats(p_team text, p_channel text, p_days int,
                            OUT rounds int, OUT people int, OUT groups int, OUT pairs int,
                            OUT new_pairs int)
LANGUAGE sql STABLE AS $$
	WITH r AS (
		SELECT p.poll_id, p.closed_at FROM lunch_polls p
		 WHERE p.team_id = p_team AND p.state = 'grouped'
		   AND (p_channel IS NULL OR p.channel_id = p_channel)
		   AND p.closed_at > now() - make_interval(days => p_days)),
	g AS (
		SELECT g.members, r.closed_at FROM lunch_groups g JOIN r
		    ON g.team_id = p_team AND g.poll_id = r.poll_id),
	pr AS (
		SELECT g.closed_at, a.u AS a, b.u AS b
		  FROM g, unnest(g.members) a(u), unnest(g.members) b(u) WHERE a.u < b.u)
	SELECT (SELECT count(*) FROM r)::int,
	       (SELECT count(DISTINCT u) FROM g, unnest(g.members) u)::int,
	       (SELECT count(*) FROM g WHERE cardinality(g.members) > 1)::int,
	       (SELECT count(*) FROM pr)::int,
	       (SELECT count(*) FROM pr WHERE NOT EXISTS (
	            SELECT 1 FROM lunch_groups h JOIN lunch_polls hp
	                ON hp.team_id = h.team_id AND hp.poll_id = h.poll_id
	             WHERE h.team_id = p_team AND hp.state = 'grouped'
	               AND hp.closed_at < pr.closed_at
	               AND hp.closed_at >= pr.closed_at - interval '90 days'
	               AND h.members @> ARRAY[pr.a, pr.b]))::int
$$;

-- The local minute of the day of an instant in a zone (NULL for NULL).
CREATE FUNCTION lunch_minute_of(p_at timestamptz, p_tz text) RETURNS int
LANGUAGE sql STABLE AS $$
	SELECT (extract(hour FROM p_at AT TIME ZONE p_tz) * 60
	        + extract(minute FROM p_at AT TIME ZONE p_tz))::int
$$;

-- Each of a poll's times on its date in its zone, as unix seconds ("1,2").
CREATE FUNCTION lunch_instants(p_date date, p_times int[], p_tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	RETURN (SELECT string_agg(floor(extract(epoch FROM lunch_local(p_date, t, p_tz)))::bigint::text,
	                          ',' ORDER BY o)
	          FROM unnest(p_times) WITH ORDINALITY AS x(t, o));
END $$;

-- One job at a time updates a member's poll DM (src/lunch/dm.c): until
-- this instant another job waits, then compares again.
ALTER TABLE lunch_members ADD COLUMN dm_sync_until timestamptz;
