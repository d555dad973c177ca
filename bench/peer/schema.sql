-- The peer's schema (bench/peer/app.mjs): what a small Bolt app would keep.
-- No Row-Level Security, no partitions, no jobs, no events: the least a
-- /dibs on|off with a hand-over DM needs.
CREATE TABLE peer_installations (
	team_id text PRIMARY KEY,
	bot_token text NOT NULL,
	bot_user_id text NOT NULL
);

CREATE TABLE peer_things (
	team_id text NOT NULL,
	name text NOT NULL,
	holder text,
	since timestamptz,
	queue text[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (team_id, name)
);

-- /dibs on: makes the thing if missing, locks it, and gives it to p_user
-- or puts p_user at the end of its queue.
-- status: yours | already | queued (position: place in the queue).
CREATE FUNCTION peer_dibs_on(p_team text, p_thing text, p_user text,
                             OUT status text, OUT "position" int, OUT holder text)
LANGUAGE plpgsql AS $$
DECLARE
	t peer_things;
BEGIN
	INSERT INTO peer_things (team_id, name) VALUES (p_team, p_thing) ON CONFLICT DO NOTHING;
	SELECT * INTO t FROM peer_things WHERE team_id = p_team AND name = p_thing FOR UPDATE;
	IF t.holder IS NULL THEN
		UPDATE peer_things SET holder = p_user, since = now()
		 WHERE team_id = p_team AND name = p_thing;
		status := 'yours'; "position" := 0; holder := p_user;
	ELSIF t.holder = p_user THEN
		status := 'already'; "position" := 0; holder := p_user;
	ELSIF p_user = ANY (t.queue) THEN
		status := 'queued'; "position" := array_position(t.queue, p_user); holder := t.holder;
	ELSE
		UPDATE peer_things SET queue = queue || p_user WHERE team_id = p_team AND name = p_thing;
		status := 'queued'; "position" := cardinality(t.queue) + 1; holder := t.holder;
	END IF;
END $$;

-- /dibs off: the holder hands the thing to the head of the queue (returned
-- as next_user, who gets a DM); someone queued leaves the queue.
-- status: released | left | not_holder | unknown.
CREATE FUNCTION peer_dibs_off(p_team text, p_thing text, p_user text,
                              OUT status text, OUT next_user text)
LANGUAGE plpgsql AS $$
DECLARE
	t peer_things;
BEGIN
	SELECT * INTO t FROM peer_things WHERE team_id = p_team AND name = p_thing FOR UPDATE;
	IF NOT FOUND THEN
		status := 'unknown';
	ELSIF t.holder = p_user THEN
		next_user := t.queue[1];
		UPDATE peer_things SET holder = next_user, since = CASE WHEN next_user IS NULL THEN NULL ELSE now() END,
		       queue = t.queue[2:]
		 WHERE team_id = p_team AND name = p_thing;
		status := 'released';
	ELSIF p_user = ANY (t.queue) THEN
		UPDATE peer_things SET queue = array_remove(t.queue, p_user)
		 WHERE team_id = p_team AND name = p_thing;
		status := 'left';
	ELSE
		status := 'not_holder';
	END IF;
END $$;
