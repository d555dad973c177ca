// The foundation: HTTP limits and errors, request ids, metrics, Slack
// signature checks, configuration errors, migrations, and a database outage.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { startCluster, testCluster } from '../lib/pg.mjs';
import {
	ROOT, commandForm, conchEnv, db, event, eventEnvelope, httpRequest, rawRequest, runConch,
	signedSlackRequest, slashCommand, startConch, waitUntil,
} from '../lib/server.mjs';
import { freePort } from '../lib/pg.mjs';

const BODY_MAX = 64 * 1024;
const DB_DOWN = /can.t reach its database/i;

function migrationFiles() {
	return fs.readdirSync(path.join(ROOT, 'migrations')).filter((f) => /^\d+_.+\.sql$/.test(f));
}

function assertNoSanitizer(r, what) {
	assert.deepEqual(r.sanitizer, [], `${what}: sanitizer report:\n${r.stderr}`);
}

function stderrLines(r) {
	return r.stderr.split('\n').filter((l) => l.trim() !== '');
}

function tmpFile(name, text) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-test-'));
	const p = path.join(dir, name);
	fs.writeFileSync(p, text);
	return p;
}

describe('foundation', () => {
	let cluster;
	let slack;
	let conch;
	let dbUrl;
	let inspect;

	before(async () => {
		cluster = await testCluster();
		slack = await startFakeSlack();
		dbUrl = await cluster.createDatabase();
		conch = await startConch({ databaseUrl: dbUrl, slack });
		inspect = db(cluster.superuserUrl(new URL(dbUrl).pathname.slice(1)));
	});

	after(async () => {
		// Stop everything, then report the first failure.
		const results = await Promise.allSettled([
			conch?.stop(),
			inspect?.close(),
			slack?.close(),
		]);
		await cluster?.stop();
		for (const r of results) if (r.status === 'rejected') throw r.reason;
	});

	describe('HTTP', () => {
		test('GET /healthz answers 200 ok', async () => {
			const r = await conch.request('/healthz');
			assert.equal(r.status, 200);
			assert.equal(r.text.trim(), 'ok');
		});

		test('an unknown path is 404, for GET and POST', async () => {
			assert.equal((await conch.request('/no/such/page')).status, 404);
			assert.equal((await conch.request('/no/such/page', { method: 'POST', body: 'x=1' })).status, 404);
			assert.equal((await conch.request('/slack/commandsX', { method: 'POST', body: 'x=1' })).status, 404);
		});

		test('GET /livez answers 200 ok', async () => {
			const r = await conch.request('/livez');
			assert.equal(r.status, 200);
			assert.equal(r.text.trim(), 'ok');
		});

		test('HEAD on a GET route: the same status and headers, no body', async () => {
			for (const p of ['/healthz', '/livez', '/', '/metrics', '/no/such/page']) {
				const get = await conch.request(p);
				const head = await rawRequest(conch.port, [`HEAD ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
				assert.equal(head.status, get.status, `HEAD ${p}: ${head.text}`);
				const [headers, body] = head.text.split('\r\n\r\n');
				assert.equal(body, '', `HEAD ${p} has a body`);
				assert.match(headers, new RegExp(`^Content-Type: ${get.headers['content-type'].replace(/[.;+]/g, '\\$&')}$`, 'mi'));
			}
			const post = await rawRequest(conch.port, ['HEAD /slack/commands HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']);
			assert.equal(post.status, 405);
			assert.match(post.text, /^Allow: POST\r$/m);
			const wrong = await conch.request('/healthz', { method: 'POST', body: '' });
			assert.equal(wrong.headers.allow, 'GET, HEAD');
		});

		test('routes match the path as sent: a percent-encoded route is 404, the plain one is served', async () => {
			const send = (p) => rawRequest(conch.port, [`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
			for (const p of ['/%6detrics', '/%61dmin/login', '/admin%2flogin', '/%68ealthz', '/livez%00', '/healthz%2f'])
				assert.equal((await send(p)).status, 404, p);
			assert.equal((await send('/metrics')).status, 200);
			assert.equal((await send('/admin/login')).status, 200);
			assert.equal((await send('/healthz?x=%2f')).status, 200);
		});

		test('a known path with the wrong method is 405', async () => {
			assert.equal((await conch.request('/slack/commands')).status, 405);
			assert.equal((await conch.request('/slack/events', { method: 'PUT', body: '{}' })).status, 405);
			assert.equal((await conch.request('/healthz', { method: 'POST', body: '' })).status, 405);
			assert.equal((await conch.request('/metrics', { method: 'DELETE' })).status, 405);
		});

		test('a body of exactly 64 KiB is read (and then refused for its missing signature)', async () => {
			const r = await conch.request('/slack/commands', {
				method: 'POST',
				headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
				body: 'a'.repeat(BODY_MAX),
			});
			assert.equal(r.status, 401);
		});

		test('a body over 64 KiB with Content-Length is 413', async () => {
			const r = await conch.request('/slack/commands', {
				method: 'POST',
				headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
				body: 'a'.repeat(BODY_MAX + 1),
			});
			assert.equal(r.status, 413);
		});

		test('a chunked body over 64 KiB is 413', async () => {
			const chunks = Array.from({ length: 70 }, () => 'b'.repeat(1024));
			const r = await conch.request('/slack/events', {
				method: 'POST',
				headers: { 'Content-Type': 'application/json' },
				chunks,
			});
			assert.equal(r.status, 413);
		});

		test('a large body does not reach the signature check: 413 even when signed', async () => {
			const body = commandForm({ text: 'x'.repeat(BODY_MAX) });
			const r = await signedSlackRequest(conch, '/slack/commands', body);
			assert.equal(r.status, 413);
		});

		test('every answer carries X-Request-Id of 32 hex characters, fresh per request', async () => {
			const ids = [];
			for (const [p, method] of [['/healthz', 'GET'], ['/nope', 'GET'], ['/slack/commands', 'GET'], ['/healthz', 'GET']]) {
				const r = await conch.request(p, { method });
				const id = r.headers['x-request-id'];
				assert.match(id ?? '', /^[0-9a-f]{32}$/, `${method} ${p}: X-Request-Id ${id}`);
				ids.push(id);
			}
			assert.equal(new Set(ids).size, ids.length, 'request ids repeat');
		});

		test('/metrics is Prometheus text with conch_http_requests_total', async () => {
			await conch.request('/healthz');
			const r = await conch.request('/metrics');
			assert.equal(r.status, 200);
			assert.match(r.headers['content-type'] ?? '', /^text\/plain/);
			assert.match(r.text, /^# TYPE conch_http_requests_total counter$/m);
			assert.match(r.text, /^conch_http_requests_total\{[^}]*\} \d+/m);
		});
	});

	describe('Slack signatures', () => {
		const now = () => Math.floor(Date.now() / 1000);
		const team_id = 'T0SIGCHECK';

		test('a correctly signed command is accepted', async () => {
			const r = await slashCommand(conch, { team_id, text: 'help' });
			assert.equal(r.status, 200, r.text);
			// Not installed: an ephemeral answer with the install link.
			assert.ok(r.json, `expected a JSON message, got ${r.text}`);
			assert.equal(r.json.response_type ?? 'ephemeral', 'ephemeral');
			assert.match(JSON.stringify(r.json), /\/slack\/install/);
		});

		test('a timestamp 299 s old is still within tolerance', async () => {
			const r = await slashCommand(conch, { team_id }, { timestamp: now() - 299 });
			assert.equal(r.status, 200, r.text);
		});

		test('unsigned, wrong-secret, stale, future, tampered and malformed requests get 401 and leave no trace', async () => {
			const before = await inspect.tableCounts();
			const slackCalls = slack.calls().length;
			assert.ok('jobs' in before, `no jobs table; tables: ${Object.keys(before)}`);
			const body = commandForm({ team_id, text: 'on staging' }, conch);
			const bad = {
				unsigned: { unsigned: true },
				'wrong secret': { secret: 'not-the-signing-secret' },
				// Timestamps are read when sent; a future one keeps a second's
				// margin, since the server's clock may tick past the client's
				// between the two readings (the edges are unit-tested).
				'stale (now-301)': { timestamp: () => now() - 301 },
				'future (now+302)': { timestamp: () => now() + 302 },
				'tampered body': { tamper: (b) => b.replace('on+staging', 'on+prod') },
				'v1 scheme': { signature: 'v1=' + '0'.repeat(64) },
				'not hex': { signature: 'v0=' + 'z'.repeat(64) },
				'short signature': { signature: 'v0=abcd' },
				'empty signature': { signature: '' },
				'non-numeric timestamp': { timestamp: 'yesterday' },
				'signature of another timestamp': { headers: { 'X-Slack-Request-Timestamp': String(now() - 5) } },
			};
			for (const [what, o] of Object.entries(bad)) {
				const opts = typeof o.timestamp === 'function' ? { ...o, timestamp: o.timestamp() } : o;
				const r = await signedSlackRequest(conch, '/slack/commands', body, opts);
				assert.equal(r.status, 401, `${what}: ${r.status} ${r.text}`);
			}
			const envelope = JSON.stringify(eventEnvelope(team_id, { type: 'app_home_opened', user: 'U1', channel: 'D1', tab: 'home' }));
			for (const p of ['/slack/events', '/slack/interactivity']) {
				const r1 = await signedSlackRequest(conch, p, envelope, { secret: 'wrong', contentType: 'application/json' });
				assert.equal(r1.status, 401, `${p} wrong secret: ${r1.status}`);
				const r2 = await signedSlackRequest(conch, p, envelope, { unsigned: true, contentType: 'application/json' });
				assert.equal(r2.status, 401, `${p} unsigned: ${r2.status}`);
			}
			const afterCounts = await inspect.tableCounts();
			assert.deepEqual(afterCounts, before, 'rejected requests changed stored rows');
			assert.equal(slack.calls().length, slackCalls, 'rejected requests called Slack');
		});

		test('url_verification is answered with the challenge when signed, 401 when not', async () => {
			const challenge = 'chal-' + Date.now();
			const ok = await event(conch, { type: 'url_verification', token: 'x', challenge });
			assert.equal(ok.status, 200);
			assert.ok(ok.text === challenge || ok.json?.challenge === challenge, `answer: ${ok.text}`);
			const bad = await event(conch, { type: 'url_verification', token: 'x', challenge }, { secret: 'wrong' });
			assert.equal(bad.status, 401);
		});

		test('no log line holds the signing secret, a token key or the session secret', () => {
			const text = conch.stderr;
			assert.ok(!text.includes(conch.signingSecret), 'signing secret in the log');
			for (const part of conch.tokenKeys.split(',')) assert.ok(!text.includes(part.split(':')[1]), 'token key in the log');
			assert.ok(!text.includes(conch.env.CONCH_SESSION_SECRET), 'session secret in the log');
		});
	});

	describe('configuration errors', () => {
		test('version prints the version', async () => {
			const r = await runConch(['version']);
			assert.equal(r.code, 0, r.stderr);
			assert.match(r.stdout, /^conch \S+/);
		});

		test('serve -c with a missing file exits non-zero with one line naming the file', async () => {
			const missing = '/nonexistent/conch-test.conf';
			const r = await runConch(['serve', '-c', missing], { env: conchEnv({ databaseUrl: dbUrl }), timeoutMs: 15_000 });
			assert.notEqual(r.code, 0);
			assertNoSanitizer(r, 'serve -c missing');
			const lines = stderrLines(r);
			assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
			assert.ok(lines[0].includes(missing), lines[0]);
		});

		test('CONCH_HTTP_THREADS=abc exits non-zero naming http_threads', async () => {
			const r = await runConch(['serve'], {
				env: conchEnv({ databaseUrl: dbUrl, env: { CONCH_HTTP_THREADS: 'abc', CONCH_LISTEN: '127.0.0.1:1' } }),
				timeoutMs: 15_000,
			});
			assert.notEqual(r.code, 0);
			assertNoSanitizer(r, 'http_threads=abc');
			const lines = stderrLines(r);
			assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
			assert.match(lines[0], /http_threads/i);
		});

		test('an unknown key in the -c file is named', async () => {
			const file = tmpFile('conch.conf', '# test\nlisten 127.0.0.1:1\nbogus_setting 12\n');
			try {
				const r = await runConch(['serve', '-c', file], { env: conchEnv({ databaseUrl: dbUrl }), timeoutMs: 15_000 });
				assert.notEqual(r.code, 0);
				assertNoSanitizer(r, 'unknown key');
				const lines = stderrLines(r);
				assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
				assert.match(lines[0], /bogus_setting/);
			} finally {
				fs.rmSync(path.dirname(file), { recursive: true, force: true });
			}
		});

		test('serve on an unmigrated database exits non-zero and says to run conch migrate', async () => {
			const fresh = await cluster.createDatabase();
			const r = await runConch(['serve'], {
				env: conchEnv({ databaseUrl: fresh, env: { CONCH_LISTEN: '127.0.0.1:1' } }),
				timeoutMs: 20_000,
			});
			assert.notEqual(r.code, 0);
			assertNoSanitizer(r, 'unmigrated');
			assert.match(r.stderr, /conch migrate/);
		});
	});

	describe('migrate', () => {
		const files = migrationFiles();

		test('applies every migration once; a second run applies nothing', async () => {
			assert.ok(files.length > 0, 'no migrations/*.sql');
			const url = await cluster.createDatabase();
			const env = conchEnv({ databaseUrl: url });
			const first = await runConch(['migrate'], { env });
			assert.equal(first.code, 0, first.stderr);
			assertNoSanitizer(first, 'first migrate');
			const super_ = db(cluster.superuserUrl(new URL(url).pathname.slice(1)));
			try {
				const rows1 = await super_.query('SELECT * FROM schema_migrations ORDER BY 1');
				assert.equal(rows1.length, files.length, `schema_migrations: ${JSON.stringify(rows1)}`);
				const second = await runConch(['migrate'], { env });
				assert.equal(second.code, 0, second.stderr);
				assertNoSanitizer(second, 'second migrate');
				const rows2 = await super_.query('SELECT * FROM schema_migrations ORDER BY 1');
				assert.deepEqual(rows2, rows1, 'the second run changed schema_migrations');
			} finally {
				await super_.close();
			}
		});

		test('four concurrent runs on a fresh database all succeed and apply each migration once', async () => {
			const url = await cluster.createDatabase();
			const env = conchEnv({ databaseUrl: url });
			const runs = await Promise.all([1, 2, 3, 4].map(() => runConch(['migrate'], { env })));
			runs.forEach((r, i) => {
				assert.equal(r.code, 0, `run ${i + 1} failed:\n${r.stderr}`);
				assertNoSanitizer(r, `run ${i + 1}`);
			});
			const super_ = db(cluster.superuserUrl(new URL(url).pathname.slice(1)));
			try {
				const rows = await super_.query('SELECT * FROM schema_migrations');
				assert.equal(rows.length, files.length);
				const firstCol = Object.keys(rows[0])[0];
				assert.equal(new Set(rows.map((r) => String(r[firstCol]))).size, files.length, 'a migration is recorded twice');
				const plans = await super_.query('SELECT name FROM plans ORDER BY name');
				assert.deepEqual(plans.map((p) => p.name), ['free', 'pro']);
			} finally {
				await super_.close();
			}
		});
	});

	test('conch stops cleanly on SIGTERM with no sanitizer report', async () => {
		const { code, signal } = await conch.stop();
		assert.equal(signal, null);
		assert.equal(code, 0);
	});

	describe('the HTTP edge: allowlists, trusted proxies, head deadline, connection cap', () => {
		let edge;
		const from = (localAddress, p, headers = {}) => httpRequest(`${edge.url}${p}`, { localAddress, headers });

		before(async () => {
			edge = await startConch({
				databaseUrl: dbUrl, slack,
				env: {
					CONCH_ADMIN_ALLOW: '127.0.0.2/32, 2001:db8::/32',
					CONCH_METRICS_ALLOW: '127.0.0.3',
					CONCH_TRUSTED_PROXIES: '127.0.0.4/32,127.0.0.5',
					CONCH_HEADER_TIMEOUT_SECONDS: '2',
					CONCH_CONNECTIONS_PER_ADDRESS: '3',
				},
			});
		});

		after(async () => {
			await edge?.stop();
		});

		test('admin_allow and metrics_allow: other addresses get 404, the allowed ones are served', async () => {
			assert.equal((await from('127.0.0.1', '/admin/login')).status, 404);
			assert.equal((await from('127.0.0.1', '/admin')).status, 404);
			assert.equal((await from('127.0.0.3', '/admin/teams')).status, 404);
			assert.equal((await from('127.0.0.2', '/admin/login')).status, 200);
			assert.equal((await from('127.0.0.1', '/metrics')).status, 404);
			assert.equal((await from('127.0.0.2', '/metrics')).status, 404);
			assert.equal((await from('127.0.0.3', '/metrics')).status, 200);
			// Everything else is for everyone.
			assert.equal((await from('127.0.0.1', '/healthz')).status, 200);
			assert.equal((await from('127.0.0.1', '/')).status, 200);
		});

		test('X-Forwarded-For counts only through trusted_proxies: the right-most untrusted address', async () => {
			const xff = (peer, value) => from(peer, '/admin/login', { 'X-Forwarded-For': value });
			assert.equal((await xff('127.0.0.4', '127.0.0.2')).status, 200, 'a trusted proxy forwards an allowed client');
			assert.equal((await xff('127.0.0.4', '127.0.0.2, 127.0.0.5')).status, 200, 'through two trusted proxies');
			assert.equal((await xff('127.0.0.4', '2001:db8::7')).status, 200, 'an IPv6 client');
			assert.equal((await xff('127.0.0.4', '127.0.0.2, 10.9.9.9')).status, 404, 'a spoofed entry left of the real client');
			assert.equal((await xff('127.0.0.4', '127.0.0.9')).status, 404, 'a forwarded client not allowed');
			assert.equal((await xff('127.0.0.1', '127.0.0.2')).status, 404, 'an untrusted peer is not believed');
			assert.equal((await xff('127.0.0.4', 'not-an-address')).status, 404, 'garbage: the proxy itself is the client');
		});

		test('connections that trickle their request head are closed after header_timeout_seconds (2 s here)', async () => {
			const started = Date.now();
			// A header line every 300 ms: never idle, never complete.
			const trickle = Array.from({ length: 200 }, (_, i) => [`X-Trickle-${i}: x\r\n`, 300]).flat();
			const socks = Array.from({ length: 5 }, (_, i) =>
				rawRequest(edge.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\n', ...trickle], { timeoutMs: 40_000, localAddress: `127.0.1.${i + 1}` }));
			// Meanwhile others are served.
			assert.equal((await from('127.0.0.1', '/healthz')).status, 200);
			const results = await Promise.all(socks);
			for (const r of results) {
				assert.equal(r.timedOut, false, 'a trickling connection was still open after 40 s');
				assert.equal(r.status, null, `answered: ${r.text.slice(0, 80)}`);
			}
			assert.ok(Date.now() - started < 40_000);
			assert.equal((await from('127.0.0.1', '/healthz')).status, 200);
		});

		test('connections_per_address (3 here): a fourth connection from one address is refused, others are served', async () => {
			const holders = Array.from({ length: 3 }, () => new net.Socket());
			await Promise.all(holders.map((s) => new Promise((resolve, reject) => {
				s.once('error', reject);
				s.connect({ port: edge.port, host: '127.0.0.1', localAddress: '127.0.0.6' }, resolve);
			})));
			try {
				// The three are counted once accepted; wait for a fourth to be turned away.
				await waitUntil(async () => {
					const r = await rawRequest(edge.port, ['GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'], { localAddress: '127.0.0.6' });
					return r.status === null && !r.timedOut;
				}, { timeoutMs: 10_000, what: 'a fourth connection from 127.0.0.6 refused' });
				assert.equal((await from('127.0.0.7', '/healthz')).status, 200, 'another address is served');
			} finally {
				for (const s of holders) s.destroy();
			}
			await waitUntil(async () => (await from('127.0.0.6', '/healthz').catch(() => ({}))).status === 200, {
				timeoutMs: 10_000, what: '127.0.0.6 served again once its connections closed',
			});
		});

		test('the edge instance stops cleanly', async () => {
			const { code, signal } = await edge.stop();
			assert.equal(signal, null);
			assert.equal(code, 0);
		});
	});

	describe('start-up on a taken port', () => {
		test('a port another process listens on: exit non-zero, one line naming CONCH_LISTEN', async () => {
			const port = await freePort();
			const other = net.createServer(() => {});
			await new Promise((resolve) => other.listen(port, '127.0.0.1', resolve));
			try {
				const r = await runConch(['serve'], { env: conchEnv({ databaseUrl: dbUrl, env: { CONCH_LISTEN: `127.0.0.1:${port}` } }), timeoutMs: 20_000 });
				assert.notEqual(r.code, 0);
				assertNoSanitizer(r, 'taken port');
				const lines = stderrLines(r).filter((l) => /CONCH_LISTEN/.test(l));
				assert.equal(lines.length, 1, r.stderr);
				assert.match(lines[0], new RegExp(`127\\.0\\.0\\.1:${port} is already in use`));
			} finally {
				other.close();
			}
		});

		test('a port another conch serves on: the second one refuses to start, the first keeps every request', async () => {
			const first = await startConch({ databaseUrl: dbUrl, slack });
			try {
				const r = await runConch(['serve'], { env: conchEnv({ databaseUrl: dbUrl, env: { CONCH_LISTEN: `127.0.0.1:${first.port}` } }), timeoutMs: 20_000 });
				assert.notEqual(r.code, 0, 'a second conch started on a taken port');
				assert.match(r.stderr, /CONCH_LISTEN/);
				const before = first.logs(/GET \/livez 200/).length;
				for (let i = 0; i < 10; i++) assert.equal((await first.request('/livez')).status, 200);
				// Each is logged once answered; all ten reach the first conch.
				await waitUntil(() => first.logs(/GET \/livez 200/).length - before === 10, { what: 'ten requests logged by the first conch' });
			} finally {
				const { code } = await first.stop();
				assert.equal(code, 0);
			}
		});
	});

	describe('draining on SIGTERM', () => {
		test('/healthz answers 503 and requests are still served for drain_seconds, then the listener closes and conch exits 0', async () => {
			const d = await startConch({ databaseUrl: dbUrl, slack, env: { CONCH_DRAIN_SECONDS: '8' } });
			let exited = false;
			try {
				d.proc.kill('SIGTERM');
				d.exited.then(() => (exited = true));
				await waitUntil(async () => (await d.request('/healthz')).status === 503, { timeoutMs: 6_000, what: '/healthz 503 while draining' });
				assert.equal(exited, false, 'exited before draining');
				const live = await d.request('/livez');
				assert.equal(live.status, 200, 'liveness holds while draining');
				assert.equal(live.headers.connection, 'close', 'replies close their connection while draining');
				assert.equal((await d.request('/')).status, 200, 'requests are served while draining');
				const { code, signal } = await d.exited;
				assert.equal(signal, null);
				assert.equal(code, 0, d.stderrTail());
				await assert.rejects(d.request('/livez'), /ECONNREFUSED/);
				assert.deepEqual(d.logs(/ERROR: (Address|Leak)Sanitizer|runtime error/), []);
			} finally {
				await d.stop({ allowUnclean: true });
			}
		});
	});

	describe('database outage', () => {
		let own;
		let server;

		before(async () => {
			own = await startCluster();
			server = await startConch({ databaseUrl: await own.createDatabase(), slack });
		});

		after(async () => {
			const results = await Promise.allSettled([server?.stop()]);
			await own?.stop();
			for (const r of results) if (r.status === 'rejected') throw r.reason;
		});

		test('healthz 503 and a friendly command answer while down; healthy again within 5 s of return', async () => {
			assert.equal((await server.request('/healthz')).status, 200);
			await own.stopTemporarily();
			try {
				await waitUntil(async () => (await server.request('/healthz')).status === 503, {
					timeoutMs: 10_000,
					what: '/healthz 503 with the database down',
				});
				// Liveness never asks the database: no restart for an outage.
				assert.equal((await server.request('/livez')).status, 200);
				const cmd = await slashCommand(server, { text: 'list' });
				assert.equal(cmd.status, 200, cmd.text);
				assert.match(cmd.json?.text ?? cmd.text, DB_DOWN);
				assert.equal(cmd.json?.response_type ?? 'ephemeral', 'ephemeral');
				const ev = await event(server, eventEnvelope('T0OUTAGE', { type: 'app_home_opened', user: 'U1', channel: 'D1', tab: 'home' }));
				assert.equal(ev.status, 503, `webhook during outage: ${ev.status} ${ev.text}`);
			} finally {
				await own.start();
			}
			const t0 = Date.now();
			await waitUntil(async () => (await server.request('/healthz')).status === 200, {
				timeoutMs: 5_000,
				what: '/healthz 200 after the database returned',
			});
			const cmd = await slashCommand(server, { text: 'list' });
			assert.equal(cmd.status, 200);
			assert.doesNotMatch(cmd.text, DB_DOWN, 'still says the database is down');
			assert.ok(Date.now() - t0 <= 5_000);
		});

		test('conch stops cleanly after the outage', async () => {
			const { code, signal } = await server.stop();
			assert.equal(signal, null);
			assert.equal(code, 0);
		});
	});
});
