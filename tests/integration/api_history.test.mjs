// Hold history against the real server, a real PostgreSQL and the fake
// Slack: every way a hold ends is recorded with its ending (released,
// handed over, kicked, expired, auto-released), `/dibs history THING
// [DAYS]` and GET /api/v1/things/NAME/history (?days=), and the daily purge
// of rows older than 90 days.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startEnv } from '../lib/env.mjs';
import { installTeam, waitUntil } from '../lib/server.mjs';
import { checkAnswer } from '../lib/openapi.mjs';

let env, cluster, dbUrl, slack, conch, sdb, team, token;

const ALICE = 'U0HISALICE';
const BOB = 'U0HISBOB01';
const CAROL = 'U0HISCAROL';

before(async () => {
	env = await startEnv({ name: 'history', teamPrefix: 'T0HIS' });
	({ cluster, dbUrl, slack, conch, sdb, team } = env);
	const text = await dibs(ALICE, 'token');
	token = /`(conch_[A-Za-z0-9_-]+)`/.exec(text)[1];
});

after(() => env?.close());

async function dibs(user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0HISTORY1', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json.text;
}

async function api(path) {
	const r = await conch.fetch(`/api/v1${path}`, { headers: { authorization: `Bearer ${token}` } });
	const json = checkAnswer('GET', path, r.status, await r.json());
	return { status: r.status, json };
}

