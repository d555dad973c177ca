-- The job kinds of 020 (Lunch reminders) and 021 (the scopes notice), and
-- 020's enqueues through job_enqueue(), so that they get their kind's
-- attempts like every other job (023). Bodies as in 020, only the enqueues
-- changed.
INSERT INTO job_kinds (kind, max_attempts) VALUES
	('lunch.remind', 8),
	('oauth.scopes_check', 8)
ON CONFLICT (kind) DO NOTHING;

CREATE OR REPLACE FUNCTION lunch_fan_out(p_team text, p_poll bigint) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_state text;
	v_asked int;
BEGIN
	SELECT p.state INTO v_state FROM lunch_polls p
	 WHERE p.team_id = p_team AND p.poll_id = p_poll FOR UPDATE;
	IF v_state IS DISTINCT FROM 'open' THEN
		RETURN -1;
	END IF;
	INSERT INTO lunch_members (team_id, poll_id, user_id)
	SELECT p_team, p_poll, r.user_id FROM lunch_roster r
	 WHERE r.team_id = p_team AND r.poll_id = p_poll AND r.eligible
	   AND NOT lunch_opted_out(p_team, p_poll, r.user_id)
	ON CONFLICT DO NOTHING;
	PERFORM job_enqueue('lunch.dm', p_team, jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	                    NULL, 'poll:' || p_poll || ':dm:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = p_poll
	          ORDER BY m.user_id) m;
	UPDATE lunch_polls p SET fanned_out_at = coalesce(p.fanned_out_at, now())
	 WHERE p.team_id = p_team AND p.poll_id = p_poll;
	SELECT count(*) INTO v_asked FROM lunch_members m
	 WHERE m.team_id = p_team AND m.poll_id = p_poll;
	RETURN v_asked;
END $$;

CREATE OR REPLACE FUNCTION lunch_cancel_open(p_team text, p_channel text, p_user text, p_text text,
                                             OUT status text, OUT poll_id bigint, OUT told int)
LANGUAGE plpgsql AS $$
DECLARE
	v_poll bigint;
BEGIN
	UPDATE lunch_polls p
	   SET state = 'cancelled', closed_at = now(), cancel_reason = 'cancelled',
	       cancelled_by = p_user
	 WHERE p.team_id = p_team AND p.channel_id = p_channel AND p.state = 'open'
	RETURNING p.poll_id INTO v_poll;
	IF NOT FOUND THEN
		status := 'none_open';
		told := 0;
		RETURN;
	END IF;
	UPDATE jobs j SET state = 'cancelled', finished_at = now()
	 WHERE j.team_id = p_team AND j.state = 'queued' AND j.kind IN ('lunch.close', 'lunch.remind')
	   AND j.dedupe_key IN ('poll:' || v_poll || ':close', 'poll:' || v_poll || ':remind');
	-- Told: the notices queued now (a repeat of one already queued is not).
	SELECT count(q.id) INTO told FROM (
		SELECT job_enqueue('slack.call', p_team,
		                   jsonb_build_object('method', 'chat.postMessage',
		                                      'args', jsonb_build_object('channel', m.dm_channel,
		                                                                 'text', p_text)),
		                   NULL, 'poll:' || v_poll || ':cancelled:' || m.user_id) AS id
		  FROM lunch_members m
		 WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.dm_ts IS NOT NULL
		 ORDER BY m.user_id) q;
	PERFORM job_enqueue('lunch.dm_update', p_team,
	                    jsonb_build_object('poll_id', v_poll, 'user', m.user_id), NULL,
	                    'poll:' || v_poll || ':closed:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = v_poll AND m.dm_ts IS NOT NULL
	          ORDER BY m.user_id) m;
	status := 'cancelled';
	poll_id := v_poll;
END $$;

CREATE OR REPLACE FUNCTION lunch_save_groups(p_team text, p_poll bigint, p_groups jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	v_in_channel boolean;
	v_n int;
BEGIN
	UPDATE lunch_polls p SET state = 'grouped'
	 WHERE p.team_id = p_team AND p.poll_id = p_poll AND p.state = 'closed';
	IF NOT FOUND THEN
		RETURN -1;
	END IF;
	INSERT INTO lunch_groups (team_id, poll_id, group_no, "time", members, picker)
	SELECT p_team, p_poll, (g ->> 'no')::int, (g ->> 'time')::int,
	       ARRAY(SELECT jsonb_array_elements_text(g -> 'members')), g ->> 'picker'
	  FROM jsonb_array_elements(p_groups) g;
	GET DIAGNOSTICS v_n = ROW_COUNT;
	SELECT coalesce((SELECT c.groups_in_channel FROM lunch_channel_settings c
	                   JOIN lunch_polls p ON p.team_id = c.team_id AND p.channel_id = c.channel_id
	                  WHERE c.team_id = p_team AND p.poll_id = p_poll),
	                (SELECT s.groups_in_channel FROM lunch_settings s WHERE s.team_id = p_team),
	                false)
	  INTO v_in_channel;
	-- Someone alone at their time always gets a DM of their own.
	PERFORM job_enqueue('lunch.notify_group', p_team,
	                    jsonb_build_object('poll_id', p_poll, 'group_no', g.group_no), NULL,
	                    'poll:' || p_poll || ':group:' || g.group_no)
	   FROM (SELECT g.group_no FROM lunch_groups g
	          WHERE g.team_id = p_team AND g.poll_id = p_poll
	            AND (NOT v_in_channel OR cardinality(g.members) = 1)
	          ORDER BY g.group_no) g;
	IF v_in_channel AND EXISTS (SELECT 1 FROM lunch_groups g
	                             WHERE g.team_id = p_team AND g.poll_id = p_poll
	                               AND cardinality(g.members) > 1) THEN
		PERFORM lunch_job(p_team, 'lunch.notify_channel', jsonb_build_object('poll_id', p_poll),
		                  now(), 'poll:' || p_poll || ':channel');
	END IF;
	-- A DM still being sent has no dm_ts yet; its job updates it itself.
	PERFORM job_enqueue('lunch.dm_update', p_team,
	                    jsonb_build_object('poll_id', p_poll, 'user', m.user_id),
	                    now() + interval '1 second', 'poll:' || p_poll || ':closed:' || m.user_id)
	   FROM (SELECT m.user_id FROM lunch_members m
	          WHERE m.team_id = p_team AND m.poll_id = p_poll AND m.dm_ts IS NOT NULL
	          ORDER BY m.user_id) m;
	RETURN v_n;
END $$;
