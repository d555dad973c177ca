// Starts the real conch binary for integration tests and talks to it the
// way Slack does.
//
//   const conch = await startConch({ databaseUrl, slack });
//   const r = await slashCommand(conch, { text: 'list' });   // signed form POST
//   await conch.stop();   // SIGTERM; throws on a sanitizer report or an unclean exit
//
// The binary is $TEST_CONCH_BIN, else bin/conch-asan when it exists, else
// bin/conch; a missing binary is an error, never a skip. Leak detection stays
// on (ASAN_OPTIONS detect_leaks=1): conch must exit cleanly on SIGTERM, and a
// LeakSanitizer report at exit fails the test like any other sanitizer report.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { onExit } from './cleanup.mjs';
import { freePort, migrateUrlFor } from './pg.mjs';
import { pgbouncerEnabled, startPgBouncer } from './pgbouncer.mjs';
import { makeTokenKeys, seal } from './vault.mjs';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

// One set of secrets per test process; installTeam() seals with these.
export const TEST_TOKEN_KEYS = makeTokenKeys([1]);
export const TEST_SIGNING_SECRET = randomBytes(16).toString('hex');
export const TEST_SESSION_SECRET = randomBytes(32).toString('base64');
export const TEST_CLIENT_ID = '1111.2222';
export const TEST_CLIENT_SECRET = 'fake-client-secret';

const HEALTH_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 20_000;
const RUN_TIMEOUT_MS = 60_000;
const REQUEST_TIMEOUT_MS = 15_000;

const SANITIZER = [
	/ERROR: AddressSanitizer/,
	/ERROR: LeakSanitizer/,
	/ERROR: UndefinedBehaviorSanitizer/,
	/runtime error:/,
	/SUMMARY: (Address|Leak|UndefinedBehavior)Sanitizer/,
];

// Lines of text that are sanitizer reports.
export function sanitizerErrors(text) {
	return String(text)
		.split('\n')
		.filter((l) => SANITIZER.some((re) => re.test(l)));
}

export function conchBinary(binary) {
	const candidates = binary
		? [binary]
		: process.env.TEST_CONCH_BIN
			? [process.env.TEST_CONCH_BIN]
			: [path.join(ROOT, 'bin/conch-asan'), path.join(ROOT, 'bin/conch')];
	for (const c of candidates) {
		const p = path.resolve(ROOT, c);
		if (fs.existsSync(p)) return p;
	}
	throw new Error(`conch binary not found (tried ${candidates.join(', ')}): run make bin/conch bin/conch-asan`);
}

// Live children, killed if the test process exits without stopping them.
const live = new Set();
onExit(() => {
	for (const c of live) {
		try {
			c.kill('SIGKILL');
		} catch {}
	}
});

function sanitizerEnv() {
	return {
		ASAN_OPTIONS: process.env.ASAN_OPTIONS || 'detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=0',
		UBSAN_OPTIONS: process.env.UBSAN_OPTIONS || 'print_stacktrace=1:halt_on_error=1',
	};
}

// The inherited environment without any CONCH_* (a developer's shell must
// not leak a database or keys into a test), plus the sanitizer options.
function cleanEnv() {
	const env = {};
	for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONCH_')) env[k] = v;
	return { ...env, ...sanitizerEnv() };
}

function applyOverrides(env, overrides = {}) {
	for (const [k, v] of Object.entries(overrides)) {
		if (v === null || v === undefined) delete env[k];
		else env[k] = String(v);
	}
	return env;
}

