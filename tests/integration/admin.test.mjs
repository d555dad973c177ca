// The operator pages and `conch admin-user` over HTTP, without a browser:
// accounts, sign-in and its backoff, sessions and cookies, CSRF on every
// POST, the pages (teams search and paging, one team, jobs with retry and
// cancel, webhooks), and that no page ever shows a token or secret.
// (README: Commands of the binary, Operators.)

import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { testCluster } from '../lib/pg.mjs';
import { conchEnv, db, installTeam, runConch, startConch, waitUntil } from '../lib/server.mjs';

const PASSWORD = 'correct horse battery staple';
const SEARCH_TEAMS = 120;
const BACKOFF_BASE = 10;
const BACKOFF_MAX = 3600;

function sha256hex(s) {
	return createHash('sha256').update(s).digest('hex');
}

// A browser-like client: keeps cookies, sends form posts, never follows
// redirects (so each answer can be checked).
class Client {
	// forwardedFor: the client address the load balancer (a trusted proxy
	// in these tests) reports in X-Forwarded-For.
	constructor(conch, { forwardedFor } = {}) {
		this.conch = conch;
		this.cookies = new Map();
		this.lastSetCookies = [];
		this.forwardedFor = forwardedFor;
	}

	cookieHeader() {
		return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
	}

	remember(res) {
		this.lastSetCookies = res.headers.getSetCookie();
		for (const h of this.lastSetCookies) {
			const [pair, ...attrs] = h.split(';');
			const eq = pair.indexOf('=');
			const name = pair.slice(0, eq).trim();
			const value = pair.slice(eq + 1).trim();
			const maxAge = attrs.map((a) => a.trim()).find((a) => /^max-age=/i.test(a));
			if (value === '' || (maxAge && Number(maxAge.split('=')[1]) <= 0)) this.cookies.delete(name);
			else this.cookies.set(name, value);
		}
	}

	async request(path, init = {}) {
		const headers = { ...(init.headers || {}) };
		if (this.cookies.size) headers.cookie = this.cookieHeader();
		if (this.forwardedFor) headers['x-forwarded-for'] = this.forwardedFor;
		const res = await this.conch.fetch(path, { ...init, headers });
		this.remember(res);
		return { status: res.status, headers: res.headers, text: await res.text() };
	}

	get(path) {
		return this.request(path);
	}

	post(path, fields = {}, { headers = {} } = {}) {
		return this.request(path, {
			method: 'POST',
			headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
			body: new URLSearchParams(fields).toString(),
		});
	}

	// GET /admin/login, then POST the form with the login CSRF pair.
	async login(name, password) {
		const page = await this.get('/admin/login');
		assert.equal(page.status, 200);
		return this.post('/admin/login', { csrf: hiddenCsrf(page.text), name, password });
	}

	// The session's CSRF token, from the log-out form of any page.
	async csrf() {
		const page = await this.get('/admin');
		assert.equal(page.status, 200, 'signed in');
		return hiddenCsrf(page.text);
	}
}

function hiddenCsrf(html) {
	const m = html.match(/name="csrf" value="([^"]+)"/);
	assert.ok(m, 'the page has a form with a csrf field');
	return m[1];
}

// The rows of the first table of a page, as arrays of cell texts.
function tableRows(html) {
	const body = html.match(/<tbody>([\s\S]*?)<\/tbody>/);
	if (!body) return [];
	return [...body[1].matchAll(/<tr[^>]*>([\s\S]*?)<\/tr>/g)].map((m) =>
		[...m[1].matchAll(/<td[^>]*>([\s\S]*?)<\/td>/g)].map((c) => c[1].replace(/<[^>]+>/g, '').trim()),
	);
}

function teamIdsOn(html) {
	return [...html.matchAll(/href="\/admin\/teams\/([A-Z0-9_-]+)"/g)].map((m) => m[1]);
}

function decodeHref(href) {
	return href.replace(/&amp;/g, '&');
}

