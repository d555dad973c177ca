// API token lifecycle against the real server, a real PostgreSQL and the
// fake Slack: /dibs token, token list and token revoke, GET and DELETE
// /api/v1/tokens, expiry (api_token_days), a deactivated user, uninstall
// and reinstall, the per-user cap under concurrent requests, and a
// last_used_at that is not rewritten on every call.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { db, eventEnvelope, installTeam, startConch, waitUntil } from '../lib/server.mjs';

const TOKEN_DAYS = 7;
const CAP = 20;

let cluster, dbName, dbUrl, slack, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_tokens_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	conch = await startConch({ databaseUrl: dbUrl, slack, env: { CONCH_API_TOKEN_DAYS: String(TOKEN_DAYS) } });
	sdb = db(cluster.superuserUrl(dbName));
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

let teams = 0;
async function newTeam(plan = 'pro') {
	teams++;
	const team = `T0TOK${String(teams).padStart(2, '0')}${randomBytes(2).toString('hex').toUpperCase()}`;
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan });
	return team;
}

async function dibs(team, user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0TOKENS01', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json.text;
}

async function makeToken(team, user) {
	const text = await dibs(team, user, 'token');
	const m = /id (\d+); shown once.*\n`(conch_[A-Za-z0-9_-]+)`/.exec(text);
	assert.ok(m, `a token in: ${text}`);
	return { id: Number(m[1]), token: m[2], text };
}

async function api(method, path, token) {
	const r = await conch.fetch(`/api/v1${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
	const text = await r.text();
	return { status: r.status, json: text ? JSON.parse(text) : null };
}

function hashOf(token) {
	return createHash('sha256').update(token).digest('hex');
}

async function row(token) {
	return sdb.one('SELECT id, xmin::text AS xmin, created_at, last_used_at, expires_at FROM api_tokens WHERE token_hash = $1', [hashOf(token)]);
}

// --- tests ---------------------------------------------------------------------------

test('/dibs token says its id and when it expires; list shows made, last used and expiry; use is recorded once a minute', async () => {
	const team = await newTeam();
	const user = 'U0TOKUSER1';
	const { id, token, text } = await makeToken(team, user);
	assert.match(text, new RegExp(`It works until <!date\\^\\d+\\^[^|]+\\|${TOKEN_DAYS} days from now>`));
	assert.match(text, new RegExp(`/dibs token revoke ${id}`));
	const stored = await row(token);
	const days = (stored.expires_at - stored.created_at) / 86400_000;
	assert.ok(Math.abs(days - TOKEN_DAYS) < 0.01, `expires ${days} days after it was made`);
	assert.equal(stored.last_used_at, null);

	let list = await dibs(team, user, 'token list');
	assert.match(list, new RegExp(`• \`${id}\` made <!date\\^\\d+\\^[^>]+>, last used never, expires <!date\\^${Math.floor(stored.expires_at / 1000)}\\^`));

	assert.equal((await api('GET', '/things', token)).status, 200);
	const used = await row(token);
	assert.ok(used.last_used_at);
	list = await dibs(team, user, 'token list');
	assert.match(list, /last used <!date\^\d+\^/);

	// Within the minute, more calls leave the row alone (no new row version).
	for (let i = 0; i < 3; i++) assert.equal((await api('GET', '/things', token)).status, 200);
	const again = await row(token);
	assert.equal(again.xmin, used.xmin, 'the token row was not rewritten');
	assert.deepEqual(again.last_used_at, used.last_used_at);
	// A minute later it is written again.
	await sdb.query(`UPDATE api_tokens SET last_used_at = now() - interval '61 seconds' WHERE token_hash = $1`, [hashOf(token)]);
	assert.equal((await api('GET', '/things', token)).status, 200);
	assert.ok((await row(token)).last_used_at > used.last_used_at);
});

