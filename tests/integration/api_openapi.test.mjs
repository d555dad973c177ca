// GET /api/v1/openapi.json: the OpenAPI 3.1 description of the API, served
// as assets/openapi.json without a token. The document passes a real
// OpenAPI 3.1 validator, and every operation it describes is called here
// against the real server, each answer checked against its schema (the
// other api_*.test.mjs files check their answers the same way).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startEnv } from '../lib/env.mjs';

import { OPENAPI_PATH, checkAnswer, covered, openapi, validateDocument } from '../lib/openapi.mjs';

let env, cluster, dbUrl, slack, conch, sdb, team;
const tokens = new Map();

before(async () => {
	// Every operation in a row from one token: a burst larger than the
	// default 20, so that how fast the server answers never decides the
	// test (the rate limit has tests of its own in api_ci).
	env = await startEnv({ name: 'openapi', teamPrefix: 'T0OAP', env: { CONCH_API_RATE_BURST: '200' } });
	({ cluster, dbUrl, slack, conch, sdb, team } = env);
});

after(() => env?.close());

async function dibs(user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0OPENAPI1', command: '/dibs', text });
	return r.json.text;
}
async function tokenOf(user) {
	if (!tokens.has(user)) {
		const m = /id (\d+); shown once.*\n`(conch_[A-Za-z0-9_-]+)`/.exec(await dibs(user, 'token'));
		tokens.set(user, { id: Number(m[1]), token: m[2] });
	}
	return tokens.get(user);
}
async function api(method, path, { user = 'U0OAPUSER1', body, token } = {}) {
	const auth = token ?? (await tokenOf(user)).token;
	const r = await conch.fetch(`/api/v1${path}`, {
		method,
		headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return { status: r.status, json: checkAnswer(method, path, r.status, await r.json()) };
}

test('the description is valid OpenAPI 3.1 and is served as it is, without a token', async () => {
	const v = await validateDocument();
	assert.equal(v.valid, true, JSON.stringify(v.errors));
	assert.equal(openapi.openapi, '3.1.0');
	// The validator does refuse a broken one.
	const broken = structuredClone(openapi);
	broken.paths['/things'].get.responses = 'none';
	assert.equal((await validateDocument(broken)).valid, false);
	const r = await conch.fetch('/api/v1/openapi.json');
	assert.equal(r.status, 200);
	assert.match(r.headers.get('content-type'), /^application\/json/);
	assert.equal(await r.text(), readFileSync(OPENAPI_PATH, 'utf8'));
	checkAnswer('GET', '/openapi.json', 200, openapi);
});

test('every operation answers as described', async () => {
	const a = 'U0OAPUSER1', b = 'U0OAPUSER2';
	assert.equal((await api('GET', '/things', { token: 'conch_not_a_token_0000' })).status, 401);
	assert.equal((await api('POST', '/things/one/dibs', { user: a, body: { for: '1h', reason: 'spec' } })).json.status, 'holding');
	assert.deepEqual((await api('POST', '/things/one/dibs', { user: b })).json, { status: 'queued', position: 1 });
	assert.deepEqual((await api('POST', '/things/one/dibs?wait=1', { user: b })).json, { status: 'queued', position: 1 });
	assert.equal((await api('POST', '/things/one/dibs?wait=61', { user: b })).status, 400);
	assert.equal((await api('POST', '/things/one/dibs', { user: b, body: { for: 'soon' } })).status, 400);
	assert.equal((await api('GET', '/things')).json.total, 1);
	assert.equal((await api('GET', '/things/ONE')).json.holder, a);
	assert.equal((await api('GET', '/things/none')).status, 404);
	assert.deepEqual((await api('DELETE', '/things/one/dibs', { user: a })).json, { status: 'released', next_holder: b });
	assert.deepEqual((await api('DELETE', '/things/one/dibs', { user: a })).json.error, 'not_holding');
	assert.equal((await api('DELETE', '/things/none/dibs', { user: a })).status, 404);
	await api('POST', '/things/one/dibs', { user: a });
	assert.deepEqual((await api('DELETE', '/things/one/dibs', { user: a })).json, { status: 'left_queue' });
	assert.equal((await api('DELETE', '/things/one/dibs', { user: b })).json.next_holder, null);
	assert.equal((await api('GET', '/things/one/history?days=2')).json.holds.length, 2);
	assert.equal((await api('GET', '/things/one/history?days=0')).status, 400);
	assert.equal((await api('GET', '/things/none/history')).status, 404);

	const made = await api('POST', '/subscriptions', { body: { url: 'https://93.184.216.34/hook', events: ['released'], things: ['never-used'] } });
	assert.equal(made.status, 201);
	assert.equal((await api('POST', '/subscriptions', { body: { url: 'https://10.0.0.1/', events: ['released'] } })).json.error, 'url_not_allowed');
	assert.equal((await api('GET', '/subscriptions')).json.subscriptions.length, 1);
	assert.deepEqual((await api('GET', `/subscriptions/${made.json.id}`)).json.deliveries, []);
	assert.equal((await api('GET', '/subscriptions/999999')).status, 404);
	// Resume, with a token of its own (each token has its own rate).
	const c = 'U0OAPUSER3';
	const theirs = await api('POST', '/subscriptions', { user: c, body: { url: 'https://93.184.216.34/hook', events: ['released'] } });
	const resumed = await api('POST', `/subscriptions/${theirs.json.id}/resume`, { user: c });
	assert.deepEqual([resumed.status, resumed.json.id, resumed.json.paused, resumed.json.failures], [200, theirs.json.id, false, 0]);
	assert.equal((await api('POST', '/subscriptions/999999/resume', { user: c })).status, 404);
	assert.equal((await api('DELETE', `/subscriptions/${theirs.json.id}`, { user: c })).status, 200);
	assert.equal((await api('DELETE', `/subscriptions/${made.json.id}`)).json.status, 'deleted');
	assert.equal((await api('DELETE', `/subscriptions/${made.json.id}`)).status, 404);

	assert.equal((await api('GET', '/tokens', { user: a })).json.tokens.length, 1);
	const { id } = await tokenOf(a);
	assert.equal((await api('DELETE', `/tokens/${id + 1000}`, { user: a })).status, 404);
	assert.deepEqual((await api('DELETE', `/tokens/${id}`, { user: a })).json, { status: 'revoked', id });

	const want = [];
	for (const [path, ops] of Object.entries(openapi.paths))
		for (const m of Object.keys(ops)) if (m !== 'parameters') want.push(`${m.toUpperCase()} ${path}`);
	const got = new Set([...covered()].map((k) => k.split(' ').slice(0, 2).join(' ')));
	assert.deepEqual(want.filter((w) => !got.has(w)), [], 'every operation was called');
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
