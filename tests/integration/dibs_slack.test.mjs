// /dibs in Slack beyond the basics, against the real server, a real
// PostgreSQL and the fake Slack: synonyms, mine, add, short errors, the
// whole queue in q, and every reply and Slack call within Block Kit's limits.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { blockKitProblems, messageProblems } from '../lib/blockkit.mjs';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { listenLocal } from '../lib/listen.mjs';
import { testCluster } from '../lib/pg.mjs';
import { blockActions, commandForm, db, eventEnvelope, installTeam, startConch, waitUntil } from '../lib/server.mjs';

const PRO = 'T0SLACKPRO';
const FREE = 'T0SLACKFRE';
const SET = 'T0SLACKSET';
const CHANNEL = 'C0SLACK001';

let cluster, dbName, dbUrl, slack, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_dibs_slack_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
	await installTeam(dbUrl, { team_id: PRO, token: slack.issueToken({ team_id: PRO }), plan: 'pro' });
	await installTeam(dbUrl, { team_id: FREE, token: slack.issueToken({ team_id: FREE }), plan: 'free' });
	await installTeam(dbUrl, { team_id: SET, token: slack.issueToken({ team_id: SET }), plan: 'pro' });
});

after(async () => {
	await conch?.stop({ allowUnclean: true }).catch(() => {});
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// Every reply is checked against Block Kit's limits.
// hook: the id of the command's response_url at the fake Slack (else a random one).
async function dibs(text, { user = 'U0AAAAAAA1', team = PRO, channel = CHANNEL, hook } = {}) {
	const fields = { team_id: team, user_id: user, channel_id: channel, command: '/dibs', text };
	if (hook) fields.response_url = slack.responseUrl(hook);
	const r = await conch.slashCommand(fields);
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	assert.ok(r.json, `/dibs ${text}: not JSON: ${r.text}`);
	assert.equal(r.json.response_type, 'ephemeral');
	assert.deepEqual(messageProblems(r.json), [], `/dibs ${text}`);
	return r.json;
}

function textOf(msg) {
	return [msg.text, ...(msg.blocks || []).flatMap((b) => [b.text?.text || '', ...(b.elements || []).map((e) => e.text || '')])].join('\n');
}

async function state(team = PRO) {
	return {
		things: await sdb.query('SELECT name, display_name FROM things WHERE team_id = $1 ORDER BY 1', [team]),
		holds: await sdb.query('SELECT thing, user_id, hold_id FROM holds WHERE team_id = $1 ORDER BY 1', [team]),
		queue: await sdb.query('SELECT thing, user_id, position FROM queue WHERE team_id = $1 ORDER BY 1, 3', [team]),
	};
}

// Waits until no job is queued or running (the earlier tests' DMs and
// announcements are out).
async function jobsDone() {
	await waitUntil(async () => (await sdb.count('jobs', "state IN ('queued', 'running') AND due_at <= now()")) === 0, { what: 'jobs done' });
}

async function holder(thing, team = PRO) {
	const row = await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [team, thing]);
	return row?.user_id ?? null;
}

// --- grammar ---------------------------------------------------------------------

test('take, grab and claim take; release, free, done and drop release; who and status show', async () => {
	for (const [on, off] of [['take', 'release'], ['grab', 'free'], ['claim', 'done'], ['take', 'drop']]) {
		assert.match(textOf(await dibs(`${on} syn-env`, { user: 'U0SYN00001' })), /\*syn-env\* is yours/);
		assert.equal(await holder('syn-env'), 'U0SYN00001');
		assert.match(textOf(await dibs(`${on} syn-env`, { user: 'U0SYN00002' })), /You are #1 in the queue/);
		for (const q of ['who syn-env', 'status syn-env', 'q syn-env'])
			assert.match(textOf(await dibs(q)), /held by <@U0SYN00001>[\s\S]*1\. <@U0SYN00002>/, q);
		assert.match(textOf(await dibs(`${off} syn-env`, { user: 'U0SYN00002' })), /You left the queue/);
		assert.match(textOf(await dibs(`${off} syn-env`, { user: 'U0SYN00001' })), /You released \*syn-env\*/);
		assert.equal(await holder('syn-env'), null);
	}
});

test('a thing may be called like a verb: on release, off take, q who mean what they always meant', async () => {
	assert.match(textOf(await dibs('on release', { user: 'U0VERB0001' })), /\*release\* is yours/);
	assert.match(textOf(await dibs('q release')), /\*release\*\s+held by <@U0VERB0001>/);
	assert.match(textOf(await dibs('off release', { user: 'U0VERB0001' })), /You released \*release\*/);
	assert.match(textOf(await dibs('on who', { user: 'U0VERB0001' })), /\*who\* is yours/);
	assert.match(textOf(await dibs('who who')), /\*who\*\s+held by <@U0VERB0001>/);
	assert.match(textOf(await dibs('done who', { user: 'U0VERB0001' })), /You released \*who\*/);
});

test('mine, who and status with no thing list the caller\'s holds and places across the team', async () => {
	const me = 'U0MINE0001';
	assert.match(textOf(await dibs('mine', { user: me })), /You hold nothing and wait for nothing/);
	await dibs('on mine-held', { user: me });
	await dibs('on mine-waited', { user: 'U0MINEOTH1' });
	await dibs('on mine-waited', { user: 'U0MINEOTH2' });
	await dibs('on mine-waited', { user: me });
	for (const text of ['mine', 'who', 'status', ' WHO ']) {
		const t = textOf(await dibs(text, { user: me }));
		assert.match(t, /You hold \*mine-held\*/, text);
		assert.match(t, /#2 in the queue for \*mine-waited\*/, text);
		assert.doesNotMatch(t, /mine-waited.*You hold|You hold \*mine-waited/);
	}
	// Someone else sees their own, not mine.
	assert.match(textOf(await dibs('mine', { user: 'U0MINEOTH1' })), /You hold \*mine-waited\*/);
	assert.doesNotMatch(textOf(await dibs('mine', { user: 'U0MINEOTH1' })), /mine-held/);
});

test('bad commands get one line saying what was wrong and that command\'s usage, and change nothing', async () => {
	await dibs('on err-env', { user: 'U0ERR00001' });
	await jobsDone();
	const before = await state();
	const posts = slack.calls('chat.postMessage').length;
	const jobs = await sdb.count('jobs', 'team_id = $1', [PRO]);
	const cases = [
		['kick err-env because afk', /^kick takes no reason\. Usage: `\/dibs kick THING`$/],
		['release err-env because done', /^off takes no reason\. Usage: `\/dibs off THING`$/],
		['off err-env for 2h', /^off takes no duration\. Usage: `\/dibs off THING`$/],
		['q err env', /^unexpected "env" after "err": q takes one thing \(names have no spaces\)\. Usage: `\/dibs q THING`$/],
		['take', /^on needs a thing, like \/dibs on staging\. Usage: `\/dibs on THING \[for DURATION\] \[because REASON\]`$/],
		['on err-env for 2 fortnights', /is not a duration.*\. Usage: `\/dibs on /],
		['mine please', /^unexpected "please": mine takes nothing after it\. Usage: `\/dibs mine`$/],
		['add', /^add needs a thing, like \/dibs add staging\. Usage: `\/dibs add THING \[THING \.\.\.\]`$/],
		['add a b because c', /^add takes thing names only, no reason or duration\. Usage: `\/dibs add /],
		['relese err-env', /^unknown command "relese"\. `\/dibs help` lists the commands\.$/],
	];
	for (const [text, want] of cases) {
		const msg = await dibs(text, { user: 'U0ERR00002' });
		assert.match(msg.text, want, text);
		assert.doesNotMatch(msg.text, /\n/, `${text}: one line`);
	}
	assert.deepEqual(await state(), before);
	assert.equal(await sdb.count('jobs', 'team_id = $1', [PRO]), jobs);
	assert.equal(slack.calls('chat.postMessage').length, posts);
	await dibs('off err-env', { user: 'U0ERR00001' });
});

// --- add ---------------------------------------------------------------------------

test('add creates things without holding them; names already there are named, not made twice', async () => {
	let t = textOf(await dibs('add Add-One add-two add-one ADD-TWO', { user: 'U0ADD00001' }));
	assert.equal(t.split('\n')[0], 'Added *Add-One, add-two*. `/dibs on THING` takes one.');
	const rows = await sdb.query("SELECT name, display_name, created_by FROM things WHERE team_id = $1 AND name LIKE 'add-%' ORDER BY 1", [PRO]);
	assert.deepEqual(rows, [
		{ name: 'add-one', display_name: 'Add-One', created_by: 'U0ADD00001' },
		{ name: 'add-two', display_name: 'add-two', created_by: 'U0ADD00001' },
	]);
	assert.equal(await sdb.count('holds', "team_id = $1 AND thing LIKE 'add-%'", [PRO]), 0);
	t = textOf(await dibs('add add-two add-three'));
	assert.match(t, /^Added \*add-three\* \(already there: \*add-two\*\)/);
	t = textOf(await dibs('add add-one'));
	assert.match(t, /^Nothing new: \*Add-One\* already there\./);
	assert.match(textOf(await dibs('on add-one', { user: 'U0ADD00002' })), /\*add-one\* is yours/);
	assert.equal(await sdb.one("SELECT display_name FROM things WHERE team_id = $1 AND name = 'add-one'", [PRO]).then((r) => r.display_name), 'Add-One');
});

test('on the free plan add is all or nothing against the 5-thing limit, and the reply names the limit', async () => {
	await dibs('add f1 f2 f3', { team: FREE });
	const before = await state(FREE);
	const t = textOf(await dibs('add f4 f5 f6 f1', { team: FREE }));
	assert.match(t, /^Nothing was added: the Free plan allows 5 things; the team has 3 and this would add 3\./);
	assert.match(t, /\/dibs upgrade/);
	assert.deepEqual(await state(FREE), before);
	// Exactly up to the limit is fine; repeats of existing names cost nothing.
	assert.match(textOf(await dibs('add f4 f5 f1 F2', { team: FREE })), /^Added \*f4, f5\* \(already there: \*f1, f2\*\)/);
	assert.equal(await sdb.count('things', 'team_id = $1', [FREE]), 5);
	assert.match(textOf(await dibs('add f1', { team: FREE })), /^Nothing new/);
	assert.match(textOf(await dibs('add f6', { team: FREE })), /^Nothing was added: the Free plan allows 5 things; the team has 5/);
	assert.equal(await sdb.count('things', 'team_id = $1', [FREE]), 5);
});

// --- q: the whole queue ----------------------------------------------------------

test('q shows the whole queue, numbered, so place 25 of 30 is there to see', async () => {
	await dibs('on long-q', { user: 'U0LONGQ000' });
	for (let i = 1; i <= 30; i++) await dibs('on long-q', { user: `U0LONGQ${String(i).padStart(3, '0')}` });
	const msg = await dibs('q long-q');
	const t = textOf(msg);
	assert.match(t, /\*Queue\* \(30\)/);
	for (let i = 1; i <= 30; i++) assert.match(t, new RegExp(`(^|\\n)${i}\\. <@U0LONGQ${String(i).padStart(3, '0')}>`), `place ${i}`);
	assert.doesNotMatch(t, /more/);
	// list still keeps each thing short.
	assert.match(textOf(await dibs('list')), /long-q[\s\S]*and 20 more/);
});

test('a queue of 3,000 fills sections of at most 3,000 characters and 50 blocks, then says how many more', async () => {
	await dibs('on huge-q', { user: 'U0HUGE0000' });
	await sdb.query(
		`INSERT INTO queue (team_id, thing, user_id, position)
		 SELECT $1, 'huge-q', 'U' || lpad(i::text, 9, '0'), i FROM generate_series(1, 3000) i`, [PRO]);
	const msg = await dibs('q huge-q');
	assert.ok(msg.blocks.length <= 50);
	const t = textOf(msg);
	assert.match(t, /1\. <@U000000001>/);
	assert.match(t, /3000\. <@U000003000>/);
	assert.doesNotMatch(t, /more in line/);
	await sdb.query(
		`INSERT INTO queue (team_id, thing, user_id, position)
		 SELECT $1, 'huge-q', 'U' || lpad(i::text, 9, '0'), i FROM generate_series(3001, 9000) i`, [PRO]);
	const big = await dibs('q huge-q');
	assert.equal(big.blocks.length, 50);
	const shown = (textOf(big).match(/^\d+\. <@U/gm) || []).length;
	const more = Number(textOf(big).match(/and (\d+) more in line/)[1]);
	assert.equal(shown + more, 9000);
	assert.ok(shown > 5000, `${shown} shown`);
});

// --- Did you mean? ------------------------------------------------------------------

function buttonsOf(msg) {
	return (msg.blocks || []).filter((b) => b.type === 'actions').flatMap((b) => b.elements);
}

async function press(button, { user, channel = CHANNEL, team = PRO }) {
	const r = await conch.interactivity(blockActions({
		team_id: team, user_id: user, channel_id: channel, action_id: button.action_id, value: button.value,
		container_type: 'message', is_ephemeral: true,
	}));
	assert.equal(r.status, 200, r.text);
}

function ephemeralsTo(user) {
	return slack.calls('chat.postEphemeral').filter((c) => c.body?.user === user);
}

test('on a near miss of a thing asks Did you mean? and creates nothing; close means 2 edits or separators, not digits', async () => {
	await dibs('add Staging-EU prod-db node1 abc', { user: 'U0DYM00001' });
	const before = await state();
	for (const [typed, want] of [['stageing-eu', 'Staging-EU'], ['staging_eu', 'Staging-EU'], ['proddb', 'prod-db'], ['Prod.DB', 'prod-db']]) {
		const msg = await dibs(`on ${typed}`, { user: 'U0DYM00002' });
		assert.equal(msg.text, `There is no *${typed}* yet. Did you mean *${want}*?`, typed);
		assert.deepEqual(buttonsOf(msg).map((b) => b.text.text), [`Take ${want}`, `Create ${typed}`]);
	}
	assert.deepEqual(await state(), before);
	// Not close: only digits differ, under 4 characters, or far off.
	assert.match(textOf(await dibs('on node2', { user: 'U0DYM00002' })), /\*node2\* is yours/);
	assert.match(textOf(await dibs('on abd', { user: 'U0DYM00002' })), /\*abd\* is yours/);
	assert.match(textOf(await dibs('on prod-frontend', { user: 'U0DYM00002' })), /\*prod-frontend\* is yours/);
	// An existing thing is taken, never questioned.
	assert.match(textOf(await dibs('on staging-eu', { user: 'U0DYM00002' })), /\*staging-eu\* is yours/);
	for (const t of ['node2', 'abd', 'prod-frontend', 'staging-eu']) await dibs(`off ${t}`, { user: 'U0DYM00002' });
});

test('the Did you mean? buttons act only for the person they were made for', async () => {
	await dibs('add deploy-box', { user: 'U0DYM00010' });
	const msg = await dibs('on deploy-bx for 1h because hotfix', { user: 'U0DYM00011' });
	assert.match(msg.text, /Did you mean \*deploy-box\*\?/);
	const [take, create] = buttonsOf(msg);
	const before = await state();
	// Someone else presses: told so, nothing changes.
	await press(take, { user: 'U0DYM00012' });
	await press(create, { user: 'U0DYM00012' });
	await waitUntil(() => ephemeralsTo('U0DYM00012').length === 2, { what: 'two ephemerals to the other user' });
	for (const c of ephemeralsTo('U0DYM00012')) {
		assert.equal(c.body.channel, CHANNEL);
		assert.match(c.body.text, /^This button was made for <@U0DYM00011>; it does nothing for you\./);
	}
	assert.deepEqual(await state(), before);
	// The right person takes the suggestion, with the command's duration and reason.
	await press(take, { user: 'U0DYM00011' });
	await waitUntil(() => ephemeralsTo('U0DYM00011').length === 1, { what: 'the answer to the press' });
	const [ans] = ephemeralsTo('U0DYM00011');
	assert.equal(ans.body.channel, CHANNEL);
	assert.match(ans.body.text, /^\*deploy-box\* is yours until <!date\^\d+\^/);
	const hold = await sdb.one("SELECT user_id, reason, duration_seconds FROM holds WHERE team_id = $1 AND thing = 'deploy-box'", [PRO]);
	assert.deepEqual(hold, { user_id: 'U0DYM00011', reason: 'hotfix', duration_seconds: 3600 });
	assert.equal(await sdb.count('things', "team_id = $1 AND name = 'deploy-bx'", [PRO]), 0);
	// Create makes the name as typed.
	await press(create, { user: 'U0DYM00011' });
	await waitUntil(() => ephemeralsTo('U0DYM00011').length === 2, { what: 'the answer to create' });
	assert.match(ephemeralsTo('U0DYM00011')[1].body.text, /^\*deploy-bx\* is yours until/);
	assert.equal(await holder('deploy-bx'), 'U0DYM00011');
	assert.equal(await sdb.one("SELECT display_name FROM things WHERE team_id = $1 AND name = 'deploy-bx'", [PRO]).then((r) => r.display_name), 'deploy-bx');
	await dibs('off deploy-box', { user: 'U0DYM00011' });
	await dibs('off deploy-bx', { user: 'U0DYM00011' });
});

test('a forged suggestion button value changes nothing', async () => {
	const before = await state();
	for (const value of ['', 'U0DYM00020', 'U0DYM00020 x staging', 'U0DYM00020 -5 staging', 'U0DYM00020 0 bad*name', 'U0DYM00020 99999999999 staging'])
		await press({ action_id: 'dibs.suggest.take.0', value }, { user: 'U0DYM00020' });
	assert.deepEqual(await state(), before);
	assert.equal(ephemeralsTo('U0DYM00020').length, 0);
});

// --- the holder hears who waits ---------------------------------------------------

function dmsTo(user, team = PRO) {
	return slack.calls('chat.postMessage').filter((c) => c.body?.channel === user && c.team_id === team);
}

async function queueJoinedJobs(thing) {
	return sdb.count('jobs', "team_id = $1 AND kind = 'dibs.notify' AND payload->>'event' = 'queue_joined' AND payload->>'thing' = $2", [PRO, thing]);
}

test('the holder gets a DM naming who waits, at most one a thing every 10 minutes, with a Release button for that hold', async () => {
	const [A, B, C, D] = ['U0WAITA001', 'U0WAITB001', 'U0WAITC001', 'U0WAITD001'];
	await dibs('on wait-box', { user: A });
	assert.equal(await queueJoinedJobs('wait-box'), 0);
	await dibs('on wait-box', { user: B });
	await waitUntil(() => dmsTo(A).length === 1, { what: 'the DM to the holder' });
	const [dm] = dmsTo(A);
	assert.equal(dm.body.text, '<@U0WAITB001> is waiting for your *wait-box*. Release it when you are done.');
	const hold = await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'wait-box'", [PRO]);
	const buttons = dm.body.blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements);
	assert.deepEqual(buttons.map((b) => [b.text.text, b.action_id, b.value]), [['Release', 'dibs.release', `wait-box ${hold.hold_id}`]]);
	// A second and a repeated join within 10 minutes: no more DMs (no job is even queued).
	await dibs('on wait-box', { user: C });
	await dibs('on wait-box', { user: B });
	assert.equal(await queueJoinedJobs('wait-box'), 1);
	// Ten minutes later (moved back in the database) the next join DMs again, naming everyone.
	await sdb.query("UPDATE things SET queue_dm_at = now() - interval '10 minutes 1 second' WHERE team_id = $1 AND name = 'wait-box'", [PRO]);
	await dibs('on wait-box', { user: D });
	await waitUntil(() => dmsTo(A).length === 2, { what: 'the second DM' });
	assert.equal(dmsTo(A)[1].body.text, '<@U0WAITB001>, <@U0WAITC001> and <@U0WAITD001> are waiting for your *wait-box*. Release it when you are done.');
	assert.equal(await queueJoinedJobs('wait-box'), 2);
	// Release acts only for the holder, only on that hold.
	const release = buttons[0];
	const press = (user) => conch.interactivity(blockActions({ team_id: PRO, user_id: user, channel_id: dm.body.channel, action_id: release.action_id, value: release.value, message_ts: '1.000001' }));
	assert.equal((await press(B)).status, 200);
	assert.equal(await holder('wait-box'), A);
	assert.equal((await press(A)).status, 200);
	await waitUntil(async () => (await holder('wait-box')) === B, { what: 'B holds wait-box' });
	await waitUntil(() => dmsTo(B).some((c) => /\*wait-box\* is yours/.test(c.body.text)), { what: "B's your_turn DM" });
	// The old button does nothing to B's new hold.
	assert.equal((await press(A)).status, 200);
	assert.equal((await press(B)).status, 200);
	assert.equal(await holder('wait-box'), B);
	// No one waits, so no DM about a queue: taking a free thing tells nobody.
	for (const u of [B, C, D]) await dibs('off wait-box', { user: u });
	assert.equal(await queueJoinedJobs('wait-box'), 2);
});

// --- channel announcements ------------------------------------------------------------

const ROOM2 = 'C0SLACK002';

function postsIn(channel, team = PRO) {
	return slack.calls('chat.postMessage').filter((c) => c.body?.channel === channel && c.team_id === team && !c.fault);
}

async function api(method, path, { token, body } = {}) {
	const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
	const r = await conch.fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	return { status: r.status, json: await r.json().catch(() => null) };
}

test('takes, releases and hand-overs are one line in the channel where they were typed; the API, and the DM button, announce in the last one', async () => {
	const [A, B] = ['U0ANNA0001', 'U0ANNB0001'];
	await dibs('on ann-box', { user: A });
	await waitUntil(() => postsIn(CHANNEL).some((c) => c.body.text === '<@U0ANNA0001> took *ann-box*.'), { what: 'the take announced' });
	await dibs('on ann-box', { user: B, channel: ROOM2 }); // queued: not announced
	await dibs('off ann-box', { user: A, channel: ROOM2 });
	await waitUntil(() => postsIn(ROOM2).some((c) => c.body.text === "<@U0ANNA0001> released *ann-box*. It is now <@U0ANNB0001>'s."), { what: 'the hand-over announced in the second channel' });
	assert.equal(postsIn(ROOM2).filter((c) => /ann-box/.test(c.body.text)).length, 1);
	assert.equal(postsIn(CHANNEL).filter((c) => /ann-box/.test(c.body.text)).length, 1);
	// From the API (no channel): the thing's last channel, ROOM2.
	const token = (await dibs('token', { user: B })).text.match(/`(conch_[A-Za-z0-9_-]+)`/)[1];
	let r = await api('DELETE', '/things/ann-box/dibs', { token });
	assert.equal(r.status, 200);
	await waitUntil(() => postsIn(ROOM2).some((c) => c.body.text === '<@U0ANNB0001> released *ann-box*.'), { what: 'the API release announced' });
	r = await api('POST', '/things/ann-box/dibs', { token, body: {} });
	assert.equal(r.json.status, 'holding');
	await waitUntil(() => postsIn(ROOM2).some((c) => c.body.text === '<@U0ANNB0001> took *ann-box*.'), { what: 'the API take announced' });
	// The Release button of a DM (no channel either) announces in the last channel too.
	await sdb.query("UPDATE things SET queue_dm_at = NULL WHERE team_id = $1 AND name = 'ann-box'", [PRO]);
	await dibs('on ann-box', { user: A }); // queued: a join moves no announcement
	await waitUntil(() => dmsTo(B).some((c) => /waiting for your \*ann-box\*/.test(c.body.text)), { what: 'the DM to B' });
	const dm = dmsTo(B).find((c) => /waiting for your \*ann-box\*/.test(c.body.text));
	const button = dm.body.blocks.find((b) => b.type === 'actions').elements[0];
	await conch.interactivity(blockActions({ team_id: PRO, user_id: B, channel_id: dm.body.channel, action_id: button.action_id, value: button.value }));
	await waitUntil(() => postsIn(ROOM2).some((c) => c.body.text === "<@U0ANNB0001> released *ann-box*. It is now <@U0ANNA0001>'s."), { what: 'the button release announced' });
	await dibs('off ann-box', { user: A });
	await jobsDone();
	assert.deepEqual(blockKitProblems(slack), []);
});

test('settings announce off quiets one channel; DMs never get announcements', async () => {
	slack.setUser('U0ANNADMIN', { team_id: PRO, is_admin: true });
	const quiet = 'C0SLACKQT1';
	let msg;
	await waitUntil(async () => {
		msg = await dibs('settings announce off', { user: 'U0ANNADMIN', channel: quiet });
		return !/still learning/.test(msg.text);
	}, { what: 'the setting changed' });
	assert.equal(msg.text, 'Done: announce in this channel is now *off*.');
	assert.match((await dibs('settings', { channel: quiet })).text, /announce in this channel: \*off\*/);
	assert.match((await dibs('settings')).text, /announce in this channel: \*on\*/);
	assert.equal((await dibs('settings announce on', { user: 'U0ANNADMIN', channel: 'D0ANNDM001' })).text, 'Announcements are set per channel: type this in the channel. Nothing changed.');
	await dibs('on quiet-box', { user: 'U0ANNQ0001', channel: quiet });
	await dibs('off quiet-box', { user: 'U0ANNQ0001', channel: quiet });
	await dibs('on dm-box', { user: 'U0ANNQ0001', channel: 'D0ANNDM001' });
	await dibs('off dm-box', { user: 'U0ANNQ0001', channel: 'D0ANNDM001' });
	assert.equal(await sdb.count('jobs', "kind = 'dibs.announce' AND payload->>'thing' IN ('quiet-box', 'dm-box')"), 0);
	assert.equal(await sdb.count('dibs_channel_settings', 'team_id = $1 AND channel_id = $2 AND NOT announce', [PRO, quiet]), 1);
});

const INVITE = (channel) => `conch could not post in <#${channel}> (it is not a member there): invite it with \`/invite @conch\` in that channel, or turn announcements off there with \`/dibs settings announce off\`.`;

test('where the bot may not post, the person who typed the command is told how to invite it through the command\'s response_url; kicks too', async () => {
	const priv = 'G0SLACKPRV';
	const pub = 'C0SLACKPUB';
	const A = 'U0PRIVA001';
	const K = 'U0PRIVK001';
	slack.setChannel(priv, { is_private: true });
	slack.setChannel(pub, { is_private: false });
	// A public channel the bot is not in: posted (chat:write.public).
	await dibs('on pub-box', { user: A, channel: pub });
	await waitUntil(() => postsIn(pub).some((c) => c.body.text === '<@U0PRIVA001> took *pub-box*.'), { what: 'the public post' });
	// A private channel: the post is refused; the typer hears through the command's response_url, once.
	await dibs('on priv-box', { user: A, channel: priv, hook: 'privon1' });
	const [said] = await slack.waitForResponses('privon1', 1);
	assert.deepEqual(said.body, { response_type: 'ephemeral', replace_original: false, text: INVITE(priv) });
	await jobsDone();
	assert.equal(slack.responses('privon1').length, 1);
	assert.equal(slack.calls('chat.postMessage').filter((c) => c.body?.channel === priv).length, 1);
	assert.equal(slack.calls('chat.postEphemeral').filter((c) => c.body?.channel === priv).length, 0);
	assert.equal(dmsTo(A).filter((c) => c.body.text === INVITE(priv)).length, 0);
	// The announcement job carried the command's response_url.
	assert.equal(await sdb.count('jobs', "team_id = $1 AND kind = 'dibs.announce' AND payload->>'thing' = 'priv-box' AND payload->>'response_url' = $2", [PRO, slack.responseUrl('privon1')]), 1);
	// A kick there: the kicker hears through the kick's response_url.
	await dibs('kick priv-box', { user: K, channel: priv, hook: 'privkick1' });
	const [kicked] = await slack.waitForResponses('privkick1', 1);
	assert.equal(kicked.body.text, INVITE(priv));
	await jobsDone();
	assert.equal(dmsTo(K).filter((c) => c.body.text === INVITE(priv)).length, 0);
	// The Release button of the holder's DM: the presser hears through the button's response_url.
	await dibs('on hidden-lamp', { user: A, channel: priv, hook: 'privbtn0' });
	await dibs('on hidden-lamp', { user: K, channel: priv });
	await waitUntil(() => dmsTo(A).some((c) => /waiting for your \*hidden-lamp\*/.test(c.body.text)), { what: 'the DM to the holder' });
	const dm = dmsTo(A).find((c) => /waiting for your \*hidden-lamp\*/.test(c.body.text));
	const button = dm.body.blocks.find((b) => b.type === 'actions').elements[0];
	const pressed = await conch.interactivity(blockActions({ team_id: PRO, user_id: A, channel_id: dm.body.channel, action_id: button.action_id, value: button.value, response_url: slack.responseUrl('privbtn1') }));
	assert.equal(pressed.status, 200);
	const [fromButton] = await slack.waitForResponses('privbtn1', 1);
	assert.equal(fromButton.body.text, INVITE(priv));
	assert.equal(await holder('hidden-lamp'), K);
	await jobsDone();
	assert.equal(dmsTo(A).filter((c) => c.body.text === INVITE(priv)).length, 0);
	assert.equal(await sdb.count('jobs', "state = 'dead' AND team_id = $1 AND kind IN ('dibs.announce', 'dibs.notify')", [PRO]), 0);
	await dibs('off hidden-lamp', { user: K, channel: priv });
});

test('an expired response_url, or one that is not Slack\'s, falls back to chat.postEphemeral, then a DM; nothing is dropped', async () => {
	const priv = 'G0SLACKPRV';
	const A = 'U0PRIVB001';
	const hits = [];
	const sockets = new Set();
	const other = await listenLocal((req, res) => { hits.push(req.url); res.end('ok'); }, sockets);
	try {
		// Expired (30 minutes or 5 posts gone): Slack answers 404 expired_url.
		slack.expireResponseUrl('privold1');
		await dibs('on priv-old', { user: A, channel: priv, hook: 'privold1' });
		await waitUntil(() => dmsTo(A).some((c) => c.body.text === INVITE(priv)), { what: 'the DM after the expired response_url' });
		assert.deepEqual(slack.responses('privold1').map((r) => r.expired), [true]);
		assert.deepEqual(slack.calls('chat.postEphemeral').filter((c) => c.body?.channel === priv && c.body?.user === A).map((c) => c.body.text), [INVITE(priv)]);
		// A response_url on another host (or port) than Slack's is never called.
		const r = await conch.slashCommand({ team_id: PRO, user_id: A, channel_id: priv, command: '/dibs', text: 'off priv-old', response_url: `http://127.0.0.1:${other.address().port}/hooks/commands/x` });
		assert.equal(r.status, 200);
		await waitUntil(() => dmsTo(A).filter((c) => c.body.text === INVITE(priv)).length === 2, { what: 'the second DM' });
		await jobsDone();
		assert.deepEqual(hits, []);
		assert.equal(slack.calls('chat.postEphemeral').filter((c) => c.body?.channel === priv && c.body?.user === A).length, 2);
	} finally {
		for (const s of sockets) s.destroy();
		other.close();
	}
});

// --- App Home ------------------------------------------------------------------------

function homesOf(user, team = PRO) {
	return slack.calls('views.publish').filter((c) => c.body?.user_id === user && c.team_id === team);
}

function homeButtons(view, thing) {
	const i = view.blocks.findIndex((b) => b.type === 'section' && b.text.text.startsWith(`*${thing}*`));
	assert.ok(i >= 0, `${thing} in the App Home`);
	assert.equal(view.blocks[i + 1].type, 'actions');
	return view.blocks[i + 1].elements.map((e) => [e.text.text, e.action_id, e.value]);
}

test('the App Home is one view of sections: the user\'s dibs with buttons for each thing, which act only for the presser', async () => {
	const H = 'U0HOMEH001';
	const O = 'U0HOMEO001';
	await dibs('add home-free', { user: O });
	await dibs('on home-mine for 2h', { user: H });
	await dibs('on home-theirs', { user: O });
	await dibs('on home-theirs', { user: H });
	const open = async () => {
		const n = homesOf(H).length;
		assert.equal((await conch.event(eventEnvelope(PRO, { type: 'app_home_opened', user: H, channel: 'D0HOMEH001', tab: 'home' }))).status, 200);
		await waitUntil(() => homesOf(H).length > n, { what: 'a views.publish' });
		return homesOf(H).at(-1).body.view;
	};
	let view = await open();
	assert.equal(view.type, 'home');
	const hold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'home-mine'", [PRO])).hold_id;
	assert.deepEqual(homeButtons(view, 'home-mine'), [['Release', 'dibs.release', `home-mine ${hold}`], ['Extend 1h', 'dibs.extend', `home-mine ${hold}`]]);
	assert.deepEqual(homeButtons(view, 'home-theirs'), [['Leave the queue', 'dibs.leave', 'home-theirs']]);
	assert.deepEqual(homeButtons(view, 'home-free'), [['Take', 'dibs.join', 'home-free']]);
	const text = view.blocks.map((b) => b.text?.text || '').join('\n');
	assert.match(text, /You hold \*home-mine\* until/);
	assert.match(text, /#1 in line for \*home-theirs\*/);
	const press = (user, action_id, value) => conch.interactivity(blockActions({ team_id: PRO, user_id: user, action_id, value, container_type: 'view' }));
	// Take from the Home: H holds it, and the Home is published again.
	let n = homesOf(H).length;
	assert.equal((await press(H, 'dibs.join', 'home-free')).status, 200);
	assert.equal(await holder('home-free'), H);
	await waitUntil(() => homesOf(H).length > n, { what: 'the Home published again' });
	assert.deepEqual(homeButtons(homesOf(H).at(-1).body.view, 'home-free')[0].slice(0, 2), ['Release', 'dibs.release']);
	// Leave the queue.
	assert.equal((await press(H, 'dibs.leave', 'home-theirs')).status, 200);
	assert.deepEqual((await sdb.query("SELECT user_id FROM queue WHERE team_id = $1 AND thing = 'home-theirs'", [PRO])).map((r) => r.user_id), []);
	// H's Release pressed by someone else does nothing; by H it releases.
	assert.equal((await press(O, 'dibs.release', `home-mine ${hold}`)).status, 200);
	assert.equal(await holder('home-mine'), H);
	n = homesOf(H).length;
	assert.equal((await press(H, 'dibs.release', `home-mine ${hold}`)).status, 200);
	assert.equal(await holder('home-mine'), null);
	await waitUntil(() => homesOf(H).length > n, { what: 'the Home after Release' });
	await waitUntil(() => postsIn(CHANNEL).some((c) => c.body.text === '<@U0HOMEH001> released *home-mine*.'), { what: 'the release announced in the last channel' });
	// Bad values change nothing.
	const before = await state();
	for (const value of ['', 'a b', 'x'.repeat(65), 'bad*name']) assert.equal((await press(H, 'dibs.join', value)).status, 200);
	assert.deepEqual(await state(), before);
	view = await open();
	assert.deepEqual(blockKitProblems(slack), []);
	for (const t of ['home-free']) await dibs(`off ${t}`, { user: H });
	await dibs('off home-theirs', { user: O });
});

function submission(user, values, team = PRO) {
	const state = { values: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { value: { type: 'plain_text_input', value: v } }])) };
	return {
		type: 'view_submission', team: { id: team, domain: 'testteam' }, user: { id: user, team_id: team }, api_app_id: 'A0CONCH01',
		trigger_id: `${Date.now()}.1.abc`, view: { id: 'V0MODAL001', type: 'modal', callback_id: 'dibs.modal', state },
	};
}

