-- Slack Events API deliveries already handled, by event_id. Slack retries a
-- delivery it believes failed, so /slack/events skips the ids recorded here;
-- an id is recorded only after its handler succeeded. A dedupe log across
-- teams, not a team's data: read and written with tx_begin_system(). Old
-- rows are only useful for Slack's retry window (minutes), hence the index
-- for a cleanup by age.
CREATE TABLE slack_events (
	event_id text PRIMARY KEY,
	team_id text,
	type text,
	received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX slack_events_received ON slack_events (received_at);

-- Like jobs: not partitioned, but a team transaction sees only its own rows.
ALTER TABLE slack_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE slack_events FORCE ROW LEVEL SECURITY;
CREATE POLICY team_scope ON slack_events
	USING (team_id = conch_team() OR conch_all_teams())
	WITH CHECK (team_id = conch_team() OR conch_all_teams());
