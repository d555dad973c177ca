-- pgbench: every statement conch sends for one /dibs on and one /dibs off:
-- bench/pgbench_command.sql plus, before each command, the installed-team
-- check of src/slack.c (require_installed, team_installed_now in
-- src/teams.c), a statement of its own. Same variables and ids.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
SELECT conch_team_installed('T' || :team);
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT p.name, p.display_name, p.max_things, p.timed_release, p.api_access, p.max_poll_size FROM plans p WHERE p.name = coalesce((SELECT plan FROM teams WHERE team_id = 'T' || :team), 'free');
SELECT status, position, extract(epoch FROM release_at), holder FROM dibs_on('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL::int, NULL, NULL::int);
COMMIT;
SELECT conch_team_installed('T' || :team);
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT status, next_user FROM dibs_off('T' || :team, 'thing-' || :thing, 'U' || :user);
COMMIT;
