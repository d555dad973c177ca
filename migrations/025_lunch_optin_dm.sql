-- /lunch optin while the channel's poll is open: the person's poll DM,
-- which their opt-out turned into "You won't be asked here again", is
-- brought up to date as lunch_optout does, so it shows the time buttons
-- again (their answer stays No until they pick a time). Same result as
-- before: false when they had not opted out.
CREATE OR REPLACE FUNCTION lunch_optin(p_team text, p_channel text, p_user text) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
	v_poll bigint;
BEGIN
	DELETE FROM lunch_optouts o
	 WHERE o.team_id = p_team AND o.channel_id = p_channel AND o.user_id = p_user;
	IF NOT FOUND THEN
		RETURN false;
	END IF;
	SELECT p.poll_id INTO v_poll FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.channel_id = p_channel AND p.state = 'open' FOR SHARE;
	IF FOUND AND EXISTS (SELECT 1 FROM lunch_members m
	                      WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.user_id = p_user) THEN
		PERFORM lunch_job(p_team, 'lunch.dm_update',
		                  jsonb_build_object('poll_id', v_poll, 'user', p_user), now(), NULL);
	END IF;
	RETURN true;
END $$;
