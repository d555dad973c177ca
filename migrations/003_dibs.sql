-- Dibs: things, their current holds and queues, API tokens and an event log
-- (team tables, see README.md), and the functions that change them.
--
-- Every state change is one function call, made as one statement inside the
-- command's transaction. Each function first locks the thing's row in
-- `things`, so commands on one thing run one after the other and each sees
-- what the previous one committed; commands on different things never wait
-- for each other. The team is always the first argument and every query
-- names it; RLS (conch.team_id) is the safety net.
--
-- Holds and timers. A hold has a hold_id, fresh from a sequence for every
-- new hold and again whenever its release time moves (extend). A timed hold
-- has a 'dibs.release' job due at release_at and, when more than five
-- minutes remain, a 'dibs.remind' job due five minutes before; both carry
-- the hold_id and are deduplicated on it ('release:ID', 'remind:ID').
-- dibs_release_due() only ends the hold if it still has that hold_id, so a
-- job outlived by an off, kick or extend, or run twice, does nothing. The
-- functions also cancel such jobs while they are still queued, to keep the
-- queue clean; correctness does not depend on it.
--
-- Messages. Whoever needs telling is told by a 'dibs.notify' job written in
-- the same transaction, payload {"event", "thing", "user", ...}:
--   your_turn      user now holds thing (hold_id, release_at: unix or null)
--   kicked         user's hold was ended by "by" (channel, hold_id)
--   kick_announce  post to channel: "by" kicked user off thing
--   expired        user's timed hold ended by itself (hold_id)
-- deduplicated as 'notify:EVENT:HOLD_ID'.
--
-- Queue positions are taken from things.next_position, so they only grow:
-- distinct, in order of arrival, never reused. Functions return a user's
-- place in line (1 = next) rather than the stored number.

CREATE SEQUENCE dibs_hold_ids;
CREATE SEQUENCE dibs_event_ids;

CREATE TABLE things (
	team_id text NOT NULL,
	name text NOT NULL CHECK (name ~ '^[a-z0-9._/-]{1,64}$'),
	display_name text NOT NULL,
	channel_id text,                  -- where it was first used
	created_by text,
	created_at timestamptz NOT NULL DEFAULT now(),
	next_position bigint NOT NULL DEFAULT 1,
	PRIMARY KEY (team_id, name),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE,
	CHECK (lower(display_name) = name)
) PARTITION BY HASH (team_id);
SELECT conch_team_table('things');

-- The current holder of a thing; no row: the thing is free.
CREATE TABLE holds (
	team_id text NOT NULL,
	thing text NOT NULL,
	user_id text NOT NULL,
	hold_id bigint NOT NULL DEFAULT nextval('dibs_hold_ids'),
	since timestamptz NOT NULL DEFAULT now(),
	release_at timestamptz,           -- NULL: until released
	duration_seconds int CHECK (duration_seconds BETWEEN 1 AND 2592000), -- as asked for
	reason text CHECK (char_length(reason) BETWEEN 1 AND 300),
	PRIMARY KEY (team_id, thing),
	UNIQUE (team_id, hold_id),
	FOREIGN KEY (team_id, thing) REFERENCES things (team_id, name) ON DELETE CASCADE,
	CHECK ((release_at IS NULL) = (duration_seconds IS NULL))
) PARTITION BY HASH (team_id);
SELECT conch_team_table('holds');
CREATE INDEX holds_user ON holds (team_id, user_id);

CREATE TABLE queue (
	team_id text NOT NULL,
	thing text NOT NULL,
	user_id text NOT NULL,
	position bigint NOT NULL,
	requested_for_seconds int CHECK (requested_for_seconds BETWEEN 1 AND 2592000),
	reason text CHECK (char_length(reason) BETWEEN 1 AND 300),
	queued_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id, thing, user_id),
	UNIQUE (team_id, thing, position),
	FOREIGN KEY (team_id, thing) REFERENCES things (team_id, name) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('queue');