// Everything conch needs besides listen/public_url, for tests that run it
// by hand; overrides may remove keys with null. databaseUrl is the runtime
// role's; migrateUrl (default: the test cluster's owner for it) is what
// `conch migrate` connects as.
export function conchEnv({ databaseUrl, migrateUrl, slack, slackUrl, signingSecret, tokenKeys, env } = {}) {
	const base = slack ? slack.url : slackUrl;
	const e = {
		...cleanEnv(),
		CONCH_LOG_LEVEL: 'info',
		CONCH_ASSETS_DIR: path.join(ROOT, 'assets'),
		// A developer may point the tests at another migrations folder.
		CONCH_MIGRATIONS_DIR: process.env.TEST_CONCH_MIGRATIONS_DIR || path.join(ROOT, 'migrations'),
		CONCH_SLACK_SIGNING_SECRET: signingSecret ?? TEST_SIGNING_SECRET,
		CONCH_SLACK_CLIENT_ID: slack ? slack.clientId : TEST_CLIENT_ID,
		CONCH_SLACK_CLIENT_SECRET: slack ? slack.clientSecret : TEST_CLIENT_SECRET,
		CONCH_TOKEN_KEYS: tokenKeys ?? TEST_TOKEN_KEYS,
		CONCH_SESSION_SECRET: TEST_SESSION_SECRET,
		CONCH_HTTP_THREADS: '4',
		CONCH_JOB_THREADS: '2',
		CONCH_JOB_LEASE_SECONDS: '3',
		// Slack's tiers make a 500-member fan-out take minutes; suites about
		// pacing turn it on (with the fake Slack's tierLimits).
		CONCH_SLACK_PACING: '0',
		// stop() should not wait out the production drain period.
		CONCH_DRAIN_SECONDS: '0',
	};
	if (databaseUrl) e.CONCH_DATABASE_URL = databaseUrl;
	if (migrateUrl || databaseUrl) e.CONCH_DATABASE_MIGRATE_URL = migrateUrl || migrateUrlFor(databaseUrl);
	if (base) {
		e.CONCH_SLACK_API_URL = `${base}/api`;
		e.CONCH_SLACK_AUTHORIZE_URL = `${base}/oauth/v2/authorize`;
	}
	return applyOverrides(e, env);
}

// Runs conch to completion (migrate, version, config errors). Resolves with
// { code, signal, stdout, stderr, sanitizer } and never throws on a
// non-zero exit; callers assert on it.
export function runConch(args, { env, binary, timeoutMs = RUN_TIMEOUT_MS, input, cwd } = {}) {
	const bin = conchBinary(binary);
	const workdir = cwd || fs.mkdtempSync(path.join(os.tmpdir(), 'conch-run-'));
	return new Promise((resolve, reject) => {
		const child = spawn(bin, args, { env: env || cleanEnv(), cwd: workdir, stdio: ['pipe', 'pipe', 'pipe'] });
		live.add(child);
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => (stdout += d));
		child.stderr.on('data', (d) => (stderr += d));
		child.stdin.on('error', () => {});
		child.stdin.end(input ?? '');
		let timedOut = false;
		const timer = setTimeout(() => {
			timedOut = true;
			child.kill('SIGKILL');
		}, timeoutMs);
		child.on('error', (err) => {
			clearTimeout(timer);
			live.delete(child);
			reject(err);
		});
		child.on('close', (code, signal) => {
			clearTimeout(timer);
			live.delete(child);
			if (!cwd) fs.rmSync(workdir, { recursive: true, force: true });
			if (timedOut) return reject(new Error(`conch ${args.join(' ')} ran over ${timeoutMs} ms; stderr:\n${stderr}`));
			resolve({ code, signal, stdout, stderr, sanitizer: sanitizerErrors(stderr) });
		});
	});
}

// Runs `conch migrate` and throws (with its output) unless it succeeds.
export async function migrate(env, opts = {}) {
	const r = await runConch(['migrate'], { env, ...opts });
	if (r.code !== 0 || r.sanitizer.length)
		throw new Error(`conch migrate failed (${r.signal || r.code}):\n${r.stderr}${r.stdout}`);
	return r;
}

function parseLine(raw) {
	try {
		const v = JSON.parse(raw);
		return v && typeof v === 'object' ? v : null;
	} catch {
		return null;
	}
}

function matches(entry, filter) {
	if (!filter) return true;
	if (typeof filter === 'function') return filter(entry.json, entry.raw);
	if (filter instanceof RegExp) return filter.test(entry.raw);
	if (!entry.json) return false;
	return Object.entries(filter).every(([k, v]) =>
		v instanceof RegExp ? v.test(String(entry.json[k] ?? '')) : entry.json[k] === v,
	);
}

export class Conch {
	constructor({ bin, args, env, port, workdir, signingSecret, tokenKeys, slack, databaseUrl }) {
		this.bin = bin;
		this.args = args;
		this.env = env;
		this.port = port;
		this.url = `http://127.0.0.1:${port}`;
		this.workdir = workdir;
		this.signingSecret = signingSecret;
		this.tokenKeys = tokenKeys;
		this.slack = slack;
		this.databaseUrl = databaseUrl;
		this.lines = [];     // { raw, json, time }
		this.stdout = '';
		this.exitInfo = null;
		this.waiters = new Set();
	}

