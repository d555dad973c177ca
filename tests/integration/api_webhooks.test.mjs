// Webhook subscriptions against the real server, a real PostgreSQL and the
// fake Slack: creation (secret shown once, stored sealed), list, show with
// the last deliveries, delete; every event POSTed signed with
// Conch-Signature, verified here by the receiver; the SSRF refusals of each
// address class at creation and at delivery; the pause after 20 failures
// in a row with a DM to the owner; the limits.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { listenLocal } from '../lib/listen.mjs';
import { testCluster } from '../lib/pg.mjs';
import { TEST_TOKEN_KEYS, conchEnv, db, installTeam, runConch, startConch, waitUntil } from '../lib/server.mjs';
import { keyOf, makeTokenKeys, seal, open as vaultOpen } from '../lib/vault.mjs';
import { checkAnswer, openapi } from '../lib/openapi.mjs';
import Ajv2020 from 'ajv/dist/2020.js';

const OWNER = 'U0HOOKOWN1';
const OTHER = 'U0HOOKOTH1';
const REBIND = 'rebind.example.com';
const RESUMER = 'U0HOOKRES1';
const EVENTS = ['your_turn', 'released', 'expired', 'queued', 'kicked', 'auto_released'];

const sockets = new Set();
let cluster, dbName, dbName2, dbUrl, slack, strict, open, sdb, team, receiver, received = [], answer = 200;
const held = []; // answers to /held, sent when the test lets them go

