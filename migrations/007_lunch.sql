-- Lunch Buddies: polls, the people each poll asked and what they answered,
-- the groups formed, recurring schedules, and a team setting (team tables,
-- see README.md), with the functions that change them.
--
-- A round is a pipeline of jobs (src/lunch/); every state change below is
-- one function call, made as one statement in the caller's transaction, and
-- enqueues the next job in that same transaction:
--
--   lunch_start      poll 'open'       + 'lunch.members' (list the channel)
--   lunch_fan_out    lunch_members     + one 'lunch.dm' per member
--   lunch_answer     the answer        + 'lunch.dm_update' (show it in the DM)
--   lunch_close      poll 'closed'     + 'lunch.group'
--   lunch_save_groups poll 'grouped'   + one 'lunch.notify_group' per group (or
--                                        one 'lunch.notify_channel'), and one
--                                        'lunch.dm_update' per DM sent
--   lunch_schedule_fire (a scheduled day) lunch_start + 'lunch.close' at the
--                                        closing time + the next day's job
--
-- Jobs are deduplicated on keys built from globally unique ids (poll and
-- schedule ids come from sequences), so a key names one step of one round:
-- 'poll:ID:members', 'poll:ID:dm:USER', 'poll:ID:group', 'poll:ID:group:N',
-- 'poll:ID:closed:USER', 'poll:ID:close', 'schedule:ID:setup',
-- 'schedule:ID:DATE'.
--
-- Times of day are minutes after midnight (0..1439); an answer is such a
-- minute, -1 for No, or NULL (not answered).

CREATE SEQUENCE lunch_poll_ids;
CREATE SEQUENCE lunch_schedule_ids;

-- 1 to 6 distinct times of day, ascending (what /lunch start accepts).
CREATE FUNCTION lunch_valid_times(t int[]) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT cardinality(t) BETWEEN 1 AND 6
	   AND array_position(t, NULL) IS NULL
	   AND (SELECT bool_and(x BETWEEN 0 AND 1439) FROM unnest(t) x)
	   AND t = ARRAY(SELECT DISTINCT x FROM unnest(t) x ORDER BY x)
$$;

