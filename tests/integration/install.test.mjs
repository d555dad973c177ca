// The install flow over HTTP, without a browser: Add to Slack, the OAuth v2
// exchange against the fake Slack, the pages, token rotation, uninstall and
// the 30-day purge (Slack's OAuth v2 flow and its uninstall events).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_TOKEN_KEYS, db, eventEnvelope, installTeam, sleep,
	startConch, waitUntil,
} from '../lib/server.mjs';
import { open as vaultOpen } from '../lib/vault.mjs';

const BOT = 'U0BOT00001';
const INSTALLER = 'U0INSTALLER';
const PURGE_DAYS = 30;

let cluster, dbName, dbUrl, slack, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_install_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
	// A team table no migration knows about, made as a later migration would
	// (by the owner, under the team policy; default privileges grant the rows
	// to the application role): the purge must find it by itself.
	const odb = db(cluster.migrateUrl(dbName));
	await odb.query('CREATE TABLE purge_probe (team_id text NOT NULL, note text NOT NULL)');
	await odb.query(`SELECT conch_team_policy('purge_probe')`);
	await odb.close();
});

after(async () => {
	await conch?.stop();
	await slack?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -----------------------------------------------------------------

function sha256hex(s) {
	return createHash('sha256').update(s).digest('hex');
}

function pathOf(url) {
	const u = new URL(url);
	return u.pathname + u.search;
}

// GET /slack/install: the authorize URL, the state in it and the cookie.
async function beginInstall(server = conch) {
	const r = await server.fetch('/slack/install');
	await r.text();
	assert.equal(r.status, 302);
	const location = r.headers.get('location');
	const setCookie = r.headers.getSetCookie().find((h) => h.startsWith('conch_oauth='));
	assert.ok(setCookie, 'install sets the conch_oauth cookie');
	const cookie = setCookie.split(';')[0].slice('conch_oauth='.length);
	const state = new URL(location).searchParams.get('state');
	return { location, setCookie, cookie, state };
}

// GET /slack/oauth as the browser would after Slack's redirect.
async function callback(url, cookie) {
	const headers = cookie ? { cookie: `conch_oauth=${cookie}` } : {};
	const r = await conch.fetch(pathOf(url), { headers });
	return { status: r.status, headers: r.headers, text: await r.text() };
}

function exchanges() {
	return slack.calls('oauth.v2.access').length;
}

function welcomeCalls(team) {
	return slack.calls('chat.postMessage').filter((c) => c.team_id === team && c.body?.channel === INSTALLER);
}

// The whole flow for a team; waits for the welcome DM so that no job of
// the team is still in flight afterwards.
async function installThroughSlack(team, { name = `Team ${team}`, welcomes = 1 } = {}) {
	slack.setInstallTarget({ team_id: team, team_name: name, user_id: INSTALLER, bot_user_id: BOT });
	const begun = await beginInstall();
	const back = await slack.authorize(begun.location);
	const r = await callback(back, begun.cookie);
	assert.equal(r.status, 302, `callback answered ${r.status}: ${r.text}`);
	await slack.waitFor(() => welcomeCalls(team).length >= welcomes, 10_000, `welcome DM ${welcomes} for ${team}`);
	return { ...begun, back, r };
}

async function installation(team) {
	return sdb.one('SELECT * FROM installations WHERE team_id = $1', [team]);
}

async function teamRow(team) {
	return sdb.one('SELECT * FROM teams WHERE team_id = $1', [team]);
}

async function tablesContaining(needle) {
	const tables = await sdb.query(
		`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
	);
	const hits = [];
	for (const { relname } of tables) {
		const { n } = await sdb.one(`SELECT count(*)::int AS n FROM "${relname}" t WHERE t::text LIKE $1`, [`%${needle}%`]);
		if (n > 0) hits.push(relname);
	}
	return hits;
}

async function uninstallEvent(team, extra = {}) {
	return conch.event(eventEnvelope(team, { type: 'app_uninstalled' }, extra));
}

async function purgeJobs(team) {
	return sdb.query(
		`SELECT j.*, extract(epoch FROM j.due_at - t.uninstalled_at)::float8 AS delay
		 FROM jobs j LEFT JOIN teams t ON t.team_id = j.team_id
		 WHERE j.kind = 'team.purge' AND j.team_id = $1 ORDER BY j.id`,
		[team],
	);
}

// Makes a queued job due now and waits until a runner finished it.
async function runJobNow(kind, team) {
	const [job] = await sdb.query(
		`UPDATE jobs SET due_at = now() WHERE kind = $1 AND team_id = $2 AND state = 'queued' RETURNING id`,
		[kind, team],
	);
	assert.ok(job, `a queued ${kind} job for ${team}`);
	return waitUntil(
		async () => {
			const j = await sdb.one('SELECT * FROM jobs WHERE id = $1', [job.id]);
			return ['done', 'dead'].includes(j.state) ? j : null;
		},
		{ timeoutMs: 15_000, what: `${kind} job ${job.id} to finish` },
	);
}

// --- pages ---------------------------------------------------------------------

test('the landing page explains both apps, links Add to Slack and compares the plans', async () => {
	const r = await conch.fetch('/');
	const html = await r.text();
	assert.equal(r.status, 200);
	assert.match(r.headers.get('content-type'), /^text\/html/);
	assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
	assert.match(html, /<a class="button" href="\/slack\/install">Add to Slack<\/a>/);
	assert.match(html, /\/dibs on staging/);
	assert.match(html, /\/lunch start/);
	assert.match(html, /<th scope="col">Free<\/th><th scope="col">Pro<\/th>/);
	assert.match(html, /<td>\$9 a month<\/td>/);
	assert.match(html, /<td>5<\/td><td>Unlimited<\/td>/);
	assert.match(html, /If you uninstall, we delete your tokens at once and all your workspace's data 30 days later, unless you reinstall\./);
	// One request and conch's own icon: no scripts, stylesheets, images or
	// fonts from anywhere.
	const icon = '<link rel="icon" href="/favicon.svg" type="image/svg+xml">';
	assert.ok(html.includes(icon), 'the icon link');
	assert.doesNotMatch(html.replace(icon, ''), /<script|<link|<img|@import|url\(/i);
	assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//i);
	assert.match(html, /<style>[\s\S]*font-family: system-ui/);
});

test('the landing page still renders when the plans cannot be read', async () => {
	await sdb.query('ALTER TABLE plans RENAME TO plans_away');
	try {
		const r = await conch.fetch('/');
		const html = await r.text();
		assert.equal(r.status, 200);
		assert.match(html, /Add to Slack/);
		assert.match(html, /plan comparison cannot be shown right now/);
		assert.doesNotMatch(html, /<table/);
	} finally {
		await sdb.query('ALTER TABLE plans_away RENAME TO plans');
	}
	const again = await (await conch.fetch('/')).text();
	assert.match(again, /<td>\$9 a month<\/td>/);
});

test('/installed says what to type first and shows the team name escaped', async () => {
	const r = await conch.fetch(`/installed?team=${encodeURIComponent('Acme <b>&</b>')}`);
	const html = await r.text();
	assert.equal(r.status, 200);
	assert.match(html, /conch is installed in Acme &lt;b&gt;&amp;&lt;\/b&gt;/);
	assert.match(html, /\/dibs on staging/);
	assert.match(html, /\/lunch start/);
	assert.match(html, /\/dibs help/);
	assert.match(html, /30 days later, unless you reinstall/);
});

// --- the flow --------------------------------------------------------------------

test('/slack/install redirects to Slack with a state bound to a cookie', async () => {
	const { location, setCookie, cookie, state } = await beginInstall();
	const u = new URL(location);
	assert.equal(`${u.origin}${u.pathname}`, slack.authorizeUrl);
	assert.equal(u.searchParams.get('client_id'), TEST_CLIENT_ID);
	assert.equal(u.searchParams.get('scope'), 'commands,chat:write,chat:write.public,im:write,mpim:write,users:read,channels:read,groups:read');
	assert.equal(u.searchParams.get('redirect_uri'), `${conch.url}/slack/oauth`);
	assert.match(state, /^[A-Za-z0-9_-]{43}$/);
	assert.match(cookie, /^[A-Za-z0-9_-]{43}$/);
	assert.notEqual(cookie, state);
	assert.match(setCookie, /HttpOnly/);
	assert.match(setCookie, /SameSite=Lax/);
	assert.match(setCookie, /Max-Age=600/);
	assert.match(setCookie, /Path=\//);
	// Stored hashed, with a 10-minute expiry, bound to the cookie's hash.
	const row = await sdb.one('SELECT *, extract(epoch FROM expires_at - created_at)::float8 AS ttl FROM oauth_states WHERE state_hash = $1', [sha256hex(state)]);
	assert.ok(row, 'the state is stored by its hash');
	assert.equal(row.cookie_hash, sha256hex(cookie));
	assert.equal(row.used_at, null);
	assert.ok(Math.abs(row.ttl - 600) < 2, `ttl ${row.ttl}`);
	assert.equal(await sdb.count('oauth_states', 'state_hash = $1 OR cookie_hash = $1', [state]), 0);
	const second = await beginInstall();
	assert.notEqual(second.state, state);
});

test('a full install stores a sealed token, sends the welcome DM and lands on /installed', async () => {
	const team = 'T0FLOW0001';
	const before = exchanges();
	const { r } = await installThroughSlack(team, { name: 'Flow & Co' });
	assert.equal(r.headers.get('location'), '/installed?team=Flow%20%26%20Co');
	const cleared = r.headers.getSetCookie().find((h) => h.startsWith('conch_oauth='));
	assert.match(cleared, /^conch_oauth=;.*Max-Age=0/);
	assert.equal(exchanges(), before + 1);

	const call = slack.calls('oauth.v2.access').at(-1);
	const basic = Buffer.from(`${TEST_CLIENT_ID}:${TEST_CLIENT_SECRET}`).toString('base64');
	assert.equal(call.headers.authorization, `Basic ${basic}`);
	assert.equal(call.body.redirect_uri, `${conch.url}/slack/oauth`);
	assert.equal(call.response.ok, true);

	const inst = await installation(team);
	assert.equal(inst.active, true);
	assert.equal(inst.bot_user_id, BOT);
	assert.equal(inst.installer_user_id, INSTALLER);
	assert.equal(inst.app_id, 'A0CONCH01');
	assert.equal(inst.scopes, call.response.scope);
	assert.equal(inst.refresh_token, null);
	assert.match(inst.bot_token, /^v1\.1\./);
	const token = vaultOpen(TEST_TOKEN_KEYS, inst.bot_token, team, 'bot_token');
	assert.equal(token, call.response.access_token);
	const t = await teamRow(team);
	assert.equal(t.name, 'Flow & Co');
	assert.ok(t.installed_at);
	assert.equal(t.uninstalled_at, null);

	const [dm] = welcomeCalls(team);
	assert.equal(dm.headers.authorization, `Bearer ${token}`);
	assert.match(JSON.stringify(dm.body), /\/dibs on staging/);
	assert.match(JSON.stringify(dm.body), /30 days later/);

	assert.deepEqual(await tablesContaining('xoxb-'), [], 'no table holds a plaintext bot token');

	const page = await conch.fetch(r.headers.get('location'));
	const html = await page.text();
	assert.equal(page.status, 200);
	assert.match(html, /conch is installed in Flow &amp; Co/);
});

test('a reinstall replaces the token and scopes and keeps the team data', async () => {
	const team = 'T0REINST01';
	await installThroughSlack(team);
	const first = await installation(team);
	const firstTeam = await teamRow(team);
	await sdb.query(`UPDATE teams SET plan = 'pro', domain = 'reinst' WHERE team_id = $1`, [team]);
	await sdb.query(`INSERT INTO purge_probe (team_id, note) VALUES ($1, 'kept')`, [team]);

	await installThroughSlack(team, { welcomes: 2 });
	const second = await installation(team);
	const secondTeam = await teamRow(team);
	assert.notEqual(second.bot_token, first.bot_token);
	const token = vaultOpen(TEST_TOKEN_KEYS, second.bot_token, team, 'bot_token');
	assert.equal(token, slack.calls('oauth.v2.access').at(-1).response.access_token);
	assert.ok(second.updated_at > first.updated_at);
	assert.ok(secondTeam.installed_at > firstTeam.installed_at);
	assert.equal(secondTeam.plan, 'pro');
	assert.equal(secondTeam.domain, 'reinst');
	assert.equal(secondTeam.created_at.getTime(), firstTeam.created_at.getTime());
	assert.equal(await sdb.count('purge_probe', 'team_id = $1', [team]), 1);
	assert.equal(await sdb.count('installations', 'team_id = $1', [team]), 1);
});

test('a used state cannot be replayed and Slack is not asked again', async () => {
	const team = 'T0REPLAY01';
	const { back, cookie } = await installThroughSlack(team);
	const before = exchanges();
	const again = await callback(back, cookie);
	assert.equal(again.status, 400);
	assert.match(again.text, /expired or was already used/);
	assert.equal(exchanges(), before);
});

test('concurrent callbacks with one state exchange the code once', async () => {
	const team = 'T0RACE0001';
	slack.setInstallTarget({ team_id: team, team_name: 'Race', user_id: INSTALLER, bot_user_id: BOT });
	const { location, cookie } = await beginInstall();
	const back = await slack.authorize(location);
	const before = exchanges();
	const results = await Promise.all([1, 2, 3, 4].map(() => callback(back, cookie)));
	const statuses = results.map((r) => r.status).sort();
	assert.deepEqual(statuses, [302, 400, 400, 400]);
	assert.equal(exchanges(), before + 1);
	await slack.waitFor(() => welcomeCalls(team).length === 1, 10_000, `welcome DM for ${team}`);
});

test('a denied install shows a page, stores nothing and uses up the state', async () => {
	const team = 'T0DENIED01';
	slack.setInstallTarget({ team_id: team, team_name: 'Denied', user_id: INSTALLER, bot_user_id: BOT });
	const { location, cookie, state } = await beginInstall();
	const back = await slack.authorize(location, { allow: false });
	assert.equal(new URL(back).searchParams.get('error'), 'access_denied');
	const before = exchanges();
	const r = await callback(back, cookie);
	assert.equal(r.status, 403);
	assert.match(r.text, /Install cancelled/);
	assert.match(r.text, /href="\/slack\/install"/);
	assert.equal(exchanges(), before);
	assert.equal(await teamRow(team), undefined);
	const row = await sdb.one('SELECT used_at FROM oauth_states WHERE state_hash = $1', [sha256hex(state)]);
	assert.ok(row.used_at, 'the state is used up');
});

test('a callback without the cookie, or with another browser\'s, is refused before any Slack call', async () => {
	const team = 'T0COOKIE01';
	slack.setInstallTarget({ team_id: team, team_name: 'Cookie', user_id: INSTALLER, bot_user_id: BOT });
	const before = exchanges();

	const a = await beginInstall();
	const r1 = await callback(await slack.authorize(a.location), null);
	assert.equal(r1.status, 400);
	assert.match(r1.text, /expired or was already used/);

	const b = await beginInstall();
	const other = await beginInstall();
	const r2 = await callback(await slack.authorize(b.location), other.cookie);
	assert.equal(r2.status, 400);

	assert.equal(exchanges(), before);
	assert.equal(await teamRow(team), undefined);
});

test('an expired state is refused', async () => {
	const team = 'T0EXPIRE01';
	slack.setInstallTarget({ team_id: team, team_name: 'Expired', user_id: INSTALLER, bot_user_id: BOT });
	const { location, cookie, state } = await beginInstall();
	const updated = await sdb.query(
		`UPDATE oauth_states SET expires_at = now() - interval '1 second' WHERE state_hash = $1 RETURNING 1`,
		[sha256hex(state)],
	);
	assert.equal(updated.length, 1);
	const before = exchanges();
	const r = await callback(await slack.authorize(location), cookie);
	assert.equal(r.status, 400);
	assert.match(r.text, /expired or was already used/);
	assert.equal(exchanges(), before);
	assert.equal(await teamRow(team), undefined);
});

test('a callback missing its code or state is a 400 page', async () => {
	const { cookie, state } = await beginInstall();
	for (const q of [`?state=${state}`, '?code=abc', '', `?code=&state=${state}`]) {
		const r = await callback(`${conch.url}/slack/oauth${q}`, cookie);
		assert.equal(r.status, 400, `query ${q}`);
		assert.match(r.text, /<html lang="en">/);
	}
});

test('a failed exchange shows a 502 page, stores nothing and logs only the error code', async () => {
	const team = 'T0FAILED01';
	slack.setInstallTarget({ team_id: team, team_name: 'Failed', user_id: INSTALLER, bot_user_id: BOT });
	for (const fault of [{ ok: false, error: 'invalid_code' }, { status: 500 }]) {
		slack.failNext('oauth.v2.access', fault);
		const { location, cookie } = await beginInstall();
		const r = await callback(await slack.authorize(location), cookie);
		assert.equal(r.status, 502);
		assert.match(r.text, /Slack did not accept the install/);
		assert.equal(await teamRow(team), undefined);
	}
	await conch.waitForLog(/oauth\.v2\.access failed: invalid_code/);
});

// --- uninstall ---------------------------------------------------------------------

test('app_uninstalled deletes the token at once and schedules the purge 30 days out', async () => {
	const team = 'T0UNINST01';
	await installThroughSlack(team);
	const r = await uninstallEvent(team);
	assert.equal(r.status, 200);

	const inst = await installation(team);
	assert.equal(inst.active, false);
	assert.equal(inst.bot_token, null);
	assert.equal(inst.refresh_token, null);
	assert.ok((await teamRow(team)).uninstalled_at);
	let jobs = await purgeJobs(team);
	assert.equal(jobs.length, 1);
	assert.equal(jobs[0].state, 'queued');
	assert.ok(Math.abs(jobs[0].delay - PURGE_DAYS * 86400) < 1, `purge due ${jobs[0].delay} s after uninstall`);

	// Slack retries, and sends tokens_revoked too: nothing more happens.
	assert.equal((await uninstallEvent(team)).status, 200);
	const revoked = eventEnvelope(team, { type: 'tokens_revoked', tokens: { oauth: [INSTALLER], bot: [BOT] } });
	assert.equal((await conch.event(revoked)).status, 200);
	jobs = await purgeJobs(team);
	assert.equal(jobs.length, 1);

	// A command from the team now gets the install link and calls nothing.
	const ours = () => slack.calls().filter((c) => c.team_id === team || c.team_id === null).length;
	const calls = ours();
	const cmd = await conch.slashCommand({ team_id: team, text: 'list' });
	assert.equal(cmd.status, 200);
	assert.match(cmd.text, /\/slack\/install/);
	await sleep(500);
	assert.equal(ours(), calls);
});

// An event's id is recorded in the transaction that handles it: copies
// delivered while the first is being handled wait for it, then skip it.
test('copies of one app_uninstalled delivered at once are handled once', async () => {
	const team = 'T0UNINSTCC';
	await installThroughSlack(team);
	const env = eventEnvelope(team, { type: 'app_uninstalled' });
	const handled = () => conch.logs((j) => j?.team_id === team && /app_uninstalled: tokens deleted/.test(j.msg)).length;
	const rs = await Promise.all(Array.from({ length: 6 }, () => conch.event(env)));
	for (const r of rs) assert.equal(r.status, 200, r.text);
	assert.equal(handled(), 1, 'the handler ran more than once');
	assert.equal((await purgeJobs(team)).length, 1);
	assert.equal(await sdb.count('slack_events', `event_id = '${env.event_id}'`), 1);
	assert.equal((await installation(team)).bot_token, null);
});

test('tokens_revoked for user tokens only changes nothing; for our bot it uninstalls', async () => {
	const team = 'T0REVOKE01';
	await installThroughSlack(team);
	const before = await installation(team);
	const userOnly = eventEnvelope(team, { type: 'tokens_revoked', tokens: { oauth: [INSTALLER] } });
	assert.equal((await conch.event(userOnly)).status, 200);
	const after1 = await installation(team);
	assert.equal(after1.active, true);
	assert.equal(after1.bot_token, before.bot_token);
	assert.equal((await teamRow(team)).uninstalled_at, null);
	assert.equal((await purgeJobs(team)).length, 0);

	const otherBot = eventEnvelope(team, { type: 'tokens_revoked', tokens: { bot: ['U0SOMEBODY'] } });
	assert.equal((await conch.event(otherBot)).status, 200);
	assert.equal((await installation(team)).active, true);

	const ours = eventEnvelope(team, { type: 'tokens_revoked', tokens: { oauth: [], bot: [BOT] } });
	assert.equal((await conch.event(ours)).status, 200);
	const after2 = await installation(team);
	assert.equal(after2.active, false);
	assert.equal(after2.bot_token, null);
	assert.equal((await purgeJobs(team)).length, 1);
});

test('an uninstall event from before the latest install is ignored', async () => {
	const team = 'T0LATE0001';
	await installThroughSlack(team);
	const stale = Math.floor(Date.now() / 1000) - 3600;
	assert.equal((await uninstallEvent(team, { event_time: stale })).status, 200);
	assert.equal((await installation(team)).active, true);
	assert.equal((await purgeJobs(team)).length, 0);
});

test('reinstalling through Slack cancels the pending purge', async () => {
	const team = 'T0COMEBACK';
	await installThroughSlack(team);
	await uninstallEvent(team);
	assert.equal((await purgeJobs(team))[0].state, 'queued');
	await installThroughSlack(team, { welcomes: 2 });
	const [job] = await purgeJobs(team);
	assert.equal(job.state, 'cancelled');
	assert.equal((await installation(team)).active, true);
	assert.equal((await teamRow(team)).uninstalled_at, null);
});

test('the purge deletes every row of the team, in every team table, and nothing else', async () => {
	const team = 'T0PURGE001';
	const other = 'T0KEEP0001';
	await installThroughSlack(team);
	await installThroughSlack(other);
	for (const t of [team, other]) await sdb.query(`INSERT INTO purge_probe (team_id, note) VALUES ($1, 'x')`, [t]);
	await uninstallEvent(team);

	const job = await runJobNow('team.purge', team);
	assert.equal(job.state, 'done', `purge job: ${job.last_error}`);
	assert.equal(await teamRow(team), undefined);
	assert.equal(await installation(team), undefined);
	assert.equal(await sdb.count('purge_probe', 'team_id = $1', [team]), 0);
	assert.equal(await sdb.count('jobs', `team_id = $1 AND kind <> 'team.purge'`, [team]), 0);
	const tables = await sdb.query(
		`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'team_id'
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND c.relname <> 'jobs'`,
	);
	assert.ok(tables.length >= 4);
	for (const { relname } of tables)
		assert.equal(await sdb.count(relname, 'team_id = $1', [team]), 0, `${relname} still holds rows of ${team}`);

	assert.ok(await teamRow(other));
	assert.equal((await installation(other)).active, true);
	assert.equal(await sdb.count('purge_probe', 'team_id = $1', [other]), 1);
});

test('the purge does nothing when the team came back meanwhile', async () => {
	const team = 'T0GUARD001';
	await installThroughSlack(team);
	await sdb.query(`INSERT INTO purge_probe (team_id, note) VALUES ($1, 'x')`, [team]);
	await uninstallEvent(team);
	// A reinstall that does not cancel the job (written directly).
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }) });
	const job = await runJobNow('team.purge', team);
	assert.equal(job.state, 'done');
	assert.ok(await teamRow(team));
	assert.equal((await installation(team)).active, true);
	assert.equal(await sdb.count('purge_probe', 'team_id = $1', [team]), 1);
});

// --- token rotation ------------------------------------------------------------------

test('with token rotation the refresh job renews the token before it expires', async () => {
	const team = 'T0ROTATE01';
	slack.tokenRotation = true;
	slack.tokenExpiresIn = 7200;
	try {
		await installThroughSlack(team);
	} finally {
		slack.tokenRotation = false;
	}
	const inst = await installation(team);
	const refresh = vaultOpen(TEST_TOKEN_KEYS, inst.refresh_token, team, 'refresh_token');
	assert.match(refresh, /^xoxe-/);
	const left = (inst.token_expires_at.getTime() - Date.now()) / 1000;
	assert.ok(left > 7100 && left <= 7200, `token expires in ${left} s`);
	const [queued] = await sdb.query(
		`SELECT extract(epoch FROM j.due_at)::float8 AS due FROM jobs j
		 WHERE kind = 'oauth.refresh' AND team_id = $1 AND state = 'queued'`,
		[team],
	);
	assert.ok(Math.abs(queued.due - (inst.token_expires_at.getTime() / 1000 - 1800)) < 2);
	assert.deepEqual(await tablesContaining('xoxe-'), [], 'no table holds a plaintext refresh token');

	slack.tokenRotation = true;
	try {
		const job = await runJobNow('oauth.refresh', team);
		assert.equal(job.state, 'done', `refresh job: ${job.last_error}`);
	} finally {
		slack.tokenRotation = false;
	}
	const call = slack.calls('oauth.v2.access').at(-1);
	assert.equal(call.body.grant_type, 'refresh_token');
	assert.equal(call.body.refresh_token, refresh);
	const renewed = await installation(team);
	assert.equal(vaultOpen(TEST_TOKEN_KEYS, renewed.bot_token, team, 'bot_token'), call.response.access_token);
	assert.equal(vaultOpen(TEST_TOKEN_KEYS, renewed.refresh_token, team, 'refresh_token'), call.response.refresh_token);
	assert.equal(renewed.active, true);
	assert.equal(await sdb.count('jobs', `kind = 'oauth.refresh' AND team_id = $1 AND state = 'queued'`, [team]), 1);

	// A refresh token Slack refuses for good deactivates the installation.
	slack.failNext('oauth.v2.access', { ok: false, error: 'invalid_refresh_token' });
	const job = await runJobNow('oauth.refresh', team);
	assert.equal(job.state, 'done');
	const dead = await installation(team);
	assert.equal(dead.active, false);
	assert.equal(dead.bot_token, null);
	assert.equal(dead.refresh_token, null);
});

// --- configuration -----------------------------------------------------------------

test('without Slack keys the pages say what to configure', async () => {
	const bare = await startConch({
		databaseUrl: dbUrl, slack, env: { CONCH_SLACK_CLIENT_ID: null, CONCH_SLACK_CLIENT_SECRET: null },
	});
	try {
		const r = await bare.fetch('/slack/install');
		const html = await r.text();
		assert.equal(r.status, 503);
		assert.match(html, /slack_client_id/);
		assert.match(html, /slack_client_secret/);
		assert.equal(r.headers.get('location'), null);
		const landing = await (await bare.fetch('/')).text();
		assert.match(landing, /Installing is not set up on this server yet/);
		assert.doesNotMatch(landing, /class="button" href="\/slack\/install"/);
		const cb = await bare.fetch('/slack/oauth?code=x&state=y');
		await cb.text();
		assert.equal(cb.status, 503);
	} finally {
		await bare.stop();
	}
});

// Last: everything above went through this server's log.
test('no token ever reaches the log', async () => {
	assert.ok(conch.logs(/install: team T0FLOW0001 installed/).length > 0, 'the log covers the installs');
	assert.doesNotMatch(conch.stderr, /xox[a-z]-/);
	const call = slack.calls('oauth.v2.access').find((c) => c.response?.ok);
	assert.ok(!conch.stderr.includes(call.body.code), 'nor an OAuth code');
});
