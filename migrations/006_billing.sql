-- Billing: each team's Stripe customer and subscription (a team table),
-- the webhook event log and the customer -> team lookup (system tables),
-- and the functions that move teams.plan with the subscription
-- (CONTRACT.md section 7, PROTOCOLS.md section 8).
--
-- Stripe delivers events at least once and in no particular order. The
-- webhook stores each event by its id and applies it in the same
-- transaction, so a redelivery finds the id and changes nothing. A
-- subscription's state carries the `created` of the event that set it; an
-- event older than that is stored but not applied (ties apply).
--
-- Plans by status: active, trialing -> pro; past_due -> pro until
-- grace_until (the first past_due time + 7 days), then free; anything else
-- -> free. A 'billing.grace_end' job due at grace_until ends the grace. No
-- function here deletes a team's things, polls or tokens: a downgrade only
-- changes teams.plan, and plans.h refuses new things over the limit.

CREATE TABLE billing (
	team_id text NOT NULL,
	stripe_customer text,
	stripe_subscription text,
	subscription_status text,
	status_event_created bigint,     -- `created` of the event that set the status
	current_period_end timestamptz,
	cancel_at_period_end boolean NOT NULL DEFAULT false,
	grace_until timestamptz,         -- while past_due: Pro until then
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (team_id),
	FOREIGN KEY (team_id) REFERENCES teams (team_id) ON DELETE CASCADE
) PARTITION BY HASH (team_id);
SELECT conch_team_table('billing');

