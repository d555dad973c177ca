-- pgbench: the transactions of one /dibs on and one /dibs off, statement for
-- statement as src/dibs/store.c (dibs_take, dibs_release) and src/plans.c
-- send them, for a random team, user and thing drawn like bench/loadgen.c
-- draws them. Run with -M prepared (the server prepares every statement) as
-- the application role (so Row-Level Security applies, as it does to conch).
-- Variables: teams, users, things. Ids: team T<1000000+n>, user U<1000000+n>.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT p.name, p.display_name, p.max_things, p.timed_release, p.api_access, p.max_poll_size FROM plans p WHERE p.name = coalesce((SELECT plan FROM teams WHERE team_id = 'T' || :team), 'free');
SELECT status, position, extract(epoch FROM release_at), holder FROM dibs_on('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL::int, NULL, NULL::int);
COMMIT;
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT status, next_user FROM dibs_off('T' || :team, 'thing-' || :thing, 'U' || :user);
COMMIT;
