// The member directory and who may pay, against the real server, a real
// PostgreSQL, the fake Slack and the fake Stripe: users.list paging, the
// user_change and team_join events, users.info lookups (and the fallback
// for very large workspaces), /dibs upgrade and /lunch upgrade for admins,
// owners and the installer only, links re-checked when opened, and the App
// Home's billing line.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { startFakeStripe } from '../lib/fake_stripe.mjs';
import { testCluster } from '../lib/pg.mjs';
import { db, eventEnvelope, installTeam, startConch, waitUntil } from '../lib/server.mjs';

const INSTALLER = 'U0INSTALL1';
const ADMIN = 'U0ADMIN001';
const OWNER = 'U0OWNER001';
const MEMBER = 'U0MEMBER01';
const GUEST = 'U0GUEST001';
const GONE = 'U0GONE0001';
const CHANNEL = 'C0MEMBERS1';

let cluster, dbName, dbUrl, slack, stripe, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_members_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	stripe = await startFakeStripe();
	conch = await startConch({ databaseUrl: dbUrl, slack, env: stripe.env() });
	sdb = db(cluster.superuserUrl(dbName));
});

after(async () => {
	await conch?.stop({ allowUnclean: true }).catch(() => {});
	await slack?.close();
	await stripe?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -------------------------------------------------------------------

let teams = 0;
function teamId() {
	teams++;
	return `T0MEM${String(teams).padStart(2, '0')}${randomBytes(2).toString('hex').toUpperCase()}`;
}

// A team whose Slack workspace has the usual cast, and `extra` generated members.
async function newTeam({ plan = 'free', extra = 0 } = {}) {
	const team = teamId();
	await installTeam(dbUrl, { team_id: team, token: slack.issueToken({ team_id: team }), plan, installer_user_id: INSTALLER });
	const cast = {
		[INSTALLER]: {},
		[ADMIN]: { is_admin: true },
		[OWNER]: { is_owner: true, is_admin: true, is_primary_owner: true, tz: 'Europe/Berlin' },
		[MEMBER]: { tz: 'America/New_York' },
		[GUEST]: { is_restricted: true },
		[GONE]: { deleted: true, is_admin: true },
	};
	// Users are keyed by id in the fake; each team gets its own ids.
	const ids = {};
	for (const [base, info] of Object.entries(cast)) {
		const id = `${base.slice(0, 6)}${team.slice(5, 9)}`;
		ids[base] = id;
		slack.setUser(id, { team_id: team, ...info });
	}
	if (extra) slack.addUsers(team, extra);
	// The installer's id is the team-specific one.
	await sdb.query('UPDATE installations SET installer_user_id = $2 WHERE team_id = $1', [team, ids[INSTALLER]]);
	return { team, ...Object.fromEntries(Object.entries(ids).map(([k, v]) => [roleOf(k), v])) };
}

function roleOf(base) {
	return { [INSTALLER]: 'installer', [ADMIN]: 'admin', [OWNER]: 'owner', [MEMBER]: 'member', [GUEST]: 'guest', [GONE]: 'gone' }[base];
}

async function command(command, t, user, text) {
	const r = await conch.slashCommand({ team_id: t.team, user_id: user, channel_id: CHANNEL, command, text });
	assert.equal(r.status, 200, `${command} ${text}: HTTP ${r.status} ${r.text}`);
	assert.equal(r.json?.response_type, 'ephemeral');
	return r.json.text;
}

const dibs = (t, user, text) => command('/dibs', t, user, text);
const lunch = (t, user, text) => command('/lunch', t, user, text);

function linkIn(text) {
	const m = /<(http[^|>]+)\|/.exec(text);
	return m ? new URL(m[1]) : null;
}

async function member(team, user) {
	return sdb.one('SELECT * FROM members WHERE team_id = $1 AND user_id = $2', [team, user]);
}

async function synced(team) {
	try {
		return await waitUntil(async () => (await sdb.one('SELECT synced_at FROM member_directory WHERE team_id = $1', [team]))?.synced_at,
			{ timeoutMs: 30_000, what: `the directory of ${team} synced` });
	} catch (err) {
		const jobs = await sdb.query('SELECT kind, state, dedupe_key, last_error FROM jobs WHERE team_id = $1', [team]);
		throw new Error(`${err.message}; jobs: ${JSON.stringify(jobs)}`);
	}
}

function listCalls(team) {
	return slack.calls('users.list').filter((c) => c.team_id === team);
}

async function userEvent(team, type, user) {
	const r = await conch.event(eventEnvelope(team, { type, user, cache_ts: Math.floor(Date.now() / 1000), event_ts: `${Date.now() / 1000}` }));
	assert.equal(r.status, 200, r.text);
}

// Opens a billing link as a browser would; the Stripe calls it made.
async function openLink(url) {
	const before = stripe.requests().length;
	const r = await conch.fetch(url.pathname + url.search, { redirect: 'manual' });
	return { status: r.status, location: r.headers.get('location'), text: await r.text(), stripe: stripe.requests().slice(before) };
}

// --- the directory ---------------------------------------------------------------

test('the first ask of an unknown team says try again, then users.list pages the whole workspace with cursors', async () => {
	const t = await newTeam({ extra: 450 });
	// Nothing known yet: never a link, and the lookups are queued.
	const first = await dibs(t, t.admin, 'upgrade');
	assert.match(first, /try again in a minute/);
	assert.equal(linkIn(first), null);
	await synced(t.team);

	// 6 set users + 450 generated + the bot = 457: three pages of 200.
	const calls = listCalls(t.team);
	assert.equal(calls.length, 3);
	assert.deepEqual(calls.map((c) => Number(c.body.limit)), [200, 200, 200]);
	assert.equal(calls[0].body.cursor, undefined);
	assert.equal(calls[1].body.cursor, calls[0].response.response_metadata.next_cursor);
	assert.equal(calls[2].body.cursor, calls[1].response.response_metadata.next_cursor);
	assert.equal(calls[2].response.response_metadata.next_cursor, '');
	assert.equal(await sdb.count('members', 'team_id = $1', [t.team]), 457);

	const owner = await member(t.team, t.owner);
	assert.deepEqual([owner.is_owner, owner.is_admin, owner.is_primary_owner, owner.deleted, owner.tz], [true, true, true, false, 'Europe/Berlin']);
	assert.deepEqual([(await member(t.team, t.guest)).is_restricted, (await member(t.team, t.gone)).deleted], [true, true]);
	assert.equal((await member(t.team, t.member)).tz, 'America/New_York');
	assert.equal((await member(t.team, 'U0BOT00001')).is_bot, true);
	const dir = await sdb.one('SELECT listed, lookup_only FROM member_directory WHERE team_id = $1', [t.team]);
	assert.deepEqual(dir, { listed: 457, lookup_only: false });

	// Now the admin gets a link.
	const second = await dibs(t, t.admin, 'upgrade');
	assert.equal(linkIn(second)?.pathname, '/billing/upgrade', second);
});

test('users.list and users.info wait in the outbound engine, not on the two job runners', async () => {
	const ts = [await newTeam(), await newTeam(), await newTeam()];
	slack.hold(['users.list', 'users.info']);
	try {
		// Each ask queues a members.sync and a members.lookup: six calls.
		for (const t of ts) assert.match(await dibs(t, t.admin, 'upgrade'), /try again in a minute/);
		// A runner that waited on its call would hold at most two at once.
		await slack.waitFor(() => slack.heldCount() >= 6 || null, 30_000, '6 held directory calls');
		const running = await sdb.one("SELECT count(*)::int AS n FROM jobs WHERE team_id = ANY($1) AND kind IN ('members.sync', 'members.lookup') AND state = 'running'", [ts.map((t) => t.team)]);
		assert.equal(running.n, 6, 'every directory job waits for its answer, none for a runner');
	} finally {
		slack.release();
	}
	for (const t of ts) await synced(t.team);
	for (const t of ts) assert.equal(linkIn(await dibs(t, t.admin, 'upgrade'))?.pathname, '/billing/upgrade');
});

test('user_change and team_join keep the directory fresh; an older users.list page does not undo an event', async () => {
	const t = await newTeam();
	await dibs(t, t.member, 'upgrade');
	await synced(t.team);
	assert.equal((await member(t.team, t.member)).is_admin, false);

	await userEvent(t.team, 'user_change', { ...slack.userInfo(t.member), is_admin: true, tz: 'Asia/Tokyo' });
	let m = await member(t.team, t.member);
	assert.deepEqual([m.is_admin, m.tz], [true, 'Asia/Tokyo']);

	const newcomer = `U0NEW${t.team.slice(5, 9)}X`;
	await userEvent(t.team, 'team_join', { ...slack.userInfo(newcomer), team_id: t.team, is_restricted: true });
	m = await member(t.team, newcomer);
	assert.deepEqual([m.is_restricted, m.deleted], [true, false]);

	// A sync that fetched its page before the event would carry the old
	// flags: the row keeps the newer observation.
	const seen = await sdb.one(`SELECT members_upsert($1, $2::jsonb, now() - interval '1 minute') AS n`,
		[t.team, JSON.stringify([{ ...slack.userInfo(t.member), is_admin: false }])]);
	assert.equal(seen.n, 0);
	assert.equal((await member(t.team, t.member)).is_admin, true);

	// A user object with only some fields (flags missing or not booleans)
	// is stored with those flags false, not refused.
	const sparse = `U0SPAR${t.team.slice(5, 9)}`;
	await userEvent(t.team, 'team_join', { id: sparse, team_id: t.team, name: 'sparse', is_admin: 'yes', tz: 7 });
	m = await member(t.team, sparse);
	assert.deepEqual([m.deleted, m.is_admin, m.is_bot, m.is_restricted, m.tz, m.name], [false, false, false, false, null, 'sparse']);

	// Malformed user objects store nothing and are not retried.
	await userEvent(t.team, 'user_change', 'not an object');
	await userEvent(t.team, 'user_change', { id: 'not-an-id', is_admin: true });
	assert.equal(await sdb.count('members', 'team_id = $1 AND user_id = $2', [t.team, 'not-an-id']), 0);
});

test('over 20,000 members the sync stops paging and unknown users are looked up with users.info', async () => {
	const t = await newTeam({ extra: 20_300 });
	await dibs(t, t.admin, 'upgrade');
	await waitUntil(async () => (await sdb.one('SELECT lookup_only FROM member_directory WHERE team_id = $1', [t.team]))?.lookup_only,
		{ timeoutMs: 120_000, intervalMs: 250, what: 'the sync gave up listing' });
	// 100 pages of 200 reach the 20,000; the rest of the list is never asked for.
	assert.equal(listCalls(t.team).length, 100);
	assert.equal(await sdb.count('members', 'team_id = $1', [t.team]), 20_000);

	// The bot and the last generated members were beyond page 100.
	const late = slack.generatedId(t.team, 20_299);
	assert.equal(await member(t.team, late), undefined);
	slack.setUser(late, { team_id: t.team, is_owner: true });
	const before = slack.calls('users.info').length;
	assert.match(await dibs(t, late, 'upgrade'), /try again in a minute/);
	const info = await slack.waitFor(() => slack.calls('users.info').slice(before).find((c) => c.body.user === late), 15_000, 'users.info');
	assert.equal(info.team_id, t.team);
	await waitUntil(async () => (await member(t.team, late))?.is_owner, { what: 'the owner looked up' });
	assert.equal(linkIn(await dibs(t, late, 'upgrade'))?.pathname, '/billing/upgrade');
	assert.equal(listCalls(t.team).length, 100, 'no more listing');
});

// --- who may pay -------------------------------------------------------------------

test('a member, a guest or a deactivated admin is told who can, and gets no link', async () => {
	const t = await newTeam();
	await dibs(t, t.member, 'upgrade');
	await synced(t.team);
	for (const user of [t.member, t.guest, t.gone]) {
		for (const ask of [dibs, lunch]) {
			const text = await ask(t, user, 'upgrade');
			assert.equal(linkIn(text), null, text);
			assert.doesNotMatch(text, /billing\/|t=/);
			assert.match(text, /owners and admins and the person who installed conch/);
			// The installer first, then the owner, then admins; never the deactivated one.
			assert.match(text, new RegExp(`Ask <@${t.installer}>, <@${t.owner}> or <@${t.admin}> to type \`/dibs upgrade\``), text);
			assert.doesNotMatch(text, new RegExp(t.gone));
		}
	}
	// An installer, an owner and an admin each get a link made for them.
	for (const user of [t.installer, t.owner, t.admin]) {
		for (const ask of [dibs, lunch]) {
			const link = linkIn(await ask(t, user, 'upgrade'));
			assert.equal(link?.pathname, '/billing/upgrade');
			assert.ok(link.searchParams.get('t').includes(`.${user}.`), 'the link names its user');
		}
	}
});

test('an admin\'s link opened after a user_change demoted them is refused and calls no Stripe', async () => {
	const t = await newTeam();
	await dibs(t, t.admin, 'upgrade');
	await synced(t.team);
	const link = linkIn(await dibs(t, t.admin, 'upgrade'));
	assert.ok(link);

	await userEvent(t.team, 'user_change', { ...slack.userInfo(t.admin), is_admin: false });
	let r = await openLink(link);
	assert.equal(r.status, 403);
	assert.match(r.text, /owners and admins/);
	assert.deepEqual(r.stripe, []);

	// Promoted again, the same link works: the check is made at every open.
	await userEvent(t.team, 'user_change', { ...slack.userInfo(t.admin), is_admin: true });
	r = await openLink(link);
	assert.equal(r.status, 303, r.text);
	assert.equal(r.stripe.length, 1);
	assert.equal(r.stripe[0].path, '/v1/checkout/sessions');

	// Deactivated: refused again.
	await userEvent(t.team, 'user_change', { ...slack.userInfo(t.admin), is_admin: true, deleted: true });
	r = await openLink(link);
	assert.equal(r.status, 403);
	assert.deepEqual(r.stripe, []);
});

test('a link for a user the directory does not know is not honoured (a forged-by-forwarding guard)', async () => {
	const t = await newTeam();
	await dibs(t, t.admin, 'upgrade');
	await synced(t.team);
	const link = linkIn(await dibs(t, t.admin, 'upgrade'));
	// The directory forgets the admin (as for a team that was never synced).
	await sdb.query('DELETE FROM members WHERE team_id = $1 AND user_id = $2', [t.team, t.admin]);
	const r = await openLink(link);
	assert.equal(r.status, 503);
	assert.match(r.text, /try the link again in a minute/);
	assert.deepEqual(r.stripe, []);
});

test('the App Home shows billing only to those who may pay, and never an upgrade to a Pro team', async () => {
	const free = await newTeam();
	const pro = await newTeam({ plan: 'pro' });
	await sdb.query(`INSERT INTO billing (team_id, stripe_customer, subscription_status) VALUES ($1, 'cus_TESTHOME01', 'active')`, [pro.team]);
	for (const t of [free, pro]) {
		await dibs(t, t.member, 'upgrade');
		await synced(t.team);
	}

	async function home(t, user) {
		const before = slack.calls('views.publish').length;
		const r = await conch.event(eventEnvelope(t.team, { type: 'app_home_opened', user, channel: `D0${user.slice(2)}`, tab: 'home' }));
		assert.equal(r.status, 200);
		const pub = await slack.waitFor(() => slack.calls('views.publish').slice(before).find((c) => c.body.user_id === user && c.team_id === t.team),
			15_000, `views.publish for ${user}`);
		return JSON.stringify(pub.body.view);
	}

	const adminFree = await home(free, free.admin);
	assert.match(adminFree, /Upgrade to Pro/);
	assert.match(adminFree, /\/billing\/upgrade\?t=/);
	for (const user of [free.member, free.guest]) {
		const v = await home(free, user);
		assert.doesNotMatch(v, /Upgrade|billing\//, `home of ${user}`);
	}
	for (const user of [pro.installer, pro.owner]) {
		const v = await home(pro, user);
		assert.doesNotMatch(v, /Upgrade/, `Pro home of ${user}`);
		assert.match(v, /Manage the subscription/);
		assert.match(v, /\/billing\/portal\?t=/);
	}
	assert.doesNotMatch(await home(pro, pro.member), /Upgrade|billing\//);

	// A Pro team's admin asking /dibs upgrade gets the portal, not a checkout.
	const text = await dibs(pro, pro.admin, 'upgrade');
	assert.equal(linkIn(text)?.pathname, '/billing/portal', text);
	assert.doesNotMatch(text, /Upgrade to Pro/);

	// A user App Home has not seen is looked up in the job (users.info), then shown.
	const newcomer = `U0LATE${free.team.slice(5, 9)}`;
	slack.setUser(newcomer, { team_id: free.team, is_admin: true });
	const before = slack.calls('users.info').length;
	assert.match(await home(free, newcomer), /Upgrade to Pro/);
	assert.ok(slack.calls('users.info').slice(before).some((c) => c.body.user === newcomer));
});

test('/lunch upgrade is listed in /lunch help and parses like /dibs upgrade', async () => {
	const t = await newTeam();
	assert.match(await lunch(t, t.member, 'help'), /`\/lunch upgrade`/);
	assert.match(await lunch(t, t.member, 'upgrade now'), /does not take `now`/);
});

test('the daily refresh queues a sync for teams not synced in 20 hours, once a day', async () => {
	const fresh = await newTeam();
	const stale = await newTeam();
	for (const t of [fresh, stale]) {
		await dibs(t, t.member, 'upgrade');
		await synced(t.team);
	}
	await sdb.query(`UPDATE member_directory SET synced_at = now() - interval '25 hours' WHERE team_id = $1`, [stale.team]);
	// Run the daily job now, as its runner would at 03:00 UTC.
	await sdb.query(`INSERT INTO jobs (kind, due_at, max_attempts, dedupe_key) VALUES ('members.refresh', now(), 3, 'members.refresh:test')`);
	await waitUntil(async () => (await sdb.one(`SELECT state FROM jobs WHERE dedupe_key = 'members.refresh:test'`))?.state === 'done', { what: 'the refresh ran' });
	const queued = await sdb.query(`SELECT team_id FROM jobs WHERE kind = 'members.sync' AND dedupe_key LIKE '%:daily:%' AND team_id = ANY($1)`, [[fresh.team, stale.team]]);
	assert.deepEqual(queued.map((r) => r.team_id), [stale.team]);
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
