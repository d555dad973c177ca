-- pgbench: every statement conch sends for one /dibs on and one /dibs off,
-- in the request's one transaction as src/slack.c and src/dibs/ send them:
-- BEGIN, the team scope and the admission (the replay and installed check,
-- conch_slack_request), for /dibs on the names setting and the Did you
-- mean? candidates (one statement, dibs_suggest in src/dibs/store.c), the
-- command, COMMIT. conch pipelines BEGIN, the scope and the admission in
-- one round trip and the command with COMMIT in another; pgbench sends
-- each statement in a round trip of its own. Same variables and ids as
-- bench/pgbench_command.sql; a random signature per request, as every
-- Slack request has its own.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
\set sig random(1, 1000000000000000)
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT conch_slack_request('T' || :team, 'v0=on-' || :client_id || '-' || :sig, extract(epoch FROM now())::bigint, NULL);
SELECT coalesce(s.names = 'strict', false), coalesce(s.manage = 'admins', false), c.name, c.display_name FROM (SELECT 1) one LEFT JOIN dibs_settings s ON s.team_id = 'T' || :team LEFT JOIN LATERAL (SELECT name, display_name FROM things WHERE team_id = 'T' || :team AND length('thing-' || :thing) >= 4 AND (name = 'thing-' || :thing OR length(name) BETWEEN length('thing-' || :thing) - 2 AND length('thing-' || :thing) + 2 OR translate(name, '-_.', '') = translate('thing-' || :thing, '-_.', '')) ORDER BY name = 'thing-' || :thing DESC, name LIMIT 500) c ON true ORDER BY c.name = 'thing-' || :thing DESC NULLS LAST, c.name;
SELECT * FROM dibs_cmd_on('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL::int, NULL, NULL);
COMMIT;
BEGIN;
SELECT set_config('conch.team_id', 'T' || :team, true), set_config('plan_cache_mode', 'force_generic_plan', true);
SELECT conch_slack_request('T' || :team, 'v0=off-' || :client_id || '-' || :sig, extract(epoch FROM now())::bigint, NULL);
SELECT * FROM dibs_cmd_off('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL);
COMMIT;