	spawn() {
		this.proc = spawn(this.bin, this.args, { env: this.env, cwd: this.workdir, stdio: ['ignore', 'pipe', 'pipe'] });
		live.add(this.proc);
		let partial = '';
		this.proc.stderr.on('data', (d) => {
			partial += d;
			const parts = partial.split('\n');
			partial = parts.pop();
			for (const raw of parts) this.addLine(raw);
		});
		this.proc.stdout.on('data', (d) => (this.stdout += d));
		this.exited = new Promise((resolve) => {
			this.proc.on('close', (code, signal) => {
				if (partial) this.addLine(partial);
				partial = '';
				live.delete(this.proc);
				// Its pooler goes with it (also when it was killed).
				if (this.bouncer) this.bouncerDone = this.stopBouncer();
				this.exitInfo = { code, signal };
				resolve(this.exitInfo);
			});
		});
		this.proc.on('error', (err) => this.addLine(`spawn error: ${err.message}`));
	}

	addLine(raw) {
		const entry = { raw, json: parseLine(raw), time: Date.now() };
		this.lines.push(entry);
		for (const w of [...this.waiters]) {
			if (matches(entry, w.filter)) {
				clearTimeout(w.timer);
				this.waiters.delete(w);
				w.resolve(entry.json || entry.raw);
			}
		}
	}

	get stderr() {
		return this.lines.map((l) => l.raw).join('\n');
	}

	stderrTail(n = 60) {
		return this.lines.slice(-n).map((l) => l.raw).join('\n');
	}

	// Log lines (parsed objects, or raw text for non-JSON lines) matching
	// filter: a function (json, raw), a RegExp on the raw line, or an object
	// whose fields must equal (or match, for RegExp values).
	logs(filter) {
		return this.lines.filter((l) => matches(l, filter)).map((l) => l.json || l.raw);
	}

	waitForLog(filter, timeoutMs = 10_000) {
		const found = this.lines.find((l) => matches(l, filter));
		if (found) return Promise.resolve(found.json || found.raw);
		return new Promise((resolve, reject) => {
			const w = { filter, resolve };
			w.timer = setTimeout(() => {
				this.waiters.delete(w);
				reject(new Error(`no log line matching ${String(filter)} within ${timeoutMs} ms; stderr tail:\n${this.stderrTail()}`));
			}, timeoutMs);
			this.waiters.add(w);
		});
	}

