// Key rotation (`conch rotate-keys`) and secrets in logs. Two teams install
// through the real OAuth flow against the fake Slack, one with token
// rotation (so a refresh token is sealed too). rotate-keys with the old key
// and a new one re-seals every sealed value with the new key; conch then
// runs with ONLY the new key and every Slack call carries the right bearer
// token, the refresh too. A value sealed with a key not in token_keys makes
// rotate-keys report it, exit non-zero and change nothing. And the log of
// the whole thing (install, welcome DM, commands, restart, rotation) holds
// no token, no refresh token, no OAuth code, no client, signing or session
// secret and no token key.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	TEST_CLIENT_ID, TEST_SESSION_SECRET, TEST_SIGNING_SECRET, conchEnv, db, eventEnvelope, installTeam,
	runConch, startConch, waitUntil,
} from '../lib/server.mjs';
import { keyOf, makeTokenKeys, open as vaultOpen } from '../lib/vault.mjs';

const ROT = 'T0ROTKEYS1';     // token rotation on: bot and refresh token sealed
const PLAIN = 'T0ROTKEYS2';   // bot token only
const STRAY = 'T0ROTSTRAY';   // sealed with a key that is not in token_keys
const INSTALLER = 'U0ROTINST1';
const OTHER = 'U0ROTUSER2';
const BOT = 'U0BOT00001';
const CHANNEL = 'C0ROTATE01';

const OLD = makeTokenKeys([1]);
const NEW = makeTokenKeys([2]);
const NEWER = makeTokenKeys([3]);
const LOST = makeTokenKeys([7]);
const CLIENT_SECRET = `client-secret-${randomBytes(12).toString('hex')}`;

let cluster, dbName, dbUrl, slack, conch, sdb;
const servers = [];          // every conch started here, for the log check
const commandRuns = [];      // rotate-keys runs, for the log check
const granted = {};          // team -> { access, refresh } from the fake's oauth.v2.access answers
const codes = [];

