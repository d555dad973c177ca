// The outbound engine against the real server, PostgreSQL and the fake
// Slack: calls in flight at once instead of one per runner, pacing by
// Slack's tiers before any 429, and what SIGTERM does to calls in flight.
// Everything is asserted by order and outcome, never by the clock.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { startFakeStripe } from '../lib/fake_stripe.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_SESSION_SECRET, db, eventEnvelope, installTeam, startConch, waitUntil,
} from '../lib/server.mjs';

const TEAM = 'T0OUTB0001';
let cluster, dbName, dbUrl, sdb;
const servers = [];
const fakes = [];

before(async () => {
	cluster = await testCluster();
	dbName = `conch_outbound_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	sdb = db(cluster.superuserUrl(dbName));
});

after(async () => {
	for (const s of servers) await s.stop({ allowUnclean: true }).catch(() => {});
	for (const f of fakes) await f.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

async function setup(team, slackOpts = {}, env = {}) {
	const slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, ...slackOpts });
	fakes.push(slack);
	const conch = await startConch({ databaseUrl: dbUrl, slack, env, migrate: servers.length === 0 });
	servers.push(conch);
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan: 'pro' });
	return { slack, conch };
}

// Typed in a DM with the app, so the calls counted here are the holders'
// DMs alone (a channel would also get an announcement of each take).
async function dibs(conch, team, user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'D0OUTB0001', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: ${r.text}`);
}

const ended = (slack, user) => slack.calls('chat.postMessage').filter((c) => c.body?.channel === user && /ended, as you asked/.test(c.body?.text || ''));

test('twenty hand-over DMs are in flight at once while Slack holds them, with two job runners', async () => {
	const team = 'T0OUTB0002';
	const { slack, conch } = await setup(team);
	slack.hold(['chat.postMessage']);
	for (let i = 0; i < 20; i++) await dibs(conch, team, 'U0HOLD0001', `on box${i} for 1s`);
	// Before the engine, each runner waited on its call: two at a time.
	await slack.waitFor(() => slack.heldCount() >= 20 || null, 30_000, '20 held chat.postMessage calls');
	const running = await sdb.one("SELECT count(*)::int AS n FROM jobs WHERE team_id = $1 AND kind = 'dibs.notify' AND state = 'running'", [team]);
	assert.equal(running.n, 20, 'every DM job waits for its answer, none for a runner');
	slack.release();
	await waitUntil(async () => (await sdb.one("SELECT count(*)::int AS n FROM jobs WHERE team_id = $1 AND kind = 'dibs.notify' AND state = 'done'", [team])).n === 20,
		{ timeoutMs: 20_000, what: 'the 20 DM jobs done' });
	assert.equal(ended(slack, 'U0HOLD0001').length, 20);
	await conch.stop();
});

test('ten holds of one user ending together: paced to one DM a second per channel, Slack turns none away', async () => {
	const { slack, conch } = await setup(TEAM, { tierLimits: true }, { CONCH_SLACK_PACING: '1' });
	for (let i = 0; i < 10; i++) await dibs(conch, TEAM, 'U0PACE0001', `on thing${i} for 2s`);
	await waitUntil(() => ended(slack, 'U0PACE0001').filter((c) => c.status === 200).length === 10,
		{ timeoutMs: 60_000, what: 'ten "your hold ended" DMs' });
	assert.equal(slack.tierRefusals('chat.postMessage'), 0, 'no 429: conch paced itself');
	await conch.stop();
});

test('two instances share Slack\'s limits: each paces at half, so twenty DMs to one channel from both draw no 429', async () => {
	const team = 'T0OUTB0009';
	const slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, tierLimits: true, latencyMs: [100, 300] });
	fakes.push(slack);
	const env = { CONCH_SLACK_PACING: '1' };
	const a = await startConch({ databaseUrl: dbUrl, slack, env, migrate: servers.length === 0 });
	servers.push(a);
	const b = await startConch({ databaseUrl: dbUrl, slack, env, migrate: false });
	servers.push(b);
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan: 'pro' });
	// Each knows of the other (heartbeats in PostgreSQL) before any call.
	for (const c of [a, b]) await waitUntil(async () => await gauge(c, 'conch_instances_live') === 2, { timeoutMs: 20_000, what: 'two live instances' });
	// Twenty holds of one user ending together, taken through both: the
	// "your hold ended" DMs all go to one channel, from whichever runs the job.
	for (let i = 0; i < 20; i++) await dibs(i % 2 ? a : b, team, 'U0SHAR0001', `on share${i} for 2s`);
	await waitUntil(() => ended(slack, 'U0SHAR0001').filter((c) => c.status === 200).length === 20,
		{ timeoutMs: 90_000, what: 'twenty "your hold ended" DMs' });
	for (const c of [a, b]) assert.ok(await sent(c) > 0, 'both instances sent some of them');
	assert.equal(slack.tierRefusals('chat.postMessage'), 0, 'no 429: together they kept to one channel\'s limit');
	await a.stop();
	// One left: after the other's row is gone it takes the whole limit.
	await waitUntil(async () => await gauge(b, 'conch_instances_live') === 1, { timeoutMs: 20_000, what: 'one live instance' });
	await b.stop();
});

