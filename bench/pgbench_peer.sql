-- pgbench: exactly the statements the peer (bench/peer/app.mjs) sends for
-- one /dibs on and one /dibs off: Bolt's authorize (one SELECT of the
-- installation) and one autocommit call of its function, each. Same
-- variables and ids as bench/pgbench_command.sql; run as the peer's role
-- on its database.
\set team random(1000000, 1000000 + :teams - 1)
\set user random(1000000, 1000000 + :users - 1)
\set thing random(0, :things - 1)
SELECT bot_token, bot_user_id FROM peer_installations WHERE team_id = 'T' || :team;
SELECT status, "position", holder FROM peer_dibs_on('T' || :team, 'thing-' || :thing, 'U' || :user);
SELECT bot_token, bot_user_id FROM peer_installations WHERE team_id = 'T' || :team;
SELECT status, next_user FROM peer_dibs_off('T' || :team, 'thing-' || :thing, 'U' || :user);