test('the token reply names the API host and gives an example curl line', async () => {
	const text = await dibs(BOB, 'token');
	assert.ok(text.includes(`REST API at ${conch.url}/api/v1/`), text);
	const m = /```(curl [^`]+)```/.exec(text);
	assert.ok(m, text);
	assert.ok(m[1].includes(`"${conch.url}/api/v1/things/staging/dibs?wait=60"`), m[1]);
	assert.match(m[1], /-X POST -H "Authorization: Bearer \$CONCH_TOKEN"/);
});

test('every ending is recorded: released, handed over, kicked, expired; the current hold comes first', async () => {
	await dibs(ALICE, 'on rig');
	await dibs(BOB, 'on rig');
	await dibs(ALICE, 'off rig'); // handed over to Bob
	await dibs(CAROL, 'kick rig'); // Bob kicked by Carol
	await dibs(ALICE, 'on rig for 1s');
	await waitUntil(async () => (await sdb.count('holds', "team_id = $1 AND thing = 'rig'", [team])) === 0, { what: 'the timed hold expired' });
	await dibs(BOB, 'on rig');
	await dibs(BOB, 'off rig'); // released, nobody waiting
	await dibs(CAROL, 'on rig because demo');

	const h = await api('/things/rig/history');
	assert.equal(h.status, 200);
	assert.equal(h.json.thing, 'rig');
	assert.equal(h.json.days, 7);
	assert.deepEqual(
		h.json.holds.map((x) => [x.holder, x.ending, x.ended_by]),
		[
			[CAROL, null, null],
			[BOB, 'released', null],
			[ALICE, 'expired', null],
			[BOB, 'kicked', CAROL],
			[ALICE, 'handed_over', null],
		],
	);
	assert.equal(h.json.holds[0].to, null);
	assert.equal(h.json.holds[0].reason, 'demo');
	for (const x of h.json.holds) {
		assert.match(x.from, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
		if (x.to) assert.ok(x.to >= x.from, `${x.to} >= ${x.from}`);
	}

	const text = await dibs(ALICE, 'history rig');
	assert.match(text, /\*rig\* in the last 7 days/);
	const lines = text.split('\n').slice(1);
	assert.equal(lines.length, 5);
	assert.match(lines[0], new RegExp(`<@${CAROL}> from .*, holding now$`));
	// Each time is a date token with a readable UTC fallback, not an epoch.
	assert.match(lines[1], /from <!date\^\d+\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC> to <!date\^\d+\^/);
	assert.match(lines[1], new RegExp(`<@${BOB}> from .* to .*, released$`));
	assert.match(lines[2], /, expired$/);
	assert.match(lines[3], new RegExp(`, kicked by <@${CAROL}>$`));
	assert.match(lines[4], /, handed over$/);
});

test('an ending logged as auto_release reads auto-released (the check-in release)', async () => {
	await dibs(ALICE, 'on auto');
	// What a release of an unanswered check-in does: delete the hold, log auto_release.
	await sdb.query(
		`BEGIN; SELECT set_config('conch.all_teams', 'on', true);
		 DELETE FROM holds WHERE team_id = '${team}' AND thing = 'auto';
		 SELECT dibs_log('${team}', 'auto', '${ALICE}', 'auto_release'); COMMIT;`,
	);
	const h = await api('/things/auto/history');
	assert.deepEqual(h.json.holds.map((x) => [x.holder, x.ending]), [[ALICE, 'auto_released']]);
	assert.match(await dibs(BOB, 'history auto 1'), /in the last 1 day \(newest first\):\n.*, auto-released$/);
});

test('days limit what is shown; rows older than 90 days are purged by the daily job', async () => {
	await dibs(ALICE, 'on old');
	await dibs(ALICE, 'off old');
	await sdb.query(
		`INSERT INTO dibs_hold_history (team_id, thing, user_id, since, ended_at)
		 VALUES ($1, 'old', $2, now() - interval '10 days', now() - interval '9 days'),
		        ($1, 'old', $3, now() - interval '100 days', now() - interval '91 days')`,
		[team, BOB, CAROL],
	);
	assert.equal((await api('/things/old/history')).json.holds.length, 1);
	assert.deepEqual((await api('/things/old/history?days=30')).json.holds.map((x) => x.holder), [ALICE, BOB]);
	assert.deepEqual((await api('/things/OLD/history?days=90')).json.holds.map((x) => x.holder), [ALICE, BOB]);
	assert.match(await dibs(ALICE, 'history old 30'), /in the last 30 days/);

	await sdb.query(`INSERT INTO jobs (kind, due_at, max_attempts, dedupe_key) VALUES ('dibs.history_cleanup', now(), 3, 'dibs.history_cleanup:test')`);
	await waitUntil(async () => (await sdb.one(`SELECT state FROM jobs WHERE dedupe_key = 'dibs.history_cleanup:test'`))?.state === 'done', { what: 'the purge ran' });
	assert.equal(await sdb.count('dibs_hold_history', "team_id = $1 AND thing = 'old'", [team]), 2);
	assert.equal(await sdb.count('dibs_hold_history', "team_id = $1 AND thing = 'old' AND user_id = $2", [team, CAROL]), 0);
	assert.equal(await sdb.count('dibs_hold_history', "ended_at < now() - interval '90 days'", []), 0);
});

test('bad days, unknown things and a removed thing', async () => {
	for (const q of ['0', '91', 'x', '7d', '', '-1', '1.5'])
		assert.deepEqual(
			[(await api(`/things/old/history?days=${q}`)).status, (await api(`/things/old/history?days=${q}`)).json.error],
			[400, 'bad_request'],
			`days=${q}`,
		);
	const missing = await api('/things/nope/history');
	assert.deepEqual([missing.status, missing.json.error], [404, 'not_found']);
	assert.match(await dibs(ALICE, 'history nope'), /There is no thing called \*nope\*/);
	assert.match(await dibs(ALICE, 'history old 91'), /"91" is not a number of days/);
	// A thing's history outlives the thing.
	await dibs(ALICE, 'on gone/eu');
	await dibs(ALICE, 'off gone/eu');
	await dibs(ALICE, 'remove gone/eu');
	const gone = await api('/things/gone%2Feu/history');
	assert.equal(gone.status, 200);
	assert.deepEqual(gone.json.holds.map((x) => x.ending), ['released']);
	await dibs(BOB, 'on fresh');
	assert.match(await dibs(BOB, 'history fresh'), /holding now/);
	const nobody = await dibs(BOB, 'history old 1');
	assert.match(nobody, /\*old\* in the last 1 day/);
});

test('deleting or purging a team leaves no history behind', async () => {
	const other = `T0HIX${randomBytes(2).toString('hex').toUpperCase()}`;
	await installTeam(dbUrl, { team_id: other, token: slack.issueToken({ team_id: other }), plan: 'pro' });
	await conch.slashCommand({ team_id: other, user_id: ALICE, channel_id: 'C0HISTORY1', command: '/dibs', text: 'on box' });
	assert.equal(await sdb.count('holds', 'team_id = $1', [other]), 1);
	await sdb.query(`BEGIN; SELECT set_config('conch.all_teams', 'on', true); DELETE FROM teams WHERE team_id = '${other}'; COMMIT;`);
	assert.equal(await sdb.count('dibs_hold_history', 'team_id = $1', [other]), 0);
	// The team purge deletes holds table by table: whatever that writes goes with the team.
	const purged = `T0HIP${randomBytes(2).toString('hex').toUpperCase()}`;
	await installTeam(dbUrl, { team_id: purged, token: slack.issueToken({ team_id: purged }), plan: 'pro' });
	await conch.slashCommand({ team_id: purged, user_id: ALICE, channel_id: 'C0HISTORY1', command: '/dibs', text: 'on box' });
	await conch.slashCommand({ team_id: purged, user_id: ALICE, channel_id: 'C0HISTORY1', command: '/dibs', text: 'off box' });
	await conch.slashCommand({ team_id: purged, user_id: ALICE, channel_id: 'C0HISTORY1', command: '/dibs', text: 'on box' });
	assert.equal(await sdb.count('dibs_hold_history', 'team_id = $1', [purged]), 1);
	await sdb.query(`BEGIN; SELECT set_config('conch.all_teams', 'on', true); SELECT conch_purge_team('${purged}'); COMMIT;`);
	assert.equal(await sdb.count('dibs_hold_history', 'team_id = $1', [purged]), 0);
	assert.equal(await sdb.count('holds', 'team_id = $1', [purged]), 0);
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
