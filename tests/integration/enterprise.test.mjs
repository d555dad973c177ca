// Org-wide (Enterprise Grid) installs against the fake Slack's enterprise
// answers (is_enterprise_install: true, enterprise.id, team: null): the
// token is stored under the org; each workspace of the org is its own team
// and uses the org's token for commands, buttons and events; the installed
// page sends the org admin to add conch to workspaces; an org-level
// app_uninstalled or tokens_revoked removes the org and its workspaces.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startEnv } from '../lib/env.mjs';
import { TEST_TOKEN_KEYS, blockActions, eventEnvelope, installTeam, waitUntil } from '../lib/server.mjs';
import { open as vaultOpen } from '../lib/vault.mjs';

const ORG = 'E0123ABCD';
const ORG_BOT = 'W0ORGBOT01';
const ADMIN = 'W0ORGADMN1';
const WS1 = 'T0ORGWS001';
const WS2 = 'T0ORGWS002';
const CHANNEL = 'C0ORG00001';

let env, slack, conch, sdb;

before(async () => {
	env = await startEnv({ name: 'org', teamPrefix: 'T0SOLO' });
	({ slack, conch, sdb } = env);
});

after(() => env?.close());

// --- helpers -------------------------------------------------------------------

async function installOrg() {
	slack.setInstallTarget({ enterprise_id: ORG, enterprise_name: 'Acme Org', user_id: ADMIN, bot_user_id: ORG_BOT });
	const begun = await conch.fetch('/slack/install');
	await begun.text();
	const cookie = begun.headers.getSetCookie().find((h) => h.startsWith('conch_oauth=')).split(';')[0];
	const back = new URL(await slack.authorize(begun.headers.get('location')));
	const r = await conch.fetch(back.pathname + back.search, { headers: { cookie } });
	const text = await r.text();
	assert.equal(r.status, 302, `callback answered ${r.status}: ${text}`);
	return r.headers.get('location');
}

// A command from a workspace of the org, as Slack sends it for an org-wide install.
async function dibs(text, { team = WS1, user = 'W0ALICE001', org = ORG } = {}) {
	const r = await conch.slashCommand({
		team_id: team, user_id: user, channel_id: CHANNEL, command: '/dibs', text,
		enterprise_id: org ?? '', is_enterprise_install: org ? 'true' : 'false',
	});
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return [r.json.text, ...(r.json.blocks || []).map((b) => b.text?.text || '')].join('\n');
}

function orgEnvelope(team, ev) {
	return {
		team_id: team,
		enterprise_id: ORG,
		api_app_id: 'A0CONCH01',
		event: ev,
		type: 'event_callback',
		event_id: `Ev${randomBytes(6).toString('hex').toUpperCase()}`,
		event_time: Math.floor(Date.now() / 1000),
		authorizations: [{ enterprise_id: ORG, team_id: null, user_id: ORG_BOT, is_bot: true, is_enterprise_install: true }],
	};
}

function orgCalls(method, pred = () => true) {
	return slack.calls(method).filter((c) => c.team_id === ORG && pred(c));
}

// --- tests ---------------------------------------------------------------------

