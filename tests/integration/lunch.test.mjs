// Lunch Buddies over HTTP against the real server, PostgreSQL and the fake
// Slack (/lunch): the poll DMs, answers and their
// changes, the close, the groups' messages, plan limits, schedules, a
// 500-member channel under rate limits, and SIGKILL in the middle of the
// fan-out and of the grouping. Every Slack call a round makes is checked.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { BOT, isPollDM, lunchKit, ok, people } from '../lib/lunch.mjs';
import {
	TEST_CLIENT_ID, TEST_CLIENT_SECRET, db, installTeam, startConch, waitUntil,
} from '../lib/server.mjs';

const CLOSED = 'This poll has closed.';

let cluster, dbName, dbUrl, slack, conch, sdb;
const killed = [];

before(async () => {
	cluster = await testCluster();
	dbName = `conch_lunch_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
});

after(async () => {
	await conch?.stop();
	for (const k of killed) await k.stop({ allowUnclean: true }).catch(() => {});
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -----------------------------------------------------------------

const range = (n) => [...Array(n).keys()];

async function setupTeam(team, { plan = 'pro' } = {}) {
	const token = slack.issueToken({ team_id: team, bot_user_id: BOT });
	await installTeam(dbUrl, { team_id: team, token, plan, bot_user_id: BOT });
	return token;
}

async function lunch(team, channel, user, text) {
	const r = await conch.slashCommand({ team_id: team, channel_id: channel, user_id: user, command: '/lunch', text });
	assert.equal(r.status, 200, `/lunch ${text}: ${r.text}`);
	assert.equal(r.json?.response_type, 'ephemeral', r.text);
	return r.json;
}

const kit = lunchKit({ get slack() { return slack; }, get conch() { return conch; }, get sdb() { return sdb; } });
const { teamCalls, pollDMs, waitForPollDMs, shownDM, press, pollRow, waitForPoll, waitIdle, deadJobs, runJobNow } = kit;
// Calls the fake failed on purpose (failNext) carry no team: it fails them
// before reading the token. Tests that inject faults run alone.
const injected = (method, kind) => slack.calls(method).filter((c) => c.fault?.[kind]);

function dmText(dm) {
	return JSON.stringify(shownDM(dm));
}

// The successful group messages of a team, by channel (a group DM, or the
// poll's channel), and the kind DMs to people alone at their time.
function groupPosts(team) {
	const byChannel = new Map();
	for (const c of teamCalls(team, 'chat.postMessage')) {
		if (!ok(c) || isPollDM(c) || !/^G/.test(c.body.channel)) continue;
		if (!byChannel.has(c.body.channel)) byChannel.set(c.body.channel, []);
		byChannel.get(c.body.channel).push(c);
	}
	return byChannel;
}

// Runs the team's finished jobs of the kinds matching pattern again and
// checks that they make no Slack call.
async function rerunDone(team, pattern, kinds) {
	const calls = slack.calls().filter((c) => c.team_id === team).length;
	const again = await sdb.query(
		`UPDATE jobs SET state = 'queued', due_at = now(), attempts = 0, finished_at = NULL
		 WHERE team_id = $1 AND state = 'done' AND kind LIKE $2 RETURNING kind`, [team, pattern]);
	assert.deepEqual([...new Set(again.map((j) => j.kind))].sort(), kinds);
	await waitIdle(team);
	assert.equal(slack.calls().filter((c) => c.team_id === team).length, calls, 'no Slack call');
}

async function restart() {
	killed.push(conch);
	await conch.kill('SIGKILL');
	conch = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
}

// --- commands that change nothing --------------------------------------------

test('/lunch help, bad commands and a close with no poll change nothing', async () => {
	const team = 'T0LUNCHBAD';
	await setupTeam(team);
	const help = await lunch(team, 'C0BAD', 'U0BAD1', 'help');
	assert.match(help.text, /\/lunch start \[HH:MM \.\.\.\] \[size=N\]/);
	assert.match(help.text, /\/lunch schedule DAYS HH:MM close HH:MM/);
	assert.deepEqual(await lunch(team, 'C0BAD', 'U0BAD1', ''), help);

	for (const [text, why] of [
		['start 25:00', /`25:00` is not a time/],
		['start size=9', /group size must be a whole number from 2 to 8/],
		['start 12:00 12:00', /given twice/],
		['schedule someday 11:00 close 12:00', /is not a day/],
		['schedule weekdays 12:00 close 11:00', /must close after it opens/],
		['summary 0', /from 1 to 90/],
		['frobnicate', /unknown command `frobnicate`/],
	]) {
		const r = await lunch(team, 'C0BAD', 'U0BAD1', text);
		assert.match(r.text, /^That didn't work: /, text);
		assert.match(r.text, why, text);
		assert.match(JSON.stringify(r.blocks), /\/lunch start/, `${text}: the help follows`);
	}
	const close = await lunch(team, 'C0BAD', 'U0BAD1', 'close');
	assert.match(close.text, /no open lunch poll in this channel/);
	const unschedule = await lunch(team, 'C0BAD', 'U0BAD1', 'unschedule');
	assert.match(unschedule.text, /no scheduled lunch poll/);
	const summary = await lunch(team, 'C0BAD', 'U0BAD1', 'summary');
	assert.match(summary.text, /No lunch groups in this channel in the last 7 days/);

	for (const table of ['lunch_polls', 'lunch_schedules', 'lunch_members', 'jobs'])
		assert.equal(await sdb.count(table, 'team_id = $1', [team]), 0, table);
	assert.equal(slack.calls().filter((c) => c.team_id === team).length, 0, 'no Slack call');
});

// Error replies quote what was typed; Slack's escaping (& < >) keeps a
// quoted <!channel> or link from pinging or linking anyone.
test('/lunch error replies escape the text they quote', async () => {
	const team = 'T0LUNCHESC';
	await setupTeam(team);
	for (const [text, quoted] of [
		['<!channel>', '&lt;!channel&gt;'],
		['start <http://evil|click>', '&lt;http://evil|click&gt;'],
		['start 12:00 size=<!here>', 'size=&lt;!here&gt;'],
		['summary a&b', 'a&amp;b'],
	]) {
		const r = await lunch(team, 'C0ESC', 'U0ESC1', text);
		assert.match(r.text, /^That didn't work: /, text);
		assert.ok(r.text.includes(quoted), `${text}: ${r.text}`);
		const all = JSON.stringify([r.text, r.blocks]);
		for (const raw of ['<!channel>', '<!here>', '<http://evil', 'a&b'])
			assert.ok(!all.includes(raw), `${text}: raw ${raw} in ${all}`);
	}
	assert.equal(await sdb.count('lunch_polls', 'team_id = $1', [team]), 0);
});

// --- a full round --------------------------------------------------------------

test('a full round: 30 members answer and change their minds, close, group DMs', async () => {
	const team = 'T0LUNCH030';
	const channel = 'C0LUNCH030';
	await setupTeam(team);
	const humans = people('R', 30);
	const [starter, closer, latecomer] = [humans[0], humans[5], humans[28]];
	const otherBot = 'URBOT0001';
	const deactivated = 'URGONE001';
	slack.setUser(otherBot, { is_bot: true });
	slack.setUser(deactivated, { deleted: true });
	slack.setMembers(channel, [BOT, ...humans.slice(0, 15), otherBot, deactivated, ...humans.slice(15)]);

	const started = await lunch(team, channel, starter, 'start 12:00 13:00 size=4');
	assert.match(started.text, /Lunch poll opened for 12:00 or 13:00, in groups of about 4/);
	const poll = await waitForPoll(team, channel);
	assert.equal(poll.state, 'open');
	assert.deepEqual(poll.times, [720, 780]);
	const id = poll.poll_id;

	// One poll DM to each person, none to a bot, a deactivated user or conch.
	const dms = await waitForPollDMs(team, id, 30);
	await waitIdle(team);
	assert.deepEqual([...pollDMs(team, id).keys()].sort(), [...humans].sort());
	const dm = {};
	for (const u of humans) {
		const calls = dms.get(u);
		assert.equal(calls.length, 1, `${u} got one poll DM`);
		dm[u] = calls[0];
		const actions = dm[u].body.blocks.find((b) => b.type === 'actions').elements;
		assert.deepEqual(actions.map((b) => b.text.text), ['12:00', '13:00', 'No, thanks']);
		assert.deepEqual(actions.map((b) => b.value), [`${id}:720`, `${id}:780`, `${id}:no`]);
		assert.equal(new Set(actions.map((b) => b.action_id)).size, 3, 'action ids differ within the block');
		assert.ok(actions.every((b) => b.action_id.startsWith('lunch.answer')));
		assert.match(JSON.stringify(dm[u].body), new RegExp(`<@${starter}> asks who in <#${channel}>`));
		assert.match(dmText(dm[u]), /You haven't answered yet/);
	}
	const second = await lunch(team, channel, humans[1], 'start 14:00');
	assert.match(second.text, new RegExp(`already has an open lunch poll, started by <@${starter}>`));
	assert.equal(await sdb.count('lunch_polls', 'team_id = $1', [team]), 1);

	// Answers: 0-19 at 12:00 (0-2 first said no), 20-24 at 13:00 (20 first
	// chose 12:00), 25-27 no, 28-29 never answer.
	const want = {};
	let presses = 0;
	const answer = (u, v) => {
		presses++;
		return press(team, u, dm[u], `${id}:${v}`);
	};
	for (const i of [0, 1, 2]) await answer(humans[i], 'no');
	await answer(humans[20], 720);
	for (const i of range(30)) {
		const u = humans[i];
		if (i < 20) want[u] = 720;
		else if (i < 25) want[u] = 780;
		else if (i < 28) want[u] = -1;
		else continue;
		await answer(u, want[u] === -1 ? 'no' : want[u]);
	}
	// Someone outside the poll pressing a copied button records nothing.
	await press(team, 'UROUTSIDE', dm[humans[3]], `${id}:720`);
	await waitIdle(team);
	const rows = await sdb.query('SELECT user_id, answer FROM lunch_members WHERE team_id = $1 AND poll_id = $2', [team, id]);
	assert.equal(rows.length, 30);
	for (const r of rows) assert.equal(r.answer, want[r.user_id] ?? null, r.user_id);
	for (const u of humans) {
		const shown = dmText(dm[u]);
		if (want[u] === undefined) assert.match(shown, /You haven't answered yet/, u);
		else if (want[u] === -1) assert.match(shown, /Your answer: \*No\*/, u);
		else assert.match(shown, new RegExp(`Your answer: \\*${want[u] === 720 ? '12:00' : '13:00'}\\*`), u);
	}

	// Close: 25 said yes; five groups of 4 at 12:00, one of 5 at 13:00.
	const closed = await lunch(team, channel, closer, 'close');
	assert.match(closed.text, /Closed the lunch poll: 25 of 30 people said yes/);
	await slack.waitFor(() => [...groupPosts(team).values()].flat().length >= 6 || null, 15_000, '6 group posts');
	await waitIdle(team);
	const groups = await sdb.query('SELECT * FROM lunch_groups WHERE team_id = $1 AND poll_id = $2 ORDER BY group_no', [team, id]);
	assert.deepEqual(groups.map((g) => [g.time, g.members.length]), [[720, 4], [720, 4], [720, 4], [720, 4], [720, 4], [780, 5]]);
	for (const g of groups) {
		assert.ok(g.members.includes(g.picker), 'the picker is in the group');
		assert.ok(g.notified_at, 'notified');
		for (const u of g.members) assert.equal(want[u], g.time, `${u} is grouped at the time they chose`);
	}
	assert.deepEqual(groups.flatMap((g) => g.members).sort(), Object.keys(want).filter((u) => want[u] >= 0).sort());

	const opens = teamCalls(team, 'conversations.open');
	assert.equal(opens.length, 6);
	const posts = groupPosts(team);
	for (const g of groups) {
		const open = opens.find((c) => c.response.channel.id === g.dm_channel);
		assert.ok(open, `group ${g.group_no} was opened`);
		const users = open.body.users.split(',');
		assert.ok(users.length >= 2 && users.length <= 8);
		assert.ok(!users.includes(BOT), 'conch is never in a group DM');
		assert.deepEqual([...users].sort(), [...g.members].sort());
		const [post, ...extra] = posts.get(g.dm_channel);
		assert.equal(extra.length, 0, 'one message per group');
		const text = JSON.stringify(post.body);
		assert.match(text, new RegExp(`Lunch at ${g.time === 720 ? '12:00' : '13:00'}`));
		for (const u of g.members) assert.match(text, new RegExp(`<@${u}>`));
		assert.match(text, new RegExp(`<@${g.picker}> picks the place`));
	}

	// Every poll DM now says the poll closed, with the answer.
	for (const u of humans) {
		const shown = shownDM(dm[u]);
		assert.equal(shown.text.startsWith(CLOSED), true, `${u}: ${shown.text}`);
		assert.ok(!shown.blocks.some((b) => b.type === 'actions'), 'no buttons left');
	}
	assert.match(dmText(dm[humans[0]]), /You said 12:00/);
	assert.match(dmText(dm[humans[25]]), /You said no/);
	assert.match(dmText(dm[latecomer]), /You didn't answer/);

	// An answer to the closed poll is refused and the DM keeps saying so.
	await press(team, latecomer, dm[latecomer], `${id}:720`);
	await waitIdle(team);
	assert.equal((await sdb.one('SELECT answer FROM lunch_members WHERE team_id = $1 AND poll_id = $2 AND user_id = $3', [team, id, latecomer])).answer, null);
	assert.ok(shownDM(dm[latecomer]).text.startsWith(CLOSED));
	assert.equal((await pollRow(team, channel)).state, 'grouped');

	// Every call of the round.
	const all = slack.calls().filter((c) => c.team_id === team);
	assert.deepEqual([...new Set(all.map((c) => c.method))].sort(),
		['chat.postMessage', 'chat.update', 'conversations.members', 'conversations.open', 'users.info']);
	assert.ok(all.every(ok), 'every call succeeded');
	const members = teamCalls(team, 'conversations.members');
	assert.equal(members.length, 1);
	assert.equal(members[0].body.channel, channel);
	assert.equal(members[0].body.limit, 200);
	const infos = teamCalls(team, 'users.info').map((c) => c.body.user).sort();
	assert.deepEqual(infos, [...humans, otherBot, deactivated].sort(), 'users.info once per member but conch');
	assert.equal(teamCalls(team, 'chat.postMessage').length, 30 + 6);
	const updates = teamCalls(team, 'chat.update');
	const dmByTs = new Map(humans.map((u) => [dm[u].response.ts, dm[u]]));
	for (const c of updates) {
		const d = dmByTs.get(c.body.ts);
		assert.ok(d, 'chat.update only edits poll DMs');
		assert.equal(c.body.channel, d.response.channel);
	}
	// At least one update per person who answered and one per closed DM; at
	// most one per press and per closed DM (the refused press finds its DM
	// saying closed already).
	assert.ok(updates.length >= 28 + 30 && updates.length <= presses + 30, `${updates.length} chat.update calls`);
	assert.deepEqual(await deadJobs(team), []);
});

// --- plan limits -----------------------------------------------------------------

test('a free team polls up to 12 people; a bigger channel is refused with the upgrade offer', async () => {
	const team = 'T0LUNCHFRE';
	await setupTeam(team, { plan: 'free' });
	const twelve = people('F', 12);
	slack.setMembers('C0FREE12', [BOT, ...twelve]);
	await lunch(team, 'C0FREE12', twelve[0], 'start');
	const small = await waitForPoll(team, 'C0FREE12');
	await waitForPollDMs(team, small.poll_id, 12);

	const thirteen = people('G', 13);
	slack.setMembers('C0FREE13', [BOT, ...thirteen]);
	const hook = `free13${process.pid}`;
	const r = await conch.slashCommand({
		team_id: team, channel_id: 'C0FREE13', user_id: thirteen[0], command: '/lunch', text: 'start',
		response_url: slack.responseUrl(hook),
	});
	assert.match(r.json.text, /Checking who is in this channel: your Free plan's lunch polls reach at most 12 people/);
	assert.doesNotMatch(r.json.text, /opened/, 'never announced as opened before the count is known');
	const [refusal] = await slack.waitForResponses(hook, 1, 15_000);
	assert.match(refusal.body.text, /<#C0FREE13> was not sent: the channel has 13 people/);
	assert.match(refusal.body.text, /at most 12/);
	assert.match(refusal.body.text, /\/lunch upgrade/);
	assert.equal(teamCalls(team, 'chat.postMessage').filter((c) => c.body.channel === thirteen[0]).length, 0,
		'no DM: the refusal went through the response_url');
	await waitIdle(team);
	const big = await pollRow(team, 'C0FREE13');
	assert.equal(big.state, 'cancelled');
	assert.equal(big.cancel_reason, 'plan_limit');
	assert.equal(pollDMs(team, big.poll_id).size, 0, 'no poll DM went out');
	assert.equal(await sdb.count('lunch_members', 'team_id = $1 AND poll_id = $2', [team, big.poll_id]), 0);
	assert.equal(pollDMs(team, small.poll_id).size, 12);
	// The refused poll does not block the channel.
	assert.match((await lunch(team, 'C0FREE13', thirteen[1], 'start')).text, /Checking who is in this channel/);
	await waitIdle(team);
	assert.deepEqual(await deadJobs(team), []);
});

test('a channel conch cannot list cancels the poll and tells whoever started it', async () => {
	const team = 'T0LUNCHPRV';
	await setupTeam(team);
	// A starter whose zone conch must still ask Slack for hears it through
	// the command's response_url, where the zone would have been named.
	const hook = 'lunch-prv';
	const r = await conch.slashCommand({ team_id: team, channel_id: 'C0NOTLISTED', user_id: 'UPRIV0001', command: '/lunch', text: 'start', response_url: slack.responseUrl(hook) });
	assert.equal(r.status, 200);
	const [told] = await slack.waitForResponses(hook, 1, 15_000);
	assert.match(told.body.text, /couldn't start the lunch poll in <#C0NOTLISTED>: Slack answered `channel_not_found`/);
	await waitIdle(team);
	const poll = await pollRow(team, 'C0NOTLISTED');
	assert.equal(poll.state, 'cancelled');
	assert.equal(poll.cancel_reason, 'channel_not_found');

	// One the member directory knows (zone and all) got the plain reply: a DM.
	await sdb.query("INSERT INTO members (team_id, user_id, tz) VALUES ($1, 'UPRIV0002', 'Europe/Paris')", [team]);
	await lunch(team, 'C0NOTLISTED', 'UPRIV0002', 'start');
	const note = await slack.waitFor(() => teamCalls(team, 'chat.postMessage').find((c) => ok(c) && c.body.channel === 'UPRIV0002'),
		15_000, 'the DM to the starter');
	assert.match(note.body.text, /couldn't start the lunch poll in <#C0NOTLISTED>: Slack answered `channel_not_found`/);
	await waitIdle(team);
	assert.equal(teamCalls(team, 'chat.postMessage').filter((c) => c.body.channel === 'UPRIV0001').length, 0, 'no DM to the first');
});

test('the members job that tells a starter through the response_url why the poll could not start ends only once that post is answered', async () => {
	const team = 'T0LUNCHPR2';
	await setupTeam(team);
	const hook = 'lunch-prv2';
	slack.hold(['response_url']);
	try {
		const r = await conch.slashCommand({ team_id: team, channel_id: 'C0NOTLIST2', user_id: 'UPRIV0003', command: '/lunch', text: 'start', response_url: slack.responseUrl(hook) });
		assert.equal(r.status, 200);
		await slack.waitFor(() => slack.heldCount() === 1 || null, 15_000, 'the held response_url post');
		const job = await sdb.one("SELECT id, state FROM jobs WHERE team_id = $1 AND kind = 'lunch.members'", [team]);
		assert.equal(job.state, 'running', 'still waiting for its post (it was settled as done before, then resumed after being freed)');
	} finally {
		slack.release();
	}
	const [told] = await slack.waitForResponses(hook, 1, 15_000);
	assert.match(told.body.text, /couldn't start the lunch poll in <#C0NOTLIST2>/);
	await waitIdle(team);
	assert.equal((await sdb.one("SELECT state FROM jobs WHERE team_id = $1 AND kind = 'lunch.members'", [team])).state, 'done');
});

// --- groups in the channel ------------------------------------------------------

test('a team that chose channel messages gets one message with every group; someone alone gets a kind DM', async () => {
	const team = 'T0LUNCHCHN';
	const channel = 'C0LUNCHCHN';
	await setupTeam(team);
	await sdb.query('INSERT INTO lunch_settings (team_id, groups_in_channel) VALUES ($1, true)', [team]);
	const humans = people('C', 5);
	slack.setMembers(channel, humans);
	await lunch(team, channel, humans[0], 'start 12:00 13:00 size=2');
	const { poll_id: id } = await waitForPoll(team, channel);
	const dms = await waitForPollDMs(team, id, 5);
	for (const u of humans.slice(0, 4)) await press(team, u, dms.get(u)[0], `${id}:720`);
	await press(team, humans[4], dms.get(humans[4])[0], `${id}:780`);
	await waitIdle(team);
	await lunch(team, channel, humans[0], 'close');
	const post = await slack.waitFor(() => teamCalls(team, 'chat.postMessage').find((c) => ok(c) && c.body.channel === channel),
		15_000, 'the channel message');
	const alone = await slack.waitFor(() => teamCalls(team, 'chat.postMessage').find((c) => ok(c) && c.body.channel === humans[4] && !isPollDM(c)),
		15_000, 'the DM to the one at 13:00');
	await waitIdle(team);
	assert.match(post.body.text, /Today's lunch groups/);
	assert.equal((post.body.text.match(/\*12:00\*/g) || []).length, 2, 'two groups of 2 at 12:00');
	for (const u of humans.slice(0, 4)) assert.match(post.body.text, new RegExp(`<@${u}>`));
	assert.doesNotMatch(post.body.text, new RegExp(`<@${humans[4]}>`));
	assert.match(alone.body.text, new RegExp(`Only you picked 13:00 in the lunch poll in <#${channel}>`));
	assert.equal(teamCalls(team, 'conversations.open').length, 0, 'no group DMs');
	assert.equal(teamCalls(team, 'chat.postMessage').filter((c) => c.body.channel === channel).length, 1);
	assert.deepEqual(await deadJobs(team), []);
});

test('the next round keeps apart people who lunched together in the last one', async () => {
	const team = 'T0LUNCHHIS';
	const channel = 'C0LUNCHHIS';
	await setupTeam(team);
	const humans = people('H', 9);
	slack.setMembers(channel, humans);
	const rounds = [];
	let last = 0;
	for (let round = 0; round < 2; round++) {
		await lunch(team, channel, humans[round], 'start size=3');
		// poll_id is a bigint, read as a string: compared as a number.
		const poll = await waitForPoll(team, channel, last);
		last = Number(poll.poll_id);
		const dms = await waitForPollDMs(team, poll.poll_id, 9);
		for (const u of humans) await press(team, u, dms.get(u)[0], `${poll.poll_id}:720`);
		await waitIdle(team);
		await lunch(team, channel, humans[round], 'close');
		await waitIdle(team);
		rounds.push(await sdb.query('SELECT members FROM lunch_groups WHERE team_id = $1 AND poll_id = $2', [team, poll.poll_id]));
	}
	const pairs = (groups) => groups.flatMap(({ members }) =>
		members.flatMap((a) => members.filter((b) => a < b).map((b) => `${a}+${b}`)));
	const before = new Set(pairs(rounds[0]));
	assert.equal(rounds[1].length, 3);
	// Three groups of three can always avoid every pair of the round before.
	for (const p of pairs(rounds[1])) assert.ok(!before.has(p), `${p} lunched together in both rounds`);
	assert.deepEqual(await deadJobs(team), []);
});

// --- schedules and summary ----------------------------------------------------------

function localParts(date, timeZone) {
	const f = new Intl.DateTimeFormat('en-US', {
		timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
	});
	const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value]));
	return { weekday: p.weekday, date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}` };
}

test('schedule opens and closes polls in the scheduling user\'s time zone; unschedule stops it; summary lists the groups', async () => {
	const team = 'T0LUNCHSCH';
	const channel = 'C0LUNCHSCH';
	const tz = 'America/New_York';
	await setupTeam(team);
	const humans = people('S', 6);
	const owner = humans[0];
	slack.setUser(owner, { tz, tz_offset: -18000 });
	slack.setMembers(channel, humans);

	const r = await lunch(team, channel, owner, 'schedule mon,wed,fri 11:30 close 12:15 size=3');
	// conch does not know the owner's zone yet: the reply does not claim one.
	assert.match(r.text, /will open in this channel on Mon, Wed and Fri at 11:30 and close at 12:15, in your time zone as Slack gives it \(UTC if it gives none\), for lunch at 12:00 in groups of about 3/);
	const day = await waitUntil(() => sdb.one(
		"SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.schedule' AND payload ? 'date' AND state = 'queued'", [team]),
	{ what: 'the first scheduled day' });
	const sched = await sdb.one('SELECT * FROM lunch_schedules WHERE team_id = $1', [team]);
	assert.equal(sched.tz, tz, 'the zone comes from users.info');
	assert.deepEqual(teamCalls(team, 'users.info').map((c) => c.body.user), [owner]);
	const due = new Date(day.due_at);
	const local = localParts(due, tz);
	assert.equal(local.time, '11:30');
	assert.ok(['Mon', 'Wed', 'Fri'].includes(local.weekday), local.weekday);
	assert.equal(local.date, day.payload.date);
	assert.ok(due > new Date() && due - new Date() < 8 * 86400e3);
	assert.equal(day.dedupe_key, `schedule:${sched.schedule_id}:${day.payload.date}`);

	// Daylight saving: New York springs forward on Sunday 2025-03-09.
	const dst = await sdb.one(`SELECT lunch_next_date(21, 690, $1, '2025-03-07 17:00Z')::text AS next,
		lunch_local('2025-03-07', 690, $1) AS fri, lunch_local('2025-03-10', 690, $1) AS mon`, [tz]);
	assert.equal(dst.next, '2025-03-10');
	assert.equal(new Date(dst.fri).toISOString(), '2025-03-07T16:30:00.000Z');
	assert.equal(new Date(dst.mon).toISOString(), '2025-03-10T15:30:00.000Z');

	// The day comes: the poll opens with its close job and the next day's job.
	assert.equal((await runJobNow(day.id)).state, 'done');
	const poll = await waitForPoll(team, channel);
	assert.equal(poll.schedule_id, sched.schedule_id);
	assert.equal(poll.created_by, owner);
	assert.equal(poll.size, 3);
	assert.deepEqual(poll.times, [720]);
	const closeJob = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.close'", [team]);
	assert.equal(localParts(new Date(closeJob.due_at), tz).time, '12:15');
	assert.equal(localParts(new Date(closeJob.due_at), tz).date, day.payload.date);
	const next = await sdb.one("SELECT * FROM jobs WHERE team_id = $1 AND kind = 'lunch.schedule' AND state = 'queued'", [team]);
	assert.ok(next.payload.date > day.payload.date);
	assert.equal(localParts(new Date(next.due_at), tz).time, '11:30');
	assert.ok(['Mon', 'Wed', 'Fri'].includes(localParts(new Date(next.due_at), tz).weekday));

	const dms = await waitForPollDMs(team, poll.poll_id, 6);
	for (const u of humans.slice(0, 5)) await press(team, u, dms.get(u)[0], `${poll.poll_id}:720`);
	await press(team, humans[5], dms.get(humans[5])[0], `${poll.poll_id}:no`);
	await waitIdle(team);
	assert.equal((await runJobNow(closeJob.id)).state, 'done');
	await slack.waitFor(() => [...groupPosts(team).values()].flat().length >= 2 || null, 15_000, 'the groups');
	await waitIdle(team);
	const groups = await sdb.query('SELECT * FROM lunch_groups WHERE team_id = $1 ORDER BY group_no', [team]);
	assert.deepEqual(groups.map((g) => g.members.length).sort(), [2, 3]);

	const summary = await lunch(team, channel, humans[2], 'summary');
	assert.match(summary.text, /Lunch groups in this channel, last 7 days/);
	assert.match(summary.text, /<!date\^\d+\^\{date_short_pretty\}\|\d{4}-\d\d-\d\d>/);
	for (const g of groups) {
		assert.match(summary.text, new RegExp(`12:00: ${g.members.map((u) => `<@${u}>`).join('(, | and )')}; <@${g.picker}> picked the place`));
	}
	assert.match((await lunch(team, channel, humans[2], 'summary 1')).text, /last 1 day\*/);
	assert.match((await lunch(team, 'C0ELSEWHERE', humans[2], 'summary 30')).text, /No lunch groups in this channel in the last 30 days/);

	// A new schedule replaces the old one; unschedule stops it.
	const again = await lunch(team, channel, owner, 'schedule weekdays 11:00 close 11:45');
	assert.match(again.text, /^Replaced this channel's schedule\. A lunch poll will open in this channel every weekday at 11:00 and close at 11:45, in America\/New_York, for lunch/,
		'users.info gave the zone to the member directory: the reply names it');
	assert.equal((await sdb.one('SELECT state FROM jobs WHERE id = $1', [next.id])).state, 'cancelled');
	await waitUntil(() => sdb.one("SELECT 1 FROM jobs WHERE team_id = $1 AND kind = 'lunch.schedule' AND payload ? 'date' AND state = 'queued'", [team]),
		{ what: 'the new schedule armed' });
	const stop = await lunch(team, channel, owner, 'unschedule');
	assert.match(stop.text, /Stopped this channel's scheduled lunch poll/);
	assert.equal(await sdb.count('lunch_schedules', 'team_id = $1', [team]), 0);
	assert.equal(await sdb.count('jobs', "team_id = $1 AND kind = 'lunch.schedule' AND state = 'queued'", [team]), 0);
	// A day job that ran anyway finds its schedule gone and opens nothing.
	const polls = await sdb.count('lunch_polls', 'team_id = $1', [team]);
	assert.equal((await runJobNow(next.id)).state, 'done');
	assert.equal(await sdb.count('lunch_polls', 'team_id = $1', [team]), polls);
	assert.deepEqual(await deadJobs(team), []);
});

// --- crashes ------------------------------------------------------------------------

test('SIGKILL in the middle of the fan-out, then in the middle of the grouping: the round completes with no lost and no duplicate DM', async () => {
	const team = 'T0LUNCHKIL';
	const channel = 'C0LUNCHKIL';
	await setupTeam(team);
	const humans = people('K', 40);
	slack.setMembers(channel, [BOT, ...humans]);

	// Ten DMs go out, then Slack stops answering the other thirty (all in
	// flight at once in the outbound engine) and the server is killed.
	slack.failNext('chat.postMessage', { delayMs: 1 }, 10);
	slack.failNext('chat.postMessage', { hang: true }, 30);
	await lunch(team, channel, humans[0], 'start');
	const { poll_id: id } = await waitForPoll(team, channel);
	await slack.waitFor(() => injected('chat.postMessage', 'hang').length === 30 || null, 15_000, 'thirty hung poll DMs');
	assert.equal(pollDMs(team, id).size, 10);
	await restart();
	const dms = await waitForPollDMs(team, id, 40, 20_000);
	await waitIdle(team);
	for (const u of humans) assert.equal(pollDMs(team, id).get(u).length, 1, `${u}: exactly one poll DM`);
	assert.equal(teamCalls(team, 'chat.postMessage').filter(ok).length, 40);
	assert.equal(await sdb.count('lunch_members', 'team_id = $1 AND dm_ts IS NOT NULL', [team]), 40);
	// The fan-out's jobs once more while the poll is open (a runner that
	// died after sending and recording, before marking its job done).
	await rerunDone(team, 'lunch.%', ['lunch.dm', 'lunch.members']);

	for (const u of humans) await press(team, u, dms.get(u)[0], `${id}:720`);
	await waitIdle(team);

	// Two groups' conversations.open hang (the others go on: no runner waits
	// for them); kill.
	slack.failNext('conversations.open', { delayMs: 1 }, 3);
	slack.failNext('conversations.open', { hang: true }, 2);
	await lunch(team, channel, humans[1], 'close');
	await slack.waitFor(() => injected('conversations.open', 'hang').length === 2 || null, 15_000,
		'two hung conversations.open');
	// The other eight finish (message sent and recorded) before the kill:
	// a kill between Slack's answer and its record would send that one
	// again (delivery is at least once), which is not what this checks.
	await waitUntil(async () => (await sdb.count('lunch_groups', 'team_id = $1 AND notified_at IS NOT NULL', [team])) === 8,
		{ timeoutMs: 15_000, what: 'the eight other groups messaged and recorded' });
	assert.equal([...groupPosts(team).values()].flat().length, 8, 'the two hung groups have no message');
	await restart();
	await slack.waitFor(() => [...groupPosts(team).values()].flat().length >= 10 || null, 20_000, '10 group posts');
	await waitIdle(team);
	const groups = await sdb.query('SELECT * FROM lunch_groups WHERE team_id = $1 ORDER BY group_no', [team]);
	assert.equal(groups.length, 10);
	assert.deepEqual(groups.flatMap((g) => g.members).sort(), [...humans].sort());
	const posts = groupPosts(team);
	for (const g of groups) {
		assert.ok(g.notified_at);
		assert.equal(posts.get(g.dm_channel)?.length, 1, `group ${g.group_no}: exactly one message`);
	}
	assert.equal(posts.size, 10);
	for (const u of humans) assert.ok(shownDM(dms.get(u)[0]).text.startsWith(CLOSED), `${u}'s DM says closed`);
	assert.equal(teamCalls(team, 'chat.postMessage').filter(ok).length, 40 + 10);
	assert.deepEqual(await deadJobs(team), []);

	// Every job of the round once more, as if each runner had died after
	// its work but before marking the job done: nothing is sent again.
	await rerunDone(team, 'lunch.%',
		['lunch.dm', 'lunch.dm_update', 'lunch.group', 'lunch.members', 'lunch.notify_group']);
	assert.equal(await sdb.count('lunch_groups', 'team_id = $1', [team]), 10);
	assert.deepEqual(await deadJobs(team), []);
});

// --- a big channel -------------------------------------------------------------------

async function inBatches(items, size, fn) {
	for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(fn));
}

test('a 500-member channel gets every DM through 429s with no duplicate; close to the last group DM is measured', async () => {
	const team = 'T0LUNCH500';
	const channel = 'C0LUNCH500';
	await setupTeam(team);
	const humans = people('B', 500);
	slack.setMembers(channel, [BOT, ...humans]);
	slack.failNext('conversations.members', { status: 429, retryAfter: 1 });
	slack.failNext('users.info', { status: 429, retryAfter: 1 }, 2);
	slack.rateLimit('chat.postMessage', 100, 1);
	slack.rateLimit('chat.update', 100, 1);
	try {
		await lunch(team, channel, humans[0], 'start 12:00 12:30');
		const { poll_id: id } = await waitForPoll(team, channel);
		const dms = await waitForPollDMs(team, id, 500, 60_000);
		await waitIdle(team, 30_000);
		const limited = teamCalls(team, 'chat.postMessage').filter((c) => c.status === 429).length;
		assert.ok(limited > 0, 'Slack answered 429 to some DMs');
		assert.equal(injected('conversations.members', 'status').length, 1);
		assert.equal(injected('users.info', 'status').length, 2);
		assert.equal(teamCalls(team, 'conversations.members').filter(ok).length, 3, 'three pages of 200');
		for (const u of humans) assert.equal(pollDMs(team, id).get(u)?.length, 1, `${u}: exactly one poll DM`);
		assert.equal(teamCalls(team, 'chat.postMessage').filter(ok).length, 500);
		assert.equal(new Set(teamCalls(team, 'users.info').filter(ok).map((c) => c.body.user)).size, 500);
		assert.equal(teamCalls(team, 'users.info').filter(ok).length, 500, 'users.info once per member');

		const time = new Map(humans.map((u, i) => [u, i % 2 ? 750 : 720]));
		await inBatches(humans, 25, (u) => press(team, u, dms.get(u)[0], `${id}:${time.get(u)}`));
		await waitIdle(team, 30_000);
		slack.rateLimit('chat.postMessage', 0);
		slack.rateLimit('chat.update', 0);

		const before = teamCalls(team, 'chat.postMessage').length;
		const t0 = Date.now();
		await lunch(team, channel, humans[1], 'close');
		const expected = await waitUntil(async () => (await sdb.one(
			"SELECT count(*)::int AS n FROM lunch_groups WHERE team_id = $1", [team])).n, { what: 'the groups' });
		const done = await slack.waitFor(() => {
			const posts = teamCalls(team, 'chat.postMessage').slice(before).filter((c) => ok(c) && /^G/.test(c.body.channel));
			return posts.length >= expected ? posts : null;
		}, 30_000, `${expected} group posts`);
		const ms = Math.max(...done.map((c) => c.time)) - t0;
		console.log(`lunch: close to last group DM for 500 members: ${ms} ms (${expected} groups)`);
		await waitIdle(team, 30_000);
		assert.equal(expected, 2 * 63, '250 people at each time in groups of about 4');
		assert.equal(groupPosts(team).size, expected, 'one message per group');
		assert.ok([...groupPosts(team).values()].every((p) => p.length === 1));
		assert.deepEqual(await deadJobs(team), []);
	} finally {
		slack.rateLimit('chat.postMessage', 0);
		slack.rateLimit('chat.update', 0);
	}
});

test('no lunch job or statement logged an error, and conch stops cleanly', async () => {
	const errors = [conch, ...killed].flatMap((c) => c.logs((j) => j?.level === 'error' && /lunch/.test(j.msg)));
	assert.deepEqual(errors, []);
	await conch.stop();
});