describe('operator pages', () => {
	let cluster, dbName, dbUrl, conch, sdb, env;

	function adminUser(name, input) {
		return runConch(['admin-user', name], { env, input });
	}

	async function sessions(user) {
		return sdb.count('admin_sessions', 'user_name = $1', [user]);
	}

	async function signedIn(name = 'ops') {
		const c = new Client(conch);
		const r = await c.login(name, PASSWORD);
		assert.equal(r.status, 303, `sign-in of ${name}: ${r.text.slice(0, 200)}`);
		return c;
	}

	async function insertJob({ kind = 'admin.test', team = 'TADMJOB', state = 'dead', payload = {}, attempts = 5,
		due = 'now()', lastError = null } = {}) {
		const row = await sdb.one(
			`INSERT INTO jobs (kind, team_id, payload, state, attempts, max_attempts, due_at, last_error, finished_at)
			 VALUES ($1, $2, $3, $4, $5, 8, ${due}, $6, CASE WHEN $4 IN ('dead', 'done', 'cancelled') THEN now() END)
			 RETURNING id`,
			[kind, team, JSON.stringify(payload), state, attempts, lastError],
		);
		return Number(row.id);
	}

	async function job(id) {
		return sdb.one('SELECT state, attempts, due_at, last_error FROM jobs WHERE id = $1', [id]);
	}

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_admin_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		// The tests play the load balancer: 127.0.0.1 is a trusted proxy, and
		// the backoff is long enough that no test races the clock (they age
		// the failures instead).
		conch = await startConch({
			databaseUrl: dbUrl,
			env: {
				CONCH_TRUSTED_PROXIES: '127.0.0.1/32',
				CONCH_LOGIN_BACKOFF_AFTER_FAILURES: '1',
				CONCH_LOGIN_BACKOFF_BASE_SECONDS: String(BACKOFF_BASE),
				CONCH_LOGIN_BACKOFF_MAX_SECONDS: String(BACKOFF_MAX),
			},
		});
		sdb = db(cluster.superuserUrl(dbName));
		env = conchEnv({ databaseUrl: dbUrl });
	});

	after(async () => {
		const results = await Promise.allSettled([conch?.stop(), sdb?.close()]);
		if (cluster) {
			await cluster.dropDatabase(dbName).catch(() => {});
			await cluster.stop();
		}
		for (const r of results) if (r.status === 'rejected') throw r.reason;
	});

	test('admin-user refuses short passwords and bad names, creates, and resets', async () => {
		let r = await adminUser('ops', 'too-short\n');
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /at least 12 characters/);
		assert.equal(await sdb.count('admin_users'), 0);

		r = await adminUser('Bad Name', `${PASSWORD}\n`);
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /a-z 0-9/);

		r = await adminUser('ops', `${PASSWORD}\n`);
		assert.equal(r.code, 0, r.stderr);
		assert.deepEqual(r.sanitizer, []);
		assert.equal(r.stdout.trim(), 'admin user ops created');
		const first = await sdb.one('SELECT password_hash FROM admin_users WHERE name = $1', ['ops']);
		assert.match(first.password_hash, /^scrypt\$32768\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
		assert.ok(!first.password_hash.includes(PASSWORD));

		// A reset changes the hash and ends the account's sessions.
		const c = await signedIn('ops');
		assert.equal(await sessions('ops'), 1);
		r = await adminUser('ops', `${PASSWORD}\r\n`);
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stdout.trim(), 'admin user ops updated');
		const second = await sdb.one('SELECT password_hash FROM admin_users WHERE name = $1', ['ops']);
		assert.notEqual(second.password_hash, first.password_hash);
		assert.equal(await sessions('ops'), 0);
		const page = await c.get('/admin');
		assert.equal(page.status, 303);
		assert.equal(page.headers.get('location'), '/admin/login');
	});

	test('pages and actions need a session', async () => {
		const c = new Client(conch);
		for (const p of ['/admin', '/admin/teams', '/admin/teams/T1', '/admin/jobs', '/admin/webhooks']) {
			const r = await c.get(p);
			assert.equal(r.status, 303, p);
			assert.equal(r.headers.get('location'), '/admin/login', p);
		}
		const id = await insertJob();
		const r = await c.post(`/admin/jobs/${id}/retry`, { csrf: 'x' });
		assert.equal(r.status, 303);
		assert.equal((await job(id)).state, 'dead');
		assert.equal((await c.get('/admin/nope')).status, 404);
	});

	test('a wrong password shows the form again and makes no session', async () => {
		const c = new Client(conch);
		for (const [name, password] of [['ops', 'not the password!'], ['nobody', PASSWORD], ['NOT VALID', PASSWORD]]) {
			const r = await c.login(name, password);
			assert.equal(r.status, 401, name);
			assert.match(r.text, /Wrong name or password/);
			assert.match(r.text, /<form method="post" action="\/admin\/login">/);
			assert.ok(!c.cookies.has('conch_admin'), 'no session cookie');
		}
		assert.equal(await sdb.count('admin_sessions'), 0);
		await sdb.query('DELETE FROM admin_login_failures');
	});

	test('the right password makes a server-side session with safe cookie flags', async () => {
		const c = new Client(conch);
		const form = await c.get('/admin/login');
		const loginCookie = c.lastSetCookies.find((h) => h.startsWith('conch_csrf='));
		assert.ok(loginCookie, 'the login form sets its CSRF cookie');
		assert.match(loginCookie, /HttpOnly/);
		assert.match(loginCookie, /SameSite=Lax/);
		const r = await c.post('/admin/login', { csrf: hiddenCsrf(form.text), name: 'ops', password: PASSWORD });
		assert.equal(r.status, 303);
		assert.equal(r.headers.get('location'), '/admin');
		const setCookie = c.lastSetCookies.find((h) => h.startsWith('conch_admin='));
		assert.ok(setCookie, 'a session cookie is set');
		assert.match(setCookie, /; HttpOnly/);
		assert.match(setCookie, /; SameSite=Lax/);
		assert.match(setCookie, /; Path=\//);
		assert.doesNotMatch(setCookie, /Secure/, 'not Secure over plain http');
		const token = c.cookies.get('conch_admin');
		assert.match(token, /^[A-Za-z0-9_-]{43}$/);

		// Only the token's SHA-256 is stored.
		const rows = await sdb.query('SELECT id_hash, user_name, expires_at - now() AS left FROM admin_sessions');
		assert.equal(rows.length, 1);
		assert.equal(rows[0].id_hash, sha256hex(token));
		assert.equal(rows[0].user_name, 'ops');
		assert.ok(rows[0].left.hours >= 11, 'a 12-hour session');

		const home = await c.get('/admin');
		assert.equal(home.status, 200);
		assert.match(home.text, /<h1>Overview<\/h1>/);
		assert.match(home.text, /Log out/);
		assert.ok(!home.text.includes(token), 'the page does not show the session token');

		// An expired session is gone.
		await sdb.query("UPDATE admin_sessions SET expires_at = now() - interval '1 second'");
		assert.equal((await c.get('/admin')).status, 303);
	});

	test('sign-in needs the login CSRF pair and a matching Origin', async () => {
		await sdb.query('DELETE FROM admin_sessions');
		const c = new Client(conch);
		const form = await c.get('/admin/login');
		const csrf = hiddenCsrf(form.text);
		const cases = [
			[{ name: 'ops', password: PASSWORD }, {}],
			[{ csrf: 'A'.repeat(43), name: 'ops', password: PASSWORD }, {}],
			[{ csrf, name: 'ops', password: PASSWORD }, { origin: 'http://evil.example' }],
		];
		for (const [fields, headers] of cases) {
			const r = await c.post('/admin/login', fields, { headers });
			assert.equal(r.status, 403);
			assert.match(r.text, /missing or wrong CSRF token/);
		}
		// Without the cookie the field alone is not enough.
		const bare = new Client(conch);
		assert.equal((await bare.post('/admin/login', { csrf, name: 'ops', password: PASSWORD })).status, 403);
		assert.equal(await sdb.count('admin_sessions'), 0);
		assert.equal(await sdb.count('admin_login_failures'), 0, 'refused before any password check');
		// The same origin is fine.
		const ok = await c.post('/admin/login', { csrf, name: 'ops', password: PASSWORD }, { headers: { origin: conch.url } });
		assert.equal(ok.status, 303);
	});

	// Every recorded failure, as if its last attempt was `seconds` ago.
	function ageFailures(seconds) {
		return sdb.query("UPDATE admin_login_failures SET at = now() - make_interval(secs => $1)", [seconds]);
	}

	test('failed sign-ins slow the next attempt for that name from that address only, doubling', async () => {
		await sdb.query('DELETE FROM admin_login_failures');
		assert.equal((await adminUser('backoff', `${PASSWORD}\n`)).code, 0);
		const stranger = new Client(conch, { forwardedFor: '198.51.100.7' });
		const operator = new Client(conch, { forwardedFor: '203.0.113.20' });

		assert.equal((await stranger.login('backoff', 'wrong password 0')).status, 401);
		await ageFailures(0);
		// Right after a failure even the right password waits, unchecked.
		let r = await stranger.login('backoff', PASSWORD);
		assert.equal(r.status, 429);
		assert.match(r.text, /Too many failed attempts: wait (9|10) seconds and try again/);
		assert.match(r.headers.get('retry-after') ?? '', /^(9|10)$/);
		assert.ok(!stranger.cookies.has('conch_admin'));
		// Another name from that address is checked.
		assert.equal((await stranger.login('ops', 'wrong again, ops')).status, 401);

		// Each further failure doubles the wait: 10, 20, 40, 80, 160 s.
		for (let n = 2; n <= 6; n++) {
			await ageFailures(BACKOFF_BASE * 2 ** (n - 2) + 1);
			assert.equal((await stranger.login('backoff', `wrong password ${n}`)).status, 401, `failure ${n}`);
			await ageFailures(BACKOFF_BASE * 2 ** (n - 2) + 1);
			assert.equal((await stranger.login('backoff', PASSWORD)).status, 429, `after failure ${n}`);
		}
		assert.match((await stranger.login('backoff', PASSWORD)).text, /wait \d+ minutes/);

		// The stranger's failures never slow the operator's own address.
		r = await operator.login('backoff', PASSWORD);
		assert.equal(r.status, 303, r.text.slice(0, 300));
		assert.equal(await sessions('backoff'), 1);

		// Once the wait is over the stranger's next attempt is checked again.
		await ageFailures(BACKOFF_BASE * 2 ** 5 + 1);
		assert.equal((await stranger.login('backoff', PASSWORD)).status, 303);
		await sdb.query('DELETE FROM admin_login_failures');
	});

	test('the backoff stops doubling at login_backoff_max_seconds, and a success clears it', async () => {
		await sdb.query('DELETE FROM admin_login_failures');
		const c = new Client(conch, { forwardedFor: '198.51.100.8' });
		for (let n = 1; n <= 12; n++) {
			await ageFailures(BACKOFF_MAX + 1);
			assert.equal((await c.login('backoff', `wrong password ${n}`)).status, 401, `failure ${n}`);
		}
		await ageFailures(0);
		const r = await c.login('backoff', PASSWORD);
		assert.equal(r.status, 429);
		assert.match(r.text, /wait (59|60) minutes/, 'capped at an hour, not 10 * 2^11 s');
		await ageFailures(BACKOFF_MAX + 1);
		assert.equal((await c.login('backoff', PASSWORD)).status, 303);
		// The success forgot the failures: one more failure waits the base again.
		assert.equal(await sdb.count('admin_login_failures'), 0);
		const again = new Client(conch, { forwardedFor: '198.51.100.8' });
		assert.equal((await again.login('backoff', 'wrong once more')).status, 401);
		await ageFailures(BACKOFF_BASE + 1);
		assert.equal((await again.login('backoff', PASSWORD)).status, 303);
		await sdb.query('DELETE FROM admin_login_failures');
	});

	test('without X-Forwarded-For the backoff is keyed by the socket peer', async () => {
		await sdb.query('DELETE FROM admin_login_failures');
		const direct = new Client(conch);
		assert.equal((await direct.login('backoff', 'wrong from the peer')).status, 401);
		await ageFailures(0);
		assert.equal((await direct.login('backoff', PASSWORD)).status, 429);
		// Through the proxy, another client is unaffected.
		assert.equal((await new Client(conch, { forwardedFor: '203.0.113.21' }).login('backoff', PASSWORD)).status, 303);
		const keys = (await sdb.query('SELECT key FROM admin_login_failures')).map((row) => row.key);
		assert.deepEqual(keys, ['pair:backoff@127.0.0.1']);
		await sdb.query('DELETE FROM admin_login_failures');
	});

	test('a POST without the right CSRF token is refused and changes nothing', async () => {
		const c = await signedIn();
		const csrf = await c.csrf();
		const dead = await insertJob();
		const queued = await insertJob({ state: 'queued', attempts: 0, due: "now() + interval '1 day'" });
		const attempts = [
			[`/admin/jobs/${dead}/retry`, {}, {}],
			[`/admin/jobs/${dead}/retry`, { csrf: `${csrf.slice(0, -1)}x` }, {}],
			[`/admin/jobs/${dead}/retry`, { csrf }, { origin: 'https://evil.example' }],
			[`/admin/jobs/${queued}/cancel`, { csrf: '' }, {}],
			['/admin/logout', {}, {}],
		];
		for (const [path, fields, headers] of attempts) {
			const r = await c.post(path, fields, { headers });
			assert.equal(r.status, 403, path);
			assert.match(r.text, /missing or wrong CSRF token/);
		}
		assert.equal((await job(dead)).state, 'dead');
		assert.equal((await job(queued)).state, 'queued');
		assert.equal((await c.get('/admin')).status, 200, 'still signed in');
		// Another session's token does not work either.
		const other = await signedIn();
		const otherCsrf = await other.csrf();
		assert.notEqual(otherCsrf, csrf);
		assert.equal((await c.post(`/admin/jobs/${dead}/retry`, { csrf: otherCsrf })).status, 403);
		assert.equal((await job(dead)).state, 'dead');
	});

	test('retrying a dead job queues it to run now', async () => {
		const c = await signedIn();
		const csrf = await c.csrf();
		const id = await insertJob({ payload: { thing: 'staging' }, lastError: 'boom' });
		const list = await c.get('/admin/jobs?state=dead');
		assert.equal(list.status, 200);
		assert.match(list.text, new RegExp(`action="/admin/jobs/${id}/retry"`));

		const r = await c.post(`/admin/jobs/${id}/retry`, { csrf, back: '/admin/jobs?state=dead' }, { headers: { origin: conch.url } });
		assert.equal(r.status, 303);
		assert.equal(r.headers.get('location'), `/admin/jobs?state=dead&done=retried&job=${id}`);
		// The runner picks it up at once; with no handler for its kind it is
		// queued again with a backoff, one attempt later.
		const after = await waitUntil(async () => {
			const j = await job(id);
			return j.state === 'queued' && j.attempts === 6 ? j : null;
		}, { what: 'the retried job to run once and be queued' });
		assert.match(after.last_error, /no handler for kind admin\.test/);
		const notice = await c.get(r.headers.get('location'));
		assert.match(notice.text, new RegExp(`Job ${id} is queued to run now\\.`));
		// A job that is not dead, cancelled or queued cannot be retried.
		await sdb.query("UPDATE jobs SET state = 'done' WHERE id = $1", [id]);
		assert.equal((await c.post(`/admin/jobs/${id}/retry`, { csrf })).status, 409);
		assert.equal((await job(id)).state, 'done');
	});

	test('cancelling a queued job; redirects stay on /admin', async () => {
		const c = await signedIn();
		const csrf = await c.csrf();
		const id = await insertJob({ state: 'queued', attempts: 0, due: "now() + interval '1 day'" });
		const r = await c.post(`/admin/jobs/${id}/cancel`, { csrf, back: 'https://evil.example/' });
		assert.equal(r.status, 303);
		assert.equal(r.headers.get('location'), `/admin/jobs?done=cancelled&job=${id}`);
		assert.equal((await job(id)).state, 'cancelled');
		assert.equal((await c.post(`/admin/jobs/${id}/cancel`, { csrf })).status, 409, 'only queued jobs');
		const other = await insertJob({ state: 'queued', attempts: 0, due: "now() + interval '1 day'" });
		const r2 = await c.post(`/admin/jobs/${other}/cancel`, { csrf, back: '//evil.example/admin/' });
		assert.equal(r2.headers.get('location'), `/admin/jobs?done=cancelled&job=${other}`);
		assert.equal((await c.post('/admin/jobs/abc/cancel', { csrf })).status, 404);
		assert.equal((await c.post('/admin/jobs/99999999/frob', { csrf })).status, 404);
	});

	test('teams: search by id or name prefix, and paging', async () => {
		await sdb.query(
			`INSERT INTO teams (team_id, name, plan, created_at)
			 SELECT 'TADM' || lpad(i::text, 3, '0'), 'Acme ' || lpad(i::text, 3, '0'),
			        CASE WHEN i % 4 = 0 THEN 'pro' ELSE 'free' END,
			        now() - interval '1 day' - i * interval '1 minute'
			   FROM generate_series(0, $1 - 1) i`,
			[SEARCH_TEAMS],
		);
		const c = await signedIn();

		// The unfiltered list, newest first, 50 a page, keyset-paged.
		const seen = [];
		let href = '/admin/teams';
		for (let pages = 0; href && pages < 20; pages++) {
			const r = await c.get(href);
			assert.equal(r.status, 200);
			const ids = teamIdsOn(r.text);
			assert.ok(ids.length <= 50);
			seen.push(...ids);
			const next = r.text.match(/<a rel="next" href="([^"]+)"/);
			href = next ? decodeHref(next[1]) : null;
		}
		const ours = seen.filter((id) => id.startsWith('TADM') && id.length === 7);
		assert.equal(ours.length, SEARCH_TEAMS, 'every team appears once across the pages');
		assert.equal(new Set(seen).size, seen.length, 'no team on two pages');
		assert.deepEqual(ours, [...ours].sort(), 'newest (lowest number) first');

		// Name prefix, any case: 120 matches in pages of 50.
		let r = await c.get('/admin/teams?q=aCmE');
		assert.deepEqual(teamIdsOn(r.text), Array.from({ length: 50 }, (_, i) => `TADM${String(i).padStart(3, '0')}`));
		r = await c.get('/admin/teams?q=acme&page=3');
		assert.equal(teamIdsOn(r.text).length, 20);
		assert.match(r.text, /Page 3/);
		assert.doesNotMatch(r.text, /rel="next"/);
		// Id prefix (case-insensitive), with the plan and usage columns.
		r = await c.get('/admin/teams?q=tadm01');
		assert.deepEqual(teamIdsOn(r.text), Array.from({ length: 10 }, (_, i) => `TADM01${i}`));
		const row = tableRows(r.text).find((cells) => cells[0] === 'TADM012');
		assert.equal(row[2], 'Pro');
		assert.ok(row.includes('not-installed'));
		// LIKE wildcards are text, not patterns.
		for (const q of ['%', '_cme', 'acme%']) {
			r = await c.get(`/admin/teams?q=${encodeURIComponent(q)}`);
			assert.equal(r.status, 200);
			assert.deepEqual(teamIdsOn(r.text), [], q);
		}
		r = await c.get('/admin/teams?q=zzz-nothing');
		assert.match(r.text, /No team id or name starts with/);
	});

	test('one team: installation state, things, jobs and billing, never a token', async () => {
		const token = `xoxb-${randomBytes(6).toString('hex')}-secret`;
		const { sealed } = await installTeam(dbUrl, { team_id: 'TADMTOK', token, name: 'Token Team', plan: 'free' });
		await sdb.query(
			"INSERT INTO things (team_id, name, display_name) VALUES ('TADMTOK', 'staging', 'Staging'), ('TADMTOK', 'db', 'db')",
		);
		await sdb.query("INSERT INTO holds (team_id, thing, user_id, reason) VALUES ('TADMTOK', 'staging', 'U0HOLDER', 'demo <b>day</b>')");
		const jobId = await insertJob({
			team: 'TADMTOK', kind: 'dibs.notify', payload: { bot_token: token, thing: 'staging', nested: { client_secret: 'sk_test_abc' } },
			lastError: `chat.postMessage failed with ${token}`,
		});
		const hasBilling = (await sdb.one("SELECT to_regclass('stripe_events') IS NOT NULL AS t")).t;
		if (hasBilling)
			await sdb.query(
				`INSERT INTO stripe_events (event_id, type, created, team_id, payload, processed_at)
				 VALUES ('evt_admin_1', 'customer.subscription.updated', 1700000000, 'TADMTOK', $1, now())`,
				[JSON.stringify({ id: 'evt_admin_1', data: { object: { customer: 'cus_1', note: token } } })],
			);

		const hasPolls = (await sdb.one("SELECT to_regclass('lunch_polls') IS NOT NULL AS t")).t;
		if (hasPolls)
			await sdb.query(
				`INSERT INTO lunch_polls (team_id, channel_id, times, size, created_by)
				 VALUES ('TADMTOK', 'C0LUNCH01', '{720,750}', 4, 'U0HOLDER')`,
			);

		const c = await signedIn();
		const r = await c.get('/admin/teams/TADMTOK');
		assert.equal(r.status, 200);
		assert.match(r.text, /Token Team/);
		assert.match(r.text, /stored, encrypted/);
		assert.match(r.text, /Staging/);
		assert.match(r.text, /U0HOLDER/);
		assert.match(r.text, /demo &lt;b&gt;day&lt;\/b&gt;/, 'user text is escaped');
		assert.match(r.text, /2 of 5 allowed/);
		assert.match(r.text, new RegExp(`action="/admin/jobs/${jobId}/retry"`));
		assert.match(r.text, /&quot;bot_token&quot;:&quot;\[redacted\]&quot;/);
		assert.match(r.text, /&quot;client_secret&quot;:&quot;\[redacted\]&quot;/);
		assert.match(r.text, /chat.postMessage failed with \[redacted\]/);
		if (hasBilling) assert.match(r.text, /evt_admin_1/);
		if (hasPolls) assert.match(r.text, /C0LUNCH01[\s\S]*12:00 12:30/);
		assert.equal((await c.get('/admin/teams/TNOSUCH')).status, 404);
		assert.equal((await c.get('/admin/teams/bad%20id')).status, 404);

		// No page shows the token, its sealed form, or any part of the key.
		const pages = ['/admin', '/admin/teams', '/admin/teams?q=token', '/admin/teams/TADMTOK', '/admin/webhooks'];
		for (const state of ['queued', 'running', 'dead', 'done', 'cancelled']) pages.push(`/admin/jobs?state=${state}`);
		for (const p of pages) {
			const page = await c.get(p);
			assert.equal(page.status, 200, p);
			for (const secret of ['xoxb-', token, sealed, sealed.slice(5, 25), 'sk_test_abc'])
				assert.ok(!page.text.includes(secret), `${p} shows ${secret.slice(0, 12)}...`);
		}
	});

	test('overview and webhooks pages', async () => {
		const c = await signedIn();
		const home = await c.get('/admin');
		assert.match(home.text, /Teams by plan/);
		assert.match(home.text, /Jobs by state/);
		const plans = tableRows(home.text);
		assert.ok(plans.some((cells) => cells[0].startsWith('Free')));
		const total = Number(home.text.match(/<div class="n">(\d+)<\/div><div class="muted">teams<\/div>/)[1]);
		assert.equal(total, await sdb.count('teams'));
		const hooks = await c.get('/admin/webhooks');
		assert.equal(hooks.status, 200);
		assert.match(hooks.text, /Stripe webhook deliveries/);
	});

	// Events stored but not applied are normal traffic (an invoice.paid, an
	// out-of-order update, an unknown customer): both pages list each one with
	// its state and reason, and an applied or unprocessed one beside them.
	test('webhook events that were not applied show as not applied on both pages', async () => {
		await installTeam(dbUrl, { team_id: 'TADMEVT', token: `xoxb-${randomBytes(6).toString('hex')}`, name: 'Event Team' });
		const events = [
			['evt_skip_invoice', 'invoice.paid', 'not a subscription event', 'now()'],
			['evt_skip_order', 'customer.subscription.updated', 'older than the stored state', 'now()'],
			['evt_skip_cust', 'customer.subscription.deleted', 'unknown customer', 'now()'],
			['evt_ok_applied', 'customer.subscription.created', null, 'now()'],
			['evt_ok_received', 'customer.subscription.updated', null, 'NULL'],
		];
		for (const [id, type, error, processed] of events)
			await sdb.query(
				`INSERT INTO stripe_events (event_id, type, created, team_id, payload, processed_at, error)
				 VALUES ($1, $2, 1700000000, 'TADMEVT', '{}', ${processed}, $3)`,
				[id, type, error],
			);
		const c = await signedIn();
		for (const p of ['/admin/webhooks', '/admin/teams/TADMEVT']) {
			const r = await c.get(p);
			assert.equal(r.status, 200, p);
			// The row's cells as text, tags removed.
			const row = (id) => {
				const tr = [...r.text.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].find((m) => m[1].includes(`>${id}<`));
				assert.ok(tr, `${p} lists ${id}`);
				return tr[1].replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
			};
			for (const [id, , error] of events.slice(0, 3)) {
				assert.match(row(id), /\bnot applied\b/, `${p}: ${id}`);
				assert.ok(row(id).includes(error), `${p}: ${id} says why`);
			}
			assert.match(row('evt_ok_applied'), /\bapplied\b/, p);
			assert.doesNotMatch(row('evt_ok_applied'), /not applied|received/, p);
			assert.match(row('evt_ok_received'), /\breceived\b/, p);
			assert.doesNotMatch(row('evt_ok_received'), /applied/, p);
		}
		assert.equal(conch.exitInfo, null, 'the server is still running');
	});

	test('odd input gets an ordinary answer, never an error', async () => {
		const c = await signedIn();
		const csrf = await c.csrf();
		for (const p of [
			'/admin/teams?q=%FF%FE', '/admin/teams?q=%00', `/admin/teams?q=${'x'.repeat(5000)}`,
			'/admin/teams?page=-1', '/admin/teams?page=99999999999999999999', '/admin/teams?at=yesterday&id=T1',
			"/admin/teams?at=2026-01-01T00:00:00.000000Z&id=T1'--", '/admin/jobs?state=bogus&kind=%27%3Bdrop',
			'/admin/jobs?state=dead&after=-5', '/admin/jobs?at=nope&after=1', '/admin/webhooks?at=x&id=y',
			'/admin/jobs?done=retried&job=1e99',
		]) {
			const r = await c.get(p);
			assert.equal(r.status, 200, p);
		}
		const bare = new Client(conch);
		const form = await bare.get('/admin/login');
		const r = await bare.request('/admin/login', {
			method: 'POST',
			headers: { 'content-type': 'application/x-www-form-urlencoded' },
			body: `csrf=${hiddenCsrf(form.text)}&name=%FF%FE&password=${'p'.repeat(2000)}`,
		});
		assert.equal(r.status, 400, 'an over-long password is refused unchecked');
		const r2 = await bare.post('/admin/login', { csrf: hiddenCsrf(form.text), name: '\u00e9t\u00e9', password: PASSWORD });
		assert.equal(r2.status, 401);
		const malformed = await bare.request('/admin/login', {
			method: 'POST',
			headers: { 'content-type': 'application/x-www-form-urlencoded' },
			body: 'csrf=x&name=%ZZ',
		});
		assert.equal(malformed.status, 400);
		const id = await insertJob();
		const odd = await c.post(`/admin/jobs/${id}/retry`, { csrf, back: '/admin/jobs\r\nX-Evil: 1' });
		assert.equal(odd.status, 303);
		assert.equal(odd.headers.get('location'), `/admin/jobs?done=retried&job=${id}`);
		assert.equal(odd.headers.get('x-evil'), null);
		await sdb.query('DELETE FROM admin_login_failures');
	});

	// Scans of an index, summed over its partitions' indexes.
	async function indexScans(index) {
		const row = await sdb.one(
			`SELECT coalesce(sum(s.idx_scan), 0)::bigint AS n FROM pg_stat_user_indexes s
			 WHERE s.indexrelid = $1::regclass
			    OR s.indexrelid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = $1::regclass)`,
			[index],
		);
		return Number(row.n);
	}

	test('pages stay fast with 100,000 teams, on indexes', async () => {
		await sdb.query(
			`INSERT INTO teams (team_id, name, plan, created_at, installed_at)
			 SELECT 'TBULK' || lpad(i::text, 6, '0'), 'Bulk team ' || md5(i::text),
			        CASE WHEN i % 10 = 0 THEN 'pro' ELSE 'free' END,
			        now() - interval '30 days' - i * interval '1 second', now()
			   FROM generate_series(1, 100000) i`,
		);
		await sdb.query(
			`INSERT INTO jobs (kind, team_id, state, attempts, finished_at)
			 SELECT 'admin.bulk', 'TBULK' || lpad((i % 100000)::text, 6, '0'),
			        CASE WHEN i % 50 = 0 THEN 'dead' ELSE 'done' END, 1, now()
			   FROM generate_series(1, 100000) i`,
		);
		await sdb.query('ANALYZE teams; ANALYZE jobs');
		const c = await signedIn();
		const before = {
			created: await indexScans('teams_created'),
			name: await indexScans('teams_name_lower'),
			id: await indexScans('teams_id_pattern'),
		};
		// The last page of the unfiltered list, as its own cursor would ask.
		const oldest = await sdb.one(
			`SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at, team_id
			   FROM teams ORDER BY created_at, team_id OFFSET 30 LIMIT 1`,
		);
		const pages = [
			'/admin',
			'/admin/teams',
			`/admin/teams?at=${encodeURIComponent(oldest.at)}&id=${oldest.team_id}`,
			'/admin/teams?q=bulk+team',
			'/admin/teams?q=bulk+team&page=40',
			'/admin/teams?q=tbulk09999',
			'/admin/jobs?state=dead',
			'/admin/jobs?state=done&after=1000',
			'/admin/teams/TBULK050000',
		];
		for (const p of pages) {
			const t0 = performance.now();
			const r = await c.get(p);
			const ms = performance.now() - t0;
			assert.equal(r.status, 200, p);
			assert.ok(ms < 1500, `${p} took ${ms.toFixed(0)} ms`);
		}
		const deep = await c.get(`/admin/teams?at=${encodeURIComponent(oldest.at)}&id=${oldest.team_id}`);
		assert.equal(teamIdsOn(deep.text).length, 30, 'the oldest teams, after the cursor');
		const ids = await c.get('/admin/teams?q=tbulk09999');
		assert.deepEqual(teamIdsOn(ids.text).sort(), Array.from({ length: 10 }, (_, i) => `TBULK09999${i}`));
		// The server's statistics show each teams list was read through its
		// index (they reach the statistics within about 10 seconds).
		await waitUntil(async () =>
			(await indexScans('teams_created')) > before.created &&
			(await indexScans('teams_name_lower')) > before.name &&
			(await indexScans('teams_id_pattern')) > before.id,
		{ what: 'index scans to be counted', timeoutMs: 20_000 });
	});

	test('logout needs the CSRF token and ends the session', async () => {
		const c = await signedIn();
		const token = c.cookies.get('conch_admin');
		const csrf = await c.csrf();
		const r = await c.post('/admin/logout', { csrf });
		assert.equal(r.status, 303);
		assert.equal(r.headers.get('location'), '/admin/login');
		assert.ok(c.lastSetCookies.some((h) => /^conch_admin=;.*Max-Age=0/.test(h)), 'the cookie is cleared');
		assert.equal(await sdb.count('admin_sessions', 'id_hash = $1', [sha256hex(token)]), 0);
		// The old cookie no longer works.
		const stale = new Client(conch);
		stale.cookies.set('conch_admin', token);
		assert.equal((await stale.get('/admin')).status, 303);
	});
});
