// Two `conch serve` instances on different ports share one database, as a
// load balancer would run them: both answer commands against the same
// state, both run background jobs, and every job runs exactly once. Which
// instance ran a job is read from each instance's own /metrics
// (conch_jobs_finished_total counts the jobs that process finished), so
// "both ran some" and "the sum is the number of jobs" are measured, not
// assumed.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { db, installTeam, sleep, startConch, waitUntil } from '../lib/server.mjs';

const TEAM = 'T0INSTPRO1';
const CHANNEL = 'C0INST0001';
const BATCH = 200;

let cluster, dbName, dbUrl, slack, a, b, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_inst_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	a = await startConch({ databaseUrl: dbUrl, slack });
	b = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
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

test('no job is left queued, running or dead, and both instances stop cleanly', async () => {
	const left = await sdb.query("SELECT id, kind, state, last_error FROM jobs WHERE state IN ('running', 'dead') OR (state = 'queued' AND due_at < now())");
	assert.deepEqual(left, []);
	for (const s of [a, b]) assert.deepEqual(s.logs(/more than the \d+ asked for/), [], 'a runner claimed more jobs than it asked for');
	const [ea, eb] = await Promise.all([a.stop(), b.stop()]);
	assert.deepEqual([ea.code, eb.code], [0, 0]);
});