test('GET /api/v1/tokens lists the caller\'s tokens; DELETE and /dibs token revoke end only the caller\'s own', async () => {
	const team = await newTeam();
	const a = await makeToken(team, 'U0TOKALICE');
	const a2 = await makeToken(team, 'U0TOKALICE');
	const b = await makeToken(team, 'U0TOKBOB01');

	let r = await api('GET', '/tokens', a.token);
	assert.equal(r.status, 200);
	assert.deepEqual(r.json.tokens.map((t) => t.id), [a.id, a2.id]);
	for (const t of r.json.tokens) {
		assert.match(t.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
		assert.match(t.expires_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
		assert.equal(t.expired, false);
		assert.equal(JSON.stringify(t).includes('conch_'), false, 'never the token itself');
	}
	// This request used the first; the second was never used.
	assert.match(r.json.tokens[0].last_used_at, /^\d{4}-/);
	assert.equal(r.json.tokens[1].last_used_at, null);

	// Bob's token is not Alice's to revoke, by API or by command.
	r = await api('DELETE', `/tokens/${b.id}`, a.token);
	assert.deepEqual([r.status, r.json.error], [404, 'not_found']);
	assert.match(await dibs(team, 'U0TOKALICE', `token revoke ${b.id}`), new RegExp(`You have no token ${b.id}`));
	assert.equal((await api('GET', '/things', b.token)).status, 200);

	for (const [path, status] of [['/tokens/abc', 404], ['/tokens/0', 404], ['/tokens/-1', 404], ['/tokens/1/x', 404]]) {
		r = await api('DELETE', path, a.token);
		assert.equal(r.status, status, path);
	}
	assert.equal((await api('POST', '/tokens', a.token)).status, 405);
	assert.equal((await api('GET', `/tokens/${a2.id}`, a.token)).status, 405);

	r = await api('DELETE', `/tokens/${a2.id}`, a.token);
	assert.deepEqual([r.status, r.json.status, r.json.id], [200, 'revoked', a2.id]);
	assert.deepEqual([(await api('GET', '/things', a2.token)).status], [401]);
	assert.match(await dibs(team, 'U0TOKALICE', `token revoke ${a.id}`), new RegExp(`Token ${a.id} is revoked`));
	r = await api('GET', '/things', a.token);
	assert.deepEqual([r.status, r.json.error], [401, 'unauthorized']);
	assert.match(await dibs(team, 'U0TOKALICE', 'token list'), /You have no API tokens/);
	assert.match(await dibs(team, 'U0TOKALICE', 'token revoke'), /token revoke needs a token's id/);
});

test('an expired token is refused with token_expired; list marks it; it does not count toward the cap', async () => {
	const team = await newTeam();
	const user = 'U0TOKEXPIR';
	const { id, token } = await makeToken(team, user);
	await sdb.query(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1`, [hashOf(token)]);
	const r = await api('GET', '/things', token);
	assert.deepEqual([r.status, r.json.error], [401, 'token_expired']);
	assert.match(r.json.message, /\/dibs token/);
	assert.match(await dibs(team, user, 'token list'), new RegExp(`\`${id}\` .*\\*expired\\*`));
	// A new token drops the expired one.
	await makeToken(team, user);
	assert.equal(await sdb.count('api_tokens', 'team_id = $1 AND user_id = $2', [team, user]), 1);
	// Rows without an explicit expiry (made before it existed) get the default 90 days.
	const legacy = `conch_${randomBytes(24).toString('base64url')}`;
	await sdb.query('INSERT INTO api_tokens (team_id, token_hash, user_id) VALUES ($1, $2, $3)', [team, hashOf(legacy), user]);
	const lr = await row(legacy);
	assert.ok(Math.abs((lr.expires_at - lr.created_at) / 86400_000 - 90) < 0.01);
	// The daily cleanup deletes tokens expired for over 30 days, and only those.
	await sdb.query(`UPDATE api_tokens SET expires_at = now() - interval '31 days' WHERE token_hash = $1`, [hashOf(legacy)]);
	await sdb.query(`UPDATE api_tokens SET expires_at = now() - interval '29 days' WHERE team_id = $1 AND token_hash <> $2`, [team, hashOf(legacy)]);
	await sdb.query(`INSERT INTO jobs (kind, due_at, max_attempts, dedupe_key) VALUES ('dibs.tokens_cleanup', now(), 3, 'dibs.tokens_cleanup:test')`);
	await waitUntil(async () => (await sdb.one(`SELECT state FROM jobs WHERE dedupe_key = 'dibs.tokens_cleanup:test'`))?.state === 'done', { what: 'the cleanup ran' });
	assert.equal(await row(legacy), undefined);
	assert.equal(await sdb.count('api_tokens', 'team_id = $1', [team]), 1);
});

test('a token of a user the directory says was deactivated is refused with user_deactivated', async () => {
	const team = await newTeam();
	const user = 'U0TOKLEAVE';
	const { token } = await makeToken(team, user);
	assert.equal((await api('GET', '/things', token)).status, 200);
	const ev = await conch.event(eventEnvelope(team, { type: 'user_change', user: { ...slack.userInfo(user), team_id: team, deleted: true } }));
	assert.equal(ev.status, 200);
	let r = await api('GET', '/things', token);
	assert.deepEqual([r.status, r.json.error], [401, 'user_deactivated']);
	r = await api('GET', '/tokens', token);
	assert.equal(r.status, 401);
	// Reactivated, it works again (it was never revoked).
	await conch.event(eventEnvelope(team, { type: 'user_change', user: { ...slack.userInfo(user), team_id: team, deleted: false } }));
	assert.equal((await api('GET', '/things', token)).status, 200);
});

test('uninstall revokes the team\'s tokens; after a reinstall the old token is still refused', async () => {
	const team = await newTeam();
	const { token } = await makeToken(team, 'U0TOKUNINS');
	const other = await newTeam();
	const kept = await makeToken(other, 'U0TOKUNINS');
	assert.equal((await api('GET', '/things', token)).status, 200);

	const ev = await conch.event(eventEnvelope(team, { type: 'app_uninstalled' }));
	assert.equal(ev.status, 200);
	assert.equal(await sdb.count('api_tokens', 'team_id = $1', [team]), 0);
	assert.equal((await api('GET', '/things', token)).status, 401);

	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan: 'pro' });
	const r = await api('GET', '/things', token);
	assert.deepEqual([r.status, r.json.error], [401, 'unauthorized']);
	// Another team's tokens are untouched.
	assert.equal((await api('GET', '/things', kept.token)).status, 200);

	// tokens_revoked for the bot does the same.
	const t3 = await newTeam();
	const third = await makeToken(t3, 'U0TOKREVOK');
	const rev = await conch.event(eventEnvelope(t3, { type: 'tokens_revoked', tokens: { bot: ['U0BOT00001'] } }));
	assert.equal(rev.status, 200);
	assert.equal((await api('GET', '/things', third.token)).status, 401);
});

