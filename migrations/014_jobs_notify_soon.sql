-- Runners are woken only for jobs due within the next 10 seconds (new, or
-- rescheduled by a retry or a 429). A job due later is found by the
-- runners' own schedule: an idle runner looks up the next due time at
-- least every 10 seconds (src/jobs.c, NOTIFY_HORIZON), so it is never
-- late, and a burst of far-future jobs (reminders, timed releases) no
-- longer wakes every runner of every instance for nothing.
DROP TRIGGER jobs_notify ON jobs;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OF state, due_at ON jobs
	FOR EACH ROW WHEN (NEW.state = 'queued' AND NEW.due_at <= now() + interval '10 seconds')
	EXECUTE FUNCTION jobs_notify();
