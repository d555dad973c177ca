// Installs that lack a scope conch now asks for (slack_scopes grew since
// they installed): at start, the oauth.scopes_check job sends the installer
// of each one DM naming the missing scopes with the reinstall link, once
// per install: not again on a restart, and again only after a reinstall
// that still lacks one.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnv } from '../lib/env.mjs';
import { installTeam, startConch, waitUntil } from '../lib/server.mjs';

const ALL = 'commands,chat:write,chat:write.public,im:write,mpim:write,users:read,channels:read,groups:read';
const OLD = { team_id: 'T0SCOPEOLD', installer_user_id: 'U0OLDINST1', scopes: 'commands,chat:write,im:write,mpim:write,channels:read,groups:read' };
const FULL = { team_id: 'T0SCOPEALL', installer_user_id: 'U0ALLINST1', scopes: ALL };
const GONE = { team_id: 'T0SCOPEGON', installer_user_id: 'U0GONINST1', scopes: 'commands' };

let env, dbUrl, slack, conch, sdb;

before(async () => {
	env = await startEnv({ name: 'scopes', teamPrefix: 'T0SCP' });
	({ dbUrl, slack, conch, sdb } = env);
	// The installs exist before the start under test (the one below ran
	// its check before they did).
	await conch.stop();
	for (const t of [OLD, FULL, GONE]) await installTeam(dbUrl, { ...t, token: slack.issueToken({ team_id: t.team_id }) });
	// An uninstalled team is not asked to reinstall.
	await sdb.query('UPDATE teams SET uninstalled_at = now() WHERE team_id = $1', [GONE.team_id]);
});

after(() => env?.close());

function dmsTo(t) {
	return slack.calls('chat.postMessage').filter((c) => c.team_id === t.team_id && c.body?.channel === t.installer_user_id);
}

// Starts conch and waits until this start's scopes check and the DMs it
// queued are done.
async function startAndCheck() {
	const before = await sdb.count('jobs', "kind = 'oauth.scopes_check'");
	conch = env.conch = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
	await waitUntil(async () => (await sdb.count('jobs', "kind = 'oauth.scopes_check' AND state = 'done'")) === before + 1, {
		what: 'the scopes check of this start',
	});
	await waitUntil(async () => (await sdb.count('jobs', "kind = 'slack.call' AND state NOT IN ('done', 'dead')")) === 0, {
		what: 'the queued DMs',
	});
}

test('an install lacking scopes gets one DM with the missing scopes and the reinstall link', async () => {
	await startAndCheck();
	const dms = dmsTo(OLD);
	assert.equal(dms.length, 1);
	assert.match(dms[0].body.text, /`chat:write\.public,users:read`/);
	assert.ok(dms[0].body.text.includes(`<${conch.url}/slack/install|Add to Slack>`), dms[0].body.text);
	assert.equal(dmsTo(FULL).length, 0);
	assert.equal(dmsTo(GONE).length, 0);
	const marked = await sdb.one('SELECT scopes_notified_at FROM installations WHERE team_id = $1', [OLD.team_id]);
	assert.ok(marked.scopes_notified_at);
});

test('a restart does not send it again', async () => {
	await conch.stop();
	await startAndCheck();
	assert.equal(dmsTo(OLD).length, 1);
	assert.equal(dmsTo(FULL).length, 0);
});

test('a reinstall that grants everything gets none; one that still lacks a scope gets one more', async () => {
	await installTeam(dbUrl, { ...OLD, scopes: ALL, token: slack.issueToken({ team_id: OLD.team_id }) });
	await sdb.query('UPDATE installations SET installed_at = now() WHERE team_id = $1', [OLD.team_id]);
	await conch.stop();
	await startAndCheck();
	assert.equal(dmsTo(OLD).length, 1);

	await installTeam(dbUrl, { ...OLD, scopes: 'commands,chat:write', token: slack.issueToken({ team_id: OLD.team_id }) });
	await sdb.query('UPDATE installations SET installed_at = now() WHERE team_id = $1', [OLD.team_id]);
	await conch.stop();
	await startAndCheck();
	const dms = dmsTo(OLD);
	assert.equal(dms.length, 2);
	assert.match(dms[1].body.text, /`chat:write\.public,im:write,mpim:write,users:read,channels:read,groups:read`/);
});
