// Tenancy: three teams whose users have the SAME user ids and whose things
// have the SAME names. Team A runs every /dibs command, REST API calls,
// buttons (its own and forged ones naming B's holds), App Home opens and,
// when /lunch is registered, /lunch commands and a lunch button; after each
// of A's actions every row of B and C, in every table with a team_id
// column, must be byte-for-byte what it was, A's replies and A's Slack
// calls must never show B's or C's holders, and every Slack call must go
// out with A's token. Then Row-Level Security directly, as the application
// role (the runtime login, which owns nothing; migrations run as the owner
// role): no team set sees no rows of a team table, team A sees none of B's,
// a B row cannot be written under A, a partition named directly obeys the
// same rule, no setting lifts the scope, and the role can change no table,
// policy or function. (The operator pages span teams by design and are
// operator-only: not here.)

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { OWNER_ROLE, RUNTIME_GROUP, testCluster } from '../lib/pg.mjs';
import { blockActions, conchEnv, db, eventEnvelope, installTeam, runConch, sleep, startConch, waitUntil } from '../lib/server.mjs';

const A = 'T0ISOLATEA';
const B = 'T0ISOLATEB';
const C = 'T0ISOLATEC';
const OTHERS = [B, C];
// Not a team's data, though they carry team_id: the job runner and the
// dedupe logs read them across teams in a transaction scoped to no team; a
// team's transaction still sees only its own rows (migrations/013_roles.sql).
const GLOBAL_TABLES = ['jobs', 'slack_events', 'slack_signatures', 'stripe_events', 'stripe_customers'];
const CHANNEL = 'C0SAME0001';
const U1 = 'U0SAME0001';
const U2 = 'U0SAME0002';
const U3 = 'U0SAME0003';
const U4 = 'U0SAME0004';
const BOT = 'U0BOT00001';

// Per other team: its spelling of staging, its reason text, its own thing.
const SEED = {
	[B]: { staging: 'STAGING', reason: 'reason-of-TB', only: 'b-only' },
	[C]: { staging: 'StAgInG', reason: 'reason-of-TC', only: 'c-only' },
};
// Nothing A is shown may contain these: U3 and U4 never hold or queue for
// anything in A, and the rest only exist in B and C.
const FORBIDDEN = [`<@${U3}>`, `<@${U4}>`, 'reason-of-TB', 'reason-of-TC', 'STAGING', 'StAgInG', 'c-only'];

let cluster, dbName, dbUrl, slack, conch, sdb, teamTables;
const tokens = {};
let lunchRegistered = false;
let lunchWhyNot = '';

before(async () => {
	cluster = await testCluster();
	dbName = `conch_isolation_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
	for (const team of [A, B, C]) {
		tokens[team] = slack.issueToken({ team_id: team, bot_user_id: BOT });
		await installTeam(dbUrl, { team_id: team, token: tokens[team], plan: 'pro', bot_user_id: BOT, installer_user_id: U1 });
		// Billing rows exist for every team, so RLS on billing is exercised.
		await sdb.query('INSERT INTO billing (team_id, stripe_customer) VALUES ($1, $2)', [team, `cus_${team}`]);
		await sdb.query('INSERT INTO stripe_customers (customer, team_id) VALUES ($1, $2)', [`cus_${team}`, team]);
	}
	slack.setMembers(CHANNEL, [U1, U2, U3, U4]);
	// Every table holding a team's rows, found in the catalog (partitions excluded).
	teamTables = (await sdb.query(
		`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'team_id' AND NOT a.attisdropped
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
	)).map((r) => r.relname);
});

after(async () => {
	await conch?.stop();
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -----------------------------------------------------------------

function textOf(msg) {
	return [msg.text, ...(msg.blocks || []).flatMap((b) => [b.text?.text, ...(b.elements || []).map((e) => e.text?.text ?? e.text)])]
		.filter((x) => typeof x === 'string').join('\n');
}

async function command(cmd, text, { team = A, user = U1 } = {}) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: CHANNEL, command: cmd, text });
	assert.equal(r.status, 200, `${cmd} ${text}: HTTP ${r.status} ${r.text}`);
	assert.ok(r.json, `${cmd} ${text}: not JSON: ${r.text}`);
	return textOf(r.json);
}

const dibs = (text, opts) => command('/dibs', text, opts);

// Every row of the teams, in every team table, as text.
async function rowsOf(teams, tables = teamTables) {
	const out = {};
	for (const t of tables)
		out[t] = (await sdb.query(`SELECT t::text AS row FROM "${t}" t WHERE team_id = ANY($1) ORDER BY 1`, [teams])).map((r) => r.row);
	return out;
}

// No job of the teams is due or running.
async function settle(teams, timeoutMs = 20_000) {
	await waitUntil(async () => {
		const { n } = await sdb.one(
			`SELECT count(*)::int AS n FROM jobs WHERE team_id = ANY($1) AND state IN ('queued', 'running')
			 AND due_at <= now() + interval '2 seconds'`, [teams]);
		return n === 0;
	}, { timeoutMs, intervalMs: 100, what: `the jobs of ${teams} to finish` });
}

