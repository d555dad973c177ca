-- pgbench: the statements of one /dibs on and one /dibs off, as
-- src/dibs/store.c (dibs_take, dibs_release_in) sends them: one call each,
-- in a transaction of its own (migrations/023_dibs_commands.sql scopes it
-- to the team, checks the plan and makes the change), for a random team,
-- user and thing drawn like bench/loadgen.c draws them. Run with -M
-- prepared (the server prepares every statement) as the application role
-- (so Row-Level Security applies, as it does to conch).
-- Variables: teams, users, things. Ids: team T<1000000+n>, user U<1000000+n>.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
SELECT * FROM dibs_cmd_on('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL::int, NULL, NULL);
SELECT * FROM dibs_cmd_off('T' || :team, 'thing-' || :thing, 'U' || :user, 'C' || :team, NULL);
