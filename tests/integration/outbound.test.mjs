// The outbound engine against the real server, PostgreSQL and the fake
// Slack: calls in flight at once instead of one per runner, pacing by
// Slack's tiers before any 429, and what SIGTERM does to calls in flight.
// Everything is asserted by order and outcome, never by the clock.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, db, installTeam, startConch, waitUntil } from '../lib/server.mjs';

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

async function dibs(conch, team, user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0OUTB0001', command: '/dibs', text });
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

test('SIGTERM cuts off calls still in flight at outbound_stop_seconds; their jobs stay queued with no attempt spent', async () => {
	const team = 'T0OUTB0003';
	const { slack, conch } = await setup(team, {}, { CONCH_OUTBOUND_STOP_SECONDS: '1' });
	slack.hold(['chat.postMessage']);
	for (let i = 0; i < 5; i++) await dibs(conch, team, 'U0STOP0001', `on lamp${i} for 1s`);
	await slack.waitFor(() => slack.heldCount() >= 5 || null, 30_000, '5 held chat.postMessage calls');
	await conch.stop();
	const rows = await sdb.query("SELECT state, attempts FROM jobs WHERE team_id = $1 AND kind = 'dibs.notify'", [team]);
	assert.equal(rows.length, 5);
	for (const r of rows) assert.deepEqual([r.state, r.attempts], ['queued', 0]);
	slack.release();
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
