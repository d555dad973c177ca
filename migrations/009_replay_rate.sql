-- Two pieces of request hygiene that must hold across every instance, so
-- they live in the database: Slack request signatures already accepted
-- (a replayed command or button is refused) and the API's token buckets.

-- Signatures of accepted Slack commands and button presses. A signature is
-- valid while its timestamp is within 300 s of now, so a row is needed
-- until then; the daily slack.signatures_cleanup deletes older ones through
-- slack_signatures_signed. Same RLS policy as slack_events.
CREATE TABLE slack_signatures (
	signature text PRIMARY KEY,
	team_id text NOT NULL,
	signed_at timestamptz NOT NULL
);
CREATE INDEX slack_signatures_signed ON slack_signatures (signed_at);
ALTER TABLE slack_signatures ENABLE ROW LEVEL SECURITY;
ALTER TABLE slack_signatures FORCE ROW LEVEL SECURITY;
CREATE POLICY team_scope ON slack_signatures
	USING (team_id = conch_team() OR conch_all_teams())
	WITH CHECK (team_id = conch_team() OR conch_all_teams());

-- The first step of every command and button, in one round trip: records
-- the request's signature and says 'replayed' when it was already there
-- (INSERT ... ON CONFLICT DO NOTHING decides first-seen atomically, also
-- between instances), else 'installed' or 'not_installed'. Like
-- conch_team_installed, it scopes its own implicit transaction to p_team:
-- call it only on its own.
CREATE FUNCTION conch_slack_request(p_team text, p_signature text, p_signed_at bigint)
RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('conch.team_id', p_team, true);
	INSERT INTO slack_signatures (signature, team_id, signed_at)
	VALUES (p_signature, p_team, to_timestamp(p_signed_at))
	ON CONFLICT (signature) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 'replayed';
	END IF;
	RETURN CASE WHEN conch_team_installed(p_team) THEN 'installed' ELSE 'not_installed' END;
END $$;

-- API token buckets, keyed 'token:' + the token's SHA-256 (the whole
-- hash) or 'addr:' + a client address (failed authentications). tokens is
-- the level at `at`; the level now is that plus the refill since, capped
-- at the burst. A bucket idle longer than burst / rate is full, the same
-- as no row, so the daily api.rate_cleanup deletes rows idle for a day.
-- Not a team's data (nothing here names a team); system transactions only.
CREATE TABLE api_rate_buckets (
	key text PRIMARY KEY,
	tokens double precision NOT NULL,
	at timestamptz NOT NULL
);
CREATE INDEX api_rate_buckets_at ON api_rate_buckets (at);
ALTER TABLE api_rate_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_rate_buckets FORCE ROW LEVEL SECURITY;
CREATE POLICY system_only ON api_rate_buckets USING (conch_all_teams())
	WITH CHECK (conch_all_teams());

-- Refills p_key's bucket and takes one token if there is one; true when it
-- took one. The row lock serialises instances: the refill is computed
-- after the lock is held, from the clock at that moment. The caller's
-- transaction must see api_rate_buckets: it runs inside api_rate_check, as the
-- schema owner.
CREATE FUNCTION api_rate_take(p_key text, p_burst double precision, p_rate double precision)
RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	level double precision;
	last timestamptz;
	t timestamptz;
BEGIN
	INSERT INTO api_rate_buckets (key, tokens, at) VALUES (p_key, p_burst, clock_timestamp())
	ON CONFLICT (key) DO NOTHING;
	SELECT b.tokens, b.at INTO level, last FROM api_rate_buckets b WHERE b.key = p_key FOR UPDATE;
	t := clock_timestamp();
	level := least(p_burst, level + p_rate * greatest(0, extract(epoch FROM t - last)));
	UPDATE api_rate_buckets SET tokens = CASE WHEN level >= 1 THEN level - 1 ELSE level END,
	       at = greatest(last, t)
	 WHERE key = p_key;
	RETURN level >= 1;
END $$;

-- The rate check of one API request, in one round trip: 'address' while
-- p_addr has used up its failed-authentication bucket (nothing else is
-- looked at, so a client guessing tokens learns nothing more); 'unknown'
-- when no token has hash p_hash (one failure taken from p_addr's bucket);
-- 'token' when the token's own bucket is empty; else 'ok'. It looks across
-- teams (the token's team is not known yet), so it runs as the schema
-- owner, with its search_path pinned.
CREATE FUNCTION api_rate_check(p_hash text, p_addr text, p_burst double precision,
                               p_rate double precision, p_fail_burst double precision,
                               p_fail_rate double precision)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
	addr_key text := 'addr:' || p_addr;
	result text;
BEGIN
	IF EXISTS (SELECT 1 FROM api_rate_buckets b WHERE b.key = addr_key
	            AND least(p_fail_burst, b.tokens + p_fail_rate *
	                      greatest(0, extract(epoch FROM clock_timestamp() - b.at))) < 1) THEN
		result := 'address';
	ELSIF NOT EXISTS (SELECT 1 FROM api_tokens WHERE token_hash = p_hash) THEN
		PERFORM api_rate_take(addr_key, p_fail_burst, p_fail_rate);
		result := 'unknown';
	ELSIF api_rate_take('token:' || p_hash, p_burst, p_rate) THEN
		result := 'ok';
	ELSE
		result := 'token';
	END IF;
	RETURN result;
END $$;