	async waitHealthy(timeoutMs = HEALTH_TIMEOUT_MS) {
		const deadline = Date.now() + timeoutMs;
		let last = 'no answer';
		while (Date.now() < deadline) {
			if (this.exitInfo) {
				const { code, signal } = this.exitInfo;
				throw new Error(`conch exited (${signal || code}) before /healthz answered; stderr:\n${this.stderrTail()}`);
			}
			try {
				const r = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(2000) });
				last = `HTTP ${r.status}`;
				await r.arrayBuffer();
				if (r.status === 200) return;
			} catch (err) {
				last = err.cause?.code || err.message;
			}
			await sleep(100);
		}
		throw new Error(`conch /healthz did not answer 200 within ${timeoutMs} ms (last: ${last}); stderr:\n${this.stderrTail()}`);
	}

	fetch(p, init = {}) {
		return fetch(`${this.url}${p}`, { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
	}

	request(p, opts = {}) {
		return httpRequest(`${this.url}${p}`, opts);
	}

	signedSlackRequest(p, body, opts = {}) {
		return signedSlackRequest(this, p, body, opts);
	}

	slashCommand(fields, opts) {
		return slashCommand(this, fields, opts);
	}

	interactivity(payload, opts) {
		return interactivity(this, payload, opts);
	}

	event(envelope, opts) {
		return event(this, envelope, opts);
	}

	kill(signal = 'SIGTERM') {
		if (!this.exitInfo) this.proc.kill(signal);
		return this.exited;
	}

	// SIGTERM and wait; throws when conch does not exit in time, exits
	// unclean, or printed a sanitizer report at any point.
	async stop({ allowUnclean = false, timeoutMs = STOP_TIMEOUT_MS } = {}) {
		// Only the first stop() reports; later calls (an after hook) are no-ops.
		if (!this.proc || this.stopped) return this.exitInfo;
		this.stopped = true;
		let killedHard = false;
		if (!this.exitInfo) {
			this.proc.kill('SIGTERM');
			const t = setTimeout(() => {
				killedHard = true;
				this.proc.kill('SIGKILL');
			}, timeoutMs);
			await this.exited;
			clearTimeout(t);
		}
		for (const w of this.waiters) clearTimeout(w.timer);
		this.waiters.clear();
		fs.rmSync(this.workdir, { recursive: true, force: true });
		const pooled = this.bouncerDone ? await this.bouncerDone : [];
		const san = sanitizerErrors(this.stderr);
		if (san.length) throw new Error(`conch printed sanitizer errors:\n${this.stderrTail(200)}`);
		if (killedHard) throw new Error(`conch did not exit within ${timeoutMs} ms of SIGTERM; stderr:\n${this.stderrTail()}`);
		const { code, signal } = this.exitInfo;
		if (!allowUnclean && (code !== 0 || signal))
			throw new Error(`conch exited unclean after SIGTERM (${signal || `code ${code}`}); stderr:\n${this.stderrTail()}`);
		if (pooled.length) throw new Error(`statement errors behind PgBouncer:\n${pooled.join('\n')}`);
		const lines = this.stderr.split('\n');
		const misuse = transactionMisuse(lines);
		if (misuse.length) {
			const at = lines.indexOf(misuse[0]);
			throw new Error(`conch misused a transaction (${misuse.length} lines; the first, after what came before it):\n${lines.slice(Math.max(0, at - 15), at + 1).join('\n')}`);
		}
		return this.exitInfo;
	}

	// Stops the PgBouncer in front of this conch; returns the statement
	// errors in its log and in conch's.
	async stopBouncer() {
		const bouncer = this.bouncer;
		this.bouncer = null;
		await bouncer.stop();
		return [...bouncer.statementErrors(), ...statementErrors(this.lines.map((l) => l.raw))];
	}
}

// opts: databaseUrl, migrateUrl, slack (a FakeSlack) or slackUrl, env (extra/override,
// null removes), args (default: serve -c <empty temp file>), config (text of
// that file), binary, migrate (default true), signingSecret, tokenKeys,
// port, healthTimeoutMs.
export async function startConch(opts = {}) {
	const bin = conchBinary(opts.binary);
	const signingSecret = opts.signingSecret ?? TEST_SIGNING_SECRET;
	const tokenKeys = opts.tokenKeys ?? TEST_TOKEN_KEYS;
	const base = conchEnv({ ...opts, signingSecret, tokenKeys, env: {} });
	if (opts.migrate !== false) await migrate(applyOverrides({ ...base }, opts.env), { binary: bin });
	const pooled = pgbouncerEnabled() && opts.databaseUrl;

	let lastErr;
	for (let attempt = 0; attempt < 3; attempt++) {
		const port = opts.port || (await freePort());
		const workdir = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-srv-'));
		const confFile = path.join(workdir, 'conch.conf');
		fs.writeFileSync(confFile, opts.config ?? '# written by tests/lib/server.mjs\n');
		// Behind a pooler: database_url is PgBouncer's, LISTEN goes direct.
		const bouncer = pooled ? await startPgBouncer(opts.databaseUrl) : null;
		const poolEnv = bouncer ? { CONCH_DATABASE_URL: bouncer.url, CONCH_DATABASE_DIRECT_URL: opts.databaseUrl } : {};
		const env = applyOverrides(
			{ ...base, ...poolEnv, CONCH_LISTEN: `127.0.0.1:${port}`, CONCH_PUBLIC_URL: `http://127.0.0.1:${port}` },
			opts.env,
		);
		const args = opts.args ?? ['serve', '-c', confFile];
		const conch = new Conch({
			bin, args, env, port, workdir, signingSecret, tokenKeys, slack: opts.slack,
			databaseUrl: opts.databaseUrl,
		});
		conch.bouncer = bouncer;
		conch.spawn();
		try {
			await conch.waitHealthy(opts.healthTimeoutMs ?? HEALTH_TIMEOUT_MS);
			return conch;
		} catch (err) {
			lastErr = err;
			await conch.stop({ allowUnclean: true }).catch(() => {});
			// Another process took the free port between probe and bind.
			if (opts.port || !/address already in use|EADDRINUSE|bind/i.test(conch.stderr)) break;
		}
	}
	throw lastErr;
}

// conch's log lines about a failed statement whose SQLSTATE is not the
// database being away (classes 08 but 08P01, 53, 57, or none) or a
// constraint (23): what a pooler breaks (42P05, 26000, 08P01, 25P02...).
export function statementErrors(lines) {
	return lines.filter((raw) => {
		const m = /database: .*?\[([0-9A-Z]*)\] in:/.exec(raw);
		if (!m) return false;
		const state = m[1];
		return state !== '' && state !== '40001' && state !== '40P01' &&
			(state === '08P01' || !/^(08|53|57|23)/.test(state));
	});
}

// conch's log lines saying that code opened a transaction while another
// was open on its thread, or ran a statement after its transaction ended:
// a handler that did not use the transaction it was handed.
export function transactionMisuse(lines) {
	return lines.filter((l) => /transaction left open on this thread|a statement after its transaction closed/.test(l));
}

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}

