// Two `conch serve` instances on different ports share one database, as a
// load balancer would run them: both answer commands against the same
// state, both run background jobs, and every job runs exactly once. Which
// instance ran a job is read from each instance's own /metrics
// (conch_jobs_finished_total counts the jobs that process finished), so
// "both ran some" and "the sum is the number of jobs" are measured, not
// assumed. The API rate limit and the replay guard hold across both: the
// buckets and the accepted signatures are rows in the shared database.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	blockActions, commandForm, db, installTeam, signedSlackRequest, slackSignature, sleep, startConch, waitUntil,
} from '../lib/server.mjs';

const TEAM = 'T0INSTPRO1';
const CHANNEL = 'C0INST0001';
const BATCH = 200;
// A small API limit, so that a burst of requests sent at once must exceed it
// however slow the machine: 5 at once, 1 a second after that; 5 failed
// authentications per client address, then 1 a minute.
const RATE = { burst: 5, perSecond: 1, failBurst: 5 };
const RATE_ENV = {
	CONCH_API_RATE_BURST: String(RATE.burst), CONCH_API_RATE_PER_SECOND: String(RATE.perSecond),
	CONCH_API_AUTH_FAILURES_BURST: String(RATE.failBurst), CONCH_API_AUTH_FAILURES_PER_MINUTE: '1',
};

let cluster, dbName, dbUrl, slack, a, b, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_inst_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	a = await startConch({ databaseUrl: dbUrl, slack, env: RATE_ENV });
	b = await startConch({ databaseUrl: dbUrl, slack, env: RATE_ENV, migrate: false });
	sdb = db(cluster.superuserUrl(dbName));
	await installTeam(dbUrl, { team_id: TEAM, token: slack.issueToken({ team_id: TEAM }), plan: 'pro' });
});