function assertClean(what, text) {
	for (const f of FORBIDDEN) assert.ok(!text.includes(f), `${what} shows ${f}: ${text}`);
}

// Runs A's action, then: B and C unchanged, the reply clean, and every new
// Slack call made with A's token and clean.
let baseline;
let callMark = 0;
async function asA(what, action) {
	const result = await action();
	if (typeof result === 'string') assertClean(what, result);
	else if (result !== undefined) assertClean(what, JSON.stringify(result));
	assert.deepEqual(await rowsOf(OTHERS), baseline, `${what} changed a row of B or C`);
	return result;
}

function newCallsCheck(what) {
	const calls = slack.calls().slice(callMark);
	callMark = slack.calls().length;
	for (const c of calls) {
		assert.equal(c.team_id, A, `${what}: ${c.method} went out with another team's token`);
		assertClean(`${what}: ${c.method}`, JSON.stringify(c.body));
	}
	return calls;
}

// After A's jobs ran too: B and C still unchanged, and A's calls clean.
async function settledCheck(what) {
	await settle([A]);
	await sleep(200);
	assert.deepEqual(await rowsOf(OTHERS), baseline, `${what}: a job of A changed a row of B or C`);
	return newCallsCheck(what);
}

async function holdOf(team, thing) {
	return sdb.one('SELECT user_id, hold_id::text AS hold_id, release_at FROM holds WHERE team_id = $1 AND thing = $2', [team, thing]);
}