// Polls fn until it returns a truthy value; throws after timeoutMs.
export async function waitUntil(fn, { timeoutMs = 10_000, intervalMs = 50, what = 'condition' } = {}) {
	const deadline = Date.now() + timeoutMs;
	let last;
	while (Date.now() < deadline) {
		try {
			const v = await fn();
			if (v) return v;
		} catch (err) {
			last = err;
		}
		await sleep(intervalMs);
	}
	throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// --- HTTP ------------------------------------------------------------------

// A raw HTTP/1.1 request: exact method, headers and body, or chunked
// transfer when chunks is given. Resolves { status, headers, text, json }
// even when the server answers early and closes while the body is sent.
// localAddress (e.g. '127.0.0.2') picks the client's address on loopback.
export function httpRequest(url, { method = 'GET', headers = {}, body, chunks, timeoutMs = REQUEST_TIMEOUT_MS, localAddress } = {}) {
	return new Promise((resolve, reject) => {
		const u = new URL(url);
		const h = { ...headers };
		if (body !== undefined && chunks === undefined && !Object.keys(h).some((k) => k.toLowerCase() === 'content-length'))
			h['Content-Length'] = Buffer.byteLength(body);
		const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method, headers: h, agent: false, localAddress });
		let settled = false;
		let gotResponse = false;
		const done = (fn, v) => {
			if (settled) return;
			settled = true;
			clearTimeout(timer);
			fn(v);
		};
		const timer = setTimeout(() => {
			req.destroy();
			done(reject, new Error(`${method} ${url}: no answer within ${timeoutMs} ms`));
		}, timeoutMs);
		req.on('response', (res) => {
			gotResponse = true;
			const parts = [];
			res.on('data', (d) => parts.push(d));
			res.on('error', () => {});
			res.on('end', () => {
				const text = Buffer.concat(parts).toString('utf8');
				done(resolve, { status: res.statusCode, headers: res.headers, text, json: tryJson(text) });
			});
		});
		req.on('error', (err) => {
			// An early answer (413) may close the socket while we still write.
			setTimeout(() => {
				if (!gotResponse) done(reject, err);
			}, 300);
		});
		if (chunks !== undefined) {
			for (const c of chunks) req.write(c);
			req.end();
		} else {
			req.end(body);
		}
	});
}

// Writes parts (strings or Buffers; a number is a pause in ms) to a fresh
// connection to port and resolves with { status, text, closedAfterMs,
// timedOut } once the server closes it or timeoutMs passes. A request sent
// this way reaches conch byte for byte (no client normalises the path).
export function rawRequest(port, parts, { timeoutMs = 10_000, localAddress } = {}) {
	return new Promise((resolve) => {
		const sock = net.connect({ port, host: '127.0.0.1', localAddress });
		const t0 = Date.now();
		const chunks = [];
		let done = false;
		const finish = (timedOut) => {
			if (done) return;
			done = true;
			clearTimeout(timer);
			sock.destroy();
			const text = Buffer.concat(chunks).toString('latin1');
			const m = text.match(/^HTTP\/1\.[01] (\d{3})/);
			resolve({ status: m ? Number(m[1]) : null, text, closedAfterMs: Date.now() - t0, timedOut });
		};
		const timer = setTimeout(() => finish(true), timeoutMs);
		sock.on('data', (d) => chunks.push(d));
		sock.on('error', () => finish(false));
		sock.on('close', () => finish(false));
		sock.on('connect', async () => {
			for (const p of parts) {
				if (done) return;
				if (typeof p === 'number') await sleep(p);
				else sock.write(p);
			}
		});
	});
}