test('Dibs on... opens a modal (views.open) whose submission takes the thing, with the same checks as /dibs on', async () => {
	const M = 'U0MODAL001';
	assert.equal((await conch.event(eventEnvelope(PRO, { type: 'app_home_opened', user: M, channel: 'D0MODAL001', tab: 'home' }))).status, 200);
	await waitUntil(() => homesOf(M).length === 1, { what: 'the Home' });
	const open = homesOf(M)[0].body.view.blocks.find((b) => b.type === 'actions' && b.elements.some((e) => e.action_id === 'dibs.modal.open'));
	assert.ok(open, 'a Dibs on... button');
	assert.equal(open.elements[0].text.text, 'Dibs on\u2026');
	const payload = blockActions({ team_id: PRO, user_id: M, action_id: 'dibs.modal.open', value: 'open', container_type: 'view' });
	assert.equal((await conch.interactivity(payload)).status, 200);
	const [call] = await slack.waitForCalls('views.open', 1);
	assert.equal(call.body.trigger_id, payload.trigger_id);
	const view = typeof call.body.view === 'string' ? JSON.parse(call.body.view) : call.body.view;
	assert.equal(view.callback_id, 'dibs.modal');
	assert.deepEqual(view.blocks.map((b) => [b.type, b.block_id, b.optional]), [['input', 'thing', false], ['input', 'duration', true], ['input', 'reason', true]]);
	const before = await state();
	for (const [values, block, want] of [
		[{ thing: 'bad*name' }, 'thing', /letters, digits/],
		[{ thing: 'two words' }, 'thing', /one word/],
		[{ thing: 'modal-box', duration: 'soon' }, 'duration', /"soon" is not a duration/],
		[{ thing: 'modal-box', duration: '31d' }, 'duration', /at most 30 days/],
	]) {
		const r = await conch.interactivity(submission(M, values));
		assert.equal(r.status, 200);
		assert.equal(r.json.response_action, 'errors', JSON.stringify(values));
		assert.match(r.json.errors[block], want);
	}
	// On the free plan a duration is refused under its input.
	const free = await conch.interactivity(submission(M, { thing: 'f1', duration: '1h' }, FREE));
	assert.match(free.json.errors.duration, /Pro plan/);
	assert.deepEqual(await state(), before);
	// Did you mean?: a new name close to things is refused under the thing input, naming them.
	await dibs('add modal-staging modal-stage', { user: M });
	const withAdded = await state();
	for (const [name, want] of [
		['Modal-Stagin', 'There is no Modal-Stagin yet; /dibs add makes it. Did you mean modal-staging or modal-stage?'],
		['modal_staging', 'There is no modal_staging yet; /dibs add makes it. Did you mean modal-staging?'],
	]) {
		const r = await conch.interactivity(submission(M, { thing: name, duration: '1h' }));
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, { response_action: 'errors', errors: { thing: want } }, name);
	}
	assert.deepEqual(await state(), withAdded);
	// The name itself, or one not close to any, goes on.
	assert.equal((await conch.interactivity(submission(M, { thing: 'modal-staging' }))).text, '');
	assert.equal(await holder('modal-staging'), M);
	await dibs('off modal-staging', { user: M });
	await dibs('remove modal-staging', { user: M });
	await dibs('remove modal-stage', { user: M });
	await jobsDone(); // that take's App Home is published before the next one is counted
	const n = homesOf(M).length;
	const ok = await conch.interactivity(submission(M, { thing: 'Modal-Box', duration: '2h', reason: 'demo day' }));
	assert.equal(ok.status, 200);
	assert.equal(ok.text, '');
	const hold = await sdb.one("SELECT user_id, reason, duration_seconds FROM holds WHERE team_id = $1 AND thing = 'modal-box'", [PRO]);
	assert.deepEqual(hold, { user_id: M, reason: 'demo day', duration_seconds: 7200 });
	await waitUntil(() => dmsTo(M).some((c) => /^\*Modal-Box\* is yours until/.test(c.body.text)), { what: 'the DM with the result' });
	await waitUntil(() => homesOf(M).length > n, { what: 'the Home again' });
	assert.match(homesOf(M).at(-1).body.view.blocks.map((b) => b.text?.text || '').join('\n'), /You hold \*Modal-Box\*/);
	assert.deepEqual(blockKitProblems(slack), []);
	await dibs('off modal-box', { user: M });
});