async function api(method, p, { token, body } = {}) {
	const headers = { authorization: `Bearer ${token}` };
	if (body !== undefined) headers['content-type'] = 'application/json';
	const r = await conch.fetch(`/api/v1${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
	const text = await r.text();
	return { status: r.status, json: text ? JSON.parse(text) : null, text };
}

// A press on a message that exists in the fake Slack, so the chat.update
// that follows succeeds and nothing is left to retry.
function press(team, user, action_id, value) {
	const ts = slack.nextTs();
	slack.messages.set(CHANNEL, [...slack.messagesIn(CHANNEL), { type: 'message', ts, text: 'a button', user: BOT }]);
	return conch.interactivity(blockActions({ team_id: team, user_id: user, channel_id: CHANNEL, message_ts: ts, action_id, value }));
}

// --- the other teams' state --------------------------------------------------

test('B and C hold, queue and own things under the same names and user ids', async () => {
	for (const team of OTHERS) {
		const s = SEED[team];
		assert.match(await dibs(`on ${s.staging} for 2h because ${s.reason}`, { team, user: U1 }), /is yours until/);
		assert.match(await dibs('on staging', { team, user: U3 }), /#1 in the queue/);
		assert.match(await dibs(`on prod because ${s.reason}`, { team, user: U3 }), /is yours/);
		assert.match(await dibs('on prod', { team, user: U4 }), /#1 in the queue/);
		assert.match(await dibs(`on ${s.only}`, { team, user: U4 }), /is yours/);
		assert.match(await dibs('on gone', { team, user: U3 }), /is yours/);
		assert.match(await dibs('off gone', { team, user: U3 }), /released/);
		const reply = await dibs('token', { team, user: U1 });
		tokens[`api ${team}`] = reply.match(/`(conch_[A-Za-z0-9_-]+)`/)?.[1];
		assert.ok(tokens[`api ${team}`], `an API token in: ${reply}`);
	}

	// /lunch, when this build registers it: a poll and a schedule in the
	// very channel A will use.
	const probe = await conch.slashCommand({ team_id: B, user_id: U3, channel_id: CHANNEL, command: '/lunch', text: 'help' });
	assert.equal(probe.status, 200);
	lunchRegistered = !/^Unknown command$/.test(probe.json?.text ?? probe.text);
	if (!lunchRegistered) {
		lunchWhyNot = `the server answers /lunch with ${JSON.stringify(probe.json?.text ?? probe.text)}: /lunch is not registered in this build (src/routes.c features_init does not call lunch_init), so its isolation rows cannot run`;
	} else {
		for (const team of OTHERS) {
			await command('/lunch', 'start 12:00 12:30', { team, user: U3 });
			await command('/lunch', 'schedule weekdays 11:00 close 11:45', { team, user: U3 });
			await waitUntil(() => sdb.one(`SELECT 1 FROM lunch_polls WHERE team_id = $1 AND channel_id = $2 AND state = 'open'`, [team, CHANNEL]),
				{ what: `an open poll of ${team}` });
		}
	}

	await settle([A, B, C]);
	await sleep(300);
	for (const team of OTHERS) {
		assert.equal((await holdOf(team, 'staging')).user_id, U1);
		assert.equal((await holdOf(team, 'prod')).user_id, U3);
	}
	baseline = await rowsOf(OTHERS);
	for (const t of ['things', 'holds', 'queue', 'api_tokens', 'jobs', 'dibs_events', 'billing'])
		assert.ok(baseline[t].length > 0, `B and C have rows in ${t}`);
	callMark = slack.calls().length;
});

// --- commands -------------------------------------------------------------------

test('every /dibs command of A sees and changes only A', async () => {
	assert.match(await asA('list', () => dibs('list')), /No things yet/);
	assert.match(await asA('empty text', () => dibs('')), /No things yet/);
	assert.match(await asA('q staging', () => dibs('q staging', { user: U3 })), /no thing called \*staging\* yet/);
	assert.match(await asA('q b-only', () => dibs('q b-only', { user: U4 })), /no thing called \*b-only\* yet/);
	// U1 holds staging in B and C: in A it is free and new.
	assert.match(await asA('on staging', () => dibs('on staging')), /^\*staging\* is yours\. /);
	assert.match(await asA('on staging (queue)', () => dibs('on staging', { user: U2 })), /held by <@U0SAME0001>\. You are #1 in the queue/);
	// U3 holds prod in B and C.
	assert.match(await asA('on prod', () => dibs('on prod for 1h because a-reason')), /^\*prod\* is yours until/);
	assert.match(await asA('extend prod', () => dibs('extend prod by 30m')), /^\*prod\* is yours until/);
	// U1's staging in B and C is timed; in A it is not.
	assert.match(await asA('extend staging', () => dibs('extend staging by 1h')), /has no end time/);
	assert.match(await asA('extend b-only', () => dibs('extend b-only by 1h', { user: U4 })), /no thing called \*b-only\*/);
	assert.match(await asA('off prod by U3', () => dibs('off prod', { user: U3 })), /You don't hold \*prod\* and aren't in its queue/);
	assert.match(await asA('off staging by U3', () => dibs('off staging', { user: U3 })), /You don't hold \*staging\* and aren't in its queue/);
	assert.match(await asA('off b-only by U4', () => dibs('off b-only', { user: U4 })), /no thing called \*b-only\*/);
	assert.match(await asA('kick b-only', () => dibs('kick b-only', { user: U2 })), /no thing called \*b-only\*/);
	assert.match(await asA('kick prod', () => dibs('kick prod', { user: U2 })), /^You kicked <@U0SAME0001> off \*prod\*\./);
	assert.match(await asA('remove b-only', () => dibs('remove b-only', { user: U2 })), /no thing called \*b-only\*/);
	assert.match(await asA('remove prod', () => dibs('remove prod', { user: U2 })), /^Removed \*prod\*\./);
	const tokenReply = await asA('token', () => dibs('token'));
	const m = tokenReply.match(/`(conch_[A-Za-z0-9_-]+)`/);
	assert.ok(m, `a token in: ${tokenReply}`);
	tokens.api = m[1];
	assert.equal(await sdb.count('api_tokens', 'team_id = $1', [A]), 1);
	await asA('upgrade', () => dibs('upgrade'));
	assert.match(await asA('help', () => dibs('help', { user: U3 })), /\/dibs on THING/);

	const list = await asA('list again', () => dibs('list'));
	assert.match(list, /\*staging\*\s+held by <@U0SAME0001>/);
	assert.match(list, /Queue: 1\. <@U0SAME0002>/);
	assert.doesNotMatch(list, /b-only|prod/);
	assert.match(await asA('q staging again', () => dibs('q staging', { user: U3 })), /held by <@U0SAME0001>/);

	const calls = await settledCheck('dibs commands');
	// The kick was announced and DMed in A, with A's token (checked above).
	assert.ok(calls.some((c) => c.method === 'chat.postMessage' && c.body.channel === CHANNEL && /kicked <@U0SAME0001> off \*prod\*/.test(c.body.text)),
		'the kick was announced in the channel');
	for (const team of OTHERS) {
		assert.equal((await holdOf(team, 'staging')).user_id, U1);
		assert.equal((await holdOf(team, 'prod')).user_id, U3);
	}
});

// --- REST API ---------------------------------------------------------------------

test('A\'s API token reads and changes only A, even on names that exist only in B', async () => {
	const token = tokens.api;
	let r = await asA('GET /things', () => api('GET', '/things', { token }));
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.things.map((t) => t.name), ['staging']);
	assert.equal(r.json.total, 1);

	r = await asA('GET /things/b-only', () => api('GET', '/things/b-only', { token }));
	assert.deepEqual([r.status, r.json.error], [404, 'not_found']);
	r = await asA('DELETE /things/b-only/dibs', () => api('DELETE', '/things/b-only/dibs', { token }));
	assert.equal(r.status, 404);
	r = await asA('GET /things/prod', () => api('GET', '/things/prod', { token }));
	assert.equal(r.status, 404, 'prod was removed in A; B and C still have it');

	r = await asA('GET /things/staging', () => api('GET', '/things/staging', { token }));
	assert.equal(r.status, 200);
	assert.equal(r.json.holder, U1);
	assert.deepEqual(r.json.queue, [U2]);
	assert.equal(r.json.release_at, null, 'A\'s staging is not B\'s timed one');
	assert.equal(r.json.reason ?? null, null);

	r = await asA('DELETE /things/staging/dibs', () => api('DELETE', '/things/staging/dibs', { token }));
	assert.deepEqual([r.status, r.json.status, r.json.next_holder], [200, 'released', U2]);
	r = await asA('POST /things/prod/dibs', () => api('POST', '/things/prod/dibs', { token, body: { for: '1h' } }));
	assert.deepEqual([r.status, r.json.status], [200, 'holding']);
	r = await asA('POST /things/b-only/dibs', () => api('POST', '/things/b-only/dibs', { token }));
	assert.deepEqual([r.status, r.json.status], [200, 'holding'], 'b-only is new in A');
	assert.equal((await holdOf(A, 'b-only')).user_id, U1);
	r = await asA('DELETE /things/b-only/dibs', () => api('DELETE', '/things/b-only/dibs', { token }));
	assert.deepEqual([r.status, r.json.status], [200, 'released']);

	await settledCheck('API');

	// And B's token, with the same user id, sees B's things only (using it
	// stamps B's token as used, so B's rows are read again afterwards).
	r = await api('GET', '/things', { token: tokens[`api ${B}`] });
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.things.map((t) => t.name).sort(), ['b-only', 'gone', 'prod', 'staging']);
	const bStaging = r.json.things.find((t) => t.name === 'staging');
	assert.deepEqual([bStaging.display_name, bStaging.holder, bStaging.reason, bStaging.queue], ['STAGING', U1, 'reason-of-TB', [U3]]);
	assert.equal(r.json.things.find((t) => t.name === 'prod').holder, U3, 'B\'s prod is not A\'s (held by U1 through the API)');
	baseline = await rowsOf(OTHERS);
});

// --- buttons -----------------------------------------------------------------------

test('buttons act on the pressing team only, whatever hold id their value names', async () => {
	const bStaging = await holdOf(B, 'staging');
	const bOnly = await holdOf(B, SEED[B].only);
	const aStaging = await holdOf(A, 'staging');
	assert.equal(aStaging.user_id, U2);
	assert.notEqual(aStaging.hold_id, bStaging.hold_id);

	// Team A's payload, B's thing and hold id, pressed by B's holder.
	let r = await asA('Release with B\'s hold', () => press(A, U1, 'dibs.release', `staging ${bStaging.hold_id}`));
	assert.equal(r.status, 200);
	r = await asA('Extend with B\'s hold', () => press(A, U1, 'dibs.extend', `staging ${bStaging.hold_id}`));
	assert.equal(r.status, 200);
	r = await asA('Release of b-only', () => press(A, U4, 'dibs.release', `b-only ${bOnly.hold_id}`));
	assert.equal(r.status, 200);
	assert.deepEqual(await holdOf(A, 'staging'), aStaging, 'A\'s own hold is not touched by a stale id either');

	// A's own button for A's hold of staging, which U1 also holds in B and C.
	assert.match(await asA('off staging', () => dibs('off staging', { user: U2 })), /It is free/);
	assert.match(await asA('on staging', () => dibs('on staging', { user: U1 })), /is yours/);
	const mine = await holdOf(A, 'staging');
	r = await asA('Release of A\'s own hold', () => press(A, U1, 'dibs.release', `staging ${mine.hold_id}`));
	assert.equal(r.status, 200);
	assert.equal(await holdOf(A, 'staging'), undefined, 'A\'s hold was released');
	for (const team of OTHERS) assert.equal((await holdOf(team, 'staging')).user_id, U1, `${team} still holds`);

	const calls = await settledCheck('buttons');
	const updates = calls.filter((c) => c.method === 'chat.update').map((c) => c.body.text);
	assert.equal(updates.filter((t) => /out of date/.test(t)).length, 3, `three stale presses: ${updates}`);
	assert.ok(updates.some((t) => /You released \*staging\*/.test(t)));

	// The other way round: B's payload naming A's hold changes neither A nor C.
	assert.match(await asA('on staging again', () => dibs('on staging', { user: U1 })), /is yours/);
	const aHold = await holdOf(A, 'staging');
	const aAndC = await rowsOf([A, C]);
	const bHolds = await rowsOf([B], ['things', 'holds', 'queue']);
	r = await press(B, U1, 'dibs.release', `staging ${aHold.hold_id}`);
	assert.equal(r.status, 200);
	assert.deepEqual(await rowsOf([A, C]), aAndC);
	assert.deepEqual(await rowsOf([B], ['things', 'holds', 'queue']), bHolds);
	await settle([B]);
	// B's own chat.update job went out with B's token and then B is at rest again.
	const bCalls = await slack.waitFor(() => {
		const c = slack.calls().slice(callMark).filter((x) => x.team_id === B);
		return c.length ? c : null;
	}, 10_000, 'B\'s chat.update');
	assert.deepEqual(bCalls.map((c) => c.method), ['chat.update']);
	assert.match(bCalls[0].body.text, /out of date/);
	assert.equal(bCalls[0].response.ok, true);
	callMark = slack.calls().length;
	baseline = await rowsOf(OTHERS);
	assert.match(await asA('off staging', () => dibs('off staging', { user: U1 })), /It is free/);
});

// --- App Home --------------------------------------------------------------------

test('the App Home of A shows A\'s things only, to users who hold things in B', async () => {
	assert.match(await dibs('on staging', { user: U2 }), /is yours/);
	for (const user of [U3, U1]) {
		const r = await asA(`app_home_opened ${user}`, () =>
			conch.event(eventEnvelope(A, { type: 'app_home_opened', user, channel: `D0${user.slice(2)}`, tab: 'home' })));
		assert.equal(r.status, 200);
		const pub = await slack.waitFor(() => slack.calls().slice(callMark).find((c) => c.method === 'views.publish' && c.body?.user_id === user),
			10_000, `views.publish for ${user}`);
		assert.equal(pub.team_id, A);
		const t = JSON.stringify(pub.body.view);
		assertClean(`home of ${user}`, t);
		assert.match(t, /staging/);
		assert.match(t, /held by <@U0SAME0002>/);
		assert.doesNotMatch(t, /in line for/, `${user} is in no queue of A`);
		// U1 holds staging in B and C, and only prod (from the API) in A.
		if (user === U1) {
			assert.match(t, /You hold \*prod\*/);
			assert.doesNotMatch(t, /You hold \*staging\*/i);
		} else {
			assert.match(t, /Nothing right now/);
		}
	}
	await settledCheck('App Home');
	assert.match(await dibs('off staging', { user: U2 }), /It is free/);
	await settledCheck('App Home cleanup');
});

// --- /lunch -------------------------------------------------------------------------

test('/lunch commands and buttons of A see and change only A', async (t) => {
	if (!lunchRegistered) {
		// Not silent: the reason is printed and stated as the test's note.
		console.log(`isolation: ${lunchWhyNot}`);
		t.diagnostic(lunchWhyNot);
		const r = await conch.slashCommand({ team_id: A, user_id: U1, channel_id: CHANNEL, command: '/lunch', text: 'help' });
		assert.equal(r.json?.text ?? r.text, 'Unknown command', 'the lunch rows are left out only when /lunch is really not registered');
		return;
	}
	const open = (team) => sdb.one(`SELECT poll_id::text AS poll_id FROM lunch_polls WHERE team_id = $1 AND channel_id = $2 AND state = 'open'`, [team, CHANNEL]);
	const bPoll = await open(B);
	assert.ok(bPoll, 'B has an open poll in the channel');

	for (const text of ['help', 'summary', 'summary 30']) {
		const reply = await asA(`/lunch ${text}`, () => command('/lunch', text));
		assert.notEqual(reply, 'Unknown command');
	}
	// One open poll per channel is per team: B's does not block A's.
	await asA('/lunch start', () => command('/lunch', 'start 12:30 size=3'));
	const aPoll = await waitUntil(() => open(A), { what: 'A\'s open poll' });
	assert.notEqual(aPoll.poll_id, bPoll.poll_id);
	const started = await settledCheck('/lunch start');
	assert.ok(started.filter((c) => c.method === 'chat.postMessage').length >= 4, 'A\'s poll DMs went out, with A\'s token');

	// A forged answer: A's payload, B's poll id.
	let r = await asA('answer with B\'s poll', () => press(A, U3, 'lunch.answer.720', `${bPoll.poll_id}:720`));
	assert.equal(r.status, 200);
	r = await asA('no with B\'s poll', () => press(A, U3, 'lunch.answer.no', `${bPoll.poll_id}:no`));
	assert.equal(r.status, 200);
	r = await asA('answer of A\'s own poll', () => press(A, U1, 'lunch.answer.750', `${aPoll.poll_id}:750`));
	assert.equal(r.status, 200);
	const answer = await sdb.one('SELECT answer FROM lunch_members WHERE team_id = $1 AND poll_id = $2 AND user_id = $3', [A, aPoll.poll_id, U1]);
	assert.equal(answer?.answer, 750, 'A\'s own answer is recorded in A');
	assert.equal(await sdb.count('lunch_members', 'team_id = $1 AND poll_id = $2 AND answer IS NOT NULL', [A, bPoll.poll_id]), 0);

	await asA('/lunch schedule', () => command('/lunch', 'schedule mon,wed 11:30 close 12:00'));
	assert.equal(await sdb.count('lunch_schedules', 'team_id = $1', [A]), 1);
	await asA('/lunch unschedule', () => command('/lunch', 'unschedule'));
	assert.equal(await sdb.count('lunch_schedules', 'team_id = $1', [A]), 0);
	await asA('/lunch close', () => command('/lunch', 'close'));
	assert.equal(await open(A), undefined, 'A\'s poll is closed');
	assert.deepEqual(await open(B), bPoll, 'B\'s poll is still open');
	await settledCheck('/lunch close');
	for (const team of OTHERS) assert.equal(await sdb.count('lunch_schedules', 'team_id = $1', [team]), 1);
});

// --- Row-Level Security, directly ---------------------------------------------------

async function appClient() {
	const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
	await client.connect();
	return client;
}

async function allTeamRelations() {
	// Parents, plain tables and every partition: each must hold to the rule.
	return (await sdb.query(
		`SELECT c.relname, c.relispartition, c.relrowsecurity, c.relforcerowsecurity
		 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'team_id' AND NOT a.attisdropped
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1`,
	));
}

// The relations of team tables (partitions included), without the global ones.
function teamOnly(rels) {
	return rels.filter((r) => !GLOBAL_TABLES.includes(r.relname));
}

async function sqlState(client, sql, params) {
	await client.query('SAVEPOINT probe');
	try {
		await client.query(sql, params);
		return 'ok';
	} catch (err) {
		return err.code;
	} finally {
		await client.query('ROLLBACK TO SAVEPOINT probe');
	}
}

test('every team table is under RLS, owned by the owner role; the application role owns nothing and is not exempt', async () => {
	const rels = await allTeamRelations();
	for (const t of ['teams', 'installations', 'things', 'holds', 'queue', 'api_tokens', 'jobs', 'dibs_events', 'billing'])
		assert.ok(rels.some((r) => r.relname === t), `${t} is a team table`);
	assert.ok(rels.filter((r) => r.relispartition).length >= 16 * 8, 'the partitions are there');
	for (const r of rels) assert.equal(r.relrowsecurity, true, `${r.relname} has RLS enabled`);
	const role = await sdb.one(
		`SELECT rolsuper, rolbypassrls, pg_has_role('conch', $1, 'MEMBER') AS runtime,
		        pg_has_role('conch', $2, 'USAGE') AS owner
		   FROM pg_roles WHERE rolname = 'conch'`, [RUNTIME_GROUP, OWNER_ROLE]);
	assert.deepEqual(role, { rolsuper: false, rolbypassrls: false, runtime: true, owner: false });
	const owners = await sdb.query(
		`SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public'`);
	assert.deepEqual(owners.map((o) => o.owner), [OWNER_ROLE], 'every relation belongs to the owner role');
	const owned = await sdb.one(
		`SELECT (SELECT count(*) FROM pg_class WHERE relowner = 'conch'::regrole)::int
		      + (SELECT count(*) FROM pg_proc WHERE proowner = 'conch'::regrole)::int
		      + (SELECT count(*) FROM pg_namespace WHERE nspowner = 'conch'::regrole)::int
		      + (SELECT count(*) FROM pg_database WHERE datdba = 'conch'::regrole)::int AS n`);
	assert.equal(owned.n, 0, 'the application role owns nothing');
	// The functions that span teams run as the owner, with a pinned search_path.
	const definers = await sdb.query(
		`SELECT p.proname, pg_get_userbyid(p.proowner) AS owner, p.proconfig FROM pg_proc p
		 JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public' AND p.prosecdef ORDER BY 1`);
	assert.ok(definers.some((d) => d.proname === 'conch_api_token_team'), 'the definer functions are there');
	for (const d of definers) {
		assert.equal(d.owner, OWNER_ROLE, `${d.proname} belongs to the owner`);
		assert.ok((d.proconfig || []).some((c) => /^search_path=/.test(c)), `${d.proname} pins search_path`);
	}
});

