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

-- The daily purge: deletes up to p_batch rows of holds that ended more
-- than 90 days ago, across teams, and returns how many. A definer
-- function, so that it works from a transaction scoped to no team.
CREATE FUNCTION dibs_history_purge(p_batch int) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	WITH gone AS (
		DELETE FROM dibs_hold_history WHERE (team_id, id) IN (
			SELECT team_id, id FROM dibs_hold_history
			 WHERE ended_at < now() - interval '90 days' LIMIT p_batch)
		RETURNING 1)
	SELECT count(*) FROM gone
$$;

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

-- Webhook subscriptions of the API (POST /api/v1/subscriptions). A
-- subscription belongs to the user whose token made it; its secret (for
-- the Conch-Signature HMAC) is sealed by the vault (team, 'webhook'). Every
-- dibs event of the team that matches its events (and its things, when it
-- names any) becomes a delivery row and an 'api.webhook' job, in the
-- transaction of the change. failures counts failed attempts in a row; at
-- 20 the subscription is paused (paused_at) and nothing more is sent.
CREATE SEQUENCE api_subscription_ids;

CREATE TABLE api_subscriptions (
	team_id text NOT NULL,
	id bigint NOT NULL DEFAULT nextval('api_subscription_ids'),
	user_id text NOT NULL,
	url text NOT NULL CHECK (char_length(url) BETWEEN 9 AND 2000),
	events text[] NOT NULL CHECK (cardinality(events) > 0),
	things text[] NOT NULL DEFAULT '{}',   -- empty: every thing
	secret text NOT NULL,                  -- sealed
	created_at timestamptz NOT NULL DEFAULT now(),
	failures int NOT NULL DEFAULT 0,
	paused_at timestamptz,
	PRIMARY KEY (team_id, id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('api_subscriptions');
CREATE INDEX api_subscriptions_user ON api_subscriptions (team_id, user_id);

-- One event sent (or being sent) to one subscription; the last 20 of each
-- are kept. state: pending | delivered | failed (gave up) | refused (the
-- address was not allowed) | paused (the subscription was paused first).
CREATE TABLE api_deliveries (
	team_id text NOT NULL,
	id bigint NOT NULL DEFAULT nextval('api_subscription_ids'),
	subscription_id bigint NOT NULL,
	event text NOT NULL,
	body jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now(),
	state text NOT NULL DEFAULT 'pending',
	attempts int NOT NULL DEFAULT 0,
	http_status int,
	error text,
	finished_at timestamptz,
	PRIMARY KEY (team_id, id),
	FOREIGN KEY (team_id, subscription_id) REFERENCES api_subscriptions (team_id, id)
		ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('api_deliveries');
CREATE INDEX api_deliveries_sub ON api_deliveries (team_id, subscription_id, id);

-- Creates a subscription unless the user has p_user_max or the team
-- p_team_max already (checked under a per-team lock). Returns the id, or
-- NULL at a limit.
CREATE FUNCTION api_subscription_create(p_team text, p_user text, p_url text, p_events text[],
                                        p_things text[], p_secret text, p_user_max int,
                                        p_team_max int) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_id bigint;
BEGIN
	PERFORM pg_advisory_xact_lock(hashtextextended('conch.api.subscriptions:' || p_team, 0));
	IF (SELECT count(*) FROM api_subscriptions s WHERE s.team_id = p_team AND s.user_id = p_user)
	       >= p_user_max
	   OR (SELECT count(*) FROM api_subscriptions s WHERE s.team_id = p_team) >= p_team_max THEN
		RETURN NULL;
	END IF;
	INSERT INTO api_subscriptions (team_id, user_id, url, events, things, secret)
	VALUES (p_team, p_user, p_url, p_events, p_things, p_secret)
	RETURNING id INTO v_id;
	RETURN v_id;
END $$;

CREATE FUNCTION api_webhook_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	v_event text;
	v_user text := NEW.user_id;
	v_by text;
	s api_subscriptions;
	v_id bigint;
BEGIN
	CASE NEW.action
	WHEN 'promote' THEN v_event := 'your_turn';
	WHEN 'release' THEN v_event := 'released';
	WHEN 'expire' THEN v_event := 'expired';
	WHEN 'queue' THEN v_event := 'queued';
	WHEN 'kick' THEN v_event := 'kicked'; v_user := NEW.other_user; v_by := NEW.user_id;
	WHEN 'auto_release' THEN v_event := 'auto_released';
	ELSE RETURN NULL;
	END CASE;
	FOR s IN SELECT * FROM api_subscriptions x
	          WHERE x.team_id = NEW.team_id AND x.paused_at IS NULL AND v_event = ANY (x.events)
	            AND (x.things = '{}' OR NEW.thing = ANY (x.things)) LOOP
		v_id := nextval('api_subscription_ids');
		INSERT INTO api_deliveries (team_id, id, subscription_id, event, body)
		VALUES (NEW.team_id, v_id, s.id, v_event,
		        jsonb_build_object('id', v_id, 'event', v_event, 'team', NEW.team_id,
		                           'thing', NEW.thing, 'user', v_user, 'by', v_by,
		                           'at', dibs_epoch(NEW.at)));
		DELETE FROM api_deliveries d
		 WHERE d.team_id = NEW.team_id AND d.subscription_id = s.id AND d.state <> 'pending'
		   AND d.id < (SELECT min(k.id) FROM (SELECT m.id FROM api_deliveries m
		                WHERE m.team_id = NEW.team_id AND m.subscription_id = s.id
		                ORDER BY m.id DESC LIMIT 20) k);
		PERFORM dibs_job(NEW.team_id, 'api.webhook',
		                 jsonb_build_object('subscription', s.id, 'delivery', v_id), now(),
		                 'webhook:' || v_id);
	END LOOP;
	RETURN NULL;
END $$;

CREATE TRIGGER dibs_events_webhooks AFTER INSERT ON dibs_events
	FOR EACH ROW EXECUTE FUNCTION api_webhook_event();