after(async () => {
	await a?.stop({ allowUnclean: true }).catch(() => {});
	await b?.stop({ allowUnclean: true }).catch(() => {});
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -------------------------------------------------------------------

function textOf(msg) {
	return [msg.text, ...(msg.blocks || []).map((x) => x.text?.text || '')].join('\n');
}

async function dibs(server, text, user) {
	const r = await server.slashCommand({ team_id: TEAM, user_id: user, channel_id: CHANNEL, command: '/dibs', text });
	assert.equal(r.status, 200, `${server.port} /dibs ${text}: HTTP ${r.status} ${r.text}`);
	assert.ok(r.json, `/dibs ${text}: not JSON: ${r.text}`);
	return textOf(r.json);
}

// conch_jobs_finished_total of one instance, as { 'kind/result': n }.
async function jobsFinished(server) {
	const r = await server.request('/metrics');
	assert.equal(r.status, 200);
	const out = {};
	for (const m of r.text.matchAll(/^conch_jobs_finished_total\{kind="([^"]+)",result="([^"]+)"\} (\d+)$/gm))
		out[`${m[1]}/${m[2]}`] = Number(m[3]);
	return out;
}

function delta(after_, before_, key) {
	return (after_[key] || 0) - (before_[key] || 0);
}

// Successful chat.postMessage calls (the fake answered 200 ok).
function delivered(pred = () => true) {
	return slack.calls('chat.postMessage').filter((c) => c.status === 200 && c.response?.ok && pred(c));
}

function countBy(list, key) {
	const m = new Map();
	for (const x of list) m.set(key(x), (m.get(key(x)) || 0) + 1);
	return m;
}

async function holder(thing) {
	const row = await sdb.one('SELECT user_id, hold_id FROM holds WHERE team_id = $1 AND thing = $2', [TEAM, thing]);
	return row ?? null;
}

// --- tests ---------------------------------------------------------------------

test('the two instances listen on different ports and both are healthy', async () => {
	assert.notEqual(a.port, b.port);
	for (const s of [a, b]) assert.equal((await s.request('/healthz')).status, 200);
});

test('commands sent to either instance act on one shared state: 40 users, one holder, 39 queued in order', async () => {
	const users = Array.from({ length: 40 }, (_, i) => `U0IRACE${String(i).padStart(3, '0')}`);
	const replies = await Promise.all(users.map((u, i) => dibs(i % 2 ? b : a, 'on shared', u)));
	assert.equal(replies.filter((t) => /^\*shared\* is yours/.test(t)).length, 1, replies.join('\n'));
	const positions = replies.map((t) => t.match(/#(\d+) in the queue/)).filter(Boolean).map((m) => Number(m[1]));
	assert.deepEqual(positions.sort((x, y) => x - y), Array.from({ length: 39 }, (_, i) => i + 1));

	// Hand it down the queue, each off through the other instance than the
	// last, each new holder releasing once their "is yours" DM came (a DM
	// for a hold already given up is rightly not sent): every new holder
	// gets exactly one.
	const order = [(await holder('shared')).user_id];
	const q = await sdb.query("SELECT user_id FROM queue WHERE team_id = $1 AND thing = 'shared' ORDER BY position", [TEAM]);
	order.push(...q.map((r) => r.user_id));
	const holdIds = [];
	for (let i = 0; i < 10; i++) {
		const t = await dibs(i % 2 ? a : b, 'off shared', order[i]);
		assert.match(t, new RegExp(`It is now <@${order[i + 1]}>'s`));
		holdIds.push(String((await holder('shared')).hold_id));
		await waitUntil(() => delivered((c) => c.body.channel === order[i + 1] && /\*shared\* is yours/.test(c.body.text)).length > 0, {
			timeoutMs: 10_000, what: `the your_turn DM to ${order[i + 1]}`,
		});
	}
	await sleep(500);
	const dms = delivered((c) => /\*shared\* is yours/.test(c.body.text));
	assert.equal(dms.length, 10, 'one DM per promotion, none twice');
	assert.deepEqual(dms.map((c) => c.body.channel).sort(), order.slice(1, 11).sort());
	const buttonHolds = dms.map((c) => c.body.blocks.flatMap((x) => x.elements || []).find((e) => e.action_id === 'dibs.release').value.split(' ')[1]);
	assert.deepEqual(buttonHolds.sort(), [...holdIds].sort(), 'each DM names the hold it was sent for');
});

test(`${BATCH} slack.call jobs are each done exactly once, and both instances ran some`, async () => {
	const before_ = [await jobsFinished(a), await jobsFinished(b)];
	// Slack answering in 20 ms keeps every runner busy, so the batch spreads
	// over all four runners instead of whichever woke first.
	slack.failNext('chat.postMessage', { delayMs: 20 }, BATCH);
	await sdb.query(
		`INSERT INTO jobs (kind, team_id, payload)
		 SELECT 'slack.call', $1, jsonb_build_object('method', 'chat.postMessage',
		        'args', jsonb_build_object('channel', 'U0BATCH' || lpad(i::text, 3, '0'), 'text', 'batch message ' || i))
		 FROM generate_series(1, $2::int) AS i`,
		[TEAM, BATCH],
	);
	const t0 = Date.now();
	await waitUntil(async () => (await sdb.count('jobs', "kind = 'slack.call' AND state = 'done' AND payload->'args'->>'text' LIKE 'batch message %'")) === BATCH, {
		timeoutMs: 60_000, intervalMs: 100, what: `${BATCH} batch jobs done`,
	});
	const secs = (Date.now() - t0) / 1000;
	await sleep(500);
	const texts = countBy(delivered((c) => /^batch message \d+$/.test(c.body.text)), (c) => c.body.text);
	assert.equal(texts.size, BATCH, 'every message delivered');
	assert.deepEqual([...texts.values()].filter((n) => n !== 1), [], 'no message delivered twice');
	const jobs = await sdb.query("SELECT state, attempts FROM jobs WHERE kind = 'slack.call' AND payload->'args'->>'text' LIKE 'batch message %'");
	assert.deepEqual(jobs.filter((j) => j.state !== 'done' || j.attempts !== 1), [], 'each job done on its first attempt');

	const after_ = [await jobsFinished(a), await jobsFinished(b)];
	const ran = after_.map((m, i) => delta(m, before_[i], 'slack.call/done'));
	console.log(`instances: ${BATCH} jobs in ${secs.toFixed(1)} s; instance A ran ${ran[0]}, instance B ran ${ran[1]}`);
	assert.equal(ran[0] + ran[1], BATCH, 'the two instances together ran each job once');
	assert.ok(ran[0] > 0 && ran[1] > 0, `both instances ran jobs (A ${ran[0]}, B ${ran[1]})`);
});

test('timed holds taken through both instances are each released once, and the next holder is DMed once', async () => {
	const before_ = [await jobsFinished(a), await jobsFinished(b)];
	const n = 16;
	for (let i = 0; i < n; i++) {
		const [first, second] = i % 2 ? [a, b] : [b, a];
		assert.match(await dibs(first, `on timer-${i} for 2s`, `U0TA${String(i).padStart(6, '0')}`), /is yours until/);
		assert.match(await dibs(second, `on timer-${i}`, `U0TB${String(i).padStart(6, '0')}`), /#1 in the queue/);
	}
	await waitUntil(async () => (await sdb.count('dibs_events', "team_id = $1 AND action = 'expire' AND thing LIKE 'timer-%'", [TEAM])) === n, {
		timeoutMs: 20_000, intervalMs: 100, what: `${n} timed releases`,
	});
	await waitUntil(() => delivered((c) => /\*timer-\d+\* is yours/.test(c.body.text)).length >= n, {
		timeoutMs: 20_000, what: `${n} your_turn DMs`,
	});
	await sleep(1000);
	const expires = await sdb.query(
		`SELECT e.thing, count(*)::int AS n FROM dibs_events e WHERE e.team_id = $1 AND e.action = 'expire'
		 AND e.thing LIKE 'timer-%' GROUP BY 1`, [TEAM]);
	assert.equal(expires.length, n);
	assert.deepEqual(expires.filter((r) => r.n !== 1), [], 'no hold released twice');
	for (let i = 0; i < n; i++) {
		const h = await holder(`timer-${i}`);
		assert.equal(h?.user_id, `U0TB${String(i).padStart(6, '0')}`);
	}
	const turns = countBy(delivered((c) => /\*timer-\d+\* is yours/.test(c.body.text)), (c) => c.body.channel);
	assert.equal(turns.size, n);
	assert.deepEqual([...turns.values()].filter((x) => x !== 1), [], 'one your_turn DM each');
	const ended = countBy(delivered((c) => /Your hold on \*timer-\d+\* ended/.test(c.body.text)), (c) => c.body.channel);
	assert.equal(ended.size, n);
	assert.deepEqual([...ended.values()].filter((x) => x !== 1), [], 'one "ended" DM each');
	const after_ = [await jobsFinished(a), await jobsFinished(b)];
	const releases = after_.map((m, i) => delta(m, before_[i], 'dibs.release/done'));
	assert.equal(releases[0] + releases[1], n, `each release job finished once across the instances (A ${releases[0]}, B ${releases[1]})`);
	const notifies = after_.map((m, i) => delta(m, before_[i], 'dibs.notify/done'));
	// your_turn and expired, and the first holder's "someone is waiting" DM
	assert.equal(notifies[0] + notifies[1], 3 * n, 'each notify job finished once across the instances');
	console.log(`instances: timed releases A ${releases[0]} / B ${releases[1]}; notifications A ${notifies[0]} / B ${notifies[1]}`);
});

// --- the API rate limit and the replay guard, across instances -----------------

function sha256hex(s) {
	return createHash('sha256').update(s).digest('hex');
}

// GET /api/v1/things from a chosen loopback address (each test its own
// client, as the failed-authentication limit is per address); the status.
function apiGet(server, token, from = '127.0.0.1') {
	return new Promise((resolve, reject) => {
		const req = http.request({
			host: '127.0.0.1', port: server.port, path: '/api/v1/things', method: 'GET', localAddress: from, agent: false,
			headers: { authorization: `Bearer ${token}` },
		}, (res) => {
			res.resume();
			res.on('end', () => resolve(res.statusCode));
		});
		req.setTimeout(30_000, () => req.destroy(new Error('API request timed out')));
		req.on('error', reject);
		req.end();
	});
}

async function newToken(user) {
	const m = (await dibs(a, 'token', user)).match(/`(conch_[A-Za-z0-9_-]+)`/);
	assert.ok(m, 'a token');
	return m[1];
}

// At most burst + rate x elapsed requests of one token may be let through,
// across every instance (plus one for the refill in flight at the end).
function allowedWithin(ms) {
	return RATE.burst + Math.ceil((ms / 1000) * RATE.perSecond) + 1;
}

test('alternating a real token with a garbage one that shares its old bucket slot does not lift the limit', async () => {
	const token = await newToken('U0IRATE001');
	// Buckets used to be 4096 slots by the first 8 hex digits of the hash,
	// and a different hash in the slot reset it to full.
	const slot = (t) => parseInt(sha256hex(t).slice(0, 8), 16) % 4096;
	let garbage;
	do garbage = `conch_${randomBytes(24).toString('base64url')}`; while (slot(garbage) !== slot(token));
	const t0 = Date.now();
	const sent = Array.from({ length: 40 }, (_, i) => (i % 2 ? apiGet(a, garbage, '127.0.0.2') : apiGet(a, token)));
	const statuses = await Promise.all(sent);
	const ms = Date.now() - t0;
	const real = statuses.filter((_, i) => i % 2 === 0);
	const ok = real.filter((s) => s === 200).length;
	assert.ok(real.every((s) => s === 200 || s === 429), `real token: ${real}`);
	assert.ok(real.includes(429), `the real token is limited: ${real}`);
	assert.ok(ok <= allowedWithin(ms), `${ok} of 20 let through in ${ms} ms: ${real}`);
	assert.ok(statuses.filter((_, i) => i % 2 === 1).every((s) => s === 401 || s === 429), 'garbage is refused');
});

test('two instances sharing the database together let one token through no more than the limit', async () => {
	const token = await newToken('U0IRATE002');
	const t0 = Date.now();
	const statuses = await Promise.all(Array.from({ length: 30 }, (_, i) => apiGet(i % 2 ? b : a, token)));
	const ms = Date.now() - t0;
	const ok = statuses.filter((s) => s === 200).length;
	assert.ok(statuses.every((s) => s === 200 || s === 429), `${statuses}`);
	assert.ok(ok >= 1, 'some get through');
	assert.ok(ok <= allowedWithin(ms), `${ok} of 30 let through by two instances in ${ms} ms: ${statuses}`);
	// Each instance saw some of the 429s: the other's requests drew on the same bucket.
	assert.ok(statuses.filter((s, i) => i % 2 === 0 && s === 429).length > 0, `instance A limited: ${statuses}`);
	assert.ok(statuses.filter((s, i) => i % 2 === 1 && s === 429).length > 0, `instance B limited: ${statuses}`);
});

test('failed authentications are limited per client address, across instances', async () => {
	const token = await newToken('U0IRATE003');
	const from = '127.0.0.3';
	const statuses = [];
	for (let i = 0; i < RATE.failBurst + 3; i++)
		statuses.push(await apiGet(i % 2 ? b : a, `conch_${randomBytes(24).toString('base64url')}`, from));
	assert.deepEqual(statuses.slice(0, RATE.failBurst), Array(RATE.failBurst).fill(401), `${statuses}`);
	assert.deepEqual(statuses.slice(RATE.failBurst), [429, 429, 429], `${statuses}`);
	// While over, that address learns nothing, not even with a real token;
	// another address is not affected.
	assert.equal(await apiGet(a, token, from), 429);
	assert.equal(await apiGet(b, token, '127.0.0.4'), 200);
});

// A command or button accepted by one instance is a replay for both.
test('a replayed command or button press is refused by either instance and changes nothing', async () => {
	async function once(server, p, body) {
		const timestamp = String(Math.floor(Date.now() / 1000));
		const signature = slackSignature(server.signingSecret, timestamp, body);
		const send = (s) => signedSlackRequest(s, p, body, { timestamp, signature });
		return { first: await send(server), again: [await send(server), await send(server === a ? b : a)] };
	}
	const user = 'U0IREPLAY1';
	const tokens = () => sdb.count('api_tokens', 'team_id = $1 AND user_id = $2', [TEAM, user]);
	const cmd = await once(a, '/slack/commands', commandForm({ team_id: TEAM, user_id: user, channel_id: CHANNEL, text: 'token' }));
	assert.equal(cmd.first.status, 200);
	assert.deepEqual(cmd.again.map((r) => r.status), [401, 401]);
	assert.equal(await tokens(), 1, 'one token, not three');

	await dibs(a, 'on replayed for 1h', user);
	const before_ = await holder('replayed');
	const releaseAt = async () => (await sdb.one("SELECT release_at FROM holds WHERE team_id = $1 AND thing = 'replayed'", [TEAM])).release_at.getTime();
	const at0 = await releaseAt();
	// Pressed in App Home (a view, no message to update).
	const { channel: _c, message: _m, ...payload } = blockActions({
		team_id: TEAM, user_id: user, action_id: 'dibs.extend', value: `replayed ${before_.hold_id}`,
	});
	const press = new URLSearchParams({ payload: JSON.stringify({ ...payload, container: { type: 'view', view_id: 'V0REPLAY01' } }) }).toString();
	const btn = await once(b, '/slack/interactivity', press);
	assert.equal(btn.first.status, 200, btn.first.text);
	assert.deepEqual(btn.again.map((r) => r.status), [401, 401]);
	const at1 = await releaseAt();
	assert.ok(at1 > at0, 'the first press extended the hold');
	assert.equal(await releaseAt(), at1, 'the replays did not extend it again');

	// Ten copies at once, five through each instance: exactly one is first.
	const racer = 'U0IREPLAY2';
	const body = commandForm({ team_id: TEAM, user_id: racer, channel_id: CHANNEL, text: 'token' });
	const timestamp = String(Math.floor(Date.now() / 1000));
	const signature = slackSignature(a.signingSecret, timestamp, body);
	const raced = await Promise.all(Array.from({ length: 10 }, (_, i) => signedSlackRequest(i % 2 ? b : a, '/slack/commands', body, { timestamp, signature })));
	assert.deepEqual(raced.map((r) => r.status).sort(), [200, ...Array(9).fill(401)], raced.map((r) => r.status).join(','));
	assert.equal(await sdb.count('api_tokens', 'team_id = $1 AND user_id = $2', [TEAM, racer]), 1);
});

test('no job is left queued, running or dead, and both instances stop cleanly', async () => {
	// Jobs the last tests queued (an App Home refresh after a press) may still be running.
	const stuck = "SELECT count(*)::int AS n FROM jobs WHERE state = 'running' OR (state = 'queued' AND due_at < now())";
	await waitUntil(async () => (await sdb.one(stuck)).n === 0, { timeoutMs: 15_000, what: 'due jobs done' }).catch(() => {});
	const left = await sdb.query("SELECT id, kind, state, last_error FROM jobs WHERE state IN ('running', 'dead') OR (state = 'queued' AND due_at < now())");
	assert.deepEqual(left, []);
	for (const s of [a, b]) assert.deepEqual(s.logs(/more than the \d+ asked for/), [], 'a runner claimed more jobs than it asked for');
	const [ea, eb] = await Promise.all([a.stop(), b.stop()]);
	assert.deepEqual([ea.code, eb.code], [0, 0]);
});