test('with no team set, the application role sees no row of any team table, partitions included', async () => {
	const rels = await allTeamRelations();
	const withRows = [];
	for (const { relname } of rels) {
		const { n } = await sdb.one(`SELECT count(*)::int AS n FROM "${relname}"`);
		if (n > 0) withRows.push(relname);
	}
	for (const t of ['teams', 'installations', 'things', 'holds', 'queue', 'api_tokens', 'jobs', 'dibs_events', 'billing'])
		assert.ok(withRows.includes(t), `${t} has rows to hide`);
	assert.ok(withRows.some((t) => /^things_p\d+$/.test(t)), 'some things partition has rows');
	console.log(`isolation: RLS checked on ${rels.length} relations, ${withRows.length} with rows`);

	const client = await appClient();
	try {
		const { rows: [me] } = await client.query(`SELECT current_user AS u, current_setting('conch.team_id', true) AS team`);
		assert.equal(me.u, 'conch');
		assert.equal(me.team, null);
		for (const { relname } of teamOnly(rels)) {
			const { rows: [{ n }] } = await client.query(`SELECT count(*)::int AS n FROM "${relname}"`);
			assert.equal(n, 0, `${relname}: ${n} rows seen with no team set`);
		}
		// After a transaction that set a team, the setting is back to empty.
		await client.query('BEGIN');
		await client.query(`SELECT set_config('conch.team_id', $1, true)`, [A]);
		const { rows: [{ n: inTx }] } = await client.query('SELECT count(*)::int AS n FROM things');
		assert.ok(inTx > 0);
		await client.query('COMMIT');
		for (const { relname } of teamOnly(rels)) {
			const { rows: [{ n }] } = await client.query(`SELECT count(*)::int AS n FROM "${relname}"`);
			assert.equal(n, 0, `${relname}: ${n} rows seen after the team transaction ended`);
		}
		// No team means no write either.
		await client.query('BEGIN');
		assert.equal(await sqlState(client, `INSERT INTO things (team_id, name, display_name) VALUES ($1, 'nobody', 'nobody')`, [B]), '42501');
		assert.equal((await client.query(`UPDATE holds SET user_id = 'U0EVIL0001'`)).rowCount, 0);
		assert.equal((await client.query('DELETE FROM queue')).rowCount, 0);
		await client.query('ROLLBACK');
	} finally {
		await client.end();
	}
});