before(async () => {
	cluster = await testCluster();
	dbName = `conch_rotate_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: CLIENT_SECRET });
	sdb = db(cluster.superuserUrl(dbName));
	conch = await start(OLD);
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

async function start(tokenKeys) {
	const server = await startConch({ databaseUrl: dbUrl, slack, tokenKeys, env: { CONCH_LOG_LEVEL: 'debug' } });
	servers.push(server);
	return server;
}

async function rotateKeys(tokenKeys) {
	const r = await runConch(['rotate-keys'], { env: conchEnv({ databaseUrl: dbUrl, slack, tokenKeys, env: { CONCH_LOG_LEVEL: 'debug' } }) });
	commandRuns.push(r);
	assert.deepEqual(r.sanitizer, [], r.stderr);
	return r;
}

// Every text value of every table that looks sealed ("v1.<id>."), by where.
async function sealedValues() {
	const cols = await sdb.query(
		`SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		   AND a.atttypid IN ('text'::regtype, 'varchar'::regtype) ORDER BY 1, 2`,
	);
	const out = [];
	for (const { relname, attname } of cols) {
		const rows = await sdb.query(
			`SELECT coalesce(to_jsonb(t)->>'team_id', '') AS team, t."${attname}" AS v
			 FROM "${relname}" t WHERE t."${attname}" ~ '^v1\\.[0-9]+\\.' ORDER BY 1, 2`,
		);
		for (const r of rows) out.push({ where: `${relname}.${attname}`, team: r.team, value: r.v });
	}
	return out;
}

async function installation(team) {
	return sdb.one('SELECT * FROM installations WHERE team_id = $1', [team]);
}

// /slack/install -> the fake's Allow -> /slack/oauth, with the cookie; waits
// for the welcome DM.
async function installThroughSlack(team, { rotation }) {
	slack.setInstallTarget({ team_id: team, team_name: `Team ${team}`, user_id: INSTALLER, bot_user_id: BOT });
	slack.tokenRotation = rotation;
	try {
		const r = await conch.fetch('/slack/install');
		await r.text();
		assert.equal(r.status, 302);
		const cookie = r.headers.getSetCookie().find((h) => h.startsWith('conch_oauth=')).split(';')[0];
		const back = new URL(await slack.authorize(r.headers.get('location')));
		codes.push(back.searchParams.get('code'));
		const cb = await conch.fetch(back.pathname + back.search, { headers: { cookie } });
		await cb.text();
		assert.equal(cb.status, 302);
		assert.match(cb.headers.get('location'), /^\/installed\?/);
	} finally {
		slack.tokenRotation = false;
	}
	const grant = slack.calls('oauth.v2.access').at(-1).response;
	assert.equal(grant.team.id, team);
	granted[team] = { access: grant.access_token, refresh: grant.refresh_token };
	await slack.waitFor(() => slack.calls('chat.postMessage').find((c) => c.team_id === team && c.body?.channel === INSTALLER && c.response?.ok),
		10_000, `the welcome DM of ${team}`);
}

async function dibs(team, user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: CHANNEL, command: '/dibs', text });
	assert.equal(r.status, 200, r.text);
	return r.json.text;
}

// A DM that only a job can send: user holds it, other queues, user lets go.
async function handOver(team, thing) {
	assert.match(await dibs(team, INSTALLER, `on ${thing}`), /is yours/);
	assert.match(await dibs(team, OTHER, `on ${thing}`), /#1 in the queue/);
	const mark = slack.calls().length;
	assert.match(await dibs(team, INSTALLER, `off ${thing}`), /It is now <@U0ROTUSER2>'s/);
	return slack.waitFor(() => slack.calls().slice(mark).find((c) => c.method === 'chat.postMessage' && c.body?.channel === OTHER),
		10_000, `the your-turn DM of ${team}`);
}

async function runJobNow(kind, team) {
	const [job] = await sdb.query(
		`UPDATE jobs SET due_at = now() WHERE kind = $1 AND team_id = $2 AND state = 'queued' RETURNING id`, [kind, team]);
	assert.ok(job, `a queued ${kind} job of ${team}`);
	return waitUntil(async () => {
		const j = await sdb.one('SELECT * FROM jobs WHERE id = $1', [job.id]);
		return ['done', 'dead'].includes(j.state) ? j : null;
	}, { timeoutMs: 15_000, what: `${kind} job ${job.id}` });
}

// --- tests -------------------------------------------------------------------------

test('two teams install through Slack, one with token rotation; all sealed with the old key', async () => {
	await installThroughSlack(ROT, { rotation: true });
	await installThroughSlack(PLAIN, { rotation: false });
	assert.match(granted[ROT].refresh, /^xoxe-/);
	assert.equal(granted[PLAIN].refresh, undefined);
	for (const team of [ROT, PLAIN]) assert.match(await dibs(team, INSTALLER, 'on warmup'), /is yours/);

	const rot = await installation(ROT);
	assert.equal(vaultOpen(OLD, rot.bot_token, ROT, 'bot_token'), granted[ROT].access);
	assert.equal(vaultOpen(OLD, rot.refresh_token, ROT, 'refresh_token'), granted[ROT].refresh);
	assert.equal(vaultOpen(OLD, (await installation(PLAIN)).bot_token, PLAIN, 'bot_token'), granted[PLAIN].access);
	const sealed = await sealedValues();
	assert.deepEqual(sealed.map((s) => `${s.where} ${s.team}`).sort(), [
		`installations.bot_token ${ROT}`, `installations.bot_token ${PLAIN}`, `installations.refresh_token ${ROT}`,
	].sort());
	assert.ok(sealed.every((s) => keyOf(s.value) === 1));
});

test('rotate-keys with the old and a new key re-seals every secret with the new key', async () => {
	const r = await rotateKeys(`${OLD},${NEW}`);
	assert.equal(r.code, 0, r.stderr);
	assert.equal(r.stdout, 'rotate-keys: 3 secrets re-encrypted with key 2\n');

	const sealed = await sealedValues();
	assert.equal(sealed.length, 3);
	for (const s of sealed) assert.match(s.value, /^v1\.2\.[A-Za-z0-9+/=]+$/, `${s.where} of ${s.team}`);
	const rot = await installation(ROT);
	assert.equal(vaultOpen(NEW, rot.bot_token, ROT, 'bot_token'), granted[ROT].access);
	assert.equal(vaultOpen(NEW, rot.refresh_token, ROT, 'refresh_token'), granted[ROT].refresh);
	assert.equal(vaultOpen(NEW, (await installation(PLAIN)).bot_token, PLAIN, 'bot_token'), granted[PLAIN].access);
	assert.throws(() => vaultOpen(OLD, rot.bot_token, ROT, 'bot_token'), /no key 2/);
	// Bound to its team: B's ciphertext does not open as A's.
	assert.throws(() => vaultOpen(NEW, rot.bot_token, PLAIN, 'bot_token'));

	const again = await rotateKeys(`${OLD},${NEW}`);
	assert.equal(again.code, 0, again.stderr);
	assert.equal(again.stdout, 'rotate-keys: 0 secrets re-encrypted with key 2\n');
	assert.deepEqual(await sealedValues(), sealed, 'a second run changes nothing');
});

test('with only the new key, the DM jobs, the App Home and the refresh use the right tokens', async () => {
	await conch.stop();
	conch = await start(NEW);

	for (const team of [ROT, PLAIN]) {
		const dm = await handOver(team, `box-${team.toLowerCase()}`);
		assert.equal(dm.headers.authorization, `Bearer ${granted[team].access}`, `${team}'s DM`);
		assert.equal(dm.team_id, team);
		assert.equal(dm.response.ok, true);
	}

	const mark = slack.calls().length;
	const r = await conch.event(eventEnvelope(PLAIN, { type: 'app_home_opened', user: OTHER, channel: 'D0ROTATE01', tab: 'home' }));
	assert.equal(r.status, 200);
	const pub = await slack.waitFor(() => slack.calls().slice(mark).find((c) => c.method === 'views.publish'), 10_000, 'views.publish');
	assert.equal(pub.headers.authorization, `Bearer ${granted[PLAIN].access}`);
	assert.equal(pub.response.ok, true);

	// The refresh token opens with the new key and is the one Slack issued.
	slack.tokenRotation = true;
	try {
		const job = await runJobNow('oauth.refresh', ROT);
		assert.equal(job.state, 'done', `refresh job: ${job.last_error}`);
	} finally {
		slack.tokenRotation = false;
	}
	const call = slack.calls('oauth.v2.access').at(-1);
	assert.equal(call.body.grant_type, 'refresh_token');
	assert.equal(call.body.refresh_token, granted[ROT].refresh);
	const renewed = await installation(ROT);
	assert.equal(keyOf(renewed.bot_token), 2);
	assert.equal(vaultOpen(NEW, renewed.bot_token, ROT, 'bot_token'), call.response.access_token);
	assert.equal(vaultOpen(NEW, renewed.refresh_token, ROT, 'refresh_token'), call.response.refresh_token);
	granted[ROT] = { access: call.response.access_token, refresh: call.response.refresh_token, old: granted[ROT] };

	const dm = await handOver(ROT, 'after-refresh');
	assert.equal(dm.headers.authorization, `Bearer ${granted[ROT].access}`);
	assert.equal(dm.response.ok, true);
	const dead = await sdb.query(`SELECT kind, team_id, last_error FROM jobs WHERE state = 'dead'`);
	assert.deepEqual(dead, []);
});