-- Which team a Stripe customer pays for: subscription and invoice events
-- name the customer, and the webhook must find the team across all teams.
CREATE TABLE stripe_customers (
	customer text PRIMARY KEY,
	team_id text NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stripe_customers_team ON stripe_customers (team_id);

-- Every webhook event received, once, by id: the dedupe log and what the
-- operator pages show. team_id is set once the event is matched to a team;
-- error says why an event was stored but not applied.
CREATE TABLE stripe_events (
	event_id text PRIMARY KEY,
	type text NOT NULL,
	created bigint NOT NULL,
	team_id text,
	payload jsonb NOT NULL,
	received_at timestamptz NOT NULL DEFAULT now(),
	processed_at timestamptz,
	error text
);
CREATE INDEX stripe_events_received ON stripe_events (received_at, event_id); -- keyset paging
CREATE INDEX stripe_events_team ON stripe_events (team_id, received_at DESC);

-- Like jobs and slack_events: not partitioned, read and written in system
-- transactions, and a team transaction sees only its own rows.
DO $$
DECLARE
	t text;
BEGIN
	FOREACH t IN ARRAY ARRAY['stripe_customers', 'stripe_events'] LOOP
		EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
		EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
		EXECUTE format('CREATE POLICY team_scope ON %I '
		               'USING (team_id = conch_team() OR conch_all_teams()) '
		               'WITH CHECK (team_id = conch_team() OR conch_all_teams())', t);
	END LOOP;
END $$;

CREATE FUNCTION billing_plan_for(status text, grace timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN status IN ('active', 'trialing') THEN 'pro'
	            WHEN status = 'past_due' AND grace > now() THEN 'pro'
	            ELSE 'free' END
$$;

-- Applies one subscription event to its team. The team row is locked first
-- (as in billing_end_grace), so events of one team take turns. A team
-- follows one subscription; an event of another subscription takes over
-- only when it keeps Pro on and the followed one no longer does (a team
-- that subscribed again after cancelling), so a stray second subscription
-- never downgrades a paying team. grace_started: a new past_due episode
-- began, and its 'billing.grace_end' job is the caller's to enqueue;
-- skipped: why an event was not applied.
CREATE FUNCTION billing_apply_subscription(
	p_team text, p_customer text, p_subscription text, p_status text, p_created bigint,
	p_period_end bigint, p_cancel_at_end boolean,
	OUT applied boolean, OUT plan_before text, OUT plan_after text, OUT grace timestamptz,
	OUT grace_started boolean, OUT skipped text)
LANGUAGE plpgsql AS $$
DECLARE
	b billing%ROWTYPE;
BEGIN
	SELECT t.plan INTO plan_before FROM teams t WHERE t.team_id = p_team FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'billing_apply_subscription: no team %', p_team;
	END IF;
	applied := false;
	plan_after := plan_before;
	grace_started := false;
	INSERT INTO billing (team_id) VALUES (p_team) ON CONFLICT (team_id) DO NOTHING;
	SELECT * INTO b FROM billing WHERE team_id = p_team FOR UPDATE;
	grace := b.grace_until;

	IF b.stripe_subscription IS NOT NULL AND b.stripe_subscription <> p_subscription THEN
		IF billing_plan_for(p_status, to_timestamp(p_created) + interval '7 days') <> 'pro'
		   OR billing_plan_for(b.subscription_status, b.grace_until) = 'pro' THEN
			skipped := 'another subscription of the team is in force';
			RETURN;
		END IF;
		b.subscription_status := NULL;
	ELSIF p_created < b.status_event_created THEN
		skipped := 'older than the stored state';
		RETURN;
	END IF;

	IF p_status <> 'past_due' THEN
		grace := NULL;
	ELSIF b.subscription_status = 'past_due' AND b.grace_until IS NOT NULL THEN
		grace := b.grace_until; -- the same episode: its grace does not start again
	ELSE
		grace := to_timestamp(p_created) + interval '7 days';
		grace_started := true;
	END IF;
	plan_after := billing_plan_for(p_status, grace);

	UPDATE billing
	   SET stripe_customer = coalesce(p_customer, stripe_customer),
	       stripe_subscription = p_subscription,
	       subscription_status = p_status,
	       status_event_created = p_created,
	       current_period_end = CASE WHEN p_period_end > 0 THEN to_timestamp(p_period_end) END,
	       cancel_at_period_end = p_cancel_at_end,
	       grace_until = grace,
	       updated_at = now()
	 WHERE team_id = p_team;
	IF plan_after IS DISTINCT FROM plan_before THEN
		UPDATE teams SET plan = plan_after WHERE team_id = p_team;
	END IF;
	IF grace IS NULL THEN
		UPDATE jobs SET state = 'cancelled', finished_at = now(), lease_until = NULL
		 WHERE kind = 'billing.grace_end' AND team_id = p_team AND state = 'queued';
	END IF;
	IF p_customer IS NOT NULL THEN
		INSERT INTO stripe_customers (customer, team_id) VALUES (p_customer, p_team)
		ON CONFLICT (customer) DO NOTHING;
	END IF;
	applied := true;
END $$;

-- checkout.session.completed: the team's customer and subscription. The
-- subscription is taken unless the team already follows one that keeps
-- Pro on; its status comes from the subscription's own events.
CREATE FUNCTION billing_link_checkout(p_team text, p_customer text, p_subscription text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO billing (team_id, stripe_customer, stripe_subscription)
	VALUES (p_team, p_customer, p_subscription)
	ON CONFLICT (team_id) DO UPDATE
	   SET stripe_customer = coalesce(EXCLUDED.stripe_customer, billing.stripe_customer),
	       stripe_subscription = CASE
	           WHEN billing.stripe_subscription IS NULL
	             OR billing_plan_for(billing.subscription_status, billing.grace_until) <> 'pro'
	           THEN coalesce(EXCLUDED.stripe_subscription, billing.stripe_subscription)
	           ELSE billing.stripe_subscription END,
	       updated_at = now();
	IF p_customer IS NOT NULL THEN
		INSERT INTO stripe_customers (customer, team_id) VALUES (p_customer, p_team)
		ON CONFLICT (customer) DO UPDATE SET team_id = EXCLUDED.team_id;
	END IF;
END $$;

-- The 'billing.grace_end' job: ends the grace that began for p_subscription
-- with grace_until = p_grace (unix seconds), if the team is still in it.
-- Returns true when it moved the team to free; false when the grace is no
-- longer current (paid, cancelled, a later episode, or already ended).
CREATE FUNCTION billing_end_grace(p_team text, p_subscription text, p_grace bigint)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM 1 FROM teams WHERE team_id = p_team FOR UPDATE;
	UPDATE billing SET grace_until = least(grace_until, now()), updated_at = now()
	 WHERE team_id = p_team AND stripe_subscription = p_subscription
	   AND subscription_status = 'past_due' AND grace_until = to_timestamp(p_grace);
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	UPDATE teams SET plan = 'free' WHERE team_id = p_team;
	RETURN true;
END $$;