test('with team A set, no row of B or C is seen, written, changed or deleted, whichever relation is named', async () => {
	const rels = await allTeamRelations();
	const partitionOf = async (table, team) =>
		(await sdb.one(`SELECT tableoid::regclass::text AS p FROM "${table}" WHERE team_id = $1 LIMIT 1`, [team])).p;
	const before = await rowsOf(OTHERS);
	const client = await appClient();
	try {
		await client.query('BEGIN');
		await client.query(`SELECT set_config('conch.team_id', $1, true)`, [A]);
		for (const { relname } of rels) {
			const { rows: [r] } = await client.query(
				`SELECT count(*)::int AS mine, count(*) FILTER (WHERE team_id IS DISTINCT FROM $1)::int AS others FROM "${relname}"`, [A]);
			assert.equal(r.others, 0, `${relname}: ${r.others} rows of other teams seen under A`);
		}
		for (const t of ['teams', 'installations', 'things', 'holds', 'api_tokens', 'jobs', 'dibs_events', 'billing']) {
			const { rows: [{ n }] } = await client.query(`SELECT count(*)::int AS n FROM "${t}"`);
			assert.ok(n > 0, `A sees its own rows in ${t}`);
		}

		// Writing B's rows under A is refused outright.
		const hold = await sdb.one('SELECT hold_id FROM holds WHERE team_id = $1 LIMIT 1', [B]);
		const inserts = [
			[`INSERT INTO teams (team_id, name) VALUES ('T0INTRUDE1', 'x')`, []],
			[`INSERT INTO things (team_id, name, display_name) VALUES ($1, 'intruder', 'intruder')`, [B]],
			[`INSERT INTO holds (team_id, thing, user_id) VALUES ($1, 'prod', 'U0EVIL0001')`, [B]],
			[`INSERT INTO queue (team_id, thing, user_id, position) VALUES ($1, 'prod', 'U0EVIL0001', 99)`, [B]],
			[`INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ($1, repeat('a', 64), 'U0EVIL0001')`, [B]],
			[`INSERT INTO jobs (kind, team_id) VALUES ('dibs.release', $1)`, [B]],
			[`INSERT INTO dibs_events (team_id, action) VALUES ($1, 'hold')`, [B]],
			[`INSERT INTO billing (team_id) VALUES ($1)`, [C]],
			[`INSERT INTO installations (team_id, bot_token) VALUES ($1, 'v1.1.x')`, [C]],
		];
		if (rels.some((r) => r.relname === 'lunch_settings'))
			inserts.push([`INSERT INTO lunch_settings (team_id, groups_in_channel) VALUES ($1, true)`, [B]]);
		for (const [sql, params] of inserts) assert.equal(await sqlState(client, sql, params), '42501', sql);

		// Updates and deletes of B's rows find nothing to change.
		assert.equal((await client.query(`UPDATE holds SET user_id = 'U0EVIL0001' WHERE team_id = $1`, [B])).rowCount, 0);
		assert.equal((await client.query(`UPDATE holds SET user_id = 'U0EVIL0001' WHERE hold_id = $1`, [hold.hold_id])).rowCount, 0);
		assert.equal((await client.query('DELETE FROM things WHERE team_id <> $1', [A])).rowCount, 0);
		assert.equal((await client.query(`UPDATE jobs SET state = 'cancelled' WHERE team_id = $1`, [C])).rowCount, 0);
		assert.equal((await client.query(`DELETE FROM installations WHERE team_id = $1`, [B])).rowCount, 0);
		// Nor can A's own row be moved into B.
		assert.equal(await sqlState(client, `UPDATE api_tokens SET team_id = $1 WHERE team_id = $2`, [B, A]), '42501');
		assert.equal(await sqlState(client, `UPDATE jobs SET team_id = $1 WHERE team_id = $2`, [B, A]), '42501');

		// A partition named directly: the one holding B's rows.
		for (const table of ['things', 'holds', 'teams', 'installations']) {
			const part = await partitionOf(table, B);
			assert.match(part, new RegExp(`^${table}_p\\d+$`));
			const { rows: [{ n }] } = await client.query(`SELECT count(*)::int AS n FROM "${part}" WHERE team_id = $1`, [B]);
			assert.equal(n, 0, `${part} shows B's rows under A`);
			assert.equal((await client.query(`DELETE FROM "${part}" WHERE team_id = $1`, [B])).rowCount, 0, `${part} delete`);
		}
		const thingsPart = await partitionOf('things', B);
		assert.equal(await sqlState(client, `INSERT INTO "${thingsPart}" (team_id, name, display_name) VALUES ($1, 'intruder', 'intruder')`, [B]), '42501');
		const teamsPart = await partitionOf('teams', B);
		assert.equal(await sqlState(client, `UPDATE "${teamsPart}" SET plan = 'free' WHERE team_id = $1`, [B]), 'ok');
		await client.query('COMMIT');
	} finally {
		await client.end();
	}
	assert.deepEqual(await rowsOf(OTHERS), before, 'nothing of B or C changed');
	assert.equal(await sdb.count('teams', `team_id = 'T0INTRUDE1'`), 0);
	assert.equal((await sdb.one('SELECT plan FROM teams WHERE team_id = $1', [B])).plan, 'pro');
});

