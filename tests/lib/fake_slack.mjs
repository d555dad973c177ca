// A fake Slack (Web API, OAuth authorize page, response_url hooks) on
// 127.0.0.1 that behaves as Slack's OAuth v2 and Web API do.
//
//   const slack = await startFakeSlack({ clientId, clientSecret });
//   slack.apiUrl          -> CONCH_SLACK_API_URL
//   slack.authorizeUrl    -> CONCH_SLACK_AUTHORIZE_URL
//   const token = slack.issueToken({ team_id: 'T1' });   // for installTeam()
//   slack.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
//   await slack.waitForCalls('chat.postMessage', 1);
//   slack.calls('chat.postMessage') -> [{ method, headers, body, time, ... }]
//   slack.setUser('U0ADMIN01', { team_id: 'T1', is_admin: true });   // users.info, users.list
//   slack.addUsers('T1', 250);   // generated members, listed by users.list
//
// Options: latencyMs (a number or [min, max]: every Web API answer waits
// that long) and tierLimits (Slack's per-team, per-method limits answered
// with 429 + Retry-After); both off by default. hold(methods) / release()
// keep calls unanswered until the test lets them go.
//
// Every API call is recorded in order, failed ones too (with `fault`).

import { HOST, listenLocal } from './listen.mjs';
import { randomBytes } from 'node:crypto';
import { METHOD_TIERS, POST_MESSAGE, RETRY_AFTER_SECONDS, TIER_PER_MINUTE, TIER_SLACK } from './slack_tiers.mjs';

const MAX_BODY = 1 << 20;
const WAIT_DEFAULT_MS = 10_000;
const CODE_TTL_MS = 10 * 60 * 1000;

function rand(n = 8) {
	return randomBytes(n).toString('hex');
}

function idFor(prefix, key) {
	// Stable, Slack-looking ids: upper-case alphanumerics.
	let h = 2166136261;
	for (const ch of key) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
	return prefix + h.toString(36).toUpperCase().padStart(8, '0');
}

