// Hostile requests, as a table: each row is one request (built with the
// real signing secret where the attack needs it to get past the signature
// check, or as raw bytes on a socket), the status the server must answer,
// and, after every row, proof that stored data did not change: the row
// counts of every table, a digest of the tenant tables, and the calls made
// to Slack are the same before and after. Then the server must still be
// healthy and stop cleanly (the harness fails on any sanitizer report).
// Bad input never crashes the server and never changes stored data.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	blockActions, commandForm, db, eventEnvelope, installTeam, rawRequest, signedSlackRequest,
	slackSignature, startConch,
} from '../lib/server.mjs';

const A = 'T0HOSTILEA';
const B = 'T0HOSTILEB';
const GONE = 'T0NOTINSTD';
const CHANNEL = 'C0HOST0001';
const BODY_MAX = 64 * 1024;

let cluster, dbName, dbUrl, slack, conch, sdb;
let bHold; // team B's hold on b-secret
// Requests accepted once during set-up, kept byte for byte to be replayed.
const captured = {};

before(async () => {
	cluster = await testCluster();
	dbName = `conch_hostile_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack();
	conch = await startConch({ databaseUrl: dbUrl, slack });
	sdb = db(cluster.superuserUrl(dbName));
	await installTeam(dbUrl, { team_id: A, token: slack.issueToken({ team_id: A }), plan: 'pro' });
	await installTeam(dbUrl, { team_id: B, token: slack.issueToken({ team_id: B }), plan: 'pro' });
	for (const [team, user, text] of [[A, 'U0ALICE001', 'on a-thing for 2h'], [B, 'U0BOB00001', 'on b-secret for 2h'], [B, 'U0BOB00002', 'on b-secret']]) {
		const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: CHANNEL, text });
		assert.equal(r.status, 200, r.text);
	}
	bHold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'b-secret'", [B])).hold_id;
	// A /dibs token and an Extend press, as an eavesdropper would record them.
	captured.token = await capture('/slack/commands', commandForm({ team_id: A, user_id: 'U0ALICE001', channel_id: CHANNEL, text: 'token' }, conch));
	assert.match(captured.token.first.json?.text ?? '', /conch_/, captured.token.first.text);
	const aHold = (await sdb.one("SELECT hold_id FROM holds WHERE team_id = $1 AND thing = 'a-thing'", [A])).hold_id;
	captured.extend = await capture('/slack/interactivity', new URLSearchParams({
		payload: JSON.stringify(blockActions({ team_id: A, user_id: 'U0ALICE001', channel_id: CHANNEL, action_id: 'dibs.extend', value: `a-thing ${aHold}` })),
	}).toString());
	// The set-up's own DMs and jobs settle before the table starts.
	await sleep(1500);
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

function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

// --- what "stored data did not change" compares ------------------------------------

// tenant: every row count but the job queue's, and a digest of the tenant
// tables; jobs and slackCalls: what a request set in motion.
async function snapshot() {
	const digest = createHash('sha256');
	for (const sql of [
		'SELECT team_id, name, plan, uninstalled_at FROM teams ORDER BY 1',
		'SELECT team_id, active, bot_token, updated_at FROM installations ORDER BY 1',
		'SELECT team_id, name, display_name, next_position FROM things ORDER BY 1, 2',
		'SELECT team_id, thing, user_id, hold_id, release_at, reason FROM holds ORDER BY 1, 2',
		'SELECT team_id, thing, user_id, position FROM queue ORDER BY 1, 2, 4',
		'SELECT team_id, token_hash FROM api_tokens ORDER BY 1, 2',
		'SELECT team_id, id, action FROM dibs_events ORDER BY 1, 2',
		'SELECT event_id FROM slack_events ORDER BY 1',
	]) digest.update(JSON.stringify(await sdb.query(sql)));
	// Request bookkeeping, not stored data: accepted signatures (the replay
	// guard) and API rate-limit buckets.
	const { jobs, slack_signatures: _signatures, api_rate_buckets: _buckets, ...counts } = await sdb.tableCounts();
	return {
		tenant: { counts, digest: digest.digest('hex') },
		jobs: await sdb.query('SELECT id, kind, payload->>\'method\' AS method, team_id FROM jobs ORDER BY 1'),
		slackCalls: slack.calls().map((c) => c.method),
	};
}

// A refused button press may still tell the presser so, by updating the
// message they pressed (a chat.update job of the presser's team); nothing
// else may happen.
function onlyDenialReplies(before_, after_, team) {
	const newJobs = after_.jobs.slice(before_.jobs.length);
	const newCalls = after_.slackCalls.slice(before_.slackCalls.length);
	return JSON.stringify(after_.jobs.slice(0, before_.jobs.length)) === JSON.stringify(before_.jobs)
		&& newJobs.every((j) => j.kind === 'slack.call' && j.method === 'chat.update' && j.team_id === team)
		&& newCalls.every((m) => m === 'chat.update');
}

// --- raw sockets ---------------------------------------------------------------------

function raw(parts, opts) {
	return rawRequest(conch.port, parts, opts);
}

function head(method, path, headers = {}, { version = 'HTTP/1.1' } = {}) {
	const lines = [`${method} ${path} ${version}`, `Host: 127.0.0.1:${conch.port}`];
	for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
	return `${lines.join('\r\n')}\r\n\r\n`;
}

// A signed request as raw bytes (body a Buffer or string).
function signedRaw(path, body, { contentType = 'application/x-www-form-urlencoded', extra = {} } = {}) {
	const buf = Buffer.isBuffer(body) ? body : Buffer.from(body);
	const ts = String(Math.floor(Date.now() / 1000));
	const hdrs = {
		'Content-Type': contentType,
		'Content-Length': String(buf.length),
		'X-Slack-Request-Timestamp': ts,
		'X-Slack-Signature': slackSignature(conch.signingSecret, ts, buf),
		Connection: 'close',
		...extra,
	};
	return raw([Buffer.concat([Buffer.from(head('POST', path, hdrs)), buf])]);
}

// Sends a signed request once (it must be accepted) and keeps it to replay.
async function capture(path, body) {
	const timestamp = String(Math.floor(Date.now() / 1000));
	const signature = slackSignature(conch.signingSecret, timestamp, body);
	const first = await signedSlackRequest(conch, path, body, { timestamp, signature });
	assert.equal(first.status, 200, `${path}: ${first.text}`);
	return { path, body, timestamp, signature, first };
}

function replay(c, opts = {}) {
	return signedSlackRequest(conch, c.path, c.body, { timestamp: c.timestamp, signature: c.signature, ...opts });
}

// --- request builders ------------------------------------------------------------------

const now = () => Math.floor(Date.now() / 1000);

function cmd(fields, opts) {
	return signedSlackRequest(conch, '/slack/commands', commandForm({ team_id: A, channel_id: CHANNEL, user_id: 'U0MALLORY1', ...fields }, conch), opts);
}

function interact(payloadJson, opts) {
	const body = new URLSearchParams({ payload: typeof payloadJson === 'string' ? payloadJson : JSON.stringify(payloadJson) }).toString();
	return signedSlackRequest(conch, '/slack/interactivity', body, opts);
}

function eventBody(text, opts) {
	return signedSlackRequest(conch, '/slack/events', text, { contentType: 'application/json', ...opts });
}

function get(path, opts = {}) {
	return conch.request(path, opts);
}

const DIBS_HELP = /\/dibs on/;

// Each row: name, send() -> { status, text }, expect: a status or a list of
// acceptable ones, and optionally check(r) for the answer's content.
const rows = [
	// --- sizes --------------------------------------------------------------------------
	{ name: 'body of 64 KiB + 1 with Content-Length', expect: 413,
		send: () => conch.request('/slack/commands', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a'.repeat(BODY_MAX + 1) }) },
	{ name: 'body of 1 MiB, chunked, no Content-Length', expect: 413,
		send: () => conch.request('/slack/events', { method: 'POST', headers: { 'Content-Type': 'application/json' }, chunks: Array.from({ length: 64 }, () => 'x'.repeat(16384)) }) },
	{ name: 'correctly signed body over 64 KiB (huge text)', expect: 413,
		send: () => cmd({ text: `on ${'x'.repeat(BODY_MAX)}` }) },
	{ name: 'Content-Length of 10^20', expect: 413,
		send: () => raw([head('POST', '/slack/commands', { 'Content-Length': '100000000000000000000', Connection: 'close' })]) },
	{ name: 'negative Content-Length', expect: [400, 413],
		send: () => raw([head('POST', '/slack/commands', { 'Content-Length': '-1', Connection: 'close' })]) },
	{ name: 'Content-Length and Transfer-Encoding together', expect: [400, 401, 413],
		send: () => raw([head('POST', '/slack/commands', { 'Content-Length': '5', 'Transfer-Encoding': 'chunked', Connection: 'close' }), '0\r\n\r\n']) },
	{ name: 'a 20 KiB header', expect: [413, 431, null],
		send: () => raw([head('GET', '/healthz', { 'X-Junk': 'j'.repeat(20 * 1024), Connection: 'close' })]) },
	{ name: '2,000 small headers', expect: [413, 431, null],
		send: () => raw([head('GET', '/healthz', Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`X-H${i}`, 'v'])))]) },
	{ name: 'a 20 KiB URL', expect: [413, 414, 431, null],
		send: () => raw([head('GET', `/${'p'.repeat(20 * 1024)}`, { Connection: 'close' })]) },
	{ name: 'huge text of 4,001+ bytes, signed', expect: 200, check: (r) => assert.match(r.json?.text ?? '', /too long/),
		send: () => cmd({ text: `on thing because ${'y'.repeat(4001)}` }) },

	// --- encoded routes: routes match the path as sent ---------------------------------------
	...['/%6detrics', '/%6Detrics', '/%61dmin/login', '/admin%2flogin', '/admin%2Flogin', '/%68ealthz', '/healthz%00',
		'/slack%2fcommands'].map((p) => ({
		name: `a route written percent-encoded: GET ${p}`, expect: 404,
		send: () => raw([head('GET', p, { Connection: 'close' })]) })),
	{ name: 'a route written percent-encoded: POST /admin%2flogin', expect: 404,
		send: () => raw([head('POST', '/admin%2flogin', { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '3', Connection: 'close' }), 'a=b']) },

	// --- encodings ------------------------------------------------------------------------
	{ name: 'broken percent-encoding in a signed form', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/commands', `team_id=${A}&user_id=U1&channel_id=C1&command=%2Fdibs&text=on%zzthing`) },
	{ name: 'a truncated escape at the end', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/commands', `team_id=${A}&user_id=U1&channel_id=C1&command=%2Fdibs&text=on%2`) },
	{ name: '%00 in a signed form', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/commands', `team_id=${A}&user_id=U1&channel_id=C1&command=%2Fdibs&text=on%00thing`) },
	{ name: 'a raw NUL byte in a signed body', expect: 400,
		send: () => signedRaw('/slack/commands', Buffer.concat([Buffer.from(`team_id=${A}&user_id=U1&channel_id=C1&command=%2Fdibs&text=on`), Buffer.from([0]), Buffer.from('x')])) },
	{ name: 'invalid UTF-8 in the text, signed', expect: 200, check: (r) => assert.match(r.text, /\/dibs on/),
		send: () => signedRaw('/slack/commands', `team_id=${A}&user_id=U1&channel_id=C1&command=%2Fdibs&text=on+st%FF%FEging`) },
	{ name: 'overlong UTF-8 for "/" in a thing name', expect: 200, check: (r) => assert.match(r.text, /\/dibs on/),
		send: () => cmd({ text: 'on a\u00c0\u00afb' }) },
	{ name: 'invalid UTF-8 inside event JSON', expect: 400,
		send: () => signedRaw('/slack/events', Buffer.concat([Buffer.from('{"type":"event_callback","team_id":"'), Buffer.from([0xc3, 0x28]), Buffer.from(`","event_id":"Ev1","event":{"type":"app_home_opened","user":"U1","tab":"home"}}`)]), { contentType: 'application/json' }) },

	// --- SQL-looking input -----------------------------------------------------------------
	...["on x';drop table things;--", "on ' or 1=1", "q x' OR '1'='1", 'off b-secret;DELETE FROM holds', 'on $1', 'kick b-secret\u0000', 'remove %'].map((text) => ({
		name: `SQL-looking text: ${JSON.stringify(text)}`, expect: [200, 400],
		check: (r) => { if (r.status === 200) assert.match(JSON.stringify(r.json), /\/dibs on|no thing called|There is no thing/); },
		send: () => cmd({ text }),
	})),
	{ name: 'SQL in the user and channel ids', expect: 200,
		send: () => cmd({ user_id: "U1'; DELETE FROM holds; --", channel_id: "C1' OR '1'='1", text: 'list' }) },
	{ name: 'SQL in a REST API token', expect: 401,
		send: () => get('/api/v1/things/a-thing', { headers: { Authorization: "Bearer ' OR 1=1 --" } }) },
	{ name: 'SQL in a REST API thing name, with no valid token (the token is checked first)', expect: 401,
		send: () => get("/api/v1/things/x'%20OR%20'1'='1", { headers: { Authorization: "Bearer ' OR 1=1 --" } }) },

	// --- signatures ---------------------------------------------------------------------------
	{ name: 'replayed signature with the body changed', expect: 401,
		send: () => {
			const body = commandForm({ team_id: A, text: 'list' }, conch);
			return signedSlackRequest(conch, '/slack/commands', body, { tamper: () => commandForm({ team_id: B, user_id: 'U0MALLORY1', text: 'kick b-secret' }, conch) });
		} },
	// Replays within the 300 s window: Slack never resends a command or a
	// button press, so a signature seen before is refused.
	{ name: 'replayed /dibs token (the identical signed request): no second token', expect: 401,
		send: () => replay(captured.token) },
	{ name: 'replayed /dibs token with X-Slack-Retry-Num (not signed: no exception)', expect: 401,
		send: () => replay(captured.token, { headers: { 'X-Slack-Retry-Num': '1', 'X-Slack-Retry-Reason': 'http_timeout' } }) },
	{ name: 'replayed Extend button press: the hold is not extended again', expect: 401,
		send: () => replay(captured.extend) },
	{ name: 'forged signature', expect: 401,
		send: () => cmd({ text: 'kick a-thing' }, { signature: `v0=${randomBytes(32).toString('hex')}` }) },
	{ name: 'signature made with another secret', expect: 401,
		send: () => cmd({ text: 'kick a-thing' }, { secret: 'guessed-secret' }) },
	{ name: 'stale timestamp (now - 301 s), correctly signed', expect: 401,
		send: () => cmd({ text: 'kick a-thing' }, { timestamp: now() - 301 }) },
	// A second's margin: the server's clock may tick past ours in between.
	{ name: 'future timestamp (now + 302 s), correctly signed', expect: 401,
		send: () => cmd({ text: 'kick a-thing' }, { timestamp: now() + 302 }) },
	{ name: 'negative timestamp', expect: 401,
		send: () => cmd({ text: 'kick a-thing' }, { timestamp: '-1' }) },
	{ name: 'two signature headers, the first forged', expect: 401,
		send: () => {
			const body = commandForm({ team_id: A, text: 'kick a-thing' }, conch);
			const ts = String(now());
			const good = slackSignature(conch.signingSecret, ts, body);
			return raw([`POST /slack/commands HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Slack-Request-Timestamp: ${ts}\r\nX-Slack-Signature: v0=${'0'.repeat(64)}\r\nX-Slack-Signature: ${good}\r\n\r\n${body}`]);
		} },
	{ name: 'unsigned event', expect: 401,
		send: () => eventBody(JSON.stringify(eventEnvelope(A, { type: 'app_uninstalled' })), { unsigned: true }) },
	{ name: 'unsigned app_uninstalled with a signature for another body', expect: 401,
		send: () => eventBody(JSON.stringify(eventEnvelope(B, { type: 'app_uninstalled' })), { tamper: () => JSON.stringify(eventEnvelope(A, { type: 'app_uninstalled' })) }) },

	// --- other teams' data ----------------------------------------------------------------------
	{ name: "team A's user presses Release naming team B's hold", expect: 200, denial: A,
		send: () => interact(blockActions({ team_id: A, user_id: 'U0MALLORY1', action_id: 'dibs.release', value: `b-secret ${bHold}` })) },
	{ name: "team A's user presses Extend naming team B's hold", expect: 200, denial: A,
		send: () => interact(blockActions({ team_id: A, user_id: 'U0MALLORY1', action_id: 'dibs.extend', value: `b-secret ${bHold}` })) },
	{ name: "team B's holder presses Release on team A's thing with B's hold id", expect: 200, denial: B,
		send: () => interact(blockActions({ team_id: B, user_id: 'U0BOB00001', action_id: 'dibs.release', value: `a-thing ${bHold}` })) },
	{ name: 'a button of an uninstalled team', expect: 200, check: (r) => assert.match(r.text, /isn.t installed|install/i),
		send: () => interact(blockActions({ team_id: GONE, user_id: 'U1', action_id: 'dibs.release', value: `b-secret ${bHold}` })) },
	{ name: '/dibs for a team that has not installed', expect: 200, check: (r) => assert.match(r.json.text, /\/slack\/install/),
		send: () => cmd({ team_id: GONE, text: 'on staging' }) },

	// --- malformed payloads -----------------------------------------------------------------------
	{ name: 'interactivity without payload', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/interactivity', 'foo=bar') },
	{ name: 'interactivity payload that is not JSON', expect: 400, send: () => interact('{"type":') },
	{ name: 'interactivity payload that is a JSON array', expect: 400, send: () => interact('[1,2,3]') },
	{ name: 'interactivity payload fields of the wrong type', expect: 400,
		send: () => interact({ type: 'block_actions', team: { id: 7 }, user: 'U1', actions: 'release' }) },
	{ name: 'interactivity action_id of the wrong type', expect: 400,
		send: () => interact({ ...blockActions({ team_id: A, action_id: 'x' }), actions: [{ action_id: ['dibs.release'], value: 5 }] }) },
	{ name: 'a button value that is an object', expect: 200, denial: A,
		send: () => interact({ ...blockActions({ team_id: A, action_id: 'dibs.release' }), actions: [{ action_id: 'dibs.release', value: { thing: 'a-thing' } }] }) },
	{ name: 'a button value with a hold id past int64', expect: 200, denial: A,
		send: () => interact(blockActions({ team_id: A, user_id: 'U0ALICE001', action_id: 'dibs.release', value: 'a-thing 99999999999999999999999' })) },
	{ name: 'events body that is not JSON', expect: 400, send: () => eventBody('{"type": "event_callback",') },
	{ name: 'events JSON nested 30,000 deep', expect: 400, send: () => eventBody(`{"type":"event_callback","event":${'['.repeat(30000)}${']'.repeat(30000)}}`) },
	{ name: 'events JSON nested 2,000 deep inside the event', expect: 400,
		send: () => eventBody(`{"type":"event_callback","team_id":"${A}","event_id":"EvDEEP","event":{"x":${'['.repeat(2000)}${']'.repeat(2000)}}}`) },
	{ name: 'event_id of the wrong type', expect: 400,
		send: () => eventBody(JSON.stringify({ ...eventEnvelope(A, { type: 'app_home_opened', user: 'U1', tab: 'home' }), event_id: 12345 })) },
	{ name: 'url_verification without a challenge', expect: 400, send: () => eventBody('{"type":"url_verification"}') },
	{ name: 'a command with no team_id', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/commands', 'user_id=U1&channel_id=C1&command=%2Fdibs&text=list') },
	{ name: 'an unknown slash command', expect: 200, check: (r) => assert.match(r.json.text, /Unknown command/),
		send: () => cmd({ command: '/rm', text: '-rf /' }) },
	{ name: '65 form fields', expect: 400,
		send: () => signedSlackRequest(conch, '/slack/commands', Array.from({ length: 65 }, (_, i) => `f${i}=1`).join('&')) },
	{ name: 'REST API with a JSON bomb body and no token', expect: 401,
		send: () => get('/api/v1/things/a-thing/dibs', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '['.repeat(30000) }) },

	// --- methods and paths -------------------------------------------------------------------------
	{ name: 'TRACE /healthz', expect: 405, send: () => get('/healthz', { method: 'TRACE' }) },
	{ name: 'TRACE on an unknown path', expect: 404, send: () => get('/nope', { method: 'TRACE' }) },
	{ name: 'OPTIONS /slack/commands', expect: 405, send: () => get('/slack/commands', { method: 'OPTIONS' }) },
	{ name: 'a made-up method', expect: [400, 404, 405, 501], send: () => raw([head('FROB', '/healthz', { Connection: 'close' })]) },
	{ name: 'a control character in the method', expect: [400, 405, null], send: () => raw([head('GE\u0001T', '/healthz', { Connection: 'close' })]) },
	{ name: 'path with ..', expect: 404, send: () => raw([head('GET', '/slack/../healthz/../../etc/passwd', { Connection: 'close' })]) },
	{ name: 'percent-encoded ..', expect: 404, send: () => raw([head('GET', '/%2e%2e/%2e%2e/etc/passwd', { Connection: 'close' })]) },
	{ name: 'percent-encoded NUL in the path (not /healthz)', expect: 404, send: () => raw([head('GET', '/healthz%00.html', { Connection: 'close' })]) },
	{ name: 'a request line without a version', expect: [400, null], send: () => raw(['GET /healthz\r\n\r\n']) },
	{ name: 'HTTP/1.0 without Host', expect: 200, send: () => raw(['GET /healthz HTTP/1.0\r\n\r\n']) },
	{ name: 'HTTP/2 preface on the HTTP/1 port', expect: [400, 505, null], send: () => raw(['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']) },
	{ name: 'a percent-encoded NUL in a query value', expect: [302, 400, 404], send: () => raw([head('GET', '/slack/oauth?code=x%00y&state=%00', { Connection: 'close' })]) },
	{ name: 'a header line without a colon', expect: [400, null], send: () => raw(['GET /healthz HTTP/1.1\r\nHost: x\r\nbroken header line\r\n\r\n']) },
	{ name: 'a bare LF request', expect: [200, 400, null], send: () => raw(['GET /healthz HTTP/1.1\nHost: x\nConnection: close\n\n']) },
];

// Two slow-loris connections held open while the table runs: a body
// trickled at one byte a second (cut off by HTTP_TOTAL_TIMEOUT, 30 s) and
// half a request head then silence (closed by the head deadline,
// header_timeout_seconds, 10 s by default, before the 15 s idle timeout).
function slowBody() {
	const body = commandForm({ team_id: A, text: 'on slowloris' }, conch);
	const ts = String(now());
	const hdrs = head('POST', '/slack/commands', {
		'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(body.length),
		'X-Slack-Request-Timestamp': ts, 'X-Slack-Signature': slackSignature(conch.signingSecret, ts, body),
	});
	const parts = [hdrs];
	for (const ch of body.slice(0, 45)) parts.push(1000, ch);
	return raw(parts, { timeoutMs: 45_000 });
}

test('a table of hostile requests: each gets its status and changes nothing stored', async () => {
	const failures = [];
	const seen = [];
	const slow = slowBody();
	const idle = raw(['POST /slack/commands HTTP/1.1\r\nHost: x\r\nContent-Len'], { timeoutMs: 25_000 });
	for (const row of rows) {
		const before_ = await snapshot();
		let r;
		try {
			r = await row.send();
		} catch (err) {
			r = { status: null, text: `request failed: ${err.message}` };
		}
		const ok = Array.isArray(row.expect) ? row.expect.includes(r.status) : r.status === row.expect;
		seen.push(`${String(r.status).padEnd(4)} ${row.name}`);
		if (!ok) failures.push(`${row.name}: expected ${JSON.stringify(row.expect)}, got ${r.status}: ${String(r.text).slice(0, 200)}`);
		else if (row.check) {
			try {
				row.check(r);
			} catch (err) {
				failures.push(`${row.name}: ${err.message}`);
			}
		}
		// Jobs a request might have written would run now: give them time.
		await sleep(30);
		const after_ = await snapshot();
		if (JSON.stringify(after_.tenant) !== JSON.stringify(before_.tenant))
			failures.push(`${row.name}: stored data changed: ${JSON.stringify(before_.tenant)} -> ${JSON.stringify(after_.tenant)}`);
		const quiet = JSON.stringify([after_.jobs, after_.slackCalls]) === JSON.stringify([before_.jobs, before_.slackCalls]);
		if (!quiet && !(row.denial && onlyDenialReplies(before_, after_, row.denial)))
			failures.push(`${row.name}: jobs or Slack calls were made: ${JSON.stringify(after_.jobs.slice(before_.jobs.length))} ${after_.slackCalls.slice(before_.slackCalls.length)}`);
		const health = await conch.request('/healthz').catch((err) => ({ status: err.message }));
		if (health.status !== 200) failures.push(`${row.name}: /healthz then answered ${health.status}`);
	}
	console.log(`hostile: ${rows.length} rows:\n${seen.join('\n')}`);
	assert.deepEqual(failures, []);

	const [s1, s2] = await Promise.all([slow, idle]);
	console.log(`hostile: a body at 1 byte/s was cut off after ${(s1.closedAfterMs / 1000).toFixed(1)} s (status ${s1.status}); a silent half request was closed after ${(s2.closedAfterMs / 1000).toFixed(1)} s`);
	assert.equal(s1.timedOut, false, 'the server closed the trickling connection');
	assert.notEqual(s1.status, 200);
	assert.ok(s1.closedAfterMs >= 29_000 && s1.closedAfterMs <= 33_000, `trickle closed after ${s1.closedAfterMs} ms (HTTP_TOTAL_TIMEOUT is 30 s)`);
	assert.equal(s2.timedOut, false, 'the server closed the silent connection');
	assert.ok(s2.closedAfterMs >= 9_000 && s2.closedAfterMs <= 18_000, `silence closed after ${s2.closedAfterMs} ms (header_timeout_seconds is 10 s)`);
	assert.equal(await sdb.count('things', "name = 'slowloris'"), 0);
	// Team B's hold is untouched by everything team A tried.
	const h = await sdb.one("SELECT user_id, hold_id FROM holds WHERE team_id = $1 AND thing = 'b-secret'", [B]);
	assert.deepEqual([h.user_id, h.hold_id], ['U0BOB00001', bHold]);
});

test('after the table the server is healthy and stops cleanly', async () => {
	assert.equal((await conch.request('/healthz')).status, 200);
	const r = await conch.slashCommand({ team_id: A, user_id: 'U0ALICE001', channel_id: CHANNEL, text: 'list' });
	assert.match(JSON.stringify(r.json), /a-thing/);
	assert.doesNotMatch(JSON.stringify(r.json), /b-secret/, "team B's things stay out of team A's list");
	const { code, signal } = await conch.stop();
	assert.deepEqual([code, signal], [0, null]);
});