test('with team B set, the same holds the other way round', async () => {
	const rels = await allTeamRelations();
	const client = await appClient();
	try {
		await client.query('BEGIN');
		await client.query(`SELECT set_config('conch.team_id', $1, true)`, [B]);
		for (const { relname } of rels) {
			const { rows: [r] } = await client.query(
				`SELECT count(*) FILTER (WHERE team_id IS DISTINCT FROM $1)::int AS others FROM "${relname}"`, [B]);
			assert.equal(r.others, 0, `${relname} under B`);
		}
		const { rows } = await client.query('SELECT DISTINCT team_id FROM things');
		assert.deepEqual(rows, [{ team_id: B }]);
		await client.query('ROLLBACK');
	} finally {
		await client.end();
	}
});

test('conch.all_teams lifts no scope for the application role', async () => {
	const rels = await allTeamRelations();
	const client = await appClient();
	try {
		await client.query(`SELECT set_config('conch.all_teams', 'on', false)`);
		for (const { relname } of teamOnly(rels)) {
			const { rows: [{ n }] } = await client.query(`SELECT count(*)::int AS n FROM "${relname}"`);
			assert.equal(n, 0, `${relname}: ${n} rows seen with conch.all_teams on`);
		}
		await client.query('BEGIN');
		await client.query(`SELECT set_config('conch.team_id', $1, true), set_config('conch.all_teams', 'on', true)`, [A]);
		for (const { relname } of rels) {
			const { rows: [r] } = await client.query(
				`SELECT count(*) FILTER (WHERE team_id IS DISTINCT FROM $1)::int AS others FROM "${relname}"`, [A]);
			assert.equal(r.others, 0, `${relname}: other teams' rows seen under A with conch.all_teams on`);
		}
		assert.equal((await client.query('UPDATE things SET display_name = display_name WHERE team_id = $1', [B])).rowCount, 0);
		await client.query('ROLLBACK');
	} finally {
		await client.end();
	}
});