// chat.postMessage calls an instance made that Slack answered.
async function sent(conch) {
	const r = await conch.request('/metrics');
	const m = r.text.match(/^conch_outbound_calls_total\{[^}]*method="chat.postMessage"[^}]*outcome="ok"[^}]*\} (\S+)$/m);
	return m ? Number(m[1]) : 0;
}

// A /dibs upgrade link, signed as crypto.h's sign_value does.
function upgradeLink(team, user) {
	const payload = `${team}.${user}.${Math.floor(Date.now() / 1000) + 3600}`;
	const sig = createHmac('sha256', TEST_SESSION_SECRET).update(`billing-upgrade\n${payload}`).digest('base64url');
	return `/billing/upgrade?t=${payload}.${sig}`;
}

test('50 requests waiting on a held oauth.v2.access or Stripe session leave the HTTP workers free: other teams\' /dibs are answered first', async () => {
	const stripe = await startFakeStripe();
	fakes.push(stripe);
	const { slack, conch } = await setup('T0OUTB0004', {}, stripe.env());
	const others = ['T0OUTB0005', 'T0OUTB0006', 'T0OUTB0007'];
	for (const t of others) await installTeam(dbUrl, { team_id: t, token: slack.issueToken({ team_id: t }), plan: 'pro' });
	const buyers = [...Array(25).keys()].map((i) => `T0BUY${String(i).padStart(5, '0')}`);
	for (const t of buyers) {
		await installTeam(dbUrl, { team_id: t, token: slack.issueToken({ team_id: t }), plan: 'free', installer_user_id: 'U0BUYER001' });
		// Billing is for the installer, once the member directory knows them.
		const joined = await conch.event(eventEnvelope(t, { type: 'team_join', user: { ...slack.userInfo('U0BUYER001'), team_id: t } }));
		assert.equal(joined.status, 200);
	}

	// 25 installs up to Slack's redirect back, 25 upgrade links.
	const installs = [];
	for (let i = 0; i < 25; i++) {
		slack.setInstallTarget({ team_id: `T0NEW${String(i).padStart(5, '0')}`, team_name: `New ${i}` });
		const r = await conch.fetch('/slack/install');
		await r.text();
		const cookie = r.headers.getSetCookie().find((h) => h.startsWith('conch_oauth=')).split(';')[0];
		const back = new URL(await slack.authorize(r.headers.get('location')));
		installs.push({ path: back.pathname + back.search, cookie });
	}
	slack.hold(['oauth.v2.access']);
	stripe.hold();
	const order = [];
	const waiting = [
		...installs.map((x) => conch.fetch(x.path, { headers: { cookie: x.cookie }, redirect: 'manual' })
			.then(async (r) => { await r.text(); order.push('held'); return r.status; })),
		...buyers.map((t) => conch.fetch(upgradeLink(t, 'U0BUYER001'), { redirect: 'manual' })
			.then(async (r) => { await r.text(); order.push('held'); return r.status; })),
	];
	await slack.waitFor(() => slack.heldCount() >= 25 || null, 30_000, '25 held oauth.v2.access');
	await waitUntil(() => stripe.heldCount() >= 25, { timeoutMs: 30_000, what: '25 held Stripe session calls' });

	// Four HTTP workers; before, each waited on its exchange.
	for (const t of others) {
		const r = await conch.slashCommand({ team_id: t, user_id: 'U0OTHER001', channel_id: 'C0OTHER001', command: '/dibs', text: 'list' });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json?.response_type, 'ephemeral');
		order.push('dibs');
	}
	assert.deepEqual(order, ['dibs', 'dibs', 'dibs'], 'every /dibs answered while the 50 wait');
	slack.release();
	stripe.release();
	const statuses = await Promise.all(waiting);
	assert.deepEqual(statuses.slice(0, 25), Array(25).fill(302), 'each install went through');
	for (const st of statuses.slice(25)) assert.ok(st === 302 || st === 303, `an upgrade answered ${st}`);
	assert.equal(order.length, 53);
	// The installs' welcome DMs and directory syncs finish here: left queued,
	// the next test's server would run them against its own fake Slack.
	await waitUntil(async () => (await sdb.count('jobs', "state IN ('queued', 'running') AND due_at <= now()")) === 0, {
		timeoutMs: 30_000, what: 'the installs\' jobs done',
	});
	await conch.stop();
});