test('a value sealed with a key not in token_keys is reported, exits non-zero and changes nothing', async () => {
	await installTeam(dbUrl, { team_id: STRAY, token: slack.issueToken({ team_id: STRAY }), tokenKeys: LOST });
	const before = await sealedValues();
	assert.deepEqual(before.map((s) => keyOf(s.value)).sort(), [2, 2, 2, 7]);

	// Keys 2 and 3: the three values of key 2 could move, the one of key 7 cannot.
	const r = await rotateKeys(`${NEW},${NEWER}`);
	assert.notEqual(r.code, 0, `rotate-keys exited ${r.code}: ${r.stdout}`);
	assert.match(r.stderr, new RegExp(`a bot_token of team ${STRAY} does not open with any key of token_keys \\(key 7\\)`));
	assert.match(r.stderr, /1 secret\(s\) do not open with any key of token_keys .*nothing was changed/);
	assert.doesNotMatch(r.stdout, /re-encrypted/);
	assert.deepEqual(await sealedValues(), before, 'not one sealed value changed');

	// Without the stray row, the same keys rotate everything.
	await sdb.query('DELETE FROM teams WHERE team_id = $1', [STRAY]);
	const ok = await rotateKeys(`${NEW},${NEWER}`);
	assert.equal(ok.code, 0, ok.stderr);
	assert.equal(ok.stdout, 'rotate-keys: 3 secrets re-encrypted with key 3\n');
	assert.ok((await sealedValues()).every((s) => keyOf(s.value) === 3));
});

test('no token, code, secret or key ever reached a log', async () => {
	await conch.stop();
	const secrets = {
		'a bot token prefix': 'xoxb-',
		'a refresh token prefix': 'xoxe-',
		'the client secret': CLIENT_SECRET,
		'the signing secret': TEST_SIGNING_SECRET,
		'the session secret': TEST_SESSION_SECRET,
	};
	for (const [team, g] of Object.entries(granted)) {
		secrets[`${team}'s bot token`] = g.access;
		if (g.refresh) secrets[`${team}'s refresh token`] = g.refresh;
		if (g.old) secrets[`${team}'s first bot token`] = g.old.access;
	}
	for (const [i, code] of codes.entries()) secrets[`OAuth code ${i}`] = code;
	for (const keys of [OLD, NEW, NEWER, LOST]) {
		const [id, b64] = keys.split(':');
		secrets[`token key ${id}`] = b64;
		secrets[`token key ${id} (hex)`] = Buffer.from(b64, 'base64').toString('hex');
	}
	const logs = [
		...servers.map((s, i) => [`conch serve #${i + 1}`, s.stderr + s.stdout]),
		...commandRuns.map((r, i) => [`rotate-keys run ${i + 1}`, r.stderr + r.stdout]),
	];
	// The log covers the whole install: the exchange, the welcome DM job, a command.
	assert.equal(servers[0].logs(/install: team T0ROTKEYS1 installed/).length, 1, 'the install is logged');
	assert.ok(servers[0].lines.length > 10, 'the first server logged its work');
	for (const [where, text] of logs)
		for (const [what, secret] of Object.entries(secrets))
			assert.ok(!text.includes(secret), `${where} logged ${what}`);
});
