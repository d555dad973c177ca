-- Dibs hold history: who held a thing, from when to when, and how the hold
-- ended. Kept 90 days after a hold ended on every plan (the daily
-- 'dibs.history_cleanup' job deletes older rows).
--
-- A row is written when a hold ends, by triggers, so that no function of
-- 003 (or a later one) has to remember it:
--   - a DELETE of a holds row writes the row with ending 'released'
--     (holds rows are only deleted when a hold ends);
--   - the dibs_events row the ending function logs right after the delete,
--     in the same transaction under the thing's lock, names the real
--     ending: 'kick' -> kicked (ended_by: who kicked), 'expire' -> expired,
--     'auto_release' -> auto_released; a 'promote' right after a 'release'
--     turns released into handed_over (someone was waiting and got it).
-- A function that ends holds some other way logs one of these actions
-- (dibs_log(team, thing, holder, 'auto_release') for an unanswered
-- check-in) after deleting the hold.
--
-- Deletions cascaded from a removed team or thing (the thing is gone by
-- then; a held thing is never removed otherwise) are not history and write
-- nothing.

CREATE TABLE dibs_hold_history (
	team_id text NOT NULL,
	id bigint NOT NULL DEFAULT nextval('dibs_event_ids'),
	thing text NOT NULL,
	user_id text NOT NULL,
	since timestamptz NOT NULL,
	ended_at timestamptz NOT NULL DEFAULT now(),
	ending text NOT NULL DEFAULT 'released'
		CHECK (ending IN ('released', 'handed_over', 'kicked', 'expired', 'auto_released')),
	ended_by text,                    -- kicked: who kicked
	reason text,
	PRIMARY KEY (team_id, id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('dibs_hold_history');
CREATE INDEX dibs_hold_history_thing ON dibs_hold_history (team_id, thing, ended_at);
CREATE INDEX dibs_hold_history_ended ON dibs_hold_history (ended_at);

CREATE FUNCTION dibs_history_hold_ended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM things t WHERE t.team_id = OLD.team_id AND t.name = OLD.thing)
	THEN
		RETURN NULL;
	END IF;
	INSERT INTO dibs_hold_history (team_id, thing, user_id, since, reason)
	VALUES (OLD.team_id, OLD.thing, OLD.user_id, OLD.since, OLD.reason);
	RETURN NULL;
END $$;

CREATE TRIGGER holds_history AFTER DELETE ON holds
	FOR EACH ROW EXECUTE FUNCTION dibs_history_hold_ended();

-- The ending of the row the same transaction just wrote for this thing.
CREATE FUNCTION dibs_history_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_from text := 'released';
	v_to text;
	v_by text;
BEGIN
	CASE NEW.action
	WHEN 'kick' THEN v_to := 'kicked'; v_by := NEW.user_id;
	WHEN 'expire' THEN v_to := 'expired';
	WHEN 'auto_release' THEN v_to := 'auto_released';
	WHEN 'promote' THEN v_to := 'handed_over';
	ELSE RETURN NULL;
	END CASE;
	UPDATE dibs_hold_history h SET ending = v_to, ended_by = v_by
	 WHERE h.team_id = NEW.team_id AND h.thing = NEW.thing AND h.ending = v_from
	   AND h.ended_at = now()
	   AND h.id = (SELECT max(m.id) FROM dibs_hold_history m
	                WHERE m.team_id = NEW.team_id AND m.thing = NEW.thing);
	RETURN NULL;
END $$;

CREATE TRIGGER dibs_events_history AFTER INSERT ON dibs_events
	FOR EACH ROW EXECUTE FUNCTION dibs_history_event();

-- /dibs history and the API: the holds of p_thing that ended in the last
-- p_days days, and the current one (ended_at and ending NULL), newest
-- first.
CREATE FUNCTION dibs_history(p_team text, p_thing text, p_days int)
RETURNS TABLE (user_id text, since timestamptz, ended_at timestamptz, ending text,
               ended_by text, reason text)
LANGUAGE sql STABLE AS $$
	SELECT x.user_id, x.since, x.ended_at, x.ending, x.ended_by, x.reason FROM (
		SELECT h.user_id, h.since, NULL::timestamptz AS ended_at, NULL::text AS ending,
		       NULL::text AS ended_by, h.reason, 0 AS sort, NULL::bigint AS id
		  FROM holds h WHERE h.team_id = p_team AND h.thing = lower(p_thing)
		UNION ALL
		SELECT h.user_id, h.since, h.ended_at, h.ending, h.ended_by, h.reason, 1, h.id
		  FROM dibs_hold_history h
		 WHERE h.team_id = p_team AND h.thing = lower(p_thing)
		   AND h.ended_at > now() - make_interval(days => p_days)
	) x
	ORDER BY x.sort, x.ended_at DESC, x.id DESC
$$;

-- A hold starts (a take, or the next in line promoted): tell the instances
-- that keep API requests waiting for it (POST .../dibs?wait=), on commit.
-- Payload: "TEAM THING USER" (none of them contains a space).
CREATE FUNCTION dibs_turn_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_notify('conch_dibs_turn', NEW.team_id || ' ' || NEW.thing || ' ' || NEW.user_id);
	RETURN NULL;
END $$;

CREATE TRIGGER holds_turn_notify AFTER INSERT ON holds
	FOR EACH ROW EXECUTE FUNCTION dibs_turn_notify();
