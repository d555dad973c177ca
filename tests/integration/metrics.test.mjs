// /metrics after real requests: build info, process figures, in-flight and
// queue gauges, database connections, latency by route pattern; and the
// access log, one JSON line a request, with the X-Request-Id kept when a
// client sends a valid one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { ROOT, installTeam, runConch, startConch, waitUntil } from '../lib/server.mjs';

const TEAM = 'T0METRICS1';
const USER = 'U0METRICS1';

// { name, labels, value } for every sample line of an exposition.
function parseMetrics(text) {
	const samples = [];
	for (const line of text.split('\n')) {
		if (line === '' || line.startsWith('#')) continue;
		const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.]+(?:e[+-]?\d+)?)$/);
		assert.ok(m, `not a sample line: ${line}`);
		const labels = {};
		for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
			labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
		samples.push({ name: m[1], labels, value: Number(m[3]) });
	}
	return samples;
}

function one(samples, name, labels = {}) {
	const hits = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
	assert.equal(hits.length, 1, `${name} ${JSON.stringify(labels)}: ${hits.length} samples`);
	return hits[0].value;
}

describe('metrics and the access log', () => {
	let cluster, slack, conch, token;

	const scrape = async () => {
		const r = await conch.request('/metrics');
		assert.equal(r.status, 200);
		return parseMetrics(r.text);
	};
	const api = (p, headers = {}) => conch.request(`/api/v1${p}`, { headers: { authorization: `Bearer ${token}`, ...headers } });
	const accessLines = (filter) => conch.logs((j) => j && typeof j.route === 'string' && 'status' in j && filter(j));

	before(async () => {
		cluster = await testCluster();
		slack = await startFakeSlack();
		const dbUrl = await cluster.createDatabase();
		conch = await startConch({ databaseUrl: dbUrl, slack });
		await installTeam(dbUrl, { team_id: TEAM, token: slack.issueToken({ team_id: TEAM }), plan: 'pro' });
		const r = await conch.slashCommand({ team_id: TEAM, user_id: USER, command: '/dibs', text: 'token' });
		assert.equal(r.status, 200, r.text);
		token = JSON.stringify(r.json).match(/conch_[A-Za-z0-9_-]+/)?.[0];
		assert.ok(token, `no token in ${r.text}`);
	});

	after(async () => {
		const results = await Promise.allSettled([conch?.stop(), slack?.close()]);
		await cluster?.stop();
		for (const r of results) if (r.status === 'rejected') throw r.reason;
	});

	test('conch_build_info carries the VERSION file and the commit that `conch version` prints', async () => {
		const version = fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
		const v = await runConch(['version']);
		const commit = v.stdout.match(/\(commit ([^)]+)\)/)?.[1];
		assert.ok(commit, v.stdout);
		const builds = (await scrape()).filter((s) => s.name === 'conch_build_info');
		assert.deepEqual(builds, [{ name: 'conch_build_info', labels: { version, commit }, value: 1 }]);
	});

	test('process figures are present and plausible', async () => {
		const s = await scrape();
		assert.ok(one(s, 'process_resident_memory_bytes') > 0);
		// CPU time counts in clock ticks (10 ms): a fast build may not have
		// spent one yet, so check it is a count that grows with work.
		const cpu = one(s, 'process_cpu_seconds_total');
		assert.ok(Number.isFinite(cpu) && cpu >= 0, `cpu ${cpu}`);
		for (let i = 0; i < 200; i++) await conch.request('/metrics');
		const later = one(await scrape(), 'process_cpu_seconds_total');
		assert.ok(later >= cpu, `cpu went from ${cpu} to ${later}`);
		const fds = one(s, 'process_open_fds');
		assert.ok(fds >= 4, `open fds ${fds}: at least stdio and the listener`);
		assert.ok(one(s, 'process_max_fds') > fds);
		const start = one(s, 'process_start_time_seconds');
		assert.ok(start <= Date.now() / 1000 + 1 && start > Date.now() / 1000 - 3600, `start ${start}`);
	});

	test('database connections: open ones counted, none left inside a transaction', async () => {
		await conch.request('/healthz');
		const s = await scrape();
		assert.ok(one(s, 'conch_db_connections_open') >= 1);
		// Each request commits before it answers; the job runners' are between
		// transactions or inside one, never more than the threads there are.
		const inTx = one(s, 'conch_db_connections_in_transaction');
		assert.ok(inTx >= 0 && inTx <= one(s, 'conch_db_connections_open'), `in transaction ${inTx}`);
		assert.ok(one(s, 'conch_db_connections_waiting') >= 0);
	});

	test('outbound gauges are present; calls made count and leave none in flight', async () => {
		await conch.slashCommand({ team_id: TEAM, user_id: USER, command: '/dibs', text: 'on metrics-box' });
		await waitUntil(async () => one(await scrape(), 'conch_outbound_calls_in_flight') === 0, { what: 'no call in flight' });
		const s = await scrape();
		assert.equal(one(s, 'conch_outbound_calls_queued'), 0);
	});

	test('latency is by route pattern: /api/v1/things/{name}, never the thing names', async () => {
		for (const name of ['metrics-box', 'secret-project-x', 'qa%2Feu'])
			assert.ok([200, 404].includes((await api(`/things/${name}`)).status));
		assert.equal((await api('/things')).status, 200);
		assert.equal((await api('/tokens')).status, 200);
		const del = await conch.request('/api/v1/tokens/987654', { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
		assert.equal(del.status, 404);
		assert.equal((await conch.request('/no/such/page-42')).status, 404);
		const s = await scrape();
		const routes = new Set(s.filter((x) => x.name.startsWith('conch_http_')).map((x) => x.labels.route).filter(Boolean));
		for (const want of ['/api/v1/things/{name}', '/api/v1/things', '/api/v1/tokens', '/api/v1/tokens/{id}', '/slack/commands', 'other'])
			assert.ok(routes.has(want), `no route ${want} in ${[...routes]}`);
		for (const r of routes)
			assert.doesNotMatch(r, /metrics-box|secret-project|qa|page-42|987654/, `a raw path became a label: ${r}`);
		const count = one(s, 'conch_http_request_duration_seconds_count', { route: '/api/v1/things/{name}' });
		assert.equal(count, 3);
		assert.equal(one(s, 'conch_http_request_duration_seconds_bucket', { route: '/api/v1/things/{name}', le: '+Inf' }), 3);
	});

	test('the in-flight gauge counts a request whose body is still arriving', async () => {
		const baseline = one(await scrape(), 'conch_http_requests_in_flight');
		assert.ok(baseline >= 1, 'the scrape itself is in flight');
		const sock = net.connect({ port: conch.port, host: '127.0.0.1' });
		const answer = new Promise((resolve) => {
			let text = '';
			sock.on('data', (d) => (text += d));
			sock.on('close', () => resolve(text));
			sock.on('error', () => resolve(text));
		});
		await new Promise((resolve) => sock.on('connect', resolve));
		sock.write('POST /no/such/slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 4\r\n\r\nab');
		await waitUntil(async () => one(await scrape(), 'conch_http_requests_in_flight') === 2, { what: 'the slow request in flight' });
		sock.write('cd');
		assert.match(await answer, /^HTTP\/1\.1 404/);
		await waitUntil(async () => one(await scrape(), 'conch_http_requests_in_flight') === 1, { what: 'only the scrape in flight' });
		assert.equal(one(await scrape(), 'conch_http_requests_queued'), 0);
	});

	test('the access log is one JSON line a request with method, route, status, duration, bytes, ids', async () => {
		const r = await api('/things/metrics-box');
		assert.equal(r.status, 200, r.text);
		const id = r.headers['x-request-id'];
		const line = await conch.waitForLog((j) => j?.request_id === id && 'status' in j);
		assert.equal(line.level, 'info');
		assert.equal(line.method, 'GET');
		assert.equal(line.route, '/api/v1/things/{name}');
		assert.equal(line.status, 200);
		assert.equal(typeof line.duration_ms, 'number');
		assert.ok(line.duration_ms >= 0);
		assert.equal(line.bytes, Buffer.byteLength(r.text));
		assert.equal(line.team_id, TEAM);
		assert.equal(accessLines((j) => j.request_id === id).length, 1, 'one line a request');

		const h = await conch.request('/healthz');
		const hl = await conch.waitForLog((j) => j?.request_id === h.headers['x-request-id'] && 'status' in j);
		assert.deepEqual([hl.method, hl.route, hl.status, hl.bytes], ['GET', '/healthz', 200, 3]);
		assert.equal(hl.team_id, undefined, 'no team for a health check');
	});

	test('a valid incoming X-Request-Id is echoed and logged; an invalid one is replaced', async () => {
		const kept = 'lb-1:Root.1-abc_DEF-' + 'x'.repeat(100);
		let r = await conch.request('/livez', { headers: { 'X-Request-Id': kept } });
		assert.equal(r.headers['x-request-id'], kept);
		let line = await conch.waitForLog((j) => j?.request_id === kept && 'status' in j);
		assert.equal(line.route, '/livez');

		r = await api('/things', { 'X-Request-Id': 'ci-run-42' });
		assert.equal(r.headers['x-request-id'], 'ci-run-42');
		line = await conch.waitForLog((j) => j?.request_id === 'ci-run-42' && 'status' in j);
		assert.deepEqual([line.route, line.team_id], ['/api/v1/things', TEAM]);

		for (const bad of ['', 'has space', 'a"quote', '<script>', 'x'.repeat(129), 'semi;colon', 'caf\u00e9']) {
			r = await conch.request('/livez', { headers: { 'X-Request-Id': bad } });
			const id = r.headers['x-request-id'];
			assert.match(id ?? '', /^[0-9a-f]{32}$/, `${JSON.stringify(bad)} replaced, got ${id}`);
			line = await conch.waitForLog((j) => j?.request_id === id && 'status' in j);
			assert.equal(line.route, '/livez');
		}
		assert.equal(conch.logs((j) => j?.request_id === 'x'.repeat(129)).length, 0);
	});

	test('conch stops cleanly', async () => {
		await conch.stop();
	});
});