function htmlEscape(s) {
	return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function parseBody(raw, contentType) {
	if (/^application\/json/i.test(contentType || '')) {
		try {
			return { body: JSON.parse(raw || '{}'), format: 'json' };
		} catch {
			return { body: null, format: 'json', invalid: true };
		}
	}
	const body = {};
	for (const [k, v] of new URLSearchParams(raw)) body[k] = v;
	return { body, format: 'form' };
}

// Form bodies carry structured arguments (blocks, view) as JSON text.
function jsonArg(v) {
	if (typeof v !== 'string') return v;
	try {
		return JSON.parse(v);
	} catch {
		return v;
	}
}

function userList(v) {
	if (Array.isArray(v)) return v.map(String);
	if (typeof v !== 'string' || v === '') return [];
	return v.split(',').map((s) => s.trim()).filter(Boolean);
}

export class FakeSlack {
	constructor(opts = {}) {
		this.clientId = opts.clientId ?? '1111.2222';
		this.clientSecret = opts.clientSecret ?? 'fake-client-secret';
		this.appId = opts.appId ?? 'A0CONCH01';
		this.tokenRotation = !!opts.tokenRotation;
		this.tokenExpiresIn = opts.tokenExpiresIn ?? 43200;
		this.installTarget = {
			team_id: 'T0INSTALL1',
			team_name: 'Installed Team',
			user_id: 'U0INSTALLER',
			bot_user_id: 'U0BOT00001',
			...(opts.install || {}),
		};
		this.server = null;
		this.sockets = new Set();
		this.hung = new Set();
		this.held = null; // see holdOauth()
		this.latencyMs = opts.latencyMs ?? 0;
		this.tierLimits = !!opts.tierLimits;
		this.reset();
	}

	// Forgets calls, faults and rate limits; tokens, users and members stay
	// unless full is set.
	reset({ full = false } = {}) {
		this.log = [];
		this.faults = new Map();
		this.limits = new Map();
		this.waiters = new Set();
		this.responseLog = [];
		this.expiredHooks = new Set();
		this.tierHits = new Map(); // "team method [channel]" -> [times]
		if (full || !this.tokens) {
			this.tokens = new Map();        // access token -> { team_id, bot_user_id, revoked, error, expiresAt }
			this.refreshTokens = new Map(); // refresh token -> { team_id, revoked }
			this.codes = new Map();         // code -> { redirect_uri, scope, used, expires, target }
			this.requests = new Map();      // authorize request id -> params
			this.members = new Map();       // channel -> [user ids]
			this.users = new Map();         // user id -> info, or null for user_not_found
			this.generated = new Map();     // team id -> count of generated users (addUsers)
			this.messages = new Map();      // channel -> [{ ts, text, blocks, ... }]
			this.views = new Map();         // user id -> view
			// --- channels the bot is not in (dibs-slack) ---
			this.channels = new Map();      // channel id -> { is_private, bot_member }
			// --- end channels ---
			this.tsCounter = 0;
		}
	}

	get url() {
		return `http://${HOST}:${this.port}`;
	}
	get apiUrl() {
		return `${this.url}/api`;
	}
	get authorizeUrl() {
		return `${this.url}/oauth/v2/authorize`;
	}

	async listen() {
		this.server = await listenLocal((req, res) => this.handle(req, res), this.sockets);
		this.port = this.server.address().port;
		return this;
	}

	async close() {
		for (const h of this.hung) h.destroy();
		this.hung.clear();
		for (const w of this.waiters) w.reject(new Error('fake Slack closed'));
		this.waiters.clear();
		if (!this.server) return;
		const closed = new Promise((resolve) => this.server.close(resolve));
		for (const s of this.sockets) s.destroy();
		await closed;
		this.server = null;
	}

	// --- test controls ------------------------------------------------------

	// A bot token the fake accepts for team_id (for installTeam()).
	issueToken({ team_id = 'T0TEST0001', bot_user_id = 'U0BOT00001', expiresIn = null } = {}) {
		const token = `xoxb-${rand(5)}-${rand(6)}-${rand(12)}`;
		this.tokens.set(token, {
			team_id,
			bot_user_id,
			revoked: false,
			error: null,
			expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : null,
		});
		return token;
	}

	// Every further call with token answers error (default token_revoked).
	revokeToken(token, error = 'token_revoked') {
		const t = this.tokens.get(token);
		if (!t) throw new Error('revokeToken: unknown token');
		t.revoked = true;
		t.error = error;
	}

	tokenInfo(token) {
		return this.tokens.get(token);
	}

	// The team, user and bot the next installs go to.
	setInstallTarget(target) {
		this.installTarget = { ...this.installTarget, ...target };
	}

	// fault: { status: 429, retryAfter } | { ok: false, error } | { status: 500 }
	//        | { hang: true } | { delayMs } ; applies to the next n calls.
	failNext(method, fault, n = 1) {
		const known = fault && (fault.hang || fault.delayMs || fault.status || fault.ok === false);
		if (!known) throw new Error(`failNext(${method}): unknown fault ${JSON.stringify(fault)}`);
		const q = this.faults.get(method) || [];
		for (let i = 0; i < n; i++) q.push(fault);
		this.faults.set(method, q);
	}

	// Answers 429 + Retry-After when method is called more than perSecond
	// times in a sliding second (per team). 0 or null turns it off.
	rateLimit(method, perSecond, retryAfter = 1) {
		if (!perSecond) this.limits.delete(method);
		else this.limits.set(method, { perSecond, retryAfter, hits: new Map() });
	}

	setMembers(channel, members) {
		this.members.set(channel, [...members]);
	}

	// info: { team_id, name, is_bot, deleted, tz, tz_offset, is_admin,
	// is_owner, is_restricted, ... }; null makes users.info answer
	// user_not_found. A user with a team_id is listed by that team's
	// users.list; `updated` moves on with every change, as Slack's does.
	setUser(id, info) {
		if (info === null) this.users.set(id, null);
		else this.users.set(id, { ...this.userInfo(id), ...info, id, updated: Math.floor(Date.now() / 1000) });
	}

	// The user object Slack would send (users.info, users.list, user_change).
	userInfo(id) {
		if (this.users.has(id)) return this.users.get(id);
		return {
			id,
			name: id.toLowerCase(),
			real_name: `User ${id}`,
			profile: { real_name: `User ${id}`, display_name: id.toLowerCase() },
			deleted: false,
			is_bot: false,
			is_app_user: false,
			is_admin: false,
			is_owner: false,
			is_primary_owner: false,
			is_restricted: false,
			is_ultra_restricted: false,
			tz: 'UTC',
			tz_label: 'Coordinated Universal Time',
			tz_offset: 0,
			updated: 1700000000,
		};
	}

	// n more plain members for team's users.list (ids U0G<team><n>), made
	// when a page is asked for: big workspaces cost nothing until listed.
	addUsers(team_id, n) {
		this.generated.set(team_id, (this.generated.get(team_id) || 0) + n);
	}

	generatedId(team_id, i) {
		return `U0G${team_id.slice(1, 9)}${String(i).padStart(6, '0')}`;
	}

	// users.list of a team: its set users (by team_id), then its generated
	// ones, then its bot (Slack lists bots too). Ordered and stable, so
	// offset cursors page it.
	teamUserCount(team_id) {
		return this.teamSetUsers(team_id).length + (this.generated.get(team_id) || 0) + 1;
	}

	teamSetUsers(team_id) {
		return [...this.users.values()].filter((u) => u && u.team_id === team_id).sort((a, b) => (a.id < b.id ? -1 : 1));
	}

	teamUserAt(team_id, i, bot_user_id) {
		const set = this.teamSetUsers(team_id);
		if (i < set.length) return set[i];
		const g = this.generated.get(team_id) || 0;
		if (i < set.length + g) return { ...this.userInfo(this.generatedId(team_id, i - set.length)), team_id };
		return { ...this.userInfo(bot_user_id), team_id, is_bot: true, name: 'conch', real_name: 'conch' };
	}

	calls(method) {
		return this.log.filter((c) => method === undefined || c.method === method);
	}

	messagesIn(channel) {
		return [...(this.messages.get(channel) || [])];
	}

	view(userId) {
		return this.views.get(userId);
	}

	// --- channels the bot is not in (dibs-slack) ---
	// A channel Slack knows with the bot outside it: chat.postMessage works
	// in a public one (the chat:write.public scope) and answers
	// channel_not_found in a private one; chat.postEphemeral answers
	// not_in_channel (public) or channel_not_found (private) there. Channels
	// never set behave as if the bot were a member.
	setChannel(id, { is_private = false, bot_member = false } = {}) {
		this.channels.set(id, { is_private, bot_member });
	}

	channelRefusal(channel, ephemeral) {
		const c = this.channels.get(channel);
		if (!c || c.bot_member) return null;
		if (c.is_private) return 'channel_not_found';
		return ephemeral ? 'not_in_channel' : null;
	}
	// --- end channels ---

	// Posts conch made to response_urls made by responseUrl().
	responses(id) {
		return this.responseLog.filter((r) => id === undefined || r.id === id);
	}

	responseUrl(id = rand(6)) {
		return `${this.url}/hooks/commands/${id}`;
	}

	// Makes the response_url of id answer as Slack does once its 30 minutes
	// or 5 posts are over: HTTP 404 {"ok":false,"error":"expired_url"}
	// (the post is still recorded, with expired: true).
	expireResponseUrl(id) {
		this.expiredHooks.add(id);
	}

	// Resolves with the calls once at least n calls of method were recorded.
	waitForCalls(method, n = 1, timeoutMs = WAIT_DEFAULT_MS) {
		return this.waitFor(() => {
			const c = this.calls(method);
			return c.length >= n ? c : null;
		}, timeoutMs, `${n} call(s) of ${method}`);
	}

	waitForResponses(id, n = 1, timeoutMs = WAIT_DEFAULT_MS) {
		return this.waitFor(() => {
			const r = this.responses(id);
			return r.length >= n ? r : null;
		}, timeoutMs, `${n} response_url post(s)`);
	}

	// Resolves with predicate's first truthy value, checked after each call.
	waitFor(predicate, timeoutMs = WAIT_DEFAULT_MS, what = 'condition') {
		const v = predicate();
		if (v) return Promise.resolve(v);
		return new Promise((resolve, reject) => {
			const w = { predicate, resolve, reject };
			w.timer = setTimeout(() => {
				this.waiters.delete(w);
				const seen = this.log.map((c) => c.method).join(', ') || 'none';
				reject(new Error(`fake Slack: timed out after ${timeoutMs} ms waiting for ${what}; calls so far: ${seen}`));
			}, timeoutMs);
			this.waiters.add(w);
		});
	}

	notify() {
		for (const w of [...this.waiters]) {
			const v = w.predicate();
			if (v) {
				clearTimeout(w.timer);
				this.waiters.delete(w);
				w.resolve(v);
			}
		}
	}

	// Drives the authorize page without a browser: returns the URL Slack
	// would redirect to after Allow (or Cancel when allow is false).
	async authorize(authorizeUrl, { allow = true } = {}) {
		const page = await fetch(authorizeUrl);
		const html = await page.text();
		if (page.status !== 200) throw new Error(`authorize page answered ${page.status}: ${html}`);
		const m = html.match(new RegExp(`id="${allow ? 'allow' : 'cancel'}" href="([^"]+)"`));
		if (!m) throw new Error('authorize page has no Allow/Cancel link');
		const r = await fetch(new URL(m[1].replace(/&amp;/g, '&'), this.url), { redirect: 'manual' });
		const loc = r.headers.get('location');
		if (r.status !== 302 || !loc) throw new Error(`authorize decision answered ${r.status}`);
		return loc;
	}

	// --- HTTP ---------------------------------------------------------------

	handle(req, res) {
		const chunks = [];
		let size = 0;
		req.on('data', (d) => {
			size += d.length;
			if (size <= MAX_BODY) chunks.push(d);
		});
		req.on('end', () => {
			const raw = Buffer.concat(chunks).toString('utf8');
			try {
				this.route(req, res, raw);
			} catch (err) {
				res.writeHead(500, { 'Content-Type': 'text/plain' });
				res.end(`fake Slack bug: ${err.stack}`);
			}
		});
	}

	route(req, res, raw) {
		const u = new URL(req.url, this.url);
		const api = u.pathname.match(/^\/api\/([A-Za-z0-9_.]+)$/);
		if (api) {
			if (req.method !== 'POST' && req.method !== 'GET') return this.send(res, 405, 'text/plain', 'method not allowed');
			return this.withLatency(() => this.api(req, res, api[1], req.method === 'GET' ? u.search.slice(1) : raw, u), api[1]);
		}
		if (u.pathname === '/oauth/v2/authorize' && req.method === 'GET') return this.authorizePage(res, u);
		const dec = u.pathname.match(/^\/oauth\/v2\/(allow|cancel)\/([a-f0-9]+)$/);
		if (dec && req.method === 'GET') return this.decide(res, dec[1] === 'allow', dec[2]);
		const hook = u.pathname.match(/^\/hooks\/commands\/([A-Za-z0-9_-]+)$/);
		if (hook && req.method === 'POST') {
			// hold(['response_url']) keeps these unanswered too (no latency).
			if (this.held && this.held.methods.has('response_url'))
				return this.withLatency(() => this.responseHook(req, res, hook[1], raw), 'response_url');
			return this.responseHook(req, res, hook[1], raw);
		}
		this.send(res, 404, 'text/plain', 'not found');
	}

	send(res, status, ctype, body, headers = {}) {
		res.writeHead(status, { 'Content-Type': ctype, ...headers });
		res.end(body);
	}

	sendJson(res, obj, status = 200, headers = {}) {
		this.send(res, status, 'application/json; charset=utf-8', JSON.stringify(obj), headers);
	}

	responseHook(req, res, id, raw) {
		const { body, invalid } = parseBody(raw, req.headers['content-type']);
		const expired = this.expiredHooks.has(id);
		this.responseLog.push({ id, headers: req.headers, body, raw, time: Date.now(), ...(expired ? { expired } : {}) });
		this.notify();
		if (expired) return this.sendJson(res, { ok: false, error: 'expired_url' }, 404);
		if (invalid) return this.send(res, 400, 'text/plain', 'invalid_payload');
		this.send(res, 200, 'text/plain', 'ok');
	}

	api(req, res, method, raw, u) {
		const ctype = req.headers['content-type'] || '';
		const parsed = parseBody(raw, ctype);
		const call = {
			method,
			headers: req.headers,
			contentType: ctype,
			format: parsed.format,
			body: parsed.body,
			raw,
			time: Date.now(),
			token: null,
			team_id: null,
		};
		this.log.push(call);
		const finish = (status, obj, headers = {}) => {
			call.status = status;
			call.response = obj;
			if (status === 200 && ctype.startsWith('application/json') && !/charset=utf-8/i.test(ctype) && obj.ok) {
				obj.warning = 'missing_charset';
				obj.response_metadata = { ...(obj.response_metadata || {}), warnings: ['missing_charset'] };
			}
			this.sendJson(res, obj, status, headers);
			this.notify();
		};

		const fault = (this.faults.get(method) || []).shift();
		if (fault) {
			call.fault = fault;
			if (fault.hang) {
				this.hung.add(res.socket);
				if (fault.ms) setTimeout(() => res.socket && res.socket.destroy(), fault.ms);
				this.notify();
				return;
			}
			if (fault.delayMs) {
				setTimeout(() => this.dispatch(req, method, parsed, call, finish), fault.delayMs);
				return;
			}
			if (fault.status === 429) {
				call.status = 429;
				this.sendJson(res, { ok: false, error: 'ratelimited' }, 429, { 'Retry-After': String(fault.retryAfter ?? 1) });
				return this.notify();
			}
			if (fault.status && fault.status !== 200) {
				call.status = fault.status;
				this.send(res, fault.status, 'text/html', `<html><body>fake upstream error ${fault.status}</body></html>`);
				return this.notify();
			}
			if (fault.ok === false) return finish(200, { ok: false, error: fault.error || 'fatal_error' });
			throw new Error(`failNext(${method}): unknown fault ${JSON.stringify(fault)}`);
		}
		this.dispatch(req, method, parsed, call, finish);
	}

	dispatch(req, method, parsed, call, finish) {
		if (parsed.invalid) return finish(200, { ok: false, error: 'invalid_json' });
		if (method === 'oauth.v2.access') return finish(200, this.oauthAccess(req, parsed.body));

		const auth = req.headers.authorization || '';
		const bearer = auth.match(/^Bearer (\S+)$/);
		const token = bearer ? bearer[1] : parsed.format === 'form' ? parsed.body.token : undefined;
		call.token = token || null;
		if (!token) return finish(200, { ok: false, error: 'not_authed' });
		const t = this.tokens.get(token);
		if (!t) return finish(200, { ok: false, error: 'invalid_auth' });
		call.team_id = t.team_id;
		if (t.revoked) return finish(200, { ok: false, error: t.error || 'token_revoked' });
		if (t.expiresAt && Date.now() > t.expiresAt) return finish(200, { ok: false, error: 'token_expired' });
		if (this.overTier(method, t.team_id, parsed.body || {}, call, finish)) return;

		const limit = this.limits.get(method);
		if (limit) {
			const now = Date.now();
			const hits = (limit.hits.get(t.team_id) || []).filter((x) => now - x < 1000);
			if (hits.length >= limit.perSecond) {
				call.fault = { rateLimited: true };
				return finish(429, { ok: false, error: 'ratelimited' }, { 'Retry-After': String(limit.retryAfter) });
			}
			hits.push(now);
			limit.hits.set(t.team_id, hits);
		}

		const handler = METHODS[method];
		if (!handler) return finish(200, { ok: false, error: 'unknown_method' });
		finish(200, handler.call(this, parsed.body || {}, t));
	}

	nextTs() {
		const sec = Math.floor(Date.now() / 1000);
		this.tsCounter += 1;
		return `${sec}.${String(this.tsCounter).padStart(6, '0')}`;
	}

	// --- OAuth --------------------------------------------------------------

	authorizePage(res, u) {
		const q = Object.fromEntries(u.searchParams);
		if (q.client_id !== this.clientId)
			return this.send(res, 400, 'text/html; charset=utf-8', '<html><body><h1>invalid_client_id</h1></body></html>');
		if (!q.redirect_uri || !q.scope)
			return this.send(res, 400, 'text/html; charset=utf-8', '<html><body><h1>missing redirect_uri or scope</h1></body></html>');
		const id = rand(8);
		this.requests.set(id, { ...q, target: { ...this.installTarget } });
		const html = `<!doctype html>
<html><head><meta charset="utf-8"><title>Fake Slack: authorize</title>
<style>body{font-family:sans-serif;margin:3em}a.button{display:inline-block;padding:.6em 1.4em;margin-right:1em;border-radius:4px;text-decoration:none;color:#fff}#allow{background:#007a5a}#cancel{background:#888}</style>
</head><body>
<h1>${htmlEscape(this.installTarget.team_name)}</h1>
<p>An app (client <code>${htmlEscape(q.client_id)}</code>) asks for: <code id="scopes">${htmlEscape(q.scope)}</code></p>
<p><a class="button" id="allow" href="/oauth/v2/allow/${id}">Allow</a>
<a class="button" id="cancel" href="/oauth/v2/cancel/${id}">Cancel</a></p>
</body></html>`;
		this.send(res, 200, 'text/html; charset=utf-8', html);
	}

	decide(res, allow, id) {
		const r = this.requests.get(id);
		if (!r) return this.send(res, 400, 'text/plain', 'unknown authorize request');
		this.requests.delete(id);
		const to = new URL(r.redirect_uri);
		if (allow) {
			const code = `${rand(4)}.${rand(8)}`;
			this.codes.set(code, { redirect_uri: r.redirect_uri, scope: r.scope, used: false, expires: Date.now() + CODE_TTL_MS, target: r.target });
			to.searchParams.set('code', code);
		} else {
			to.searchParams.set('error', 'access_denied');
		}
		if (r.state !== undefined) to.searchParams.set('state', r.state);
		this.send(res, 302, 'text/html; charset=utf-8', `<a href="${htmlEscape(to)}">continue</a>`, { Location: to.toString() });
	}

	// A code the fake accepts, as if the authorize page had been allowed.
	issueCode({ redirect_uri, scope = 'commands,chat:write', target = {} } = {}) {
		const code = `${rand(4)}.${rand(8)}`;
		this.codes.set(code, { redirect_uri, scope, used: false, expires: Date.now() + CODE_TTL_MS, target: { ...this.installTarget, ...target } });
		return code;
	}

	oauthAccess(req, body) {
		body = body || {};
		let id = body.client_id;
		let secret = body.client_secret;
		const basic = (req.headers.authorization || '').match(/^Basic (\S+)$/);
		if (basic) {
			const dec = Buffer.from(basic[1], 'base64').toString('utf8');
			const i = dec.indexOf(':');
			id = dec.slice(0, i);
			secret = dec.slice(i + 1);
		}
		if (id !== this.clientId) return { ok: false, error: 'invalid_client_id' };
		if (secret !== this.clientSecret) return { ok: false, error: 'bad_client_secret' };

		if (body.grant_type === 'refresh_token') {
			const r = this.refreshTokens.get(body.refresh_token);
			if (!r || r.revoked) return { ok: false, error: 'invalid_refresh_token' };
			r.revoked = true;
			return this.grant(r.target, r.scope);
		}
		const c = this.codes.get(body.code);
		if (!c || c.used || Date.now() > c.expires) return { ok: false, error: 'invalid_code' };
		if (c.redirect_uri && body.redirect_uri !== c.redirect_uri) return { ok: false, error: 'bad_redirect_uri' };
		c.used = true;
		return this.grant(c.target, c.scope);
	}

	// An org-wide (Enterprise Grid) install: a target with enterprise_id
	// (ids like E0123ABCD) answers team: null and the org; the token is the
	// org's, recorded here under the enterprise id.
	grant(target, scope) {
		const org = target.enterprise_id || null;
		const token = this.issueToken({
			team_id: org || target.team_id,
			bot_user_id: target.bot_user_id,
			expiresIn: this.tokenRotation ? this.tokenExpiresIn : null,
		});
		const out = {
			ok: true,
			app_id: this.appId,
			authed_user: { id: target.user_id },
			scope,
			token_type: 'bot',
			access_token: token,
			bot_user_id: target.bot_user_id,
			team: org ? null : { id: target.team_id, name: target.team_name },
			enterprise: org ? { id: org, name: target.enterprise_name || `Org ${org}` } : null,
			is_enterprise_install: !!org,
		};
		if (this.tokenRotation) {
			const refresh = `xoxe-1-${rand(16)}`;
			this.refreshTokens.set(refresh, { target, scope, revoked: false });
			out.refresh_token = refresh;
			out.expires_in = this.tokenExpiresIn;
		}
		return out;
	}
}

// Web API methods: (args, token record) -> response object.
const METHODS = {
	'auth.test'(a, t) {
		return {
			ok: true,
			url: `https://${t.team_id.toLowerCase()}.slack.com/`,
			team: `Team ${t.team_id}`,
			user: 'conch',
			team_id: t.team_id,
			user_id: t.bot_user_id,
			bot_id: idFor('B', t.bot_user_id),
			is_enterprise_install: false,
		};
	},

	'chat.postMessage'(a, t) {
		let channel = a.channel;
		if (!channel) return { ok: false, error: 'channel_not_found' };
		if (a.text === undefined && a.blocks === undefined && a.attachments === undefined) return { ok: false, error: 'no_text' };
		const refused = this.channelRefusal(channel, false); // dibs-slack: channels the bot is not in
		if (refused) return { ok: false, error: refused };
		if (/^[UW]/.test(channel)) channel = idFor('D', `${t.team_id}:${channel}`);
		const ts = this.nextTs();
		const msg = { type: 'message', ts, text: a.text ?? '', blocks: jsonArg(a.blocks), thread_ts: a.thread_ts, user: t.bot_user_id };
		const list = this.messages.get(channel) || [];
		list.push(msg);
		this.messages.set(channel, list);
		return { ok: true, channel, ts, message: msg };
	},

	'chat.postEphemeral'(a) {
		if (!a.channel) return { ok: false, error: 'channel_not_found' };
		if (!a.user) return { ok: false, error: 'user_not_found' };
		if (a.text === undefined && a.blocks === undefined) return { ok: false, error: 'no_text' };
		const refused = this.channelRefusal(a.channel, true); // dibs-slack: channels the bot is not in
		if (refused) return { ok: false, error: refused };
		return { ok: true, message_ts: this.nextTs() };
	},

	'chat.update'(a) {
		if (!a.channel) return { ok: false, error: 'channel_not_found' };
		const list = this.messages.get(a.channel) || [];
		const msg = list.find((m) => m.ts === a.ts);
		if (!msg) return { ok: false, error: 'message_not_found' };
		if (a.text !== undefined) msg.text = a.text;
		if (a.blocks !== undefined) msg.blocks = jsonArg(a.blocks);
		msg.edited = true;
		return { ok: true, channel: a.channel, ts: a.ts, text: msg.text, message: msg };
	},

	'conversations.open'(a, t) {
		const users = userList(a.users);
		if (users.length === 0) {
			if (a.channel) return { ok: true, channel: { id: a.channel } };
			return { ok: false, error: 'not_enough_users' };
		}
		if (users.length > 8) return { ok: false, error: 'too_many_users' };
		if (users.includes(t.bot_user_id)) return { ok: false, error: 'cannot_dm_bot' };
		for (const u of users) {
			const info = this.userInfo(u);
			if (info === null) return { ok: false, error: 'user_not_found' };
			if (info.deleted) return { ok: false, error: 'user_disabled' };
		}
		if (users.length === 1) return { ok: true, channel: { id: idFor('D', `${t.team_id}:${users[0]}`) } };
		const key = [...new Set(users)].sort().join(',');
		return { ok: true, channel: { id: idFor('G', `${t.team_id}:${key}`), is_mpim: true } };
	},

	'conversations.members'(a) {
		const members = this.members.get(a.channel);
		if (!members) return { ok: false, error: 'channel_not_found' };
		let limit = Number(a.limit ?? 100);
		if (!Number.isInteger(limit) || limit <= 0) limit = 100;
		limit = Math.min(limit, 1000);
		let start = 0;
		if (a.cursor) {
			const m = Buffer.from(String(a.cursor), 'base64').toString('utf8').match(/^offset:(\d+)$/);
			if (!m) return { ok: false, error: 'invalid_cursor' };
			start = Number(m[1]);
		}
		const page = members.slice(start, start + limit);
		const next = start + limit < members.length ? Buffer.from(`offset:${start + limit}`).toString('base64') : '';
		return { ok: true, members: page, response_metadata: { next_cursor: next } };
	},

	'users.info'(a, t) {
		if (!a.user) return { ok: false, error: 'user_not_found' };
		const info = this.userInfo(a.user);
		if (info === null) return { ok: false, error: 'user_not_found' };
		return { ok: true, user: { team_id: t.team_id, ...info } };
	},

	// Tier 2 in Slack; pages of `limit` (default 0 = Slack's own, at most
	// 1000) with an opaque cursor in response_metadata.next_cursor, "" at the end.
	'users.list'(a, t) {
		let limit = Number(a.limit ?? 0);
		if (!Number.isInteger(limit) || limit <= 0) limit = 1000;
		limit = Math.min(limit, 1000);
		let start = 0;
		if (a.cursor) {
			const m = Buffer.from(String(a.cursor), 'base64').toString('utf8').match(/^users:(\d+)$/);
			if (!m) return { ok: false, error: 'invalid_cursor' };
			start = Number(m[1]);
		}
		// An org's token must say which workspace (team_id); a workspace's lists its own.
		const team = /^E/.test(t.team_id) ? a.team_id : t.team_id;
		if (!team) return { ok: false, error: 'missing_argument' };
		const total = this.teamUserCount(team);
		const members = [];
		for (let i = start; i < Math.min(start + limit, total); i++) members.push(this.teamUserAt(team, i, t.bot_user_id));
		const next = start + limit < total ? Buffer.from(`users:${start + limit}`).toString('base64') : '';
		return { ok: true, members, cache_ts: Math.floor(Date.now() / 1000), response_metadata: { next_cursor: next } };
	},

	// --- views.open (dibs-slack): a modal, for a trigger_id (Slack honours
	// one for 3 seconds; the fake accepts any non-empty one) ---
	'views.open'(a) {
		if (!a.trigger_id) return { ok: false, error: 'invalid_trigger_id' };
		const view = jsonArg(a.view);
		if (!view || typeof view !== 'object' || view.type !== 'modal') return { ok: false, error: 'invalid_arguments' };
		if (!Array.isArray(view.blocks) || view.blocks.length > 100) return { ok: false, error: 'invalid_arguments' };
		return { ok: true, view: { id: idFor('V', a.trigger_id), ...view } };
	},
	// --- end views.open ---

	'views.publish'(a) {
		if (!a.user_id) return { ok: false, error: 'invalid_arguments' };
		const view = jsonArg(a.view);
		if (!view || typeof view !== 'object' || view.type !== 'home') return { ok: false, error: 'invalid_arguments' };
		this.views.set(a.user_id, view);
		return { ok: true, view: { id: idFor('V', a.user_id), type: 'home', ...view } };
	},
};

// --- latency, tier limits and held calls ------------------------------------
// (kept apart from the Web API methods above)

Object.assign(FakeSlack.prototype, {
	// Every Web API answer comes after latencyMs: a number, or [min, max]
	// for a uniform random delay (the real API answers in about 0.1-0.3 s).
	latencyDelay() {
		const l = this.latencyMs;
		if (Array.isArray(l)) return l[0] + Math.random() * (l[1] - l[0]);
		return l || 0;
	},

	withLatency(fn, method) {
		if (this.held && this.held.methods.has(method)) {
			this.held.queue.push(fn);
			this.held.count += 1;
			this.notify();
			return;
		}
		const ms = this.latencyDelay();
		if (ms > 0) setTimeout(fn, ms);
		else fn();
	},

	// Holds every call of the given methods (default oauth.v2.access; also
	// 'response_url', the posts to response_url hooks) until release():
	// they are answered then, in arrival order.
	hold(methods = ['oauth.v2.access']) {
		this.held = { methods: new Set(methods), queue: [], count: 0 };
	},

	heldCount() {
		return this.held ? this.held.count : 0;
	},

	release() {
		const h = this.held;
		this.held = null;
		if (h) for (const fn of h.queue) fn();
	},

	// Slack's per-team, per-method limits (tests/lib/slack_tiers.mjs), on
	// when tierLimits is set: over the limit answers 429 + Retry-After.
	overTier(method, team, body, call, finish) {
		if (!this.tierLimits) return false;
		const now = Date.now();
		const checks = [];
		if (method === 'chat.postMessage') {
			const ch = String(body.channel || '');
			checks.push([`${team} ${method} ${ch}`, 1000, POST_MESSAGE.channelBurst]);
			checks.push([`${team} ${method} ${ch}`, 60_000, POST_MESSAGE.channelPerMinute]);
			checks.push([`${team} ${method}`, 60_000, POST_MESSAGE.workspacePerMinute]);
		} else if (METHOD_TIERS[method]) {
			checks.push([`${team} ${method}`, 60_000, Math.floor(TIER_PER_MINUTE[METHOD_TIERS[method]] * TIER_SLACK)]);
		}
		for (const [name, windowMs, max] of checks) {
			const key = `${name}/${windowMs}`;
			const hits = (this.tierHits.get(key) || []).filter((x) => now - x < windowMs);
			this.tierHits.set(key, hits);
			if (hits.length >= max) {
				call.fault = { tierLimited: true };
				finish(429, { ok: false, error: 'ratelimited' }, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
				return true;
			}
		}
		for (const [name, windowMs] of checks) this.tierHits.get(`${name}/${windowMs}`).push(now);
		return false;
	},

	// How many calls the tier limits turned away.
	tierRefusals(method) {
		return this.calls(method).filter((c) => c.fault && c.fault.tierLimited).length;
	},
});

export async function startFakeSlack(opts) {
	return new FakeSlack(opts).listen();
}
