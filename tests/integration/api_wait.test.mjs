// POST /api/v1/things/NAME/dibs?wait=S against the real server and a real
// PostgreSQL: the answer is `holding` as soon as a release hands the thing
// over, `queued` at the deadline; waiting requests hold no worker (others
// are served while 20 wait on a server with 2 HTTP threads); at most
// api_wait_max wait at once; draining answers them with their place; bad
// values of wait are refused and change nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnv } from '../lib/env.mjs';
import { startConch, waitUntil } from '../lib/server.mjs';
import { checkAnswer } from '../lib/openapi.mjs';

const WAIT_MAX = 20;

let env, cluster, dbUrl, slack, conch, sdb, team;

before(async () => {
	env = await startEnv({ name: 'wait', teamPrefix: 'T0WAI', env: { CONCH_HTTP_THREADS: '2', CONCH_API_WAIT_MAX: String(WAIT_MAX) } });
	({ cluster, dbUrl, slack, conch, sdb, team } = env);
});

after(() => env?.close());

async function dibs(user, text, server = conch) {
	const r = await server.slashCommand({ team_id: team, user_id: user, channel_id: 'C0WAIT0001', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json.text;
}

const tokens = new Map();
async function tokenOf(user) {
	if (!tokens.has(user)) tokens.set(user, /`(conch_[A-Za-z0-9_-]+)`/.exec(await dibs(user, 'token'))[1]);
	return tokens.get(user);
}

async function call(method, path, user, server = conch) {
	const started = Date.now();
	const r = await fetch(`${server.url}/api/v1${path}`, {
		method,
		headers: { authorization: `Bearer ${await tokenOf(user)}` },
		signal: AbortSignal.timeout(120_000),
	});
	const json = checkAnswer(method, path, r.status, await r.json());
	return { status: r.status, json, ms: Date.now() - started, connection: r.headers.get('connection') };
}

function queued(thing, user) {
	return sdb.count('queue', 'team_id = $1 AND thing = $2 AND user_id = $3', [team, thing, user]);
}

test('?wait= answers holding as soon as a release hands the thing over', async () => {
	await dibs('U0WAITHOLD', 'on rig');
	await tokenOf('U0WAITNEXT');
	const waiting = call('POST', '/things/rig/dibs?wait=60', 'U0WAITNEXT');
	let answered = false;
	waiting.then(() => (answered = true));
	await waitUntil(async () => (await queued('rig', 'U0WAITNEXT')) === 1, { what: 'the waiter is in line' });
	assert.equal(answered, false, 'answered before the release');
	assert.match(await dibs('U0WAITHOLD', 'off rig'), /It is now <@U0WAITNEXT>'s/);
	const r = await waiting;
	assert.equal(r.status, 200);
	assert.deepEqual(r.json, { status: 'holding', release_at: null });
	// Far from the 60 s deadline: the hand-over woke it (a generous bound on a noisy machine).
	assert.ok(r.ms < 45_000, `answered after ${r.ms} ms`);
});

test('?wait= answers queued with the place at the deadline; wait=0 answers at once', async () => {
	await dibs('U0WAITHOLD', 'on box');
	await tokenOf('U0WAITNEXT');
	const r = await call('POST', '/things/box/dibs?wait=2', 'U0WAITNEXT');
	assert.deepEqual([r.status, r.json], [200, { status: 'queued', position: 1 }]);
	assert.ok(r.ms >= 1500, `waited ${r.ms} ms`);
	const now = await call('POST', '/things/box/dibs?wait=0', 'U0WAITNEXT');
	assert.deepEqual([now.status, now.json], [200, { status: 'queued', position: 1 }]);
	const free = await call('POST', '/things/freebox/dibs?wait=30', 'U0WAITNEXT');
	assert.deepEqual(free.json, { status: 'holding', release_at: null });
});

test('bad wait values are refused and change nothing', async () => {
	for (const w of ['61', '-1', 'x', '1.5', '', '99999999999999999999']) {
		const r = await call('POST', `/things/nothing-made/dibs?wait=${w}`, 'U0WAITNEXT');
		assert.deepEqual([r.status, r.json.error], [400, 'bad_request'], `wait=${w}`);
	}
	assert.equal(await sdb.count('things', "team_id = $1 AND name = 'nothing-made'", [team]), 0);
});

test(`while ${WAIT_MAX} requests wait, others are served; one more than api_wait_max answers at once`, async () => {
	await dibs('U0WAITHOLD', 'on busy');
	const users = Array.from({ length: WAIT_MAX }, (_, i) => `U0WAITQ${String(i).padStart(3, '0')}`);
	for (const u of users) await tokenOf(u);
	const extra = 'U0WAITXTRA';
	await tokenOf(extra);
	const waits = users.map((u) => call('POST', '/things/busy/dibs?wait=20', u));
	let done = 0;
	for (const w of waits) w.then(() => done++);
	await waitUntil(async () => (await sdb.count('queue', "team_id = $1 AND thing = 'busy'", [team])) === WAIT_MAX, { what: 'all in line' });
	// Only 2 HTTP threads: these are served because the waiters hold none.
	for (let i = 0; i < 5; i++) {
		assert.equal((await call('GET', '/things', extra)).status, 200);
		assert.equal((await conch.fetch('/livez')).status, 200);
	}
	const over = await call('POST', '/things/busy/dibs?wait=20', extra);
	assert.deepEqual(over.json, { status: 'queued', position: WAIT_MAX + 1 });
	assert.equal(done, 0, 'a waiter answered early');
	// The release hands busy to the first in line: that request answers holding, the
	// others their place (one closer) at their deadline.
	const line = (await sdb.query("SELECT user_id FROM queue WHERE team_id = $1 AND thing = 'busy' ORDER BY position", [team])).map((x) => x.user_id);
	await dibs('U0WAITHOLD', 'off busy');
	const first = await waits[users.indexOf(line[0])];
	assert.deepEqual(first.json, { status: 'holding', release_at: null });
	const all = await Promise.all(waits);
	users.forEach((u, i) => {
		const rank = line.indexOf(u);
		assert.deepEqual(all[i].json, rank === 0 ? { status: 'holding', release_at: null } : { status: 'queued', position: rank }, u);
	});
});

test('a waiter that leaves the line through DELETE gets 409 not_queued', async () => {
	await dibs('U0WAITHOLD', 'on leave');
	const waiting = call('POST', '/things/leave/dibs?wait=60', 'U0WAITNEXT');
	await waitUntil(async () => (await queued('leave', 'U0WAITNEXT')) === 1, { what: 'in line' });
	assert.deepEqual((await call('DELETE', '/things/leave/dibs', 'U0WAITNEXT')).json, { status: 'left_queue' });
	const r = await waiting; // the periodic re-check finds the place gone
	assert.deepEqual([r.status, r.json.error], [409, 'not_queued']);
});

test('draining (SIGTERM) answers waiting requests with their place instead of cutting them', async () => {
	const d = await startConch({ databaseUrl: dbUrl, slack, env: { CONCH_DRAIN_SECONDS: '3' } });
	try {
		await dibs('U0WAITHOLD', 'on drain', d);
		await tokenOf('U0WAITNEXT');
		const waiting = call('POST', '/things/drain/dibs?wait=60', 'U0WAITNEXT', d);
		await waitUntil(async () => (await queued('drain', 'U0WAITNEXT')) === 1, { what: 'in line' });
		d.proc.kill('SIGTERM');
		const r = await waiting;
		assert.deepEqual([r.status, r.json], [200, { status: 'queued', position: 1 }]);
		assert.equal(r.connection, 'close');
		const { code, signal } = await d.exited;
		assert.deepEqual([code, signal], [0, null], d.stderrTail());
		assert.deepEqual(d.logs(/ERROR: (Address|Leak)Sanitizer|runtime error/), []);
	} finally {
		await d.stop({ allowUnclean: true });
	}
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
