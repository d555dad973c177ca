// Lunch Buddies in depth, over HTTP against the real server, PostgreSQL and
// the fake Slack: the plan check at start, opt-outs (command and button,
// honoured by schedules), the poll DM's zone and <!date^...> times, polls
// that close themselves and remind those who have not answered, cancel,
// where a channel's groups are announced, and /lunch stats against a round
// computed by hand (also in the App Home).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnv } from '../lib/env.mjs';
import { BOT, isPollDM, lunchKit, ok, people } from '../lib/lunch.mjs';
import { eventEnvelope, installTeam, startConch, waitUntil } from '../lib/server.mjs';

let env, slack, conch, sdb;

before(async () => {
	env = await startEnv({ name: 'lunchdepth', teamPrefix: 'T0LDX' });
	({ slack, conch, sdb } = env);
});
after(() => env?.close());

// --- helpers -------------------------------------------------------------------

const kit = lunchKit({ get slack() { return slack; }, get conch() { return conch; }, get sdb() { return sdb; } });
const { teamCalls, pollDMs, waitForPollDMs, shownDM, press, pollRow, waitForPoll, waitIdle, deadJobs, runJobNow } = kit;

async function setupTeam(team, plan = 'pro') {
	await installTeam(env.dbUrl, { team_id: team, token: slack.issueToken({ team_id: team, bot_user_id: BOT }), plan, bot_user_id: BOT });
}

// Puts users into the team's member directory, as a users.list sync would.
async function directory(team, users, fields = {}) {
	for (const id of users) {
		const u = { tz: 'UTC', is_bot: false, deleted: false, is_admin: false, ...fields };
		await sdb.query(
			`INSERT INTO members (team_id, user_id, tz, is_bot, deleted, is_admin) VALUES ($1, $2, $3, $4, $5, $6)
			 ON CONFLICT (team_id, user_id) DO UPDATE SET tz = EXCLUDED.tz, is_bot = EXCLUDED.is_bot,
			   deleted = EXCLUDED.deleted, is_admin = EXCLUDED.is_admin`,
			[team, id, u.tz, u.is_bot, u.deleted, u.is_admin]);
	}
}

async function lunch(team, channel, user, text, hook) {
	const fields = { team_id: team, channel_id: channel, user_id: user, command: '/lunch', text };
	if (hook) fields.response_url = slack.responseUrl(hook);
	const r = await conch.slashCommand(fields);
	assert.equal(r.status, 200, `/lunch ${text}: ${r.text}`);
	assert.equal(r.json?.response_type, 'ephemeral', r.text);
	return r.json;
}

const shown = (dm) => JSON.stringify(shownDM(dm));
const groupPosts = (team) => teamCalls(team, 'chat.postMessage').filter((c) => ok(c) && /^G/.test(c.body.channel));

// --- the plan check at start ---------------------------------------------------