test('SIGTERM cuts off calls still in flight at outbound_stop_seconds; their jobs stay queued with no attempt spent', async () => {
	const team = 'T0OUTB0003';
	const { slack, conch } = await setup(team, {}, { CONCH_OUTBOUND_STOP_SECONDS: '1' });
	slack.hold(['chat.postMessage']);
	for (let i = 0; i < 5; i++) await dibs(conch, team, 'U0STOP0001', `on lamp${i} for 1s`);
	// The held calls are this team's five DMs, each job running (waiting for
	// its answer). Jobs other tests left queued in the shared database may
	// have calls held too, so the held count alone does not say it.
	await waitUntil(async () => (await sdb.one("SELECT count(*)::int AS n FROM jobs WHERE team_id = $1 AND kind = 'dibs.notify' AND state = 'running'", [team])).n === 5,
		{ timeoutMs: 30_000, what: 'the 5 DM jobs waiting for their held calls' });
	assert.ok(slack.heldCount() >= 5);
	await conch.stop();
	const rows = await sdb.query("SELECT state, attempts FROM jobs WHERE team_id = $1 AND kind = 'dibs.notify'", [team]);
	assert.equal(rows.length, 5);
	for (const r of rows) assert.deepEqual([r.state, r.attempts], ['queued', 0]);
	slack.release();
});

// A gauge of /metrics, read as a number (one unlabelled sample).
async function gauge(conch, name) {
	const r = await conch.request('/metrics');
	assert.equal(r.status, 200);
	const m = r.text.match(new RegExp(`^${name} (\\S+)$`, 'm'));
	assert.ok(m, `${name} is exported`);
	return Number(m[1]);
}

test('the outbound gauges follow the engine: transfers in flight up to outbound_max_inflight, the rest queued', async () => {
	const team = 'T0OUTB0008';
	const { slack, conch } = await setup(team, {}, { CONCH_OUTBOUND_MAX_INFLIGHT: '3' });
	slack.hold(['chat.postMessage']);
	for (let i = 0; i < 5; i++) await dibs(conch, team, 'U0GAUG0001', `on gauge${i} for 1s`);
	await slack.waitFor(() => slack.heldCount() >= 3 || null, 30_000, '3 held chat.postMessage calls');
	await waitUntil(async () => await gauge(conch, 'conch_outbound_calls_queued') === 2, { what: 'two calls queued in the engine' });
	assert.equal(await gauge(conch, 'conch_outbound_calls_in_flight'), 3);
	assert.equal(slack.heldCount(), 3, 'no more than outbound_max_inflight sent');
	slack.release();
	await waitUntil(async () => ended(slack, 'U0GAUG0001').length === 5, { timeoutMs: 20_000, what: 'the 5 DMs sent' });
	await waitUntil(async () => await gauge(conch, 'conch_outbound_calls_in_flight') === 0, { what: 'nothing in flight' });
	assert.equal(await gauge(conch, 'conch_outbound_calls_queued'), 0);
	await conch.stop();
});

test('runners are notified of jobs due within seconds, not of jobs due in an hour', async () => {
	const { default: pg } = await import('pg');
	const listener = new pg.Client({ connectionString: cluster.superuserUrl(dbName) });
	await listener.connect();
	const got = [];
	listener.on('notification', (n) => got.push(n.payload));
	try {
		await listener.query('LISTEN conch_jobs');
		await sdb.query("INSERT INTO jobs (kind, due_at, payload) VALUES ('test.later', now() + interval '1 hour', '{}')");
		await sdb.query("INSERT INTO jobs (kind, due_at, payload) VALUES ('test.soon', now(), '{}')");
		await sdb.query("SELECT pg_notify('conch_jobs', 'end')");
		// Notifications arrive in commit order: everything before 'end' is in.
		await waitUntil(() => got.includes('end'), { timeoutMs: 10_000, what: 'the end marker' });
		assert.deepEqual(got, ['', 'end'], 'one wake-up: the job due now');
	} finally {
		await sdb.query("DELETE FROM jobs WHERE kind IN ('test.later', 'test.soon')");
		await listener.end();
	}
});
