-- Job kinds are rows: each kind and how many attempts its jobs get before
-- they are dead. job_enqueue() reads them, and it is the one way a job is
-- queued, from C (src/jobs.c) and from the feature SQL alike. The server
-- refuses to start when a kind it handles has no row here.
--
-- Each migration that brings a kind adds its row with ON CONFLICT DO
-- NOTHING, so that during a rolling deploy neither version overwrites the
-- limits the other one set; a limit is changed by an UPDATE in a
-- migration of its own.
CREATE TABLE job_kinds (
	kind text PRIMARY KEY CHECK (kind ~ '^[a-z][a-z0-9_]*\.[a-z][a-z0-9_.]*$'),
	max_attempts int NOT NULL CHECK (max_attempts BETWEEN 1 AND 10000)
);
-- Read by every transaction, written only by migrations.
REVOKE INSERT, UPDATE, DELETE ON job_kinds FROM conch_runtime;

-- The limits C registered until now (a rate-limited attempt is never
-- counted; daily housekeeping gets 3).
INSERT INTO job_kinds (kind, max_attempts) VALUES
	('api.rate_cleanup', 3),
	('api.webhook', 1000), -- deliveries count their own retries
	('billing.grace_end', 8),
	('dibs.announce', 8),
	('dibs.autorelease', 20),
	('dibs.checkin', 8),
	('dibs.history_cleanup', 3),
	('dibs.home', 3),
	('dibs.notify', 8),
	('dibs.release', 20),
	('dibs.remind', 5),
	('dibs.tokens_cleanup', 3),
	('home.publish', 3),
	('jobs.cleanup', 3),
	('lunch.close', 8),
	('lunch.dm', 8),
	('lunch.dm_update', 5),
	('lunch.group', 8),
	('lunch.members', 8),
	('lunch.notify_channel', 8),
	('lunch.notify_group', 8),
	('lunch.schedule', 8),
	('members.lookup', 5),
	('members.refresh', 3),
	('members.sync', 8),
	('oauth.refresh', 8),
	('oauth.scopes_check', 8), -- 021's scopes notice
	('slack.call', 8),
	('slack.events_cleanup', 3),
	('slack.signatures_cleanup', 3),
	('team.purge', 8)
ON CONFLICT (kind) DO NOTHING;

-- Queues a job in the caller's transaction (RLS applies: a team
-- transaction queues only its own team's jobs) with its kind's attempts.
-- p_due NULL is now; a repeated (kind, p_key) does nothing and returns
-- NULL; otherwise the new job's id. A kind without a row is an error that
-- names it.
CREATE FUNCTION job_enqueue(p_kind text, p_team text, p_payload jsonb DEFAULT '{}',
                            p_due timestamptz DEFAULT NULL, p_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	v_attempts int;
	v_id bigint;
BEGIN
	SELECT k.max_attempts INTO v_attempts FROM job_kinds k WHERE k.kind = p_kind;
	IF v_attempts IS NULL THEN
		RAISE EXCEPTION 'job kind "%" has no row in job_kinds: add it in a migration', p_kind
		      USING HINT = 'INSERT INTO job_kinds (kind, max_attempts) VALUES (...) ON CONFLICT DO NOTHING';
	END IF;
	INSERT INTO jobs (kind, team_id, payload, due_at, max_attempts, dedupe_key)
	VALUES (p_kind, p_team, coalesce(p_payload, '{}'), coalesce(p_due, now()), v_attempts, p_key)
	ON CONFLICT (kind, dedupe_key) WHERE dedupe_key IS NOT NULL DO NOTHING
	RETURNING id INTO v_id;
	RETURN v_id;
END $$;

-- The feature SQL's own enqueues now go through it.

CREATE OR REPLACE FUNCTION dibs_job(p_team text, p_kind text, p_payload jsonb, p_due timestamptz,
                                    p_key text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM job_enqueue(p_kind, p_team, p_payload, p_due, p_key);
END $$;

CREATE OR REPLACE FUNCTION lunch_job(p_team text, p_kind text, p_payload jsonb, p_due timestamptz,
                                     p_key text) RETURNS void
LANGUAGE sql AS $$
	SELECT job_enqueue(p_kind, p_team, p_payload, p_due, p_key)
$$;

-- lunch_fan_out and lunch_save_groups are rewritten on job_enqueue() by
-- 024 (Lunch depth), with the rest of its enqueues.

CREATE OR REPLACE FUNCTION members_refresh_enqueue(p_spread interval) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS $$
	SELECT count(q.id) FROM (
		SELECT job_enqueue('members.sync', i.team_id, '{"listed": 0}', now() + random() * p_spread,
		                   i.team_id || ':daily:' || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')) AS id
		  FROM installations i LEFT JOIN member_directory d ON d.team_id = i.team_id
		 WHERE i.active AND NOT coalesce(d.lookup_only, false)
		   AND (d.synced_at IS NULL OR d.synced_at < now() - interval '20 hours')) q
$$;