test(`40 concurrent /dibs token for one user make exactly ${CAP}`, async () => {
	const team = await newTeam();
	const user = 'U0TOKRACE1';
	const replies = await Promise.all(Array.from({ length: 40 }, () => dibs(team, user, 'token')));
	const made = replies.filter((t) => /`conch_/.test(t));
	const refused = replies.filter((t) => /already have 20 API tokens/.test(t));
	assert.equal(made.length, CAP, replies.filter((t) => !/`conch_|already have/.test(t)).join('\n'));
	assert.equal(refused.length, 40 - CAP);
	assert.equal(await sdb.count('api_tokens', 'team_id = $1 AND user_id = $2', [team, user]), CAP);
	// Revoking one makes room for exactly one.
	const id = Number(/id (\d+);/.exec(made[0])[1]);
	assert.match(await dibs(team, user, `token revoke ${id}`), /is revoked/);
	assert.match(await dibs(team, user, 'token'), /`conch_/);
	assert.match(await dibs(team, user, 'token'), /already have 20 API tokens/);
});

test('a team that went back to free can still list and revoke its tokens, not use the API', async () => {
	const team = await newTeam();
	const { id, token } = await makeToken(team, 'U0TOKDOWN1');
	await sdb.query(`UPDATE teams SET plan = 'free' WHERE team_id = $1`, [team]);
	assert.equal((await api('GET', '/things', token)).json.error, 'plan_required');
	assert.deepEqual((await api('GET', '/tokens', token)).json.tokens.map((t) => t.id), [id]);
	assert.equal((await api('DELETE', `/tokens/${id}`, token)).status, 200);
	assert.equal((await api('GET', '/tokens', token)).status, 401);
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