before(async () => {
	cluster = await testCluster();
	dbName = `conch_hooks_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	// strict: production rules (its own database, so that it runs none of
	// open's jobs); open: the test-only loopback setting and fast retries.
	dbName2 = `${dbName}_strict`;
	const dbUrl2 = await cluster.createDatabase(dbName2);
	// Its deliveries to rebind.example.com resolve to a private address,
	// as a name whose DNS answer changed after the subscription was made.
	strict = await startConch({
		databaseUrl: dbUrl2, slack, env: { CONCH_WEBHOOK_TEST_RESOLVE: `${REBIND}:443:10.1.2.3` },
	});
	open = await startConch({
		databaseUrl: dbUrl, slack,
		env: { CONCH_WEBHOOK_ALLOW_LOOPBACK: '1', CONCH_WEBHOOK_RETRY_BASE_SECONDS: '0' },
	});
	sdb = db(cluster.superuserUrl(dbName));
	team = `T0HOK${randomBytes(2).toString('hex').toUpperCase()}`;
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan: 'pro' });
	await installTeam(dbUrl2, { team_id: team, token: slack.issueToken({ team_id: team }), plan: 'pro' });
	receiver = await listenLocal((req, res) => {
		let body = '';
		req.on('data', (d) => (body += d));
		req.on('end', () => {
			received.push({ headers: req.headers, body, url: req.url });
			if (req.url === '/held') {
				held.push(() => { res.writeHead(200); res.end('ok'); });
				return;
			}
			res.writeHead(answer, { 'content-type': 'text/plain' });
			res.end('x'.repeat(100_000)); // a long answer is not read to the end
		});
	}, sockets);
});

after(async () => {
	await strict?.stop({ allowUnclean: true }).catch(() => {});
	await open?.stop({ allowUnclean: true }).catch(() => {});
	for (const s of sockets) s.destroy();
	receiver?.close();
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.dropDatabase(dbName2).catch(() => {});
		await cluster.stop();
	}
});

const tokens = new Map();
async function dibs(user, text, server = open) {
	const r = await server.slashCommand({ team_id: team, user_id: user, channel_id: 'C0HOOKS001', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json.text;
}
async function tokenOf(user, server = open) {
	const key = `${server.url} ${user}`;
	if (!tokens.has(key)) tokens.set(key, /`(conch_[A-Za-z0-9_-]+)`/.exec(await dibs(user, 'token', server))[1]);
	return tokens.get(key);
}
async function api(method, path, { user = OWNER, body, server = open } = {}) {
	const r = await fetch(`${server.url}/api/v1${path}`, {
		method,
		headers: { authorization: `Bearer ${await tokenOf(user, server)}`, 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body),
	});
	return { status: r.status, json: checkAnswer(method, path, r.status, await r.json()) };
}
const hookUrl = (path = '/hook') => `http://127.0.0.1:${receiver.address().port}${path}`;

function verify(r, secret) {
	const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(r.headers['conch-signature'] || '');
	assert.ok(m, `signature header: ${r.headers['conch-signature']}`);
	const want = createHmac('sha256', secret).update(`${m[1]}.${r.body}`).digest();
	assert.ok(timingSafeEqual(want, Buffer.from(m[2], 'hex')), 'the signature verifies');
	assert.ok(Math.abs(Date.now() / 1000 - Number(m[1])) < 300, 'a fresh timestamp');
	// A tampered body does not verify.
	const bad = createHmac('sha256', secret).update(`${m[1]}.${r.body} `).digest();
	assert.ok(!timingSafeEqual(bad, Buffer.from(m[2], 'hex')));
}

test('events are POSTed signed; the receiver verifies them; show lists the deliveries', async () => {
	const made = await api('POST', '/subscriptions', { body: { url: hookUrl('/signed'), events: EVENTS, things: ['Rig'] } });
	assert.equal(made.status, 201, JSON.stringify(made.json));
	assert.match(made.json.secret, /^whsec_/);
	assert.deepEqual(made.json.things, ['rig']);
	const row = await sdb.one('SELECT secret FROM api_subscriptions WHERE team_id = $1 AND id = $2', [team, made.json.id]);
	assert.ok(!row.secret.includes(made.json.secret), 'stored sealed');
	assert.match(row.secret, /^v1\.\d+\./);

	await dibs(OTHER, 'on rig');
	await dibs(OWNER, 'on rig'); // queued
	await dibs(OTHER, 'off rig'); // released, your_turn for OWNER
	await dibs(OTHER, 'kick rig'); // OWNER kicked by OTHER
	await dibs(OTHER, 'on other-thing'); // not subscribed
	await waitUntil(() => received.filter((r) => r.url === '/signed').length >= 4, { what: '4 deliveries' });
	const got = received.filter((r) => r.url === '/signed');
	for (const r of got) verify(r, made.json.secret);
	const bodies = got.map((r) => JSON.parse(r.body));
	assert.deepEqual(bodies.map((b) => `${b.event}:${b.user}`).sort(), [`kicked:${OWNER}`, `queued:${OWNER}`, `released:${OTHER}`, `your_turn:${OWNER}`].sort());
	assert.equal(bodies.find((b) => b.event === 'kicked').by, OTHER);
	for (const b of bodies) assert.deepEqual([b.team, b.thing], [team, 'rig']);
	// The bodies are what the description says a webhook event is.
	const event = new Ajv2020({ strict: false }).addSchema(openapi, 'openapi').compile({ $ref: 'openapi#/components/schemas/WebhookEvent' });
	for (const b of bodies) assert.ok(event(b), JSON.stringify(event.errors));

	await waitUntil(async () => (await sdb.count('api_deliveries', "team_id = $1 AND subscription_id = $2 AND state <> 'delivered'", [team, made.json.id])) === 0, { what: 'all delivered' });
	const shown = await api('GET', `/subscriptions/${made.json.id}`);
	assert.equal(shown.json.deliveries.length, 4);
	assert.equal(shown.json.secret, undefined, 'the secret is shown once');
	assert.deepEqual(shown.json.deliveries.map((d) => d.http_status), [200, 200, 200, 200]);
	const listed = await api('GET', '/subscriptions');
	assert.deepEqual(listed.json.subscriptions.map((s) => s.id), [made.json.id]);
	assert.equal(listed.json.subscriptions[0].secret, undefined);

	// Another user sees nothing of it and cannot delete it.
	assert.equal((await api('GET', `/subscriptions/${made.json.id}`, { user: OTHER })).status, 404);
	assert.equal((await api('DELETE', `/subscriptions/${made.json.id}`, { user: OTHER })).status, 404);
	assert.deepEqual((await api('GET', '/subscriptions', { user: OTHER })).json, { subscriptions: [] });
	assert.deepEqual((await api('DELETE', `/subscriptions/${made.json.id}`)).json, { status: 'deleted', id: made.json.id });
	assert.equal((await api('GET', `/subscriptions/${made.json.id}`)).status, 404);
});

test('a slow receiver holds no job runner: with deliveries held, another subscription gets its events', async () => {
	const slow = await api('POST', '/subscriptions', { body: { url: hookUrl('/held'), events: EVENTS, things: ['slow'] } });
	const fast = await api('POST', '/subscriptions', { body: { url: hookUrl('/fast'), events: EVENTS, things: ['fast'] } });
	assert.equal(slow.status, 201);
	assert.equal(fast.status, 201);
	// Four deliveries held open: more than the server's two job runners.
	await dibs(OTHER, 'on slow');
	await dibs(OWNER, 'on slow');
	await dibs(OTHER, 'off slow');
	await dibs(OWNER, 'off slow');
	await waitUntil(() => held.length >= 4, { what: '4 held deliveries' });
	await dibs(OTHER, 'on fast');
	await dibs(OWNER, 'on fast'); // queued: a delivery to /fast
	await waitUntil(() => received.some((r) => r.url === '/fast'), { what: 'the other subscription\'s delivery' });
	assert.equal(held.length, 4, 'the held ones are still unanswered');
	// ... and none of them has ended (a timeout would have counted an attempt).
	assert.equal(await sdb.count('api_deliveries', 'team_id = $1 AND subscription_id = $2 AND attempts > 0', [team, slow.json.id]), 0);
	for (const go of held.splice(0)) go();
	await waitUntil(async () => (await sdb.count('api_deliveries', "team_id = $1 AND subscription_id = $2 AND state = 'delivered'", [team, slow.json.id])) === 4, { what: 'the held deliveries recorded' });
	for (const s of [slow, fast]) assert.equal((await api('DELETE', `/subscriptions/${s.json.id}`)).status, 200);
});

const REFUSED = [
	['loopback', 'https://127.0.0.1/x'],
	['loopback name', 'https://localhost/x'],
	['loopback v6', 'https://[::1]/x'],
	['private 10/8', 'https://10.1.2.3/x'],
	['private 172.16/12', 'https://172.20.0.1/x'],
	['private 192.168/16', 'https://192.168.1.1/x'],
	['unique local fc00::/7', 'https://[fd12::1]/x'],
	['link-local', 'https://169.254.10.10/x'],
	['link-local v6', 'https://[fe80::1]/x'],
	['cloud metadata', 'https://169.254.169.254/latest/meta-data/'],
	['cloud metadata v6', 'https://[fd00:ec2::254]/x'],
	['CGNAT 100.64/10', 'https://100.64.0.1/x'],
	['unspecified', 'https://0.0.0.0/x'],
	['unspecified v6', 'https://[::]/x'],
	['multicast', 'https://224.0.0.1/x'],
	['multicast v6', 'https://[ff02::1]/x'],
	['v4-mapped loopback', 'https://[::ffff:127.0.0.1]/x'],
	['decimal loopback', 'https://2130706433/x'],
];

test('creation refuses http and every non-public address class', async () => {
	// One user per request: each token may make 20 requests at once.
	let n = 0;
	const asNext = () => `U0HOOKR${String(n++).padStart(3, '0')}`;
	for (const [what, url] of REFUSED) {
		const r = await api('POST', '/subscriptions', { server: strict, user: asNext(), body: { url, events: ['released'] } });
		assert.deepEqual([r.status, r.json.error], [400, 'url_not_allowed'], `${what}: ${url} ${JSON.stringify(r.json)}`);
	}
	const http = await api('POST', '/subscriptions', { server: strict, user: asNext(), body: { url: 'http://example.com/x', events: ['released'] } });
	assert.match(http.json.message, /only https/);
	const loop = await api('POST', '/subscriptions', { server: strict, user: asNext(), body: { url: hookUrl(), events: ['released'] } });
	assert.equal(loop.status, 400, 'the loopback receiver is refused without the test setting');
	const creds = await api('POST', '/subscriptions', { server: strict, user: asNext(), body: { url: 'https://u:p@example.com/', events: ['released'] } });
	assert.equal(creds.status, 400);
	for (const body of [{}, { url: 'https://example.com/' }, { url: 'https://example.com/', events: [] }, { url: 'https://example.com/', events: ['nope'] },
		{ url: 'https://example.com/', events: ['released'], things: ['a b'] }, { url: 42, events: ['released'] }]) {
		const r = await api('POST', '/subscriptions', { server: strict, user: asNext(), body });
		assert.deepEqual([r.status, r.json.error], [400, 'bad_request'], JSON.stringify(body));
	}
	const sdb2 = db(cluster.superuserUrl(dbName2));
	try {
		assert.equal(await sdb2.count('api_subscriptions', 'team_id = $1', [team]), 0);
	} finally {
		await sdb2.close();
	}
});

test('delivery refuses a URL whose address is not public (checked again at send time)', async () => {
	// Rows as if their host had resolved to a public address when they were made
	// (this server allows loopback, for the tests' receiver, so those are left out).
	const urls = REFUSED.filter(([what]) => !/loopback/.test(what)).map(([, url]) => url);
	for (const url of urls)
		await sdb.query(`INSERT INTO api_subscriptions (team_id, user_id, url, events, secret) VALUES ($1, $2, $3, '{released}', 'v1.1.x')`, [team, OWNER, url]);
	await dibs(OTHER, 'on ssrf');
	await dibs(OTHER, 'off ssrf');
	await waitUntil(async () => (await sdb.count('api_deliveries', "team_id = $1 AND state = 'refused'", [team])) === urls.length, { what: 'the refusals' });
	const errors = await sdb.query(`SELECT error FROM api_deliveries WHERE team_id = $1 AND state = 'refused'`, [team]);
	for (const e of errors) assert.match(e.error, /is not a public address/);
	await sdb.query('DELETE FROM api_subscriptions WHERE team_id = $1', [team]);
});

test('delivery checks the address a name resolves to as it connects: one that is not public is refused, never called', async () => {
	const sdb2 = db(cluster.superuserUrl(dbName2));
	try {
		// Made while the name resolved to a public address; it now resolves to 10.1.2.3.
		await sdb2.query(`INSERT INTO api_subscriptions (team_id, user_id, url, events, secret) VALUES ($1, $2, $3, '{released}', $4)`,
			[team, OWNER, `https://${REBIND}/x`, seal(TEST_TOKEN_KEYS, 'whsec_rebind', team, 'webhook')]);
		await dibs(OTHER, 'on rebind', strict);
		await dibs(OTHER, 'off rebind', strict);
		await waitUntil(async () => (await sdb2.count('api_deliveries', "team_id = $1 AND state <> 'pending'", [team])) === 1,
			{ what: 'the delivery to end' });
		const [row] = await sdb2.query('SELECT state, error, http_status FROM api_deliveries WHERE team_id = $1', [team]);
		assert.equal(row.state, 'refused', JSON.stringify(row));
		assert.match(row.error, /10\.1\.2\.3 is not a public address/);
		assert.equal(row.http_status, null);
		const [sub] = await sdb2.query('SELECT failures FROM api_subscriptions WHERE team_id = $1', [team]);
		assert.equal(sub.failures, 1, 'a refusal counts toward pausing, as a failure does');
	} finally {
		await sdb2.query('DELETE FROM api_subscriptions WHERE team_id = $1', [team]);
		await sdb2.close();
	}
});

test('20 failures in a row pause a subscription and DM its owner; nothing more is sent', async () => {
	answer = 500;
	try {
		const made = await api('POST', '/subscriptions', { body: { url: hookUrl('/failing'), events: ['queued', 'released'], things: ['flaky'] } });
		assert.equal(made.status, 201);
		await dibs(OTHER, 'on flaky');
		for (let i = 0; i < 3; i++) {
			await dibs(OWNER, 'on flaky'); // queued
			await dibs(OWNER, 'off flaky'); // leaves the line: no event
		}
		await waitUntil(async () => (await sdb.one('SELECT paused_at FROM api_subscriptions WHERE team_id = $1 AND id = $2', [team, made.json.id]))?.paused_at !== null,
			{ timeoutMs: 60_000, what: 'paused' });
		const pauseDMs = () => slack.calls('chat.postMessage').filter((c) => c.body.channel === OWNER && /webhook subscription/.test(c.body.text || ''));
		await waitUntil(() => pauseDMs().length >= 1, { what: 'the DM to the owner' });
		const mine = pauseDMs();
		assert.equal(mine.length, 1);
		assert.match(mine[0].body.text, /is paused: its last 20 deliveries failed/);
		// Attempts already under way when the 20th failure paused it may still land.
		const sent = received.filter((r) => r.url === '/failing').length;
		assert.ok(sent >= 20 && sent <= 23, `${sent} sent`);
		const shown = await api('GET', `/subscriptions/${made.json.id}`);
		assert.equal(shown.json.paused, true);
		assert.equal(shown.json.failures, 20);
		assert.ok(shown.json.deliveries.every((d) => d.state !== 'delivered'));
		// A new event for a paused subscription makes no delivery.
		const before = await sdb.count('api_deliveries', 'team_id = $1 AND subscription_id = $2', [team, made.json.id]);
		await dibs(OWNER, 'on flaky');
		assert.equal(await sdb.count('api_deliveries', 'team_id = $1 AND subscription_id = $2', [team, made.json.id]), before);
		await api('DELETE', `/subscriptions/${made.json.id}`);
	} finally {
		answer = 200;
	}
});

test('a paused subscription is resumed by its owner only: the failure count starts again and events are delivered', async () => {
	const made = await api('POST', '/subscriptions', { user: RESUMER, body: { url: hookUrl('/resumed'), events: ['released'], things: ['mended'] } });
	assert.equal(made.status, 201);
	const id = made.json.id;
	await sdb.query('UPDATE api_subscriptions SET failures = 20, paused_at = now() WHERE team_id = $1 AND id = $2', [team, id]);
	await dibs(OTHER, 'on mended');
	await dibs(OTHER, 'off mended'); // paused: no delivery
	assert.equal(await sdb.count('api_deliveries', 'team_id = $1 AND subscription_id = $2', [team, id]), 0);
	// Someone else's token, a wrong id, a wrong method: nothing changes.
	assert.equal((await api('POST', `/subscriptions/${id}/resume`, { user: OTHER })).status, 404);
	assert.equal((await api('POST', '/subscriptions/x1/resume', { user: RESUMER })).status, 404);
	const get = await fetch(`${open.url}/api/v1/subscriptions/${id}/resume`, { headers: { authorization: `Bearer ${await tokenOf(RESUMER)}` } });
	assert.deepEqual([get.status, get.headers.get('allow'), (await get.json()).error], [405, 'POST', 'method_not_allowed']);
	const bad = await fetch(`${open.url}/api/v1/subscriptions/${id}/restart`, { method: 'POST', headers: { authorization: `Bearer ${await tokenOf(RESUMER)}` } });
	assert.equal(bad.status, 404);
	assert.deepEqual(await sdb.one('SELECT failures, paused_at IS NOT NULL AS paused FROM api_subscriptions WHERE team_id = $1 AND id = $2', [team, id]), { failures: 20, paused: true });
	// The owner resumes it.
	const r = await api('POST', `/subscriptions/${id}/resume`, { user: RESUMER });
	assert.equal(r.status, 200);
	assert.deepEqual([r.json.id, r.json.paused, r.json.paused_at, r.json.failures], [id, false, null, 0]);
	assert.equal((await api('GET', `/subscriptions/${id}`, { user: RESUMER })).json.paused, false);
	await dibs(OTHER, 'on mended');
	await dibs(OTHER, 'off mended');
	await waitUntil(() => received.some((x) => x.url === '/resumed'), { what: 'a delivery after the resume' });
	const got = received.filter((x) => x.url === '/resumed');
	assert.equal(got.length, 1);
	assert.equal(JSON.parse(got[0].body).event, 'released');
	verify(got[0], made.json.secret);
	await waitUntil(async () => (await sdb.count('api_deliveries', "team_id = $1 AND subscription_id = $2 AND state = 'delivered'", [team, id])) === 1, { what: 'the delivery recorded' });
	assert.equal((await api('GET', `/subscriptions/${id}`, { user: RESUMER })).json.deliveries[0].state, 'delivered');
	await api('DELETE', `/subscriptions/${id}`, { user: RESUMER });
});

test('limits: 10 subscriptions a person', async () => {
	const ids = [];
	for (let i = 0; i < 10; i++) {
		const r = await api('POST', '/subscriptions', { body: { url: hookUrl(`/l${i}`), events: ['released'] } });
		assert.equal(r.status, 201);
		ids.push(r.json.id);
	}
	const over = await api('POST', '/subscriptions', { body: { url: hookUrl('/over'), events: ['released'] } });
	assert.deepEqual([over.status, over.json.error], [409, 'limit']);
	assert.equal((await api('POST', '/subscriptions', { user: OTHER, body: { url: hookUrl('/o'), events: ['released'] } })).status, 201);
	for (const id of ids) await api('DELETE', `/subscriptions/${id}`);
});

test('conch rotate-keys re-seals subscription secrets with the newest key (last: the servers keep key 1 only)', async () => {
	const made = await api('POST', '/subscriptions', { user: 'U0HOOKROT1', body: { url: hookUrl('/rotated'), events: ['released'] } });
	assert.equal(made.status, 201);
	const both = `${TEST_TOKEN_KEYS},${makeTokenKeys([2])}`;
	const r = await runConch(['rotate-keys'], { env: conchEnv({ databaseUrl: dbUrl, slack, tokenKeys: both }) });
	assert.equal(r.code, 0, r.stderr);
	const row = await sdb.one('SELECT secret FROM api_subscriptions WHERE team_id = $1 AND id = $2', [team, made.json.id]);
	assert.equal(keyOf(row.secret), 2);
	assert.equal(vaultOpen(both, row.secret, team, 'webhook'), made.json.secret);
});

test('stops cleanly', async () => {
	await strict.stop();
	await open.stop();
	strict = open = null;
});