test('the application role can change no table, policy or function, nor become the owner', async () => {
	const client = await appClient();
	const refused = [
		'DROP POLICY team_scope ON things',
		'DROP POLICY team_scope ON things_p0',
		'ALTER TABLE things DISABLE ROW LEVEL SECURITY',
		'ALTER TABLE holds_p3 DISABLE ROW LEVEL SECURITY',
		'ALTER TABLE jobs DISABLE ROW LEVEL SECURITY',
		`CREATE POLICY open_door ON things USING (true)`,
		'DROP TABLE things',
		'DROP TABLE admin_users',
		'TRUNCATE installations',
		'ALTER TABLE teams ADD COLUMN evil text',
		'CREATE TABLE evil (team_id text)',
		`CREATE OR REPLACE FUNCTION conch_team() RETURNS text LANGUAGE sql AS $$ SELECT 'T0ISOLATEB' $$`,
		`CREATE OR REPLACE FUNCTION conch_all_teams() RETURNS boolean LANGUAGE sql AS $$ SELECT true $$`,
		'DROP FUNCTION conch_api_token_team(text)',
		`SET ROLE ${OWNER_ROLE}`,
		`INSERT INTO schema_migrations (version) VALUES ('999_evil.sql')`,
		`UPDATE plans SET max_things = NULL`,
	];
	try {
		await client.query('BEGIN');
		for (const sql of refused) assert.equal(await sqlState(client, sql), '42501', sql);
		await client.query('ROLLBACK');
	} finally {
		await client.end();
	}
	const pol = await sdb.one(`SELECT count(*)::int AS n FROM pg_policies WHERE tablename = 'things' AND policyname = 'team_scope'`);
	assert.equal(pol.n, 1, 'the policy is still there');
});