-- API tokens, stored as the SHA-256 (hex) of the token. A request names no
-- team before its token is found, so that lookup runs in a system
-- transaction by token_hash alone.
CREATE TABLE api_tokens (
	team_id text NOT NULL,
	token_hash text NOT NULL CHECK (token_hash ~ '^[0-9a-f]{64}$'),
	user_id text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	last_used_at timestamptz,
	PRIMARY KEY (team_id, token_hash),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('api_tokens');
CREATE INDEX api_tokens_hash ON api_tokens (token_hash);

-- What happened, for stats. The functions below log every state change:
-- create, hold, queue, release, leave, kick (user_id kicked other_user),
-- expire, promote, extend, remove. Ids follow commit order per thing
-- (written under the thing's lock), so a thing's history replays in id
-- order. Read-only commands may be logged by the application.
CREATE TABLE dibs_events (
	team_id text NOT NULL,
	id bigint NOT NULL DEFAULT nextval('dibs_event_ids'),
	at timestamptz NOT NULL DEFAULT now(),
	thing text,
	user_id text,
	action text NOT NULL,
	other_user text,
	PRIMARY KEY (team_id, id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('dibs_events');
CREATE INDEX dibs_events_at ON dibs_events (team_id, at);

-- Helpers (used by the functions below, not by the application). They are
-- plpgsql rather than SQL functions because PostgreSQL caches plpgsql plans
-- per session, while a non-inlined SQL function is planned on every call.

CREATE FUNCTION dibs_log(p_team text, p_thing text, p_user text, p_action text,
                         p_other text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO dibs_events (team_id, thing, user_id, action, other_user)
	VALUES (p_team, p_thing, p_user, p_action, p_other);
END $$;

-- Enqueues a job in the caller's transaction; a repeated key does nothing.
CREATE FUNCTION dibs_job(p_team text, p_kind text, p_payload jsonb, p_due timestamptz,
                         p_key text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
	VALUES (p_kind, p_team, p_payload, p_due, p_key)
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING;
END $$;

CREATE FUNCTION dibs_epoch(t timestamptz) RETURNS bigint
LANGUAGE sql STABLE AS $$ SELECT floor(extract(epoch FROM t))::bigint $$;

-- The release job of a timed hold, and its reminder when more than five
-- minutes remain.
CREATE FUNCTION dibs_schedule(p_team text, p_thing text, p_user text, p_hold bigint,
                              p_release timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	IF p_release IS NULL THEN
		RETURN;
	END IF;
	PERFORM dibs_job(p_team, 'dibs.release',
	                 jsonb_build_object('thing', p_thing, 'hold_id', p_hold),
	                 p_release, 'release:' || p_hold);
	IF p_release - now() > interval '5 minutes' THEN
		PERFORM dibs_job(p_team, 'dibs.remind',
		                 jsonb_build_object('thing', p_thing, 'hold_id', p_hold, 'user', p_user,
		                                    'release_at', dibs_epoch(p_release)),
		                 p_release - interval '5 minutes', 'remind:' || p_hold);
	END IF;
END $$;

-- Cancels the still-queued timer jobs of a hold that ended or moved (a
-- running one finds the hold_id gone and does nothing).
CREATE FUNCTION dibs_unschedule(p_team text, p_hold bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	UPDATE jobs SET state = 'cancelled', finished_at = now()
	 WHERE team_id = p_team AND state = 'queued'
	   AND ((kind = 'dibs.release' AND dedupe_key = 'release:' || p_hold)
	     OR (kind = 'dibs.remind' AND dedupe_key = 'remind:' || p_hold));
END $$;

CREATE FUNCTION dibs_notify(p_team text, p_event text, p_thing text, p_user text, p_hold bigint,
                            p_extra jsonb DEFAULT '{}') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM dibs_job(p_team, 'dibs.notify',
	                jsonb_build_object('event', p_event, 'thing', p_thing, 'user', p_user,
	                                   'hold_id', p_hold) || p_extra,
	                now(), 'notify:' || p_event || ':' || p_hold);
END $$;

-- Locks the thing's row until the end of the transaction; false when the
-- thing does not exist (or was removed while we waited).
CREATE FUNCTION dibs_lock_thing(p_team text, p_name text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM things t WHERE t.team_id = p_team AND t.name = p_name FOR UPDATE;
	RETURN FOUND;
END $$;

-- Gives a free, locked thing to the head of its queue: a new hold whose
-- timer, if one was asked for, starts now, and a your_turn message.
CREATE FUNCTION dibs_promote(p_team text, p_name text, OUT next_user text,
                             OUT next_hold_id bigint, OUT next_release_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	head queue;
BEGIN
	DELETE FROM queue q
	 WHERE q.team_id = p_team AND q.thing = p_name
	   AND q.position = (SELECT min(m.position) FROM queue m
	                      WHERE m.team_id = p_team AND m.thing = p_name)
	RETURNING q.* INTO head;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	INSERT INTO holds (team_id, thing, user_id, release_at, duration_seconds, reason)
	VALUES (p_team, p_name, head.user_id,
	        now() + make_interval(secs => head.requested_for_seconds),
	        head.requested_for_seconds, head.reason)
	RETURNING user_id, hold_id, release_at INTO next_user, next_hold_id, next_release_at;
	PERFORM dibs_schedule(p_team, p_name, next_user, next_hold_id, next_release_at);
	PERFORM dibs_notify(p_team, 'your_turn', p_name, next_user, next_hold_id,
	                    jsonb_build_object('release_at', dibs_epoch(next_release_at)));
	PERFORM dibs_log(p_team, p_name, next_user, 'promote');
END $$;

-- Creates the thing unless the team is at its limit; returns false then.
-- The limit check runs under a per-team lock so that concurrent creations
-- cannot overshoot it.
CREATE FUNCTION dibs_create_thing(p_team text, p_thing text, p_user text, p_channel text,
                                  p_max_things int) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := lower(p_thing);
BEGIN
	IF p_max_things IS NOT NULL THEN
		PERFORM pg_advisory_xact_lock(hashtextextended('conch.dibs.things:' || p_team, 0));
		IF EXISTS (SELECT 1 FROM things t WHERE t.team_id = p_team AND t.name = v_name) THEN
			RETURN true;
		END IF;
		IF (SELECT count(*) FROM things t WHERE t.team_id = p_team) >= p_max_things THEN
			RETURN false;
		END IF;
	END IF;
	INSERT INTO things (team_id, name, display_name, channel_id, created_by)
	VALUES (p_team, v_name, p_thing, p_channel, p_user)
	ON CONFLICT (team_id, name) DO NOTHING;
	IF FOUND THEN
		PERFORM dibs_log(p_team, v_name, p_user, 'create');
	END IF;
	RETURN true;
END $$;

-- The application's functions.

-- /dibs on. p_thing may be in any case (its first spelling becomes the
-- display name); p_seconds and p_reason may be NULL; p_max_things NULL
-- means no limit. status: holding | queued | already_holding |
-- already_queued | limit. position: the caller's place in line when
-- queued. hold_id, release_at: of the caller's hold when holding. holder:
-- who holds the thing (NULL for limit).
CREATE FUNCTION dibs_on(p_team text, p_thing text, p_user text, p_channel text, p_seconds int,
                        p_reason text, p_max_things int,
                        OUT status text, OUT "position" int, OUT hold_id bigint,
                        OUT release_at timestamptz, OUT holder text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_name text := lower(p_thing);
	h holds;
	v_pos bigint;
BEGIN
	WHILE NOT dibs_lock_thing(p_team, v_name) LOOP
		IF NOT dibs_create_thing(p_team, p_thing, p_user, p_channel, p_max_things) THEN
			status := 'limit';
			RETURN;
		END IF;
	END LOOP;
	SELECT * INTO h FROM holds x WHERE x.team_id = p_team AND x.thing = v_name;
	IF NOT FOUND THEN
		INSERT INTO holds (team_id, thing, user_id, release_at, duration_seconds, reason)
		VALUES (p_team, v_name, p_user, now() + make_interval(secs => p_seconds), p_seconds,
		        p_reason)
		RETURNING hold_id, release_at INTO hold_id, release_at;
		PERFORM dibs_schedule(p_team, v_name, p_user, hold_id, release_at);
		PERFORM dibs_log(p_team, v_name, p_user, 'hold');
		status := 'holding';
		holder := p_user;
		RETURN;
	END IF;
	holder := h.user_id;
	IF h.user_id = p_user THEN
		status := 'already_holding';
		hold_id := h.hold_id;
		release_at := h.release_at;
		RETURN;
	END IF;
	SELECT q.position INTO v_pos FROM queue q
	 WHERE q.team_id = p_team AND q.thing = v_name AND q.user_id = p_user;
	IF FOUND THEN
		status := 'already_queued';
	ELSE
		UPDATE things t SET next_position = t.next_position + 1
		 WHERE t.team_id = p_team AND t.name = v_name
		RETURNING t.next_position - 1 INTO v_pos;
		INSERT INTO queue (team_id, thing, user_id, position, requested_for_seconds, reason)
		VALUES (p_team, v_name, p_user, v_pos, p_seconds, p_reason);
		PERFORM dibs_log(p_team, v_name, p_user, 'queue');
		status := 'queued';
	END IF;
	SELECT count(*) INTO "position" FROM queue q
	 WHERE q.team_id = p_team AND q.thing = v_name AND q.position <= v_pos;
END $$;

-- /dibs off. status: released (the caller held it; next_* describe who
-- holds it now, NULL when nobody) | left_queue | not_holding |
-- no_such_thing.
CREATE FUNCTION dibs_off(p_team text, p_thing text, p_user text,
                         OUT status text, OUT next_user text, OUT next_hold_id bigint,
                         OUT next_release_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_name text := lower(p_thing);
	v_hold bigint;
BEGIN
	IF NOT dibs_lock_thing(p_team, v_name) THEN
		status := 'no_such_thing';
		RETURN;
	END IF;
	DELETE FROM holds h WHERE h.team_id = p_team AND h.thing = v_name AND h.user_id = p_user
	RETURNING h.hold_id INTO v_hold;
	IF FOUND THEN
		PERFORM dibs_unschedule(p_team, v_hold);
		PERFORM dibs_log(p_team, v_name, p_user, 'release');
		SELECT * INTO next_user, next_hold_id, next_release_at FROM dibs_promote(p_team, v_name);
		status := 'released';
		RETURN;
	END IF;
	DELETE FROM queue q WHERE q.team_id = p_team AND q.thing = v_name AND q.user_id = p_user;
	IF FOUND THEN
		PERFORM dibs_log(p_team, v_name, p_user, 'leave');
		status := 'left_queue';
	ELSE
		status := 'not_holding';
	END IF;
END $$;

-- /dibs kick, by anyone. status: kicked | not_held | no_such_thing.
-- Messages the kicked user (unless they kicked themselves), announces it in
-- p_channel (when not NULL) and hands the thing to the next in line.
CREATE FUNCTION dibs_kick(p_team text, p_thing text, p_by text, p_channel text,
                          OUT status text, OUT kicked_user text, OUT next_user text,
                          OUT next_hold_id bigint, OUT next_release_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_name text := lower(p_thing);
	v_hold bigint;
	v_extra jsonb;
BEGIN
	IF NOT dibs_lock_thing(p_team, v_name) THEN
		status := 'no_such_thing';
		RETURN;
	END IF;
	DELETE FROM holds h WHERE h.team_id = p_team AND h.thing = v_name
	RETURNING h.user_id, h.hold_id INTO kicked_user, v_hold;
	IF NOT FOUND THEN
		status := 'not_held';
		RETURN;
	END IF;
	PERFORM dibs_unschedule(p_team, v_hold);
	PERFORM dibs_log(p_team, v_name, p_by, 'kick', kicked_user);
	v_extra := jsonb_build_object('by', p_by, 'channel', p_channel);
	IF kicked_user IS DISTINCT FROM p_by THEN
		PERFORM dibs_notify(p_team, 'kicked', v_name, kicked_user, v_hold, v_extra);
	END IF;
	IF p_channel IS NOT NULL THEN
		PERFORM dibs_notify(p_team, 'kick_announce', v_name, kicked_user, v_hold, v_extra);
	END IF;
	SELECT * INTO next_user, next_hold_id, next_release_at FROM dibs_promote(p_team, v_name);
	status := 'kicked';
END $$;

-- The 'dibs.release' job. Ends the hold only while it is still the one the
-- job was made for and is due. status: released (user_id: whose hold ended;
-- next_*: the new holder) | stale (that hold is gone: nothing to do) |
-- not_due (release_at: when it is; run again then).
CREATE FUNCTION dibs_release_due(p_team text, p_thing text, p_hold bigint,
                                 OUT status text, OUT user_id text, OUT release_at timestamptz,
                                 OUT next_user text, OUT next_hold_id bigint,
                                 OUT next_release_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_name text := lower(p_thing);
	h holds;
BEGIN
	status := 'stale';
	IF NOT dibs_lock_thing(p_team, v_name) THEN
		RETURN;
	END IF;
	SELECT * INTO h FROM holds x
	 WHERE x.team_id = p_team AND x.thing = v_name AND x.hold_id = p_hold
	   AND x.release_at IS NOT NULL;
	IF NOT FOUND THEN
		RETURN;
	END IF;
	user_id := h.user_id;
	release_at := h.release_at;
	IF h.release_at > now() THEN
		status := 'not_due';
		RETURN;
	END IF;
	DELETE FROM holds x WHERE x.team_id = p_team AND x.thing = v_name;
	PERFORM dibs_unschedule(p_team, p_hold);
	PERFORM dibs_log(p_team, v_name, h.user_id, 'expire');
	PERFORM dibs_notify(p_team, 'expired', v_name, h.user_id, p_hold);
	SELECT * INTO next_user, next_hold_id, next_release_at FROM dibs_promote(p_team, v_name);
	status := 'released';
END $$;

-- The 'dibs.remind' job: one row (the holder and release time) while the
-- hold it was made for still stands; no row means do nothing.
CREATE FUNCTION dibs_remind_due(p_team text, p_thing text, p_hold bigint)
RETURNS TABLE (user_id text, release_at timestamptz)
LANGUAGE sql STABLE AS $$
	SELECT h.user_id, h.release_at FROM holds h
	 WHERE h.team_id = p_team AND h.thing = lower(p_thing) AND h.hold_id = p_hold
	   AND h.release_at > now()
$$;

-- /dibs extend: the holder moves a timed hold's release p_seconds later
-- (counted from now if it is already overdue). The hold gets a new hold_id
-- and new timer jobs, which turns the old ones into no-ops. An untimed hold
-- already lasts until released, so extending it is refused (not_timed)
-- rather than shortened. The new release time is at most 30 days away
-- (too_long). status: extended | not_holding | not_timed | too_long |
-- no_such_thing; hold_id, release_at: the caller's hold as it now stands.
CREATE FUNCTION dibs_extend(p_team text, p_thing text, p_user text, p_seconds int,
                            OUT status text, OUT hold_id bigint, OUT release_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
	v_name text := lower(p_thing);
	h holds;
	v_new timestamptz;
BEGIN
	IF p_seconds IS NULL OR p_seconds < 1 THEN
		RAISE EXCEPTION 'dibs_extend: seconds must be positive, got %', p_seconds;
	END IF;
	IF NOT dibs_lock_thing(p_team, v_name) THEN
		status := 'no_such_thing';
		RETURN;
	END IF;
	SELECT * INTO h FROM holds x
	 WHERE x.team_id = p_team AND x.thing = v_name AND x.user_id = p_user;
	IF NOT FOUND THEN
		status := 'not_holding';
		RETURN;
	END IF;
	hold_id := h.hold_id;
	release_at := h.release_at;
	v_new := greatest(h.release_at, now()) + make_interval(secs => p_seconds);
	IF h.release_at IS NULL THEN
		status := 'not_timed';
	ELSIF v_new > now() + interval '30 days' THEN
		status := 'too_long';
	ELSE
		PERFORM dibs_unschedule(p_team, h.hold_id);
		UPDATE holds x SET hold_id = nextval('dibs_hold_ids'), release_at = v_new
		 WHERE x.team_id = p_team AND x.thing = v_name
		RETURNING x.hold_id, x.release_at INTO hold_id, release_at;
		PERFORM dibs_schedule(p_team, v_name, p_user, hold_id, release_at);
		PERFORM dibs_log(p_team, v_name, p_user, 'extend');
		status := 'extended';
	END IF;
END $$;

-- /dibs remove: deletes a thing nobody holds. status: removed | held |
-- no_such_thing.
CREATE FUNCTION dibs_remove(p_team text, p_thing text, p_user text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	v_name text := lower(p_thing);
BEGIN
	IF NOT dibs_lock_thing(p_team, v_name) THEN
		RETURN 'no_such_thing';
	END IF;
	IF EXISTS (SELECT 1 FROM holds h WHERE h.team_id = p_team AND h.thing = v_name) THEN
		RETURN 'held';
	END IF;
	DELETE FROM things t WHERE t.team_id = p_team AND t.name = v_name;
	PERFORM dibs_log(p_team, v_name, p_user, 'remove');
	RETURN 'removed';
END $$;

-- /dibs list, q and the API: every thing of the team (or only p_thing),
-- by name, with its holder and its queue in order as a JSON array of
-- {"user", "for_seconds", "reason", "queued_at" (unix)}.
CREATE FUNCTION dibs_things(p_team text, p_thing text DEFAULT NULL)
RETURNS TABLE (name text, display_name text, holder text, since timestamptz,
               release_at timestamptz, reason text, hold_id bigint, queue jsonb)
LANGUAGE sql STABLE AS $$
	SELECT t.name, t.display_name, h.user_id, h.since, h.release_at, h.reason, h.hold_id,
	       coalesce((SELECT jsonb_agg(jsonb_build_object('user', q.user_id,
	                                                     'for_seconds', q.requested_for_seconds,
	                                                     'reason', q.reason,
	                                                     'queued_at', dibs_epoch(q.queued_at))
	                                  ORDER BY q.position)
	                   FROM queue q WHERE q.team_id = p_team AND q.thing = t.name), '[]')
	  FROM things t
	  LEFT JOIN holds h ON h.team_id = t.team_id AND h.thing = t.name
	 WHERE t.team_id = p_team AND (p_thing IS NULL OR t.name = lower(p_thing))
	 ORDER BY t.name
$$;