function tryJson(text) {
	try {
		return JSON.parse(text);
	} catch {
		return undefined;
	}
}

// --- Slack-shaped requests -------------------------------------------------

export function slackSignature(secret, timestamp, body) {
	return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:`).update(body).digest('hex')}`;
}

// POSTs body signed as Slack signs (v0=hex HMAC-SHA256 of v0:ts:body). opts: secret, timestamp,
// signature (overrides), unsigned (no signature headers), contentType,
// headers (extra; they win over the signature headers), tamper (a function
// changing the body after signing).
export function signedSlackRequest(conch, p, body, opts = {}) {
	const secret = opts.secret ?? conch.signingSecret;
	const ts = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
	const sig = opts.signature ?? slackSignature(secret, ts, body);
	const sent = opts.tamper ? opts.tamper(body) : body;
	const headers = { 'Content-Type': opts.contentType ?? 'application/x-www-form-urlencoded' };
	if (!opts.unsigned) {
		headers['X-Slack-Request-Timestamp'] = ts;
		headers['X-Slack-Signature'] = sig;
	}
	Object.assign(headers, opts.headers || {});
	return httpRequest(`${conch.url}${p}`, { method: 'POST', headers, body: sent });
}

export const DEFAULT_TEAM = 'T0TEST0001';
export const DEFAULT_USER = 'U0TEST0001';
export const DEFAULT_CHANNEL = 'C0TEST0001';

export function commandForm(fields = {}, conch) {
	const f = {
		token: 'deprecated-verification-token',
		team_id: DEFAULT_TEAM,
		team_domain: 'testteam',
		channel_id: DEFAULT_CHANNEL,
		channel_name: 'general',
		user_id: DEFAULT_USER,
		user_name: 'tester',
		command: '/dibs',
		text: '',
		api_app_id: 'A0CONCH01',
		is_enterprise_install: 'false',
		response_url: conch?.slack ? conch.slack.responseUrl() : 'https://hooks.slack.invalid/commands/T0/1/x',
		trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
		...fields,
	};
	return new URLSearchParams(f).toString();
}

// A slash command as Slack sends it (form-encoded), signed.
export function slashCommand(conch, fields = {}, opts = {}) {
	return signedSlackRequest(conch, '/slack/commands', commandForm(fields, conch), opts);
}