-- Per team. groups_in_channel: post a closed poll's groups as one message
-- in the poll's channel instead of one group DM each. No command changes it
-- (the contract names none); operators set it in SQL.
CREATE TABLE lunch_settings (
	team_id text NOT NULL,
	groups_in_channel boolean NOT NULL DEFAULT false,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_settings');

-- A recurring poll: on the days of `days` (bit 0 Monday .. bit 6 Sunday)
-- it opens at open_at and closes at close_at, local time in tz (the IANA
-- zone of the user who scheduled it, from users.info; NULL until the
-- setup job has asked Slack). One per channel.
CREATE TABLE lunch_schedules (
	team_id text NOT NULL,
	schedule_id bigint NOT NULL DEFAULT nextval('lunch_schedule_ids'),
	channel_id text NOT NULL,
	days int NOT NULL CHECK (days BETWEEN 1 AND 127),
	open_at int NOT NULL CHECK (open_at BETWEEN 0 AND 1439),
	close_at int NOT NULL CHECK (close_at BETWEEN 0 AND 1439),
	times int[] NOT NULL CHECK (lunch_valid_times(times)),
	size int NOT NULL CHECK (size BETWEEN 2 AND 8),
	tz text,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, schedule_id),
	UNIQUE (team_id, channel_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE,
	CHECK (close_at > open_at)
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_schedules');

-- A poll: open (asking), closed (grouping), grouped (done) or cancelled
-- (the channel could not be listed, or it has more people than the plan
-- allows). The columns after closed_at record the members job's progress
-- so that a crashed or rate-limited run resumes where it stopped.
CREATE TABLE lunch_polls (
	team_id text NOT NULL,
	poll_id bigint NOT NULL DEFAULT nextval('lunch_poll_ids'),
	channel_id text NOT NULL,
	times int[] NOT NULL CHECK (lunch_valid_times(times)),
	size int NOT NULL CHECK (size BETWEEN 2 AND 8),
	state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'closed', 'grouped', 'cancelled')),
	created_by text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	closed_at timestamptz,
	schedule_id bigint,               -- the schedule that opened it; no reference: unschedule keeps history
	members_cursor text,              -- conversations.members cursor of the next page
	members_listed boolean NOT NULL DEFAULT false,
	fanned_out_at timestamptz,        -- the poll DMs were enqueued
	cancel_reason text,
	announced_at timestamptz,         -- groups_in_channel: the channel message went out
	PRIMARY KEY (team_id, poll_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_polls');
CREATE UNIQUE INDEX lunch_polls_one_open ON lunch_polls (team_id, channel_id) WHERE state = 'open';
CREATE INDEX lunch_polls_rounds ON lunch_polls (team_id, closed_at DESC) WHERE state = 'grouped';
CREATE INDEX lunch_polls_channel ON lunch_polls (team_id, channel_id, closed_at DESC);

-- The channel's members as listed for one poll, and whether each may be
-- asked (NULL: users.info not asked yet; false: a bot, deactivated, gone,
-- or conch itself). A cache per poll: a resumed members job asks Slack
-- only about the rest.
CREATE TABLE lunch_roster (
	team_id text NOT NULL,
	poll_id bigint NOT NULL,
	user_id text NOT NULL,
	eligible boolean,
	PRIMARY KEY (team_id, poll_id, user_id),
	FOREIGN KEY (team_id, poll_id) REFERENCES lunch_polls (team_id, poll_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_roster');
CREATE INDEX lunch_roster_unchecked ON lunch_roster (team_id, poll_id, user_id) WHERE eligible IS NULL;

-- The people a poll asked. dm_channel and dm_ts locate their poll DM once
-- it is sent; dm_shown is the view of it Slack last confirmed
-- ('open:ANSWER' or 'closed:ANSWER', ANSWER -2 when none), so updates that
-- would change nothing are skipped.
CREATE TABLE lunch_members (
	team_id text NOT NULL,
	poll_id bigint NOT NULL,
	user_id text NOT NULL,
	dm_channel text,
	dm_ts text,
	dm_shown text,
	answer int CHECK (answer = -1 OR answer BETWEEN 0 AND 1439),
	answered_at timestamptz,
	PRIMARY KEY (team_id, poll_id, user_id),
	FOREIGN KEY (team_id, poll_id) REFERENCES lunch_polls (team_id, poll_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_members');

-- The groups of a closed poll, numbered from 1 in time order; history for
-- the next rounds' grouping and for /lunch summary. A group of one is
-- someone nobody joined at their time (they get a kind DM, not a group).
CREATE TABLE lunch_groups (
	team_id text NOT NULL,
	poll_id bigint NOT NULL,
	group_no int NOT NULL,
	"time" int NOT NULL CHECK ("time" BETWEEN 0 AND 1439),
	members text[] NOT NULL CHECK (cardinality(members) BETWEEN 1 AND 8),
	picker text NOT NULL,
	dm_channel text,                  -- the group DM, once opened
	notified_at timestamptz,
	created_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, poll_id, group_no),
	FOREIGN KEY (team_id, poll_id) REFERENCES lunch_polls (team_id, poll_id) ON DELETE CASCADE,
	CHECK (picker = ANY (members))
) PARTITION BY HASH (team_id);
SELECT conch_team_table('lunch_groups');

-- Helpers (used by the functions below, not by the application).

-- Enqueues a job in the caller's transaction; a repeated key does nothing.
CREATE FUNCTION lunch_job(p_team text, p_kind text, p_payload jsonb, p_due timestamptz,
                          p_key text) RETURNS void
LANGUAGE sql AS $$
	INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
	VALUES (p_kind, p_team, p_payload, p_due, p_key)
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
$$;

-- The instant of a local date and time of day in an IANA zone. Across a
-- daylight-saving change PostgreSQL resolves the wall-clock time with that
-- day's offset (a time skipped by a spring-forward lands an hour later).
CREATE FUNCTION lunch_local(p_date date, p_minutes int, p_tz text) RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT (p_date + make_interval(mins => p_minutes)) AT TIME ZONE p_tz
$$;

-- The first day of the schedule (days mask, opening minute, zone) whose
-- opening is after p_after. O(8): at most one week ahead is looked at.
CREATE FUNCTION lunch_next_date(p_days int, p_open int, p_tz text, p_after timestamptz)
RETURNS date
LANGUAGE sql STABLE AS $$
	SELECT d::date
	  FROM generate_series(((p_after AT TIME ZONE p_tz)::date - 1)::timestamp,
	                       ((p_after AT TIME ZONE p_tz)::date + 8)::timestamp,
	                       interval '1 day') d
	 WHERE p_days & (1 << (extract(isodow FROM d)::int - 1)) <> 0
	   AND lunch_local(d::date, p_open, p_tz) > p_after
	 ORDER BY d
	 LIMIT 1
$$;

-- p_tz when PostgreSQL knows the zone, else 'UTC'.
CREATE FUNCTION lunch_known_tz(p_tz text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
BEGIN
	IF p_tz IS NULL OR p_tz = '' THEN
		RETURN 'UTC';
	END IF;
	PERFORM now() AT TIME ZONE p_tz;
	RETURN p_tz;
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN 'UTC';
END $$;

-- Enqueues the job that runs a schedule on its next day after p_after.
-- Returns when that is.
CREATE FUNCTION lunch_schedule_next(p_team text, s lunch_schedules, p_after timestamptz)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	v_date date := lunch_next_date(s.days, s.open_at, s.tz, p_after);
	v_due timestamptz := lunch_local(v_date, s.open_at, s.tz);
BEGIN
	PERFORM lunch_job(p_team, 'lunch.schedule',
	                  jsonb_build_object('schedule_id', s.schedule_id, 'date', v_date::text),
	                  v_due, 'schedule:' || s.schedule_id || ':' || v_date);
	RETURN v_due;
END $$;

-- The application's functions.

-- /lunch start (and a scheduled day). status: started | already_open;
-- poll_id and started_by: the new poll, or the channel's open one.
CREATE FUNCTION lunch_start(p_team text, p_channel text, p_user text, p_times int[], p_size int,
                            p_schedule bigint DEFAULT NULL,
                            OUT status text, OUT poll_id bigint, OUT started_by text)
LANGUAGE plpgsql AS $$
DECLARE
	v_poll bigint;
BEGIN
	LOOP
		INSERT INTO lunch_polls AS p (team_id, channel_id, times, size, created_by, schedule_id)
		VALUES (p_team, p_channel, p_times, p_size, p_user, p_schedule)
		ON CONFLICT (team_id, channel_id) WHERE state = 'open' DO NOTHING
		RETURNING p.poll_id INTO v_poll;
		IF FOUND THEN
			PERFORM lunch_job(p_team, 'lunch.members', jsonb_build_object('poll_id', v_poll),
			                  now(), 'poll:' || v_poll || ':members');
			status := 'started';
			poll_id := v_poll;
			started_by := p_user;
			RETURN;
		END IF;
		SELECT p.poll_id, p.created_by INTO poll_id, started_by FROM lunch_polls p
		 WHERE p.team_id = p_team AND p.channel_id = p_channel AND p.state = 'open';
		IF FOUND THEN
			status := 'already_open';
			RETURN;
		END IF;
		-- It closed between the two statements: try again.
	END LOOP;
END $$;

-- The members job gave up on an open poll (reason: plan_limit, or Slack's
-- error listing the channel). False when it was no longer open.
CREATE FUNCTION lunch_cancel(p_team text, p_poll bigint, p_reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE lunch_polls p SET state = 'cancelled', closed_at = now(), cancel_reason = p_reason
	 WHERE p.team_id = p_team AND p.poll_id = p_poll AND p.state = 'open';
	RETURN FOUND;
END $$;

-- Turns the eligible roster of an open poll into its members and enqueues
-- one poll DM each. Returns how many were asked, or -1 when the poll is no
-- longer open. Idempotent: a second call adds nothing.
CREATE FUNCTION lunch_fan_out(p_team text, p_poll bigint) RETURNS int
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
	ON CONFLICT DO NOTHING;
	INSERT INTO jobs (kind, team_id, payload, dedupe_key)
	SELECT 'lunch.dm', p_team, jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	       'poll:' || p_poll || ':dm:' || m.user_id
	  FROM lunch_members m WHERE m.team_id = p_team AND m.poll_id = p_poll
	 ORDER BY m.user_id
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
	UPDATE lunch_polls p SET fanned_out_at = coalesce(p.fanned_out_at, now())
	 WHERE p.team_id = p_team AND p.poll_id = p_poll;
	SELECT count(*) INTO v_asked FROM lunch_members m
	 WHERE m.team_id = p_team AND m.poll_id = p_poll;
	RETURN v_asked;
END $$;

-- A button press: p_answer is one of the poll's times or -1 (No). The
-- poll row is share-locked while the answer is written, so lunch_close
-- waits for an answer in flight and an answer never lands after the close
-- (the grouping job always sees every accepted answer). The DM that was
-- pressed (p_channel, p_ts) is remembered if the fan-out had not recorded
-- it. Every outcome but not_member enqueues an update of the DM, which
-- shows the recorded answer or that the poll has closed.
-- status: recorded | closed | bad_answer | not_member.
CREATE FUNCTION lunch_answer(p_team text, p_poll bigint, p_user text, p_answer int,
                             p_channel text, p_ts text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_times int[];
	v_status text := 'recorded';
BEGIN
	SELECT p.times INTO v_times FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.poll_id = p_poll AND p.state = 'open' FOR SHARE;
	IF NOT FOUND THEN
		v_status := 'closed';
	ELSIF p_answer IS NULL OR (p_answer <> -1 AND NOT p_answer = ANY (v_times)) THEN
		v_status := 'bad_answer';
	END IF;
	UPDATE lunch_members m
	   SET answer = CASE WHEN v_status = 'recorded' THEN p_answer ELSE m.answer END,
	       answered_at = CASE WHEN v_status = 'recorded' THEN now() ELSE m.answered_at END,
	       dm_channel = coalesce(m.dm_channel, p_channel),
	       dm_ts = CASE WHEN m.dm_ts IS NULL THEN p_ts ELSE m.dm_ts END
	 WHERE m.team_id = p_team AND m.poll_id = p_poll AND m.user_id = p_user;
	IF NOT FOUND THEN
		RETURN 'not_member';
	END IF;
	PERFORM lunch_job(p_team, 'lunch.dm_update',
	                  jsonb_build_object('poll_id', p_poll, 'user', p_user), now(), NULL);
	RETURN v_status;
END $$;

-- /lunch close (p_channel) or a scheduled close (p_poll): the open poll
-- becomes closed and the grouping job is enqueued. status: closed |
-- none_open; yes: answers that chose a time; asked: members.
CREATE FUNCTION lunch_close(p_team text, p_channel text, p_poll bigint,
                            OUT status text, OUT poll_id bigint, OUT yes int, OUT asked int)
LANGUAGE plpgsql AS $$
DECLARE
	v_poll bigint;
BEGIN
	IF p_channel IS NULL AND p_poll IS NULL THEN
		RAISE EXCEPTION 'lunch_close: name a channel or a poll';
	END IF;
	UPDATE lunch_polls p SET state = 'closed', closed_at = now()
	 WHERE p.team_id = p_team AND p.state = 'open'
	   AND (p_channel IS NULL OR p.channel_id = p_channel)
	   AND (p_poll IS NULL OR p.poll_id = p_poll)
	RETURNING p.poll_id INTO v_poll;
	IF NOT FOUND THEN
		status := 'none_open';
		RETURN;
	END IF;
	PERFORM lunch_job(p_team, 'lunch.group', jsonb_build_object('poll_id', v_poll), now(),
	                  'poll:' || v_poll || ':group');
	-- A scheduled close still queued has nothing left to do.
	UPDATE jobs j SET state = 'cancelled', finished_at = now()
	 WHERE j.team_id = p_team AND j.kind = 'lunch.close' AND j.state = 'queued'
	   AND j.dedupe_key = 'poll:' || v_poll || ':close';
	SELECT count(*) FILTER (WHERE m.answer >= 0), count(*) INTO yes, asked FROM lunch_members m
	 WHERE m.team_id = p_team AND m.poll_id = v_poll;
	poll_id := v_poll;
	status := 'closed';
END $$;

-- The grouping job's result, all at once: p_groups is a JSON array of
-- {"no", "time", "members": [...], "picker"}. Marks the closed poll
-- grouped, stores the groups, and enqueues their messages and the update
-- of every poll DM sent (the DMs one second later, so that the groups'
-- messages go first). Returns the number of groups, or -1 when the poll
-- was not closed (grouped already: the job ran twice).
CREATE FUNCTION lunch_save_groups(p_team text, p_poll bigint, p_groups jsonb) RETURNS int
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
	SELECT coalesce((SELECT s.groups_in_channel FROM lunch_settings s WHERE s.team_id = p_team),
	                false)
	  INTO v_in_channel;
	-- Someone alone at their time always gets a DM of their own.
	INSERT INTO jobs (kind, team_id, payload, dedupe_key)
	SELECT 'lunch.notify_group', p_team,
	       jsonb_build_object('poll_id', p_poll, 'group_no', g.group_no),
	       'poll:' || p_poll || ':group:' || g.group_no
	  FROM lunch_groups g
	 WHERE g.team_id = p_team AND g.poll_id = p_poll
	   AND (NOT v_in_channel OR cardinality(g.members) = 1)
	 ORDER BY g.group_no
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
	IF v_in_channel AND EXISTS (SELECT 1 FROM lunch_groups g
	                             WHERE g.team_id = p_team AND g.poll_id = p_poll
	                               AND cardinality(g.members) > 1) THEN
		PERFORM lunch_job(p_team, 'lunch.notify_channel', jsonb_build_object('poll_id', p_poll),
		                  now(), 'poll:' || p_poll || ':channel');
	END IF;
	-- A DM still being sent has no dm_ts yet; its job updates it itself.
	INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
	SELECT 'lunch.dm_update', p_team, jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	       now() + interval '1 second', 'poll:' || p_poll || ':closed:' || m.user_id
	  FROM lunch_members m
	 WHERE m.team_id = p_team AND m.poll_id = p_poll AND m.dm_ts IS NOT NULL
	 ORDER BY m.user_id
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
	RETURN v_n;
END $$;

-- The groups of the team's last LUNCH_HISTORY_ROUNDS (8) grouped polls
-- before p_poll, newest round 0, for the grouping to avoid repeats. Groups
-- of one pair nobody and are left out.
CREATE FUNCTION lunch_history(p_team text, p_poll bigint)
RETURNS TABLE (round int, members text[])
LANGUAGE sql STABLE AS $$
	WITH recent AS (
		SELECT p.poll_id, (row_number() OVER (ORDER BY p.closed_at DESC, p.poll_id DESC) - 1)::int AS round
		  FROM lunch_polls p
		 WHERE p.team_id = p_team AND p.state = 'grouped' AND p.poll_id <> p_poll
		 ORDER BY p.closed_at DESC, p.poll_id DESC
		 LIMIT 8)
	SELECT r.round, g.members
	  FROM recent r
	  JOIN lunch_groups g ON g.team_id = p_team AND g.poll_id = r.poll_id
	 WHERE cardinality(g.members) > 1
	 ORDER BY r.round, g.group_no
$$;

-- /lunch schedule: the channel's schedule (a new one replaces the old,
-- whose queued jobs are cancelled) and the job that asks Slack for the
-- user's time zone and arms the first day.
CREATE FUNCTION lunch_schedule_set(p_team text, p_channel text, p_user text, p_days int,
                                   p_open int, p_close int, p_times int[], p_size int,
                                   OUT schedule_id bigint, OUT replaced boolean)
LANGUAGE plpgsql AS $$
DECLARE
	v_old bigint;
	v_new bigint;
BEGIN
	DELETE FROM lunch_schedules s WHERE s.team_id = p_team AND s.channel_id = p_channel
	RETURNING s.schedule_id INTO v_old;
	replaced := FOUND;
	IF replaced THEN
		PERFORM lunch_unschedule_jobs(p_team, v_old);
	END IF;
	INSERT INTO lunch_schedules AS s (team_id, channel_id, days, open_at, close_at, times, size,
	                                  created_by)
	VALUES (p_team, p_channel, p_days, p_open, p_close, p_times, p_size, p_user)
	RETURNING s.schedule_id INTO v_new;
	PERFORM lunch_job(p_team, 'lunch.schedule', jsonb_build_object('schedule_id', v_new),
	                  now(), 'schedule:' || v_new || ':setup');
	schedule_id := v_new;
END $$;

-- Cancels a schedule's queued jobs (a running one finds its schedule gone
-- and does nothing).
CREATE FUNCTION lunch_unschedule_jobs(p_team text, p_schedule bigint) RETURNS void
LANGUAGE sql AS $$
	UPDATE jobs j SET state = 'cancelled', finished_at = now()
	 WHERE j.team_id = p_team AND j.kind = 'lunch.schedule' AND j.state = 'queued'
	   AND j.dedupe_key LIKE 'schedule:' || p_schedule || ':%'
$$;

-- /lunch unschedule: false when the channel had no schedule. A poll it
-- already opened still closes at its time.
CREATE FUNCTION lunch_unschedule(p_team text, p_channel text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	DELETE FROM lunch_schedules s WHERE s.team_id = p_team AND s.channel_id = p_channel
	RETURNING s.schedule_id INTO v_id;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	PERFORM lunch_unschedule_jobs(p_team, v_id);
	RETURN true;
END $$;

-- The setup job: records the zone (p_tz from users.info, 'UTC' when Slack
-- gave none PostgreSQL knows) unless one is set, and enqueues the first
-- day. Returns that day's opening, NULL when the schedule is gone.
CREATE FUNCTION lunch_schedule_arm(p_team text, p_schedule bigint, p_tz text)
RETURNS timestamptz
LANGUAGE plpgsql AS $$
DECLARE
	s lunch_schedules;
BEGIN
	UPDATE lunch_schedules x SET tz = coalesce(x.tz, lunch_known_tz(p_tz))
	 WHERE x.team_id = p_team AND x.schedule_id = p_schedule
	RETURNING x.* INTO s;
	IF NOT FOUND THEN
		RETURN NULL;
	END IF;
	RETURN lunch_schedule_next(p_team, s, now());
END $$;

-- A scheduled day (p_date, local) has come: opens the channel's poll with
-- a close job at the closing time, unless a poll is open there already or
-- the day's closing time has passed (the server was down all along), and
-- always enqueues the next day. Daylight saving needs nothing special:
-- each day's instants are computed from that day's local date.
-- status: started | already_open | late | gone (unscheduled or replaced).
CREATE FUNCTION lunch_schedule_fire(p_team text, p_schedule bigint, p_date date,
                                    OUT status text, OUT poll_id bigint,
                                    OUT next_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
	s lunch_schedules;
	v_close timestamptz;
	v_status text;
	v_poll bigint;
BEGIN
	SELECT * INTO s FROM lunch_schedules x
	 WHERE x.team_id = p_team AND x.schedule_id = p_schedule AND x.tz IS NOT NULL FOR UPDATE;
	IF NOT FOUND THEN
		status := 'gone';
		RETURN;
	END IF;
	next_at := lunch_schedule_next(p_team, s,
	                               greatest(now(), lunch_local(p_date, s.open_at, s.tz)));
	v_close := lunch_local(p_date, s.close_at, s.tz);
	IF v_close <= now() THEN
		status := 'late';
		RETURN;
	END IF;
	SELECT x.status, x.poll_id INTO v_status, v_poll
	  FROM lunch_start(p_team, s.channel_id, s.created_by, s.times, s.size, s.schedule_id) x;
	IF v_status = 'started' THEN
		PERFORM lunch_job(p_team, 'lunch.close', jsonb_build_object('poll_id', v_poll),
		                  v_close, 'poll:' || v_poll || ':close');
	END IF;
	status := v_status;
	poll_id := v_poll;
END $$;