test('changes made by timers, the App Home and the modal are announced in the thing\'s last channel', async () => {
	const ROOM3 = 'C0SLACK003';
	const [A, B, C] = ['U0TIMERA01', 'U0TIMERB01', 'U0TIMERC01'];
	const line = (text) => () => postsIn(ROOM3).some((c) => c.body.text === text);
	const pressHome = (user, action_id, value) => conch.interactivity(blockActions({ team_id: PRO, user_id: user, action_id, value, container_type: 'view' }));
	await dibs('on timer-box for 1h', { user: A, channel: ROOM3 });
	await waitUntil(line('<@U0TIMERA01> took *timer-box*.'), { what: 'the take' });
	// B joins from the App Home (a join is not announced); the timer hands it over
	// (its hour made due now, so that B is surely in line first).
	assert.equal((await pressHome(B, 'dibs.join', 'timer-box')).status, 200);
	assert.deepEqual((await state()).queue.filter((q) => q.thing === 'timer-box').map((q) => q.user_id), [B]);
	const first = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'timer-box'", [PRO])).hold_id;
	await sdb.query("UPDATE holds SET release_at = now() WHERE team_id = $1 AND thing = 'timer-box'", [PRO]);
	await sdb.query("UPDATE jobs SET due_at = now() WHERE team_id = $1 AND kind = 'dibs.release' AND dedupe_key = $2", [PRO, `release:${first}`]);
	await waitUntil(line("<@U0TIMERA01>'s hold on *timer-box* ended: its time was up. It is now <@U0TIMERB01>'s."), { what: 'the timed hand-over announced', timeoutMs: 15_000 });
	assert.equal(await holder('timer-box'), B);
	// B releases from the App Home.
	const hold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'timer-box'", [PRO])).hold_id;
	assert.equal((await pressHome(B, 'dibs.release', `timer-box ${hold}`)).status, 200);
	await waitUntil(line('<@U0TIMERB01> released *timer-box*.'), { what: 'the Home release' });
	// The Home's Take on a free thing.
	assert.equal((await pressHome(A, 'dibs.join', 'timer-box')).status, 200);
	await waitUntil(() => postsIn(ROOM3).filter((c) => c.body.text === '<@U0TIMERA01> took *timer-box*.').length === 2, { what: 'the Home take' });
	await dibs('off timer-box', { user: A, channel: ROOM3 });
	await waitUntil(line('<@U0TIMERA01> released *timer-box*.'), { what: 'the release' });
	// The modal's take, timed: its take, then its end with nobody waiting.
	const ok = await conch.interactivity(submission(C, { thing: 'timer-box', duration: '2s' }));
	assert.equal(ok.status, 200);
	await waitUntil(line('<@U0TIMERC01> took *timer-box*.'), { what: 'the modal take' });
	await waitUntil(line("<@U0TIMERC01>'s hold on *timer-box* ended: its time was up."), { what: 'the expiry announced', timeoutMs: 15_000 });
	assert.equal(await holder('timer-box'), null);
	await jobsDone();
	// Each once, all in ROOM3 and nowhere else.
	const lines = slack.calls('chat.postMessage').filter((c) => c.team_id === PRO && /timer-box/.test(c.body?.text || '') && /^[CG]/.test(c.body.channel));
	assert.deepEqual(lines.map((c) => c.body.channel).filter((ch) => ch !== ROOM3), []);
	assert.equal(lines.length, 7);
	assert.deepEqual(blockKitProblems(slack), []);
});

