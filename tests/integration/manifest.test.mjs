// bin/conch manifest: the Slack app manifest names every Slack endpoint of
// the route table, every registered slash command and event, and the
// scopes conch asks for at install. The expected sets are read from the
// source (src/routes.c, the slack_register_* calls, src/conf.c's default
// scopes), so a route, command, event or scope added to the code without
// reaching the manifest fails here.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startEnv } from '../lib/env.mjs';
import { ROOT, blockActions, conchEnv, runConch } from '../lib/server.mjs';

const PUBLIC = 'https://conch.example.com';

function sourceFiles(dir) {
	return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
		const p = path.join(dir, e.name);
		if (e.isDirectory()) return sourceFiles(p);
		return e.name.endsWith('.c') ? [p] : [];
	});
}

const SOURCE = sourceFiles(path.join(ROOT, 'src'))
	.map((f) => fs.readFileSync(f, 'utf8'))
	.join('\n');

function registered(fn) {
	const re = new RegExp(`${fn}\\(\\s*"([^"]+)"`, 'g');
	return [...SOURCE.matchAll(re)].map((m) => m[1]).sort();
}

// The Slack-facing routes: what Slack calls and where it sends installers back.
function slackRoutes() {
	const routes = fs.readFileSync(path.join(ROOT, 'src/routes.c'), 'utf8');
	return [...routes.matchAll(/\{"([A-Z]+)", "(\/slack\/[^"]*)"/g)]
		.map((m) => m[2])
		.filter((p) => p !== '/slack/install') // the browser's, not Slack's
		.sort();
}

function defaultScopes() {
	const conf = fs.readFileSync(path.join(ROOT, 'src/conf.c'), 'utf8');
	const row = conf.match(/KEY\(slack_scopes, C_STRING,([\s\S]*?)\),/)[1];
	return [...row.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('').split(',');
}

async function manifest(extra = {}) {
	const env = { ...conchEnv({ slackUrl: 'http://127.0.0.1:9' }), CONCH_PUBLIC_URL: PUBLIC, ...extra };
	delete env.CONCH_SLACK_SIGNING_SECRET; // made before the app (and its secrets) exists
	delete env.CONCH_SLACK_CLIENT_SECRET;
	const r = await runConch(['manifest'], { env });
	assert.deepEqual(r.sanitizer, [], r.stderr);
	assert.equal(r.code, 0, r.stderr);
	return JSON.parse(r.stdout);
}

describe('bin/conch manifest', () => {
	test('names every Slack endpoint, command, event and scope conch serves', async () => {
		const m = await manifest();
		const commands = registered('slack_register_command');
		const events = registered('slack_register_event');
		assert.deepEqual(commands, ['/dibs', '/lunch']);
		assert.ok(events.includes('app_uninstalled') && events.includes('tokens_revoked'));

		assert.deepEqual(m.features.slash_commands.map((c) => c.command).sort(), commands);
		for (const c of m.features.slash_commands) {
			assert.equal(c.url, `${PUBLIC}/slack/commands`);
			assert.ok(c.description.length > 0 && c.usage_hint.length > 0, c.command);
		}
		assert.deepEqual([...m.settings.event_subscriptions.bot_events].sort(), events);
		assert.deepEqual(m.oauth_config.scopes.bot, defaultScopes());

		const named = [
			...m.features.slash_commands.map((c) => c.url),
			m.settings.interactivity.request_url,
			m.settings.event_subscriptions.request_url,
			...m.oauth_config.redirect_urls,
		].map((u) => {
			assert.ok(u.startsWith(`${PUBLIC}/`), u);
			return u.slice(PUBLIC.length);
		});
		assert.deepEqual([...new Set(named)].sort(), slackRoutes());

		assert.equal(m.settings.interactivity.is_enabled, true);
		assert.equal(m.features.app_home.home_tab_enabled, true);
		assert.equal(m.settings.token_rotation_enabled, true);
		assert.equal(m.settings.org_deploy_enabled, true);
		assert.equal(m.display_information.name, 'conch');
	});

	test('the scopes are the slack_scopes key: one list, the install asks for the same', async () => {
		const m = await manifest({ CONCH_SLACK_SCOPES: 'commands, chat:write,,users:read ' });
		assert.deepEqual(m.oauth_config.scopes.bot, ['commands', 'chat:write', 'users:read']);
	});

	test('a misspelt CONCH_ variable and a public_url Slack cannot use are warned about on standard error; the JSON stays whole', async () => {
		const env = conchEnv({ slackUrl: 'http://127.0.0.1:9' });
		delete env.CONCH_PUBLIC_URL;
		env.CONCH_PUBLC_URL = PUBLIC;
		const r = await runConch(['manifest'], { env });
		assert.equal(r.code, 0, r.stderr);
		const m = JSON.parse(r.stdout);
		assert.deepEqual(m.oauth_config.redirect_urls, ['http://127.0.0.1:8080/slack/oauth']);
		const warnings = r.stderr.trim().split('\n').map((l) => JSON.parse(l)).filter((l) => l.level === 'warn').map((l) => l.msg);
		assert.ok(warnings.includes('CONCH_PUBLC_URL is not a configuration key; did you mean CONCH_PUBLIC_URL?'), r.stderr);
		assert.ok(warnings.some((w) => w.startsWith('public_url is http://127.0.0.1:8080: Slack sends requests only to https URLs')), r.stderr);

		const fine = await runConch(['manifest'], { env: { ...conchEnv({ slackUrl: 'http://127.0.0.1:9' }), CONCH_PUBLIC_URL: PUBLIC } });
		assert.equal(fine.code, 0, fine.stderr);
		assert.ok(!/public_url is|not a configuration key/.test(fine.stderr), fine.stderr);
	});

	test('-c FILE: public_url from the file', async () => {
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-manifest-'));
		try {
			const file = path.join(dir, 'conch.conf');
			fs.writeFileSync(file, 'public_url https://from-file.example.org\n');
			const env = conchEnv({ slackUrl: 'http://127.0.0.1:9' });
			const r = await runConch(['manifest', '-c', file], { env });
			assert.equal(r.code, 0, r.stderr);
			const m = JSON.parse(r.stdout);
			assert.deepEqual(m.oauth_config.redirect_urls, ['https://from-file.example.org/slack/oauth']);
			assert.equal(m.settings.event_subscriptions.request_url, 'https://from-file.example.org/slack/events');
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});
});

// The URLs the manifest gives Slack are served: each answers what Slack
// sends there (a running conch; the manifest printed for its public_url).
describe('the manifest URLs on a running conch', () => {
	let env, m;

	before(async () => {
		env = await startEnv({ name: 'manifest', teamPrefix: 'T0MAN' });
		m = await manifest({ CONCH_PUBLIC_URL: env.conch.url });
	});

	after(() => env?.close());

	function pathOf(url) {
		assert.ok(url.startsWith(`${env.conch.url}/`), url);
		return url.slice(env.conch.url.length);
	}

	test('events: the url_verification challenge', async () => {
		const p = pathOf(m.settings.event_subscriptions.request_url);
		const body = JSON.stringify({ type: 'url_verification', challenge: 'manifest-challenge', token: 'x' });
		const r = await env.conch.signedSlackRequest(p, body, { contentType: 'application/json' });
		assert.equal(r.status, 200);
		assert.equal(r.text, 'manifest-challenge');
	});

	test('each slash command at its URL', async () => {
		for (const c of m.features.slash_commands) {
			const r = await env.conch.signedSlackRequest(
				pathOf(c.url),
				new URLSearchParams({ team_id: env.team, user_id: 'U0MANIFST1', channel_id: 'C0MANIFST1', command: c.command, text: 'help', trigger_id: '1.2.3', response_url: env.slack.responseUrl() }).toString(),
			);
			assert.equal(r.status, 200, `${c.command}: ${r.text}`);
			assert.ok(r.json?.text || r.json?.blocks, `${c.command} answered a message: ${r.text}`);
			assert.doesNotMatch(r.text, /Unknown command|isn't installed/);
		}
	});

	test('interactivity: a button payload is acknowledged', async () => {
		const payload = blockActions({ team_id: env.team, user_id: 'U0MANIFST1', action_id: 'manifest.nothing' });
		const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
		const r = await env.conch.signedSlackRequest(pathOf(m.settings.interactivity.request_url), body);
		assert.equal(r.status, 200, r.text);
	});

	test('the redirect URL is the OAuth callback', async () => {
		const r = await env.conch.fetch(`${pathOf(m.oauth_config.redirect_urls[0])}?error=access_denied`);
		assert.equal(r.status, 403);
		assert.match(await r.text(), /Install cancelled/);
	});
});