describe('an org-wide install', () => {
	test('stores the org token under the enterprise and lands on a page that says to add workspaces', async () => {
		const location = await installOrg();
		assert.equal(location, `/installed?team=Acme%20Org&org=${ORG}&app=A0CONCH01`);
		const inst = await sdb.one('SELECT * FROM installations WHERE team_id = $1', [ORG]);
		assert.equal(inst.active, true);
		assert.equal(inst.bot_user_id, ORG_BOT);
		assert.equal(inst.installer_user_id, ADMIN);
		const answer = slack.calls('oauth.v2.access').at(-1).response;
		assert.equal(answer.is_enterprise_install, true);
		assert.equal(answer.team, null);
		assert.equal(vaultOpen(TEST_TOKEN_KEYS, inst.bot_token, ORG, 'bot_token'), answer.access_token);
		assert.equal((await sdb.one('SELECT name FROM teams WHERE team_id = $1', [ORG])).name, 'Acme Org');
		// No workspace exists until one uses conch.
		assert.equal(await sdb.count('teams', 'enterprise_id = $1', [ORG]), 0);

		const page = await conch.fetch(location);
		const html = await page.text();
		assert.equal(page.status, 200);
		assert.match(html, /installed for your org, Acme Org/);
		assert.ok(html.includes(`href="https://app.slack.com/manage/${ORG}/integrations/profile/A0CONCH01/workspaces/add"`));

		// The welcome DM goes to the org admin with the org's token, and says
		// to add conch to workspaces.
		await slack.waitFor(() => orgCalls('chat.postMessage', (c) => c.body?.channel === ADMIN).length === 1);
		assert.match(JSON.stringify(orgCalls('chat.postMessage')[0].body), /adds it to workspaces/);
	});

	test('/installed makes no link from ids that are not Slack ids', async () => {
		const html = await (await conch.fetch('/installed?team=X&org=E0%22%3E&app=A0CONCH01')).text();
		assert.doesNotMatch(html, /app\.slack\.com/);
		assert.doesNotMatch(html, /installed for your org/);
		const noApp = await (await conch.fetch(`/installed?team=X&org=${ORG}&app=nope`)).text();
		assert.match(noApp, /installed for your org/);
		assert.doesNotMatch(noApp, /app\.slack\.com/);
	});

	test('each workspace of the org is its own team and uses the org token', async () => {
		assert.match(await dibs('on staging', { user: 'W0ALICE001' }), /\*staging\* is yours/);
		assert.match(await dibs('on staging', { user: 'W0BOB00001' }), /#1 in the queue/);
		// The same name in another workspace of the org is another thing.
		assert.match(await dibs('on staging', { team: WS2, user: 'W0CAROL001' }), /\*staging\* is yours/);
		const teams = await sdb.query('SELECT team_id, enterprise_id, plan FROM teams WHERE enterprise_id = $1 ORDER BY 1', [ORG]);
		assert.deepEqual(teams, [
			{ team_id: WS1, enterprise_id: ORG, plan: 'free' },
			{ team_id: WS2, enterprise_id: ORG, plan: 'free' },
		]);
		assert.equal(await sdb.count('things', 'team_id = $1', [WS1]), 1);
		assert.equal(await sdb.count('things', 'team_id = $1', [WS2]), 1);
		assert.equal(await sdb.count('installations', 'team_id IN ($1, $2)', [WS1, WS2]), 0);

		// Alice lets go: Bob's DM is sent with the org's token, and its
		// button (a payload from the org install) works.
		assert.match(await dibs('off staging', { user: 'W0ALICE001' }), /now <@W0BOB00001>'s/);
		const [dm] = await slack.waitFor(() => {
			const dms = orgCalls('chat.postMessage', (c) => c.body?.channel === 'W0BOB00001');
			return dms.length ? dms : null;
		});
		const release = (dm.body.blocks || []).filter((b) => b.type === 'actions').flatMap((b) => b.elements).find((e) => e.action_id === 'dibs.release');
		assert.ok(release, 'the DM has a Release button');
		const payload = {
			...blockActions({ team_id: WS1, user_id: 'W0BOB00001', channel_id: dm.body.channel, action_id: 'dibs.release', value: release.value }),
			enterprise: { id: ORG, name: 'Acme Org' },
			is_enterprise_install: true,
		};
		const r = await conch.interactivity(payload);
		assert.equal(r.status, 200, r.text);
		await waitUntil(async () => (await sdb.count('holds', 'team_id = $1', [WS1])) === 0, { what: 'the release' });
		assert.equal(await sdb.count('holds', 'team_id = $1', [WS2]), 1);
	});

	test("a workspace's member directory is listed with the org token, naming the workspace", async () => {
		slack.setUser('W0DIRADMN1', { team_id: WS1, is_admin: true });
		slack.setUser('W0OTHERWS1', { team_id: WS2 });
		const [job] = await sdb.query(
			`INSERT INTO jobs (kind, team_id, payload, due_at, dedupe_key)
			 VALUES ('members.sync', $1, '{"listed": 0}', now(), 'members.sync:org-test') RETURNING id`,
			[WS1],
		);
		await waitUntil(async () => (await sdb.one('SELECT state FROM jobs WHERE id = $1', [job.id])).state === 'done', { what: 'the sync' });
		const [call] = orgCalls('users.list').slice(-1);
		assert.equal(call.body.team_id, WS1);
		const members = await sdb.query('SELECT user_id, is_admin FROM members WHERE team_id = $1 ORDER BY 1', [WS1]);
		assert.ok(members.some((m) => m.user_id === 'W0DIRADMN1' && m.is_admin), JSON.stringify(members));
		assert.ok(!members.some((m) => m.user_id === 'W0OTHERWS1'), 'only that workspace');
		assert.equal(await sdb.count('members', 'team_id = $1', [WS2]), 0);
	});

	test('an event from a workspace of the org is answered with the org token', async () => {
		const before = orgCalls('views.publish').length;
		const r = await conch.event(orgEnvelope(WS2, { type: 'app_home_opened', user: 'W0CAROL001', channel: 'D0CAROL001', tab: 'home' }));
		assert.equal(r.status, 200, r.text);
		const [call] = await slack.waitFor(() => {
			const calls = orgCalls('views.publish').slice(before);
			return calls.length ? calls : null;
		});
		assert.equal(call.body.user_id, 'W0CAROL001');
		assert.match(JSON.stringify(call.body.view), /staging/);
	});

	test('another org, or the workspace without the org flag, is not installed', async () => {
		assert.match(await dibs('list', { team: 'T0OTHER001', org: 'E0OTHER01' }), /isn't installed/);
		assert.match(await dibs('list', { team: 'T0OTHER002', org: null }), /isn't installed/);
		assert.equal(await sdb.count('teams', 'team_id IN ($1, $2)', ['T0OTHER001', 'T0OTHER002']), 0);
	});

	test("a workspace's own uninstall never takes the org's installation with it", async () => {
		const WS3 = 'T0ORGWS003';
		// Installed on its own once (that token since refused), now in the org.
		await installTeam(env.dbUrl, { team_id: WS3, token: slack.issueToken({ team_id: WS3 }) });
		await sdb.query("UPDATE installations SET active = false, bot_token = NULL, inactive_reason = 'token_revoked' WHERE team_id = $1", [WS3]);
		assert.match(await dibs('on ws3-thing', { team: WS3 }), /is yours/);
		assert.equal((await sdb.one('SELECT enterprise_id FROM teams WHERE team_id = $1', [WS3])).enterprise_id, ORG);
		const r = await conch.event(eventEnvelope(WS3, { type: 'app_uninstalled' }));
		assert.equal(r.status, 200, r.text);
		assert.ok((await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [WS3])).uninstalled_at);
		const org = await sdb.one('SELECT active, bot_token FROM installations WHERE team_id = $1', [ORG]);
		assert.equal(org.active, true);
		assert.ok(org.bot_token);
		assert.match(await dibs('list'), /\*staging\*/, 'the other workspaces still work');
	});

	test('an org-level app_uninstalled removes the org token and uninstalls every workspace', async () => {
		const env = orgEnvelope(null, { type: 'app_uninstalled' });
		delete env.team_id;
		const r = await conch.event(env);
		assert.equal(r.status, 200, r.text);
		const inst = await sdb.one('SELECT active, bot_token FROM installations WHERE team_id = $1', [ORG]);
		assert.equal(inst.active, false);
		assert.equal(inst.bot_token, null);
		for (const team of [ORG, WS1, WS2]) {
			assert.ok((await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [team])).uninstalled_at, `${team} uninstalled`);
			assert.equal(await sdb.count('jobs', "kind = 'team.purge' AND team_id = $1", [team]), 1, `${team} purge scheduled`);
		}
		assert.match(await dibs('list'), /isn't installed/);
	});

	test('a reinstall brings the workspaces back; an org-level tokens_revoked removes it again', async () => {
		await installOrg();
		assert.match(await dibs('list'), /\*staging\*/);
		assert.equal((await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [WS1])).uninstalled_at, null);
		// A tokens_revoked naming another bot changes nothing.
		let r = await conch.event(orgEnvelope(WS1, { type: 'tokens_revoked', tokens: { bot: ['W0NOTOURS1'] } }));
		assert.equal(r.status, 200, r.text);
		assert.equal((await sdb.one('SELECT active FROM installations WHERE team_id = $1', [ORG])).active, true);
		assert.equal((await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [WS1])).uninstalled_at, null);

		r = await conch.event(orgEnvelope(WS1, { type: 'tokens_revoked', tokens: { bot: [ORG_BOT] } }));
		assert.equal(r.status, 200, r.text);
		assert.equal((await sdb.one('SELECT active FROM installations WHERE team_id = $1', [ORG])).active, false);
		assert.ok((await sdb.one('SELECT uninstalled_at FROM teams WHERE team_id = $1', [WS2])).uninstalled_at);
		assert.match(await dibs('list', { team: WS2 }), /isn't installed/);
	});
});
