-- Operator pages over lunch polls (after 007_lunch.sql): the overview
-- counts polls per day across teams, and lunch_polls' own indexes all lead
-- with team_id.
DO $$
BEGIN
	IF to_regclass('lunch_polls') IS NOT NULL THEN
		CREATE INDEX IF NOT EXISTS lunch_polls_created_all ON lunch_polls (created_at);
	END IF;
END $$;