// --- settings ------------------------------------------------------------------------

const ADMIN = 'U0SETADMIN';
const MEMBER = 'U0SETMEMBR';

// Asks until the member directory knows the caller (the first answer for
// someone it never saw is "try again in a minute", and queues a lookup).
async function settled(text, user) {
	let msg;
	await waitUntil(async () => {
		msg = await dibs(text, { team: SET, user });
		return !/still learning/.test(msg.text);
	}, { what: `an answer to ${text} from ${user}` });
	return msg;
}

test('settings shows the defaults; changing one is for owners and admins, and unknown is a no', async () => {
	slack.setUser(ADMIN, { team_id: SET, is_admin: true });
	slack.setUser(MEMBER, { team_id: SET });
	const shown = await dibs('settings', { team: SET, user: MEMBER });
	assert.match(shown.text, /^\*Dibs settings\*\n• names: \*open\* \(`\/dibs on` makes a new thing\)\n• manage: \*anyone\*/);
	// Nobody the directory has not seen gets a yes.
	const first = await dibs('settings names strict', { team: SET, user: 'U0SETNEWBY' });
	assert.equal(first.text, "conch is still learning who the workspace's owners and admins are; nothing changed. Please try again in a minute.");
	const no = await settled('settings names strict', MEMBER);
	assert.match(no.text, /^Changing a setting is for the workspace's owners and admins and the person who installed conch; nothing changed\. Ask .*<@U0SETADMIN>/);
	assert.equal(await sdb.count('dibs_settings', 'team_id = $1', [SET]), 0);
	assert.equal((await settled('settings names strict', ADMIN)).text, 'Done: names is now *strict*.');
	assert.match((await dibs('settings', { team: SET })).text, /names: \*strict\* \(only `\/dibs add` makes things\)/);
	const row = await sdb.one('SELECT names, manage, updated_by FROM dibs_settings WHERE team_id = $1', [SET]);
	assert.deepEqual(row, { names: 'strict', manage: 'anyone', updated_by: ADMIN });
	// Other teams keep their own settings.
	assert.equal(await sdb.count('dibs_settings', 'team_id = $1', [PRO]), 0);
	assert.match(textOf(await dibs('on pro-fresh-thing', { team: PRO })), /is yours/);
	await dibs('off pro-fresh-thing', { team: PRO });
});

test('names strict: only add makes things; an unknown name is refused, with suggestions but no Create button', async () => {
	const before = await state(SET);
	const refused = await dibs('on brand-new', { team: SET, user: MEMBER });
	assert.equal(refused.text, "There is no thing called *brand-new*. The team's names are strict: only `/dibs add` makes things; `/dibs list` shows them.");
	assert.deepEqual(await state(SET), before);
	assert.match((await dibs('add strict-box', { team: SET, user: MEMBER })).text, /^Added \*strict-box\*/);
	const dym = await dibs('on strict-bx', { team: SET, user: MEMBER });
	assert.equal(dym.text, "There is no *strict-bx* (the team's names are strict: only `/dibs add` makes things). Did you mean *strict-box*?");
	assert.deepEqual(buttonsOf(dym).map((b) => b.action_id), ['dibs.suggest.take.0']);
	// A forged Create press is refused the same way.
	await press({ action_id: 'dibs.suggest.create', value: `${MEMBER} 0 strict-bx` }, { user: MEMBER, team: SET });
	await waitUntil(() => ephemeralsTo(MEMBER).length === 1, { what: 'the answer to the forged create' });
	assert.match(ephemeralsTo(MEMBER)[0].body.text, /^There is no thing called \*strict-bx\*\. The team's names are strict/);
	assert.equal(await sdb.count('things', "team_id = $1 AND name = 'strict-bx'", [SET]), 0);
	// The Dibs on... modal refuses the same way, under its thing input.
	const modal = await conch.interactivity(submission(MEMBER, { thing: 'strict-bx' }, SET));
	assert.deepEqual(modal.json, { response_action: 'errors', errors: { thing: "There is no strict-bx (the team's names are strict: only /dibs add makes things). Did you mean strict-box?" } });
	assert.match((await conch.interactivity(submission(MEMBER, { thing: 'brand-new' }, SET))).json.errors.thing, /^There is no thing called \*brand-new\*\. The team's names are strict/);
	assert.equal(await sdb.count('things', "team_id = $1 AND name IN ('strict-bx', 'brand-new')", [SET]), 0);
	assert.match(textOf(await dibs('on strict-box', { team: SET, user: MEMBER })), /\*strict-box\* is yours/);
	assert.match((await settled('settings names open', ADMIN)).text, /^Done: names is now \*open\*\.$/);
	assert.match(textOf(await dibs('on brand-new', { team: SET, user: MEMBER })), /\*brand-new\* is yours/);
});

test('manage admins: kick, remove and add are for owners and admins; others and unknown users change nothing', async () => {
	assert.equal((await settled('settings manage admins', ADMIN)).text, 'Done: manage is now *admins*.');
	const before = await state(SET);
	for (const text of ['kick strict-box', 'remove brand-new', 'add other-box']) {
		const msg = await dibs(text, { team: SET, user: MEMBER });
		assert.match(msg.text, new RegExp(`^In this workspace \`/dibs ${text.split(' ')[0]}\` is for the workspace's owners and admins`), text);
	}
	assert.equal((await dibs('kick strict-box', { team: SET, user: 'U0SETNEWB2' })).text,
		"conch is still learning who the workspace's owners and admins are; nothing changed. Please try again in a minute.");
	assert.deepEqual(await state(SET), before);
	// on and off stay for everyone.
	assert.match(textOf(await dibs('off brand-new', { team: SET, user: MEMBER })), /You released/);
	assert.match(textOf(await dibs('kick strict-box', { team: SET, user: ADMIN })), /^You kicked <@U0SETMEMBR> off \*strict-box\*/);
	assert.match(textOf(await dibs('add other-box', { team: SET, user: ADMIN })), /^Added \*other-box\*/);
	assert.equal((await settled('settings manage anyone', ADMIN)).text, 'Done: manage is now *anyone*.');
	assert.match(textOf(await dibs('remove other-box', { team: SET, user: MEMBER })), /^Removed \*other-box\*/);
});

test('check-ins: an open-ended hold is asked once, Keep asks again later, and with autorelease an unanswered one is released', async () => {
	const other = 'U0SETOTHER';
	assert.equal((await settled('settings checkin 1s', ADMIN)).text, 'Done: checkin is now *1s*.');
	assert.match((await dibs('settings', { team: SET })).text, /• checkin: \*1s\*\n• autorelease: \*off\*/);
	const asks = () => dmsTo(MEMBER, SET).filter((c) => c.body.text === 'Still using *ci-box*?');
	await dibs('on ci-box', { team: SET, user: MEMBER });
	await waitUntil(() => asks().length === 1, { what: 'the first check-in' });
	const hold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'ci-box'", [SET])).hold_id;
	const [keep, release] = asks()[0].body.blocks.find((b) => b.type === 'actions').elements;
	assert.deepEqual([keep.text.text, keep.action_id, keep.value], ['Keep', 'dibs.keep', `ci-box ${hold} 0`]);
	assert.deepEqual([release.text.text, release.action_id, release.value], ['Release', 'dibs.release', `ci-box ${hold}`]);
	const checkins = () => sdb.count('jobs', "team_id = $1 AND kind = 'dibs.checkin' AND payload->>'hold_id' = $2", [SET, String(hold)]);
	const pressAs = (user, el) => conch.interactivity(blockActions({ team_id: SET, user_id: user, channel_id: 'D0CHECKIN1', action_id: el.action_id, value: el.value, message_ts: '1.000002' }));
	// Unanswered, it is not asked again; someone else's Keep counts for nothing.
	assert.equal((await pressAs(other, keep)).status, 200);
	assert.equal(await checkins(), 1);
	assert.equal((await pressAs(MEMBER, keep)).status, 200);
	assert.equal(await checkins(), 2);
	await waitUntil(() => asks().length === 2, { what: 'the check-in after Keep' });
	assert.equal(asks()[1].body.blocks.find((b) => b.type === 'actions').elements[0].value, `ci-box ${hold} 1`);
	// A second press of the same Keep does nothing more.
	assert.equal((await pressAs(MEMBER, keep)).status, 200);
	assert.equal(await checkins(), 2);
	// With autorelease, the next unanswered check-in ends the hold; the next in line gets it.
	assert.equal((await settled('settings autorelease 1s', ADMIN)).text, 'Done: autorelease is now *1s*.');
	await dibs('on ci-box', { team: SET, user: other });
	const keep1 = asks()[1].body.blocks.find((b) => b.type === 'actions').elements[0];
	assert.equal((await pressAs(MEMBER, keep1)).status, 200);
	await waitUntil(() => asks().length === 3, { what: 'the third check-in' });
	await waitUntil(async () => (await holder('ci-box', SET)) === other, { what: 'the auto-release to the next in line', timeoutMs: 20_000 });
	await waitUntil(() => dmsTo(MEMBER, SET).some((c) => c.body.text === 'Your hold on *ci-box* was released: the check-in went unanswered.'), { what: 'the holder told' });
	await waitUntil(() => dmsTo(other, SET).some((c) => /\*ci-box\* is yours/.test(c.body.text)), { what: "the next holder's DM" });
	await waitUntil(() => postsIn(CHANNEL, SET).some((c) => c.body.text === "<@U0SETMEMBR>'s hold on *ci-box* was released: the check-in went unanswered. It is now <@U0SETOTHER>'s."), { what: 'the auto-release announced in the channel' });
	assert.equal(await sdb.count('dibs_events', "team_id = $1 AND thing = 'ci-box' AND action = 'auto-release' AND user_id = $2", [SET, MEMBER]), 1);
	// The new hold has its own check-ins; the old buttons do nothing to it.
	const newHold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'ci-box'", [SET])).hold_id;
	assert.notEqual(newHold, hold);
	for (const b of [keep, keep1, release]) assert.equal((await pressAs(MEMBER, b)).status, 200);
	assert.equal(await holder('ci-box', SET), other);
	assert.equal((await settled('settings checkin off', ADMIN)).text, 'Done: checkin is now *off*.');
	assert.equal((await settled('settings autorelease off', ADMIN)).text, 'Done: autorelease is now *off*.');
	await dibs('off ci-box', { team: SET, user: other });
});

test('settings errors are one line with the usage', async () => {
	for (const [text, want] of [
		['settings names maybe', /^settings names takes open or strict\. Usage: `\/dibs settings`/],
		['settings colour blue', /^unknown setting "colour": the settings are names, manage, announce, checkin and autorelease\. Usage:/],
		['settings checkin soon', /^"soon" is not a duration: .*\. Usage:/],
		['settings autorelease', /^settings autorelease takes off or a duration, like 4h\. Usage:/],
		['settings manage admins now', /^unexpected "now" after settings manage admins\. Usage:/],
	]) assert.match((await dibs(text, { team: SET, user: ADMIN })).text, want, text);
});

test('019 gives the open-ended holds made before check-ins existed their check-in, once, keyed as the others', async () => {
	const [X, Y] = ['U0OLDHLD01', 'U0OLDHLD02'];
	await dibs('on old-asked', { user: X });
	await dibs('on old-later', { user: X });
	await dibs('on old-timed for 1h', { user: X });
	await dibs('on old-new', { user: X });
	await dibs('on old-kept', { user: Y, team: SET }); // SET has check-ins off by now
	const holds = Object.fromEntries((await sdb.query("SELECT thing, hold_id FROM holds WHERE team_id IN ($1, $2) AND thing LIKE 'old-%'", [PRO, SET])).map((r) => [r.thing, r.hold_id]));
	// As before 015: no check-in jobs; old-asked, old-later and old-kept began before
	// 015 was applied (5 hours, 1 hour before now), old-new after it (its asked
	// check-in since cleaned up: it is not asked again).
	await sdb.query("DELETE FROM jobs WHERE kind = 'dibs.checkin' AND team_id IN ($1, $2) AND payload->>'thing' LIKE 'old-%'", [PRO, SET]);
	await sdb.query("UPDATE schema_migrations SET applied_at = now() - interval '30 minutes' WHERE version = '015_dibs_slack.sql'");
	await sdb.query("UPDATE holds SET since = now() - interval '5 hours' WHERE team_id = $1 AND thing = 'old-asked'", [PRO]);
	await sdb.query("UPDATE holds SET since = now() - interval '1 hour' WHERE team_id IN ($1, $2) AND thing IN ('old-later', 'old-kept')", [PRO, SET]);
	const owner = db(cluster.migrateUrl(dbName));
	try {
		const sql = readFileSync(new URL('../../migrations/019_dibs_depth.sql', import.meta.url), 'utf8');
		await owner.query(sql);
		await owner.query(sql); // a second run adds nothing
	} finally {
		await owner.close();
	}
	const jobs = await sdb.query("SELECT payload->>'thing' AS thing, dedupe_key, round(extract(epoch FROM due_at - now()) / 60) AS due_in FROM jobs WHERE kind = 'dibs.checkin' AND team_id IN ($1, $2) AND payload->>'thing' LIKE 'old-%' ORDER BY 1", [PRO, SET]);
	assert.deepEqual(jobs.map((j) => [j.thing, j.dedupe_key]), [['old-asked', `checkin:${holds['old-asked']}:0`], ['old-later', `checkin:${holds['old-later']}:0`]]);
	assert.ok(Number(jobs[1].due_in) >= 170 && Number(jobs[1].due_in) <= 181, `old-later due in ${jobs[1].due_in} minutes`);
	// The overdue one is asked now, with Keep and Release for that hold.
	await waitUntil(() => dmsTo(X).some((c) => c.body.text === 'Still using *old-asked*?'), { what: 'the check-in of the old hold' });
	const ask = dmsTo(X).find((c) => c.body.text === 'Still using *old-asked*?');
	assert.deepEqual(ask.body.blocks.find((b) => b.type === 'actions').elements.map((e) => e.value), [`old-asked ${holds['old-asked']} 0`, `old-asked ${holds['old-asked']}`]);
	for (const t of ['old-asked', 'old-later', 'old-timed', 'old-new']) await dibs(`off ${t}`, { user: X });
	await dibs('off old-kept', { user: Y, team: SET });
});

// --- one transaction a request -------------------------------------------------------

// The signature (the replay record) is stored in the request's own
// transaction: a command whose work fails and rolls back leaves no trace,
// so the very same signed request is run again (and is a replay only once
// it has done its work). A CHECK constraint added for this test makes the
// thing's insert fail.
test('a command whose work fails leaves nothing, not even its signature: the same signed request runs again', async () => {
	const name = 'zq-atomic-probe';
	const body = commandForm({ team_id: PRO, user_id: 'U0ATOMIC01', channel_id: CHANNEL, command: '/dibs', text: `on ${name}` }, conch);
	const timestamp = Math.floor(Date.now() / 1000);
	const send = () => conch.signedSlackRequest('/slack/commands', body, { timestamp });
	await sdb.query(`ALTER TABLE things ADD CONSTRAINT test_refuse_probe CHECK (name <> '${name}')`);
	try {
		for (let i = 0; i < 2; i++) {
			const r = await send();
			assert.equal(r.status, 200, `attempt ${i + 1}: ${r.status} ${r.text}`);
			assert.match(r.json.text, /Something went wrong; nothing changed/);
			assert.equal(await sdb.count('things', `team_id = '${PRO}' AND name = '${name}'`), 0);
		}
	} finally {
		await sdb.query('ALTER TABLE things DROP CONSTRAINT test_refuse_probe');
	}
	const ok = await send();
	assert.equal(ok.status, 200, ok.text);
	assert.match(ok.json.text, /\*zq-atomic-probe\* is yours/);
	assert.equal(await holder(name), 'U0ATOMIC01');
	const again = await send();
	assert.equal(again.status, 401, 'the request that did its work is a replay now');
	assert.equal(await holder(name), 'U0ATOMIC01');
	await dibs(`off ${name}`, { user: 'U0ATOMIC01' });
	await dibs(`remove ${name}`, { user: 'U0ATOMIC01' });
});

// A serialization failure rolls back the whole request, its replay record
// too, and the dispatcher runs it once more from the admission. A trigger
// added for this test fails the hold's insert once (a sequence counts:
// nextval is not rolled back).
test('a serialization failure in a command runs the whole request again, from its admission', async () => {
	const name = 'zq-retry-probe';
	await sdb.query(`CREATE SEQUENCE test_fail_once;
		GRANT USAGE ON SEQUENCE test_fail_once TO PUBLIC;
		CREATE FUNCTION test_fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF nextval('test_fail_once') = 1 THEN
				RAISE EXCEPTION 'test: could not serialize' USING ERRCODE = '40001';
			END IF;
			RETURN NEW;
		END $$;
		CREATE TRIGGER test_fail_once BEFORE INSERT ON holds FOR EACH ROW
			WHEN (NEW.thing = '${name}') EXECUTE FUNCTION test_fail_once();`);
	try {
		const reply = await dibs(`on ${name}`, { user: 'U0RETRY001' });
		assert.match(textOf(reply), /\*zq-retry-probe\* is yours/);
		assert.equal(await holder(name), 'U0RETRY001');
		const { n } = await sdb.one("SELECT last_value::int AS n FROM test_fail_once");
		assert.equal(n, 2, 'the insert ran twice: failed, then again');
		assert.equal(conch.logs(/slack: \/slack\/commands rolled back \(40001\); running it again/).length, 1);
	} finally {
		await sdb.query(`DROP TRIGGER test_fail_once ON holds; DROP FUNCTION test_fail_once(); DROP SEQUENCE test_fail_once`);
	}
	await dibs(`off ${name}`, { user: 'U0RETRY001' });
	await dibs(`remove ${name}`, { user: 'U0RETRY001' });
});

test('every message and view sent to Slack in this file is within Block Kit\'s limits', async () => {
	assert.deepEqual(blockKitProblems(slack), []);
});

test('the server stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