// A block_actions payload, as Slack posts it in the payload field.
export function blockActions({
	team_id = DEFAULT_TEAM, user_id = DEFAULT_USER, channel_id = DEFAULT_CHANNEL, action_id, value = '',
	block_id = 'b1', message_ts = '1700000000.000100', response_url, is_ephemeral = false, container_type = 'message',
} = {}) {
	return {
		type: 'block_actions',
		team: { id: team_id, domain: 'testteam' },
		user: { id: user_id, username: 'tester', team_id },
		api_app_id: 'A0CONCH01',
		token: 'deprecated-verification-token',
		container: { type: container_type, message_ts, channel_id, is_ephemeral },
		trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}`,
		channel: { id: channel_id, name: 'general' },
		message: { type: 'message', ts: message_ts, text: '', blocks: [] },
		response_url: response_url ?? 'https://hooks.slack.invalid/actions/T0/1/x',
		actions: [{ action_id, block_id, type: 'button', value, action_ts: `${Date.now() / 1000}` }],
	};
}

// Form body `payload=<json>`, signed. A payload object sent again gets a
// fresh trigger_id, as a second press would from Slack: conch refuses a
// signature it has already accepted, and a payload sent twice in one second
// would otherwise be signed the same. The first send keeps the payload's
// own trigger_id, so a test can follow it (views.open).
const sentPayloads = new WeakSet();
export function interactivity(conch, payload, opts = {}) {
	let fresh = payload;
	if (payload && typeof payload === 'object' && 'trigger_id' in payload) {
		if (sentPayloads.has(payload))
			fresh = { ...payload, trigger_id: `${Date.now()}.${randomBytes(4).toString('hex')}` };
		else sentPayloads.add(payload);
	}
	const body = new URLSearchParams({ payload: JSON.stringify(fresh) }).toString();
	return signedSlackRequest(conch, '/slack/interactivity', body, opts);
}

// An Events API envelope (event_callback) as JSON, signed.
export function event(conch, envelope, opts = {}) {
	return signedSlackRequest(conch, '/slack/events', JSON.stringify(envelope), { contentType: 'application/json', ...opts });
}

export function eventEnvelope(team_id, ev, extra = {}) {
	return {
		token: 'deprecated-verification-token',
		team_id,
		api_app_id: 'A0CONCH01',
		event: ev,
		type: 'event_callback',
		event_id: `Ev${randomBytes(6).toString('hex').toUpperCase()}`,
		event_time: Math.floor(Date.now() / 1000),
		authorizations: [{ team_id, user_id: 'U0BOT00001', is_bot: true, is_enterprise_install: false }],
		...extra,
	};
}

// --- database --------------------------------------------------------------

// A small pool for inspection (use a superuser URL to see across RLS).
export function db(url) {
	const pool = new pg.Pool({ connectionString: url, max: 4, connectionTimeoutMillis: 10_000 });
	pool.on('error', () => {});
	return {
		pool,
		async query(sql, params = []) {
			return (await pool.query(sql, params)).rows;
		},
		async one(sql, params = []) {
			return (await pool.query(sql, params)).rows[0];
		},
		async count(table, where = 'true', params = []) {
			if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`count: bad table name ${table}`);
			return Number((await pool.query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, params)).rows[0].n);
		},
		// Row counts of every ordinary and partitioned table in public.
		async tableCounts() {
			const tables = await this.query(
				`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
				 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition
				 ORDER BY 1`,
			);
			const out = {};
			for (const { relname } of tables) out[relname] = await this.count(relname);
			return out;
		},
		close() {
			return pool.end();
		},
	};
}

// Installs a team directly (teams + an active installation, bot token
// sealed like the vault does), skipping OAuth. dbUrl may be the application
// role's URL: the rows are written in a transaction scoped to the team.
export async function installTeam(dbUrl, {
	team_id, token, tokenKeys = TEST_TOKEN_KEYS, name = `Team ${team_id}`, domain = team_id?.toLowerCase(),
	plan = 'free', bot_user_id = 'U0BOT00001', app_id = 'A0CONCH01', installer_user_id = DEFAULT_USER,
	scopes = 'commands,chat:write,chat:write.public,im:write,mpim:write,users:read,channels:read,groups:read',
} = {}) {
	if (!team_id || !token) throw new Error('installTeam: team_id and token are required');
	const sealed = seal(tokenKeys, token, team_id, 'bot_token');
	const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
	await client.connect();
	try {
		await client.query('BEGIN');
		await client.query("SELECT set_config('conch.team_id', $1, true)", [team_id]);
		await client.query(
			`INSERT INTO teams (team_id, name, domain, plan, installed_at) VALUES ($1, $2, $3, $4, now())
			 ON CONFLICT (team_id) DO UPDATE SET name = EXCLUDED.name, domain = EXCLUDED.domain,
			   plan = EXCLUDED.plan, installed_at = now(), uninstalled_at = NULL`,
			[team_id, name, domain, plan],
		);
		await client.query(
			`INSERT INTO installations (team_id, app_id, bot_user_id, scopes, bot_token, installer_user_id, active)
			 VALUES ($1, $2, $3, $4, $5, $6, true)
			 ON CONFLICT (team_id) DO UPDATE SET app_id = EXCLUDED.app_id, bot_user_id = EXCLUDED.bot_user_id,
			   scopes = EXCLUDED.scopes, bot_token = EXCLUDED.bot_token, refresh_token = NULL,
			   token_expires_at = NULL, installer_user_id = EXCLUDED.installer_user_id, active = true,
			   inactive_reason = NULL, updated_at = now()`,
			[team_id, app_id, bot_user_id, scopes, sealed, installer_user_id],
		);
		await client.query('COMMIT');
	} catch (err) {
		await client.query('ROLLBACK').catch(() => {});
		throw err;
	} finally {
		await client.end();
	}
	return { team_id, token, sealed };
}