test('a free plan is checked at start: the poll opens or is refused with the number through the response_url; opted-out people do not count', async () => {
	const team = 'T0LDPLAN1';
	const channel = 'C0LDPLAN';
	await setupTeam(team, 'free');
	const humans = people('P', 13);
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);
	await directory(team, [BOT], { is_bot: true });

	assert.match((await lunch(team, channel, humans[12], 'optout')).text, /won't ask you any more/);
	assert.match((await lunch(team, channel, humans[12], 'optout')).text, /already asked not to be asked/);
	const r = await lunch(team, channel, humans[0], 'start', 'plan-open');
	assert.match(r.text, /^Checking who is in this channel: your Free plan's lunch polls reach at most 12 people/);
	const [opened] = await slack.waitForResponses('plan-open', 1, 15_000);
	assert.match(opened.body.text, /^Lunch poll opened for 12:00, in groups of about 4 \(times in UTC\)\. I'm sending 12 people/);
	const poll = await pollRow(team, channel);
	await waitForPollDMs(team, poll.poll_id, 12);
	await waitIdle(team);
	assert.ok(!pollDMs(team, poll.poll_id).has(humans[12]), 'the opted-out member is not asked');
	assert.equal(teamCalls(team, 'users.info').length, 0, 'the member directory knew everyone: no users.info');

	// Cancel: everyone asked gets one line; the poll makes no groups.
	const cancel = await lunch(team, channel, humans[1], 'cancel');
	assert.match(cancel.text, /Cancelled the lunch poll: no groups this time\. I'm telling the 12 people I asked/);
	await waitIdle(team);
	const lines = teamCalls(team, 'chat.postMessage').filter((c) => ok(c) && /was cancelled by/.test(c.body.text ?? ''));
	assert.equal(lines.length, 12, 'one line each');
	assert.equal(new Set(lines.map((c) => c.body.channel)).size, 12);
	assert.match(lines[0].body.text, new RegExp(`The lunch poll in <#${channel}> was cancelled by <@${humans[1]}>`));
	assert.equal((await pollRow(team, channel)).state, 'cancelled');
	assert.match((await lunch(team, channel, humans[1], 'cancel')).text, /no open lunch poll in this channel to cancel/);
	assert.match((await lunch(team, channel, humans[1], 'close')).text, /no open lunch poll/);
	const dm = pollDMs(team, poll.poll_id).get(humans[3])[0];
	await slack.waitFor(() => /This poll was cancelled/.test(shown(dm)) || null, 10_000, 'the DM shows the cancel');

	// Opting in again makes 13: refused at start, with the number, never "opened".
	assert.match((await lunch(team, channel, humans[12], 'optin')).text, /Welcome back/);
	const asked = Date.now();
	assert.match((await lunch(team, channel, humans[0], 'start 12:30', 'plan-refuse')).text, /^Checking who is in this channel/);
	const [refusal] = await slack.waitForResponses('plan-refuse', 1, 15_000);
	console.log(`lunch: free-plan refusal through the response_url ${refusal.time - asked} ms after the command`);
	assert.match(refusal.body.text, new RegExp(`Your lunch poll in <#${channel}> was not sent: the channel has 13 people to ask`));
	assert.match(refusal.body.text, /your Free plan's polls reach at most 12\. Type `\/lunch upgrade`/);
	await waitIdle(team);
	assert.equal(slack.responses('plan-refuse').length, 1);
	const refused = await pollRow(team, channel);
	assert.equal(refused.state, 'cancelled');
	assert.equal(refused.cancel_reason, 'plan_limit');
	assert.equal(pollDMs(team, refused.poll_id).size, 0, 'no poll DM went out');
	assert.deepEqual(await deadJobs(team), []);
});

// --- opt-outs ------------------------------------------------------------------

test('Stop asking me here and /lunch optout are honoured by the next poll and by a scheduled one', async () => {
	const team = 'T0LDOPT01';
	const channel = 'C0LDOPT';
	await setupTeam(team);
	const humans = people('O', 6);
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);

	await lunch(team, channel, humans[5], 'optout');
	assert.match((await lunch(team, channel, humans[0], 'start')).text, /^Lunch poll opened for 12:00/);
	const first = await pollRow(team, channel);
	const dms = await waitForPollDMs(team, first.poll_id, 5);
	await waitIdle(team);
	assert.deepEqual([...dms.keys()].sort(), humans.slice(0, 5));
	const stop = dms.get(humans[4])[0].body.blocks.flatMap((b) => b.elements ?? []).find((e) => e.action_id === 'lunch.optout');
	assert.equal(stop.text.text, 'Stop asking me here');
	assert.equal(stop.value, `${first.poll_id}:optout`);

	// humans[4] chose 12:00, then presses Stop asking me here: no group for them.
	await press(team, humans[4], dms.get(humans[4])[0], `${first.poll_id}:720`);
	await press(team, humans[4], dms.get(humans[4])[0], stop.value, 'lunch.optout');
	await slack.waitFor(() => /won't be asked in/.test(shown(dms.get(humans[4])[0])) || null, 10_000, 'the DM shows the opt-out');
	for (const u of humans.slice(0, 4)) await press(team, u, dms.get(u)[0], `${first.poll_id}:720`);
	await waitIdle(team);
	assert.match((await lunch(team, channel, humans[0], 'close')).text, /4 of 5 people said yes/);
	await waitIdle(team);
	const groups = await sdb.query('SELECT members FROM lunch_groups WHERE team_id = $1 AND poll_id = $2', [team, first.poll_id]);
	assert.deepEqual(groups.flatMap((g) => g.members).sort(), humans.slice(0, 4));

	// The next poll, and a scheduled one, ask neither of them.
	await lunch(team, channel, humans[0], 'start');
	const second = await waitForPoll(team, channel, Number(first.poll_id));
	await waitForPollDMs(team, second.poll_id, 4);
	await waitIdle(team);
	assert.deepEqual([...pollDMs(team, second.poll_id).keys()].sort(), humans.slice(0, 4));
	await lunch(team, channel, humans[0], 'cancel');
	await lunch(team, channel, humans[0], 'schedule daily 00:00 close 23:59');
	const day = await waitUntil(() => sdb.one(
		"SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.schedule' AND payload ? 'date' AND state = 'queued'", [team]),
	{ what: 'the scheduled day' });
	await runJobNow(day.id);
	const scheduled = await waitForPoll(team, channel, Number(second.poll_id));
	assert.ok(scheduled.schedule_id);
	await waitForPollDMs(team, scheduled.poll_id, 4);
	await waitIdle(team);
	assert.deepEqual([...pollDMs(team, scheduled.poll_id).keys()].sort(), humans.slice(0, 4));
	assert.equal(await sdb.count('lunch_optouts', 'team_id = $1', [team]), 2);
	assert.equal(teamCalls(team, 'users.info').length, 0, 'the scheduler\'s zone and every verdict came from the directory');
	assert.deepEqual(await deadJobs(team), []);
});

// --- zones ---------------------------------------------------------------------

test('opting in again while the poll is open gives the poll DM its buttons back', async () => {
	const team = 'T0LDOPTIN';
	const channel = 'C0LDOPTIN';
	await setupTeam(team);
	const humans = people('I', 3);
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);
	await lunch(team, channel, humans[0], 'start');
	const poll = await pollRow(team, channel);
	const dms = await waitForPollDMs(team, poll.poll_id, 3);
	await waitIdle(team);
	const dm = dms.get(humans[1])[0];
	const buttons = () => shownDM(dm).blocks.flatMap((b) => b.elements ?? []).map((e) => e.action_id).filter(Boolean);

	await lunch(team, channel, humans[1], 'optout');
	await slack.waitFor(() => /won't be asked in/.test(shown(dm)) || null, 10_000, 'the DM shows the opt-out');
	assert.ok(!buttons().some((a) => /^lunch\.answer\.\d+$/.test(a)), `no time buttons while opted out: ${buttons()}`);
	assert.match((await lunch(team, channel, humans[1], 'optin')).text, /Welcome back/);
	await slack.waitFor(() => !/won't be asked in/.test(shown(dm)) || null, 10_000, 'the DM without the opt-out line');
	await waitIdle(team);
	assert.ok(buttons().includes('lunch.answer.720'), `the time buttons are back: ${buttons()}`);
	assert.match(shown(dm), /Your answer: \*No\*. You can change it until the poll closes/);
	await lunch(team, channel, humans[0], 'cancel');
	await waitIdle(team);
});

test('the poll DM shows every time with <!date^...>, names the poll\'s zone (the starter\'s) and its closing time', async () => {
	const team = 'T0LDZONE1';
	const channel = 'C0LDZONE';
	const tz = 'Asia/Kolkata';
	await setupTeam(team);
	const humans = people('Z', 4);
	const [starter, known, unknown, bot] = [humans[0], humans[1], humans[2], humans[3]];
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, [starter], { tz });
	await directory(team, [known], { tz: 'America/Chicago' });
	await directory(team, [bot], { is_bot: true });
	slack.setUser(unknown, { tz: 'Europe/Berlin' });

	const r = await lunch(team, channel, starter, 'start 12:00 13:30 close 11:45 remind=20m');
	assert.match(r.text, new RegExp(`^Lunch poll opened for 12:00 or 13:30, in groups of about 4 \\(times in ${tz}\\)\\..*it closes by itself at 11:45 ${tz} `));
	const poll = await pollRow(team, channel);
	const dms = await waitForPollDMs(team, poll.poll_id, 3);
	await waitIdle(team);
	assert.deepEqual([...dms.keys()].sort(), [starter, known, unknown], 'the bot is not asked');
	assert.deepEqual(teamCalls(team, 'users.info').map((c) => c.body.user), [unknown], 'users.info only for whom the directory did not know');
	assert.equal((await sdb.one('SELECT tz FROM members WHERE team_id = $1 AND user_id = $2', [team, unknown])).tz, 'Europe/Berlin',
		'the answer went into the directory');

	const row = await sdb.one('SELECT *, lunch_date::text AS day FROM lunch_polls WHERE team_id = $1', [team]);
	assert.equal(row.tz, tz);
	const want = await sdb.one(
		`SELECT floor(extract(epoch FROM lunch_local($1::date, 720, $2)))::bigint::text AS noon,
		        floor(extract(epoch FROM lunch_local($1::date, 810, $2)))::bigint::text AS half,
		        floor(extract(epoch FROM lunch_local($1::date, 705, $2)))::bigint::text AS close`,
		[row.day, tz]);
	assert.equal(String(Math.floor(new Date(row.close_at) / 1000)), want.close);
	assert.ok(new Date(row.close_at) > new Date(row.created_at), 'a closing time already past means tomorrow');
	const text = JSON.stringify(dms.get(known)[0].body.blocks);
	assert.match(text, new RegExp(`poll's time zone, \\*${tz}\\*`));
	assert.ok(text.includes(`<!date^${want.noon}^{time}|12:00 ${tz}>`), text);
	assert.ok(text.includes(`<!date^${want.half}^{time}|13:30 ${tz}>`), text);
	assert.ok(text.includes(`The poll closes <!date^${want.close}^{date_short_pretty} at {time}|11:45 ${tz}>`), text);

	const close = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.close'", [team]);
	assert.equal(new Date(close.due_at).getTime(), new Date(row.close_at).getTime());
	const remind = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.remind'", [team]);
	assert.equal(new Date(row.close_at) - new Date(remind.due_at), 20 * 60e3);
	await lunch(team, channel, starter, 'cancel');
	await waitIdle(team);
	for (const id of [close.id, remind.id])
		assert.equal((await sdb.one('SELECT state FROM jobs WHERE id = $1', [id])).state, 'cancelled');
});

test('a starter whose zone neither the directory nor Slack gives: the reply promises no zone, and the response_url names UTC, the zone the poll uses', async () => {
	const team = 'T0LDNOTZ1';
	const channel = 'C0LDNOTZ';
	await setupTeam(team);
	const humans = people('N', 3);
	const [starter, ...others] = humans;
	// The starter previews a public channel without being in it; Slack
	// fails the one users.info about them.
	slack.setMembers(channel, [BOT, ...others]);
	await directory(team, others, { tz: 'Europe/Berlin' });
	slack.failNext('users.info', { ok: false, error: 'fatal_error' });

	const r = await lunch(team, channel, starter, 'start 12:00 close 11:45', 'notz');
	assert.doesNotMatch(r.text, /times in your time zone|your time\b(?! zone)/, "no promise of the starter's zone");
	assert.match(r.text, /^Lunch poll opened for 12:00, in groups of about 4\. Slack hasn't told me your time zone yet: I'll say here within seconds which zone the times are in/);
	assert.match(r.text, /it closes by itself at 11:45 in that zone/);
	const [named] = await slack.waitForResponses('notz', 1, 15_000);
	assert.match(named.body.text, /^Lunch poll opened for 12:00, in groups of about 4 \(times in UTC\)\. I'm sending 2 people in this channel a DM/);
	assert.match(named.body.text, /it closes by itself <!date\^\d+\^\{date_short_pretty\} at \{time\}\|11:45 UTC>/);
	const poll = await pollRow(team, channel);
	assert.equal((await sdb.one('SELECT tz FROM lunch_polls WHERE team_id = $1 AND poll_id = $2', [team, poll.poll_id])).tz, 'UTC');
	assert.deepEqual(slack.calls('users.info').filter((c) => humans.includes(c.body.user)).map((c) => [c.body.user, ok(c)]), [[starter, false]], 'one users.info, failed');
	const dms = await waitForPollDMs(team, poll.poll_id, 2);
	assert.match(JSON.stringify(dms.get(others[0])[0].body.blocks), /poll's time zone, \*UTC\*/);
	await waitIdle(team);
	assert.equal(slack.responses('notz').length, 1, 'one message through the response_url');
	await lunch(team, channel, starter, 'cancel');
	await waitIdle(team);
});

// --- close by itself, remind -----------------------------------------------------

test('close HH:MM closes the poll by itself and the groups go out once, with two close jobs on two instances; remind DMs only those who have not answered, once', async () => {
	const team = 'T0LDCLOS1';
	const channel = 'C0LDCLOS';
	await setupTeam(team);
	const humans = people('C', 6);
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);

	await lunch(team, channel, humans[0], 'start close 23:59 remind=1h size=2');
	const poll = await pollRow(team, channel);
	const dms = await waitForPollDMs(team, poll.poll_id, 6);
	await waitIdle(team);
	for (const u of humans.slice(0, 4)) await press(team, u, dms.get(u)[0], `${poll.poll_id}:720`);
	await press(team, humans[4], dms.get(humans[4])[0], `${poll.poll_id}:no`);
	await waitIdle(team);

	// The reminder comes (the test makes it due): only humans[5] never answered.
	const remind = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.remind'", [team]);
	assert.equal((await runJobNow(remind.id)).state, 'done');
	await waitIdle(team);
	const reminders = () => teamCalls(team, 'chat.postMessage').filter((c) => ok(c) && /A reminder: the lunch poll/.test(c.body.text ?? ''));
	assert.deepEqual(reminders().map((c) => c.body.channel), [dms.get(humans[5])[0].response.channel]);
	assert.match(reminders()[0].body.text, new RegExp(`<#${channel}> closes <!date\\^\\d+\\^\\{time\\}\\|23:59 UTC>`));
	assert.equal((await runJobNow(remind.id)).state, 'done', 'a second run');
	await waitIdle(team);
	assert.equal(reminders().length, 1, 'reminded once');

	// The close comes while a second close job of the same poll is due at
	// the same moment and a second instance runs jobs too.
	const second = await startConch({ databaseUrl: env.dbUrl, slack, migrate: false });
	try {
		const close = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.close'", [team]);
		const { id: twin } = await sdb.one(
			`INSERT INTO jobs (kind, team_id, payload, due_at) VALUES ('lunch.close', $1, $2, now() + interval '1 hour') RETURNING id`,
			[team, close.payload]);
		await sdb.query('UPDATE jobs SET due_at = now() WHERE id = ANY($1::bigint[])', [[close.id, twin]]);
		await slack.waitFor(() => groupPosts(team).length >= 2 || null, 15_000, 'the two groups');
		await waitIdle(team);
		assert.equal((await runJobNow(close.id)).state, 'done');
		await waitIdle(team);
	} finally {
		await second.stop();
	}
	assert.equal((await pollRow(team, channel)).state, 'grouped');
	assert.equal(groupPosts(team).length, 2, 'groups go out once');
	assert.equal(await sdb.count('lunch_groups', 'team_id = $1', [team]), 2);
	assert.match((await lunch(team, channel, humans[0], 'close')).text, /no open lunch poll/);

	// A reminder whose time is already past when the poll opens is not sent:
	// closing in about 5 minutes, remind=1h.
	const soon = new Date(Date.now() + 5 * 60e3).toISOString().slice(11, 16);
	await lunch(team, channel, humans[0], `start close ${soon} remind=1h`);
	const next = await waitForPoll(team, channel, Number(poll.poll_id));
	await waitForPollDMs(team, next.poll_id, 6);
	await waitIdle(team);
	const closeAt = new Date((await pollRow(team, channel)).close_at);
	assert.ok(closeAt - Date.now() > 0 && closeAt - Date.now() <= 5 * 60e3, `closes in about 5 minutes: ${closeAt.toISOString()}`);
	assert.equal(await sdb.count('jobs', "team_id = $1 AND kind = 'lunch.remind' AND dedupe_key = $2", [team, `poll:${next.poll_id}:remind`]), 0);
	assert.equal(await sdb.count('jobs', "team_id = $1 AND kind = 'lunch.close' AND dedupe_key = $2", [team, `poll:${next.poll_id}:close`]), 1);
	await lunch(team, channel, humans[0], 'cancel');
	await waitIdle(team);
	assert.deepEqual(await deadJobs(team), []);
});

// --- settings groups ---------------------------------------------------------------

test('settings groups channel: owners and admins only; the next round posts one channel message', async () => {
	const team = 'T0LDSETG1';
	const channel = 'C0LDSETG';
	await setupTeam(team);
	const humans = people('G', 4);
	const admin = 'U0LDADMIN1';
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);
	await directory(team, [admin], { is_admin: true });

	const refused = await lunch(team, channel, humans[0], 'settings groups channel');
	assert.match(refused.text, /Only the workspace's owners and admins and whoever installed conch/);
	assert.equal(await sdb.count('lunch_channel_settings', 'team_id = $1', [team]), 0);
	assert.match((await lunch(team, channel, admin, 'settings groups channel')).text, /announced in one message in the channel/);

	await lunch(team, channel, humans[0], 'start size=2');
	const poll = await pollRow(team, channel);
	const dms = await waitForPollDMs(team, poll.poll_id, 4);
	for (const u of humans) await press(team, u, dms.get(u)[0], `${poll.poll_id}:720`);
	await waitIdle(team);
	await lunch(team, channel, humans[0], 'close');
	await waitIdle(team);
	const inChannel = teamCalls(team, 'chat.postMessage').filter((c) => ok(c) && c.body.channel === channel);
	assert.equal(inChannel.length, 1, 'one channel message');
	assert.match(inChannel[0].body.text, /Today's lunch groups/);
	assert.equal((inChannel[0].body.text.match(/picks the place/g) || []).length, 2);
	assert.equal(groupPosts(team).length, 0, 'no group DM');

	assert.match((await lunch(team, channel, admin, 'settings groups dm')).text, /group DM/);
	assert.equal((await sdb.one('SELECT groups_in_channel FROM lunch_channel_settings WHERE team_id = $1', [team])).groups_in_channel, false);
	assert.deepEqual(await deadJobs(team), []);
});

// --- stats -------------------------------------------------------------------------

test('stats gives the figures of a hand-computed history, in the channel and in the App Home', async () => {
	const team = 'T0LDSTAT1';
	const channel = 'C0LDSTAT';
	await setupTeam(team);
	const [a, b, c, d, e, f] = people('S', 6);
	// Rounds closed 70, 20 and 5 days ago (the first outside the 30 days),
	// and one 3 days ago in another channel.
	const rounds = [
		[channel, 70, [[a, b]]],
		[channel, 20, [[a, b, c], [d, e]]],
		[channel, 5, [[a, b, d], [c, e], [f]]],
		['C0LDOTHER', 3, [[a, c]]],
	];
	for (const [ch, ago, groups] of rounds) {
		const { poll_id } = await sdb.one(
			`INSERT INTO lunch_polls (team_id, channel_id, times, size, state, created_by, created_at, closed_at)
			 VALUES ($1, $2, '{720}', 4, 'grouped', $3, now() - make_interval(days => $4), now() - make_interval(days => $4))
			 RETURNING poll_id`, [team, ch, a, ago]);
		for (const [i, m] of groups.entries())
			await sdb.query(
				`INSERT INTO lunch_groups (team_id, poll_id, group_no, "time", members, picker) VALUES ($1, $2, $3, 720, $4, $5)`,
				[team, poll_id, i + 1, m, m[0]]);
	}
	// By hand, this channel, 30 days: rounds at 20 and 5 days; people a-f
	// (6); groups of two or more: 4; pairs: ab ac bc de (round 20), ab ad
	// bd ce (round 5) = 8; new: round 20 all but ab (70 days before is within
	// its 90) = 3; round 5: ad bd ce (ab met at 20) = 3; 6 of 8 = 75%.
	const s = await lunch(team, channel, a, 'stats');
	assert.equal(s.text, '*Lunch in this channel, last 30 days*\n2 rounds, 6 people, 4 groups.\n'
		+ '6 of 8 pairs (75%) had not lunched together in the 90 days before their round.');
	// 10 days: only the round 5 days ago.
	assert.equal((await lunch(team, channel, a, 'stats 10')).text, '*Lunch in this channel, last 10 days*\n1 round, 6 people, 2 groups.\n'
		+ '3 of 4 pairs (75%) had not lunched together in the 90 days before their round.');
	assert.equal((await lunch(team, 'C0LDEMPTY', a, 'stats')).text, 'No lunch rounds in this channel in the last 30 days.');

	// The App Home: the workspace's figures, as one section of the view.
	// Workspace, 30 days: the two rounds above and the round of ac 3 days
	// ago (a and c met in the round 20 days ago: not new) = 3 rounds, 5
	// groups, 9 pairs, 6 new (67%).
	assert.equal((await conch.event(eventEnvelope(team, { type: 'app_home_opened', user: a, channel: 'D0LDSTAT', tab: 'home' }))).status, 200);
	const publish = await slack.waitFor(() => teamCalls(team, 'views.publish').find(ok), 15_000, 'the App Home');
	const home = JSON.stringify(publish.body.view.blocks);
	assert.match(home, /\*Lunch in this workspace, last 30 days\*\\n3 rounds, 6 people, 5 groups\.\\n6 of 9 pairs \(67%\)/);
	assert.match(home, /Lunch Buddies/);
});

// --- opt-outs and the team's data ----------------------------------------------------

test('opt-outs survive an uninstall and a reinstall within the purge delay, and go with the team\'s purge', async () => {
	const team = 'T0LDPURG1';
	const channel = 'C0LDPURG';
	await setupTeam(team);
	const humans = people('Q', 3);
	slack.setMembers(channel, [BOT, ...humans]);
	await directory(team, humans);
	await lunch(team, channel, humans[2], 'optout');

	assert.equal((await conch.event(eventEnvelope(team, { type: 'app_uninstalled' }))).status, 200);
	await waitUntil(async () => (await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [team])).uninstalled_at,
		{ what: 'the uninstall' });
	await setupTeam(team); // back within the 30 days
	assert.equal(await sdb.count('lunch_optouts', 'team_id = $1', [team]), 1);
	await lunch(team, channel, humans[0], 'start');
	const poll = await pollRow(team, channel);
	await waitForPollDMs(team, poll.poll_id, 2);
	await waitIdle(team);
	assert.deepEqual([...pollDMs(team, poll.poll_id).keys()].sort(), humans.slice(0, 2));

	assert.equal((await conch.event(eventEnvelope(team, { type: 'app_uninstalled' }))).status, 200);
	const purge = await waitUntil(() => sdb.one(
		"SELECT id FROM jobs WHERE team_id = $1 AND kind = 'team.purge' AND state = 'queued' ORDER BY id DESC LIMIT 1", [team]),
	{ what: 'the purge job' });
	assert.equal((await runJobNow(purge.id)).state, 'done');
	assert.equal(await sdb.count('lunch_optouts', 'team_id = $1', [team]), 0);
	assert.equal(await sdb.count('teams', 'team_id = $1', [team]), 0);
});
