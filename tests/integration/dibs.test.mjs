// /dibs against the real server, a real PostgreSQL and the fake Slack:
// replies, the exact Slack calls made by jobs, timed releases across a
// SIGKILL, buttons, the App Home, plan limits, concurrency and the REST API.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	blockActions, db, eventEnvelope, installTeam, sleep, startConch, waitUntil,
} from '../lib/server.mjs';

const PRO = 'T0DIBSPRO1';
const FREE = 'T0DIBSFREE';
const CHANNEL = 'C0DIBS0001';

let cluster, dbName, dbUrl, slack, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_dibs_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
	await installTeam(dbUrl, { team_id: PRO, token: slack.issueToken({ team_id: PRO }), plan: 'pro' });
	await installTeam(dbUrl, { team_id: FREE, token: slack.issueToken({ team_id: FREE }), plan: 'free' });
	await installTeam(dbUrl, { team_id: 'T0PARSE001', token: slack.issueToken({ team_id: 'T0PARSE001' }), plan: 'pro' });
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

// --- helpers -------------------------------------------------------------------

async function dibs(text, { user = 'U0AAAAAAA1', team = PRO, channel = CHANNEL, server = conch } = {}) {
	const r = await server.slashCommand({ team_id: team, user_id: user, channel_id: channel, command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	const msg = r.json;
	assert.ok(msg, `/dibs ${text}: not JSON: ${r.text}`);
	assert.equal(msg.response_type, 'ephemeral');
	return msg;
}

function textOf(msg) {
	return [msg.text, ...(msg.blocks || []).map((b) => b.text?.text || '')].join('\n');
}

function dmsTo(user, team = PRO) {
	return slack.calls('chat.postMessage').filter((c) => c.body?.channel === user && c.team_id === team);
}

async function holder(thing, team = PRO) {
	const row = await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [team, thing]);
	return row?.user_id ?? null;
}

async function queueOf(thing, team = PRO) {
	const rows = await sdb.query('SELECT user_id FROM queue WHERE team_id = $1 AND thing = $2 ORDER BY position', [team, thing]);
	return rows.map((r) => r.user_id);
}

function buttons(call) {
	return (call.body.blocks || []).filter((b) => b.type === 'actions').flatMap((b) => b.elements);
}

// Every thing, hold and queue of a team: what "state did not change" compares.
async function state(team = PRO) {
	return {
		things: await sdb.query('SELECT name FROM things WHERE team_id = $1 ORDER BY 1', [team]),
		holds: await sdb.query('SELECT thing, user_id, hold_id FROM holds WHERE team_id = $1 ORDER BY 1', [team]),
		queue: await sdb.query('SELECT thing, user_id, position FROM queue WHERE team_id = $1 ORDER BY 1, 3', [team]),
		tokens: await sdb.count('api_tokens', 'team_id = $1', [team]),
	};
}

// --- grammar over HTTP ---------------------------------------------------------

test('bad commands answer with what was wrong and a usage line, not the whole help, and change nothing', async () => {
	const before = await state();
	const bad = [
		'on', 'on stag ing', `on ${'x'.repeat(65)}`, "on x';drop table things;--", 'on x for', 'on x for 31d',
		'on x for 0s', 'on x for 99999999999999999999h', 'off', 'q', 'extend x', 'extend x by 40d', 'kick',
		'remove', 'frobnicate', 'on x because', `on x because ${'y'.repeat(301)}`, 'token now', 'list all',
		'on é', 'on x for 2 fortnights', 'on \u00a0', 'help me',
	];
	for (const text of bad) {
		const t = (await dibs(text)).text;
		assert.match(t, /^[^\n]+\. (Usage: `\/dibs |`\/dibs help` lists the commands)/, `short error for ${JSON.stringify(text)}`);
		assert.doesNotMatch(t, /\n|this list/, `no help text for ${JSON.stringify(text)}`);
	}
	assert.deepEqual(await state(), before);
	assert.equal(slack.calls('chat.postMessage').length, 0);
});

// The first string of every OK(...) and ERR(...) row of the parser's table.
function parserTableInputs() {
	const src = fs.readFileSync(new URL('../unit/test_dibs_parse.c', import.meta.url), 'utf8');
	const rows = [...src.matchAll(/^\s*(?:OK|ERR)\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)/gm)];
	return rows.map(([, lit]) => [...lit.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(([, body]) => cString(body)).join(''));
}

function cString(body) {
	const bytes = [];
	for (let i = 0; i < body.length; i++) {
		if (body[i] !== '\\') {
			bytes.push(...Buffer.from(body[i], 'utf8'));
			continue;
		}
		const c = body[++i];
		const simple = { n: 10, t: 9, r: 13, '\\': 92, '"': 34, "'": 39, a: 7, b: 8, f: 12, v: 11 };
		if (c in simple) bytes.push(simple[c]);
		else if (c === 'x') {
			const m = body.slice(i + 1).match(/^[0-9a-fA-F]+/)[0];
			bytes.push(parseInt(m, 16) & 0xff);
			i += m.length;
		} else if (/[0-7]/.test(c)) {
			const m = body.slice(i).match(/^[0-7]{1,3}/)[0];
			bytes.push(parseInt(m, 8) & 0xff);
			i += m.length - 1;
		} else bytes.push(c.charCodeAt(0));
	}
	return Buffer.from(bytes).toString('latin1');
}

test('every row of the parser table, sent over HTTP, gets a Slack reply and never crashes the server', async () => {
	const inputs = parserTableInputs();
	assert.ok(inputs.length >= 100, `found ${inputs.length} rows`);
	for (const text of inputs) {
		// Bytes as typed (latin1 keeps them), form-encoded as Slack would.
		// A fresh trigger_id, as from Slack: a repeated row must not be a replay.
		const body = `team_id=T0PARSE001&user_id=U0PARSER01&channel_id=${CHANNEL}&command=%2Fdibs&text=` +
			[...Buffer.from(text, 'latin1')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('') +
			`&trigger_id=${Date.now()}.${randomBytes(4).toString('hex')}`;
		const r = await conch.signedSlackRequest('/slack/commands', body);
		// NUL bytes are malformed form input (400); everything else is a reply.
		if (text.includes('\0')) assert.equal(r.status, 400, JSON.stringify(text));
		else assert.equal(r.status, 200, `${JSON.stringify(text)}: ${r.text}`);
	}
	assert.equal((await conch.fetch('/healthz')).status, 200);
});

test('help lists every form of the contract', async () => {
	const t = textOf(await dibs('help'));
	for (const form of ['on', 'off', 'list', 'q', 'extend', 'kick', 'remove', 'token', 'upgrade'])
		assert.match(t, new RegExp(`/dibs ${form}\\b`), form);
});

// --- take, queue, release, DMs ---------------------------------------------------

test('on holds a free thing, queues the others once, and off hands it to the next with a DM', async () => {
	let t = textOf(await dibs('on Staging', { user: 'U0ALICE001' }));
	assert.match(t, /\*Staging\* is yours/);
	t = textOf(await dibs('on staging', { user: 'U0BOB00001' }));
	assert.match(t, /held by <@U0ALICE001>.*#1 in the queue/s);
	t = textOf(await dibs('on STAGING', { user: 'U0CAROL001' }));
	assert.match(t, /#2 in the queue/);
	t = textOf(await dibs('on staging', { user: 'U0BOB00001' }));
	assert.match(t, /already #1 in the queue/);
	t = textOf(await dibs('on staging', { user: 'U0ALICE001' }));
	assert.match(t, /already have/);
	assert.deepEqual(await queueOf('staging'), ['U0BOB00001', 'U0CAROL001']);

	t = textOf(await dibs('off staging', { user: 'U0ALICE001' }));
	assert.match(t, /released \*staging\*\. It is now <@U0BOB00001>'s/i);
	assert.equal(await holder('staging'), 'U0BOB00001');
	const [dm] = await slack.waitFor(() => (dmsTo('U0BOB00001').length ? dmsTo('U0BOB00001') : null));
	assert.match(dm.body.text, /\*Staging\* is yours/);
	const [release] = buttons(dm);
	assert.equal(release.action_id, 'dibs.release');
	const hold = await sdb.one('SELECT hold_id FROM holds WHERE team_id = $1 AND thing = $2', [PRO, 'staging']);
	assert.equal(release.value, `staging ${hold.hold_id}`);
	// The one who released was told who waits (once), and nothing more.
	assert.ok(dmsTo('U0ALICE001').every((c) => /waiting for your \*Staging\*/.test(c.body.text)), 'the one who released gets no other DM');
	assert.ok(dmsTo('U0ALICE001').length <= 1);

	t = textOf(await dibs('off staging', { user: 'U0CAROL001' }));
	assert.match(t, /left the queue/);
	t = textOf(await dibs('off staging', { user: 'U0CAROL001' }));
	assert.match(t, /don't hold/);
	t = textOf(await dibs('off nothing-here', { user: 'U0CAROL001' }));
	assert.match(t, /no thing called/);
});

test('list shows holder, since and release time in Slack date format, and the queue', async () => {
	await dibs('on lister for 2h because demo', { user: 'U0ALICE001' });
	await dibs('on lister', { user: 'U0DAVE0001' });
	const msg = await dibs('list');
	const t = textOf(msg);
	assert.match(t, /\*lister\*\s+held by <@U0ALICE001> since <!date\^\d+\^\{date_short_pretty\} at \{time\}\|[^>]+>, until <!date\^\d+\^/);
	assert.match(t, /_demo_/);
	assert.match(t, /Queue: 1\. <@U0DAVE0001>/);
	assert.ok(msg.blocks.every((b) => b.type === 'section' || b.type === 'context'));
	const empty = await dibs('', { team: FREE });
	assert.match(textOf(empty), /No things yet/);
	const one = textOf(await dibs('q LISTER'));
	assert.match(one, /lister.*held by <@U0ALICE001>/s);
	await dibs('off lister', { user: 'U0ALICE001' });
	await dibs('off lister', { user: 'U0DAVE0001' });
});

test('kick releases whoever holds it, DMs them, announces it in the channel and promotes the next', async () => {
	await dibs('on printer', { user: 'U0ALICE001' });
	await dibs('on printer', { user: 'U0BOB00001' });
	const t = textOf(await dibs('kick printer', { user: 'U0CAROL001', channel: 'C0KICKS001' }));
	assert.match(t, /kicked <@U0ALICE001> off \*printer\*\. It is now <@U0BOB00001>'s/);
	const kicked = await slack.waitFor(() => dmsTo('U0ALICE001').find((c) => /kicked you off/.test(c.body.text)));
	assert.match(kicked.body.text, /<@U0CAROL001> kicked you off \*printer\*/);
	const announce = await slack.waitFor(() => slack.calls('chat.postMessage').find((c) => c.body.channel === 'C0KICKS001'));
	assert.match(announce.body.text, /<@U0CAROL001> kicked <@U0ALICE001> off \*printer\*/);
	await slack.waitFor(() => dmsTo('U0BOB00001').find((c) => /\*printer\* is yours/.test(c.body.text)));
	assert.equal(await holder('printer'), 'U0BOB00001');
	assert.match(textOf(await dibs('kick nobody-thing', { user: 'U0CAROL001' })), /no thing called/);
	await dibs('off printer', { user: 'U0BOB00001' });
	assert.match(textOf(await dibs('kick printer', { user: 'U0CAROL001' })), /Nobody holds/);
	assert.match(textOf(await dibs('remove printer')), /Removed/);
	assert.match(textOf(await dibs('remove printer')), /no thing called/);
	await dibs('on keeper', { user: 'U0ALICE001' });
	assert.match(textOf(await dibs('remove keeper')), /is held/);
	await dibs('off keeper', { user: 'U0ALICE001' });
});

// --- timers ----------------------------------------------------------------------

test('a timed hold ends by itself and the next in line is DMed once; a queued `for` starts at the head', async () => {
	await dibs('on lab for 2s', { user: 'U0ALICE001' });
	await dibs('on lab for 1h', { user: 'U0BOB00001' });
	const due = Number((await sdb.one("SELECT extract(epoch FROM release_at) AS e FROM holds WHERE team_id = $1 AND thing = 'lab'", [PRO])).e);
	await waitUntil(async () => (await holder('lab')) === 'U0BOB00001', { timeoutMs: 10_000, what: 'timed release' });
	const ev = await sdb.one("SELECT extract(epoch FROM at) AS e FROM dibs_events WHERE team_id = $1 AND thing = 'lab' AND action = 'expire'", [PRO]);
	console.log(`dibs: a 2 s hold was released ${((Number(ev.e) - due) * 1000).toFixed(0)} ms after its due time`);
	// Bob's hour starts now, not when he queued.
	const h = await sdb.one("SELECT extract(epoch FROM release_at - since) AS d FROM holds WHERE team_id = $1 AND thing = 'lab'", [PRO]);
	assert.equal(Math.round(Number(h.d)), 3600);
	const turn = await slack.waitFor(() => dmsTo('U0BOB00001').find((c) => /\*lab\* is yours/.test(c.body.text)));
	assert.match(turn.body.text, /released <!date\^\d+/);
	await slack.waitFor(() => dmsTo('U0ALICE001').find((c) => /hold on \*lab\* ended/.test(c.body.text)));
	await sleep(500);
	assert.equal(dmsTo('U0BOB00001').filter((c) => /\*lab\* is yours/.test(c.body.text)).length, 1);
	await dibs('off lab', { user: 'U0BOB00001' });
});

test('extend and off make the old release job a no-op', async () => {
	await dibs('on ext for 2s', { user: 'U0ALICE001' });
	const old = await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'ext'", [PRO]);
	// Slack reads a date token's whole seconds only (a fraction shows the
	// fallback, which said "later"): an integer, and the time in UTC as fallback.
	const until = /until <!date\^\d+\^\{time\} \{date_short_pretty\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>/;
	assert.match(textOf(await dibs('extend ext by 1h', { user: 'U0ALICE001' })), new RegExp(`^\\*ext\\* is yours ${until.source}\\.$`));
	assert.match(textOf(await dibs('mine', { user: 'U0ALICE001' })), new RegExp(`You hold \\*ext\\* ${until.source}`));
	assert.match(textOf(await dibs('extend ext by 1h', { user: 'U0BOB00001' })), /don't hold/);
	await sleep(3000);
	assert.equal(await holder('ext'), 'U0ALICE001', 'still held after the old due time');
	const now = await sdb.one("SELECT hold_id, extract(epoch FROM release_at - now()) AS left FROM holds WHERE team_id = $1 AND thing = 'ext'", [PRO]);
	assert.notEqual(now.hold_id, old.hold_id);
	assert.ok(Number(now.left) > 3500);
	// The old job, even forced to run, releases nothing.
	await sdb.query("UPDATE jobs SET state = 'queued', due_at = now() WHERE kind = 'dibs.release' AND dedupe_key = $1", [`release:${old.hold_id}`]);
	await waitUntil(async () => (await sdb.one("SELECT state FROM jobs WHERE kind = 'dibs.release' AND dedupe_key = $1", [`release:${old.hold_id}`])).state === 'done');
	assert.equal(await holder('ext'), 'U0ALICE001');
	// A release job that fires twice releases once.
	await dibs('on twice for 1s', { user: 'U0ALICE001' });
	await dibs('on twice', { user: 'U0BOB00001' });
	await waitUntil(async () => (await holder('twice')) === 'U0BOB00001');
	// The job records its result just after the release commits.
	const releaseJob = () => sdb.one("SELECT id, state FROM jobs WHERE kind = 'dibs.release' AND payload->>'thing' = 'twice'");
	await waitUntil(async () => (await releaseJob()).state === 'done', { what: 'the release job done' });
	const first = await releaseJob();
	await sdb.query("UPDATE jobs SET state = 'queued', due_at = now() WHERE id = $1", [first.id]);
	await waitUntil(async () => (await releaseJob()).state === 'done', { what: 'the rerun done' });
	assert.equal(await holder('twice'), 'U0BOB00001');
	assert.equal(await sdb.count('dibs_events', "team_id = $1 AND thing = 'twice' AND action = 'expire'", [PRO]), 1);
	await dibs('off twice', { user: 'U0BOB00001' });
	await dibs('off ext', { user: 'U0ALICE001' });
});

test('the reminder arrives five minutes early with Extend 1h and Release buttons that act for the holder only', async () => {
	await dibs('on deploybox for 1h', { user: 'U0ALICE001' });
	const hold = await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'deploybox'", [PRO]);
	const remind = await sdb.one("SELECT extract(epoch FROM h.release_at - j.due_at) AS early FROM jobs j, holds h WHERE j.kind = 'dibs.remind' AND j.dedupe_key = $1 AND h.team_id = $2 AND h.thing = 'deploybox'", [`remind:${hold.hold_id}`, PRO]);
	assert.equal(Math.round(Number(remind.early)), 300);
	await sdb.query("UPDATE jobs SET due_at = now() WHERE kind = 'dibs.remind' AND dedupe_key = $1", [`remind:${hold.hold_id}`]);
	const dm = await slack.waitFor(() => dmsTo('U0ALICE001').find((c) => /hold on \*deploybox\* ends/.test(c.body.text)));
	const [extend, release] = buttons(dm);
	assert.deepEqual([extend.action_id, release.action_id], ['dibs.extend', 'dibs.release']);
	assert.equal(extend.text.text, 'Extend 1h');

	const where = { channel_id: dm.response.channel, message_ts: dm.response.ts };
	// Someone else pressing it changes nothing.
	let r = await conch.interactivity(blockActions({ team_id: PRO, user_id: 'U0MALLORY1', action_id: 'dibs.release', value: release.value, ...where }));
	assert.equal(r.status, 200);
	assert.equal(await holder('deploybox'), 'U0ALICE001');
	const updates = () => slack.calls('chat.update').filter((c) => c.body.ts === where.message_ts);
	const denied = await slack.waitFor(() => updates()[0]);
	assert.match(denied.body.text, /out of date/);

	r = await conch.interactivity(blockActions({ team_id: PRO, user_id: 'U0ALICE001', action_id: 'dibs.extend', value: extend.value, ...where }));
	assert.equal(r.status, 200);
	const left = await sdb.one("SELECT extract(epoch FROM release_at - now()) AS s, hold_id FROM holds WHERE team_id = $1 AND thing = 'deploybox'", [PRO]);
	assert.ok(Number(left.s) > 7000, 'an hour was added');
	const upd = await slack.waitFor(() => updates()[1]);
	assert.equal(upd.body.channel, where.channel_id);
	assert.match(upd.body.text, /Extended/);

	// The old Release button is stale now (the hold has a new id).
	r = await conch.interactivity(blockActions({ team_id: PRO, user_id: 'U0ALICE001', action_id: 'dibs.release', value: release.value, ...where }));
	assert.equal(await holder('deploybox'), 'U0ALICE001');
	r = await conch.interactivity(blockActions({ team_id: PRO, user_id: 'U0ALICE001', action_id: 'dibs.release', value: `deploybox ${left.hold_id}`, ...where }));
	assert.equal(await holder('deploybox'), null);
	const rel = await slack.waitFor(() => updates()[3]);
	assert.match(rel.body.text, /released \*deploybox\*/);
	// Malformed values are ignored.
	r = await conch.interactivity(blockActions({ team_id: PRO, user_id: 'U0ALICE001', action_id: 'dibs.release', value: "x'; drop table holds; -- 1" }));
	assert.equal(r.status, 200);
});

// --- App Home -----------------------------------------------------------------

test('opening the App Home publishes the user\'s holds, places in line and the team\'s things', async () => {
	await dibs('on homething', { user: 'U0ALICE001' });
	await dibs('on homething', { user: 'U0BOB00001' });
	const r = await conch.event(eventEnvelope(PRO, { type: 'app_home_opened', user: 'U0BOB00001', channel: 'D0BOB', tab: 'home' }));
	assert.equal(r.status, 200);
	const [pub] = await slack.waitForCalls('views.publish', 1);
	assert.equal(pub.body.user_id, 'U0BOB00001');
	assert.equal(pub.body.view.type, 'home');
	const t = pub.body.view.blocks.map((b) => b.text?.text || '').join('\n');
	assert.match(t, /#1 in line for \*homething\*/);
	assert.match(t, /homething.*held by <@U0ALICE001>/s);
	await dibs('off homething', { user: 'U0ALICE001' });
	await dibs('off homething', { user: 'U0BOB00001' });
});

// --- plan limits ----------------------------------------------------------------

test('on free, a 6th thing, `for`, extend and the API are refused with /dibs upgrade; nothing stored is touched', async () => {
	for (let i = 1; i <= 5; i++) assert.match(textOf(await dibs(`on f${i}`, { team: FREE })), /is yours/);
	const before = await state(FREE);
	assert.match(textOf(await dibs('on f6', { team: FREE })), /\/dibs upgrade/);
	assert.match(textOf(await dibs('on f1 for 1h', { team: FREE, user: 'U0OTHER001' })), /\/dibs upgrade/);
	assert.match(textOf(await dibs('extend f1 by 1h', { team: FREE })), /\/dibs upgrade/);
	assert.match(textOf(await dibs('token', { team: FREE })), /\/dibs upgrade/);
	assert.deepEqual(await state(FREE), before);
	// Over-limit things stay usable after a downgrade.
	await sdb.query("UPDATE teams SET plan = 'free' WHERE team_id = $1", [PRO]);
	const count = await sdb.count('things', 'team_id = $1', [PRO]);
	assert.ok(count > 5);
	assert.match(textOf(await dibs('on staging', { user: 'U0ZED00001' })), /is yours/);
	assert.match(textOf(await dibs('on brand-new-thing')), /\/dibs upgrade/);
	await dibs('off staging', { user: 'U0ZED00001' });
	await sdb.query("UPDATE teams SET plan = 'pro' WHERE team_id = $1", [PRO]);
	assert.match(textOf(await dibs('upgrade', { team: FREE })), /not configured|checkout/);
});

// --- concurrency ----------------------------------------------------------------

test('50 users calling dibs at once: one holder, 49 queued at distinct positions', async () => {
	const users = Array.from({ length: 50 }, (_, i) => `U0RACE${String(i).padStart(4, '0')}`);
	const replies = await Promise.all(users.map((u) => dibs('on race-x', { user: u })));
	const holding = replies.filter((m) => /^\*race-x\* is yours/.test(textOf(m)));
	const queued = replies.filter((m) => /in the queue/.test(textOf(m)));
	assert.equal(holding.length, 1);
	assert.equal(queued.length, 49);
	const positions = queued.map((m) => Number(textOf(m).match(/#(\d+) in the queue/)[1])).sort((a, b) => a - b);
	assert.deepEqual(positions, Array.from({ length: 49 }, (_, i) => i + 1));
	assert.ok(await holder('race-x'));
	const q = await sdb.query("SELECT user_id, position FROM queue WHERE team_id = $1 AND thing = 'race-x'", [PRO]);
	assert.equal(q.length, 49);
	assert.equal(new Set(q.map((r) => r.position)).size, 49);
	assert.equal(new Set([...q.map((r) => r.user_id), await holder('race-x')]).size, 50);
});

test('random interleavings of on, off and kick never lose, duplicate or reorder anyone', async () => {
	const things = ['ra', 'rb', 'rc'];
	const users = Array.from({ length: 12 }, (_, i) => `U0MIX${String(i).padStart(5, '0')}`);
	// The model: the order in which each user asked, per thing, as replies say.
	let seed = 42;
	const rnd = (n) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
	for (let round = 0; round < 8; round++) {
		const ops = Array.from({ length: 24 }, () => {
			const verb = ['on', 'on', 'off', 'kick'][rnd(4)];
			return [verb, things[rnd(3)], users[rnd(users.length)]];
		});
		await Promise.all(ops.map(([verb, thing, user]) => dibs(`${verb} ${thing}`, { user })));
		for (const thing of things) {
			const h = await holder(thing);
			const q = await queueOf(thing);
			assert.equal(new Set(q).size, q.length, 'nobody twice in a queue');
			assert.ok(!q.includes(h), 'the holder is not also queued');
			if (!h) assert.equal(q.length, 0, 'a free thing has no queue');
			// Arrival order is the order the 'queue' events were written under
			// the thing's lock; the queue must keep it.
			const arrivals = await sdb.query(
				`SELECT q.user_id, (SELECT max(e.id) FROM dibs_events e WHERE e.team_id = q.team_id AND e.thing = q.thing
				   AND e.user_id = q.user_id AND e.action = 'queue') AS ev
				 FROM queue q WHERE q.team_id = $1 AND q.thing = $2 ORDER BY q.position`, [PRO, thing]);
			const ev = arrivals.map((r) => Number(r.ev));
			assert.deepEqual(ev, [...ev].sort((a, b) => a - b), 'queue order is arrival order');
		}
	}
});

// --- REST API -------------------------------------------------------------------

async function api(method, path, { token, body } = {}) {
	const headers = {};
	if (token) headers.authorization = `Bearer ${token}`;
	if (body !== undefined) headers['content-type'] = 'application/json';
	const r = await conch.fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
	const text = await r.text();
	return { status: r.status, json: text ? JSON.parse(text) : null };
}

test('REST API thing names are one path segment, percent-decoded: qa%2Feu names qa/eu', async () => {
	const m = textOf(await dibs('token', { user: 'U0CIBOT002' })).match(/`(conch_[A-Za-z0-9_-]+)`/);
	assert.ok(m, 'a token');
	const token = m[1];
	let r = await api('POST', '/things/qa%2Feu/dibs', { token });
	assert.deepEqual([r.status, r.json.status], [200, 'holding']);
	assert.equal(await holder('qa/eu'), 'U0CIBOT002');
	r = await api('GET', '/things/qa%2feu', { token });
	assert.deepEqual([r.status, r.json.name, r.json.holder], [200, 'qa/eu', 'U0CIBOT002']);
	// A '/' as sent separates segments: qa/eu is not the thing qa/eu.
	assert.equal((await api('GET', '/things/qa/eu', { token })).status, 404);
	assert.equal((await api('POST', '/things/qa/eu/dibs', { token })).status, 404);
	assert.equal((await api('GET', '/things/qa%2Feu%2Fdibs', { token })).status, 404, 'no thing qa/eu/dibs');
	for (const bad of ['qa%zz', 'qa%00eu', '%20', 'a%20for%201h'])
		assert.equal((await api('GET', `/things/${bad}`, { token })).status, 404, bad);
	r = await api('DELETE', '/things/qa%2Feu/dibs', { token });
	assert.deepEqual([r.status, r.json.status], [200, 'released']);
});

test('the REST API shares the queues, with hashed tokens, JSON errors and a rate limit', async () => {
	const msg = await dibs('token', { user: 'U0CIBOT001' });
	const m = textOf(msg).match(/`(conch_[A-Za-z0-9_-]+)`/);
	assert.ok(m, `a token in: ${textOf(msg)}`);
	const token = m[1];
	const stored = await sdb.query('SELECT token_hash FROM api_tokens WHERE team_id = $1 AND user_id = $2', [PRO, 'U0CIBOT001']);
	assert.equal(stored.length, 1);
	assert.match(stored[0].token_hash, /^[0-9a-f]{64}$/);
	assert.notEqual(stored[0].token_hash, token);

	assert.equal((await api('GET', '/things')).status, 401);
	assert.equal((await api('GET', '/things', { token: 'conch_not_a_real_token_at_all' })).status, 401);
	let r = await api('POST', '/things/CI-Env/dibs', { token, body: { for: '1h', reason: 'pipeline 42' } });
	assert.deepEqual([r.status, r.json.status], [200, 'holding']);
	assert.equal(await holder('ci-env'), 'U0CIBOT001');
	await dibs('on ci-env', { user: 'U0HUMAN001' });
	r = await api('GET', '/things/ci-env', { token });
	assert.equal(r.status, 200);
	assert.equal(r.json.holder, 'U0CIBOT001');
	assert.equal(r.json.reason, 'pipeline 42');
	assert.match(r.json.release_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
	assert.deepEqual(r.json.queue, ['U0HUMAN001']);
	r = await api('GET', '/things', { token });
	assert.ok(r.json.things.some((t) => t.name === 'ci-env'));
	assert.equal(r.json.things.length, r.json.total);
	r = await api('DELETE', '/things/ci-env/dibs', { token });
	assert.deepEqual([r.status, r.json.status, r.json.next_holder], [200, 'released', 'U0HUMAN001']);
	await slack.waitFor(() => dmsTo('U0HUMAN001').find((c) => /\*CI-Env\* is yours/.test(c.body.text)));
	r = await api('POST', '/things/ci-env/dibs', { token });
	assert.deepEqual([r.json.status, r.json.position], ['queued', 1]);
	r = await api('DELETE', '/things/ci-env/dibs', { token });
	assert.equal(r.json.status, 'left_queue');
	r = await api('DELETE', '/things/ci-env/dibs', { token });
	assert.deepEqual([r.status, r.json.error], [409, 'not_holding']);
	assert.equal((await api('GET', '/things/no-such', { token })).status, 404);
	assert.equal((await api('DELETE', '/things/no-such/dibs', { token })).status, 404);
	for (const body of ['{', '[]', { for: 'soon' }, { for: '40d' }, { reason: 7 }, { reason: 'x'.repeat(301) }]) {
		r = await api('POST', '/things/ci-env/dibs', { token, body });
		assert.equal(r.status, 400, JSON.stringify(body));
		assert.equal(r.json.error, 'bad_request');
	}
	assert.equal((await api('GET', '/things/bad%20name', { token })).status, 404);
	assert.equal((await api('PUT', '/things/ci-env/dibs', { token })).status, 405);
	await dibs('off ci-env', { user: 'U0HUMAN001' });

	// A free team's token is refused.
	const freeToken = `conch_${randomBytes(24).toString('base64url')}`;
	const { createHash } = await import('node:crypto');
	await sdb.query('INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ($1, $2, $3)', [FREE, createHash('sha256').update(freeToken).digest('hex'), 'U0X']);
	r = await api('GET', '/things', { token: freeToken });
	assert.deepEqual([r.status, r.json.error], [403, 'plan_required']);
	assert.match(r.json.message, /upgrade/);

	// The rate limit answers 429 once the burst is spent.
	const statuses = await Promise.all(Array.from({ length: 40 }, () => api('GET', '/things/ci-env', { token }).then((x) => x.status)));
	assert.ok(statuses.includes(429), `some of 40 quick requests are limited: ${statuses}`);
});

// --- restarts ---------------------------------------------------------------------

test('a 3-second hold survives SIGKILL: after restart it is released once and the next holder is DMed once', async () => {
	await dibs('on phoenix for 3s', { user: 'U0ALICE001' });
	await dibs('on phoenix', { user: 'U0BOB00001' });
	await conch.kill('SIGKILL');
	await sleep(4000);
	assert.equal(await holder('phoenix'), 'U0ALICE001', 'nothing released while no server ran');
	conch = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
	await waitUntil(async () => (await holder('phoenix')) === 'U0BOB00001', { timeoutMs: 10_000, what: 'release after restart' });
	await slack.waitFor(() => dmsTo('U0BOB00001').find((c) => /\*phoenix\* is yours/.test(c.body.text)));
	await sleep(1000);
	assert.equal(dmsTo('U0BOB00001').filter((c) => /\*phoenix\* is yours/.test(c.body.text)).length, 1);
	assert.equal(await sdb.count('dibs_events', "team_id = $1 AND thing = 'phoenix' AND action = 'expire'", [PRO]), 1);
});

test('no job was left dead or stuck, and the server stops cleanly', async () => {
	const dead = await sdb.query("SELECT kind, last_error FROM jobs WHERE state IN ('dead', 'running')");
	assert.deepEqual(dead, []);
	await conch.stop();
});
