-- pgbench: every statement conch sends for one /dibs on and one /dibs off:
-- bench/pgbench_command.sql plus, before each command, the admission of
-- src/slack.c (the replay check and the installed check in one statement,
-- conch_slack_request, committed without waiting for its flush), a statement
-- of its own. Same variables and ids; a
-- random signature per request, as every Slack request has its own.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
\set sig random(1, 1000000000000000)
SELECT conch_slack_request('T' || :team, 'v0=on-' || :client_id || '-' || :sig, extract(epoch FROM now())::bigint),
       set_config('synchronous_commit', 'off', true);
SELECT * FROM dibs_cmd_on('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL::int, NULL, NULL);
SELECT conch_slack_request('T' || :team, 'v0=off-' || :client_id || '-' || :sig, extract(epoch FROM now())::bigint),
       set_config('synchronous_commit', 'off', true);
SELECT * FROM dibs_cmd_off('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL);