test('serve refuses to run as the owner role, and migrate as the application role', async () => {
	const served = await runConch(['serve'], {
		env: conchEnv({ databaseUrl: cluster.migrateUrl(dbName), env: { CONCH_LISTEN: '127.0.0.1:1', CONCH_JOB_THREADS: '1' } }),
	});
	assert.notEqual(served.code, 0, 'serve as the owner must not start');
	assert.match(served.stderr, /owns the schema or bypasses row-level security/);
	assert.deepEqual(served.sanitizer, []);

	const fresh = `${dbName}_m`;
	const url = await cluster.createDatabase(fresh);
	try {
		const migrated = await runConch(['migrate'], { env: conchEnv({ databaseUrl: url, migrateUrl: url }) });
		assert.notEqual(migrated.code, 0, 'migrate as the application role must fail');
		assert.deepEqual(migrated.sanitizer, []);
		const made = await cluster.query(
			`SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = 'public' AND c.relname <> 'schema_migrations'`, [], fresh);
		assert.equal(made[0].n, 0, 'nothing was created');
	} finally {
		await cluster.dropDatabase(fresh);
	}
});

test('nothing of A was ever done with B\'s or C\'s token, and the server stops cleanly', async () => {
	const foreign = slack.calls().filter((c) => c.team_id === null);
	assert.deepEqual(foreign.map((c) => c.method), [], 'no call without a known token');
	const dead = await sdb.query(`SELECT kind, team_id, last_error FROM jobs WHERE state = 'running'`);
	assert.deepEqual(dead, []);
	await conch.stop();
});
