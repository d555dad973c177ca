// Add to Slack in headless Chromium, from a fresh database, against the
// fake Slack: the landing page, the authorize page (Allow), /installed, the
// stored installation with its token sealed, then a working `/dibs help`
// and `/dibs on staging` from the team the fake Slack issued; the denied
// install (Cancel) and a replayed callback URL; and uninstall, after which
// a command answers with the install link and calls nothing.
// Screenshots go to tests/output/screenshots/install-*.png.

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SHOTS, DESKTOP, PHONE, closeAll, launchBrowser } from './chromium.mjs';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import {
	TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_TOKEN_KEYS, db, eventEnvelope, sleep, startConch,
} from '../lib/server.mjs';
import { open as vaultOpen } from '../lib/vault.mjs';

const TEAM = 'T0BROWSER1';
const TEAM_NAME = 'Browser Install Co';
const INSTALLER = 'U0INSTALL1';
const BOT = 'U0BOT00001';
const DENIED_TEAM = 'T0DENIED02';
const NAV_TIMEOUT_MS = 15_000;

describe('Add to Slack in a browser', () => {
	let cluster, dbName, dbUrl, slack, conch, sdb, browser, context, page;
	// What the successful install left behind, for the later tests.
	let callbackUrl, oauthCookie, accessToken;

	async function shot(name, size = DESKTOP) {
		const before = page.viewportSize();
		if (before.width !== size.width) await page.setViewportSize(size);
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(overflow <= 0, `${name} at ${size.width}px does not scroll sideways (${overflow}px)`);
		await page.screenshot({ path: path.join(SHOTS, `install-${name}.png`), fullPage: true });
		if (before.width !== size.width) await page.setViewportSize(before);
	}

	function exchanges() {
		return slack.calls('oauth.v2.access').length;
	}

	async function tablesContaining(needle) {
		const tables = await sdb.query(
			`SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition`,
		);
		assert.ok(tables.length > 5, 'the schema is there');
		const hits = [];
		for (const { relname } of tables) {
			const { n } = await sdb.one(`SELECT count(*)::int AS n FROM "${relname}" t WHERE strpos(t::text, $1) > 0`, [needle]);
			if (n > 0) hits.push(relname);
		}
		return hits;
	}

	async function dibs(text, { team = TEAM, user = INSTALLER } = {}) {
		const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0BROWSER1', command: '/dibs', text });
		assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
		assert.ok(r.json, `/dibs ${text}: not JSON: ${r.text}`);
		assert.equal(r.json.response_type, 'ephemeral');
		return [r.json.text, ...(r.json.blocks || []).map((b) => b.text?.text || '')].join('\n');
	}

	// Clicks what navigates and waits for the page to settle on its final URL.
	async function clickAndLand(selector, urlPattern) {
		await Promise.all([page.waitForURL(urlPattern, { timeout: NAV_TIMEOUT_MS }), page.click(selector)]);
		await page.waitForLoadState('load', { timeout: NAV_TIMEOUT_MS });
	}

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_install_browser_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		slack = await startFakeSlack({
			clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET,
			install: { team_id: TEAM, team_name: TEAM_NAME, user_id: INSTALLER, bot_user_id: BOT },
		});
		conch = await startConch({ databaseUrl: dbUrl, slack });
		sdb = db(cluster.superuserUrl(dbName));
		browser = await launchBrowser();
		context = await browser.newContext({ viewport: DESKTOP });
		page = await context.newPage();
		page.setDefaultTimeout(NAV_TIMEOUT_MS);
	});

	after(async () => {
		await closeAll([browser?.close(), conch?.stop(), slack?.close(), sdb?.close()], cluster, dbName);
	});

	test('the landing page shows both apps, the plans and the data promise', async () => {
		const res = await page.goto(`${conch.url}/`);
		assert.equal(res.status(), 200);
		assert.equal(await page.title(), 'Dibs and Lunch Buddies for Slack · conch');
		const cards = await page.locator('.card h3').allTextContents();
		assert.deepEqual(cards, ['Dibs', 'Lunch Buddies']);
		const main = await page.textContent('main');
		assert.match(main, /\/dibs on staging/);
		assert.match(main, /\/lunch start/);

		// The comparison, read as a table: row header -> [free, pro].
		const heads = await page.locator('table thead th').allTextContents();
		assert.deepEqual(heads, ['Feature', 'Free', 'Pro']);
		const rows = {};
		for (const tr of await page.locator('table tbody tr').all()) {
			rows[(await tr.locator('th').textContent()).trim()] = await tr.locator('td').allTextContents();
		}
		assert.deepEqual(rows['Price'], ['Free', '$9 a month']);
		assert.deepEqual(rows['Things to call dibs on'], ['5', 'Unlimited']);
		assert.deepEqual(rows['Holds that end by themselves (for 2h)'], ['No', 'Yes']);
		assert.deepEqual(rows['REST API for CI/CD'], ['No', 'Yes']);
		assert.deepEqual(rows['Lunch poll size'], ['Up to 12 people', 'Unlimited']);

		assert.equal(await page.locator('.promise').textContent(),
			"If you uninstall, we delete your tokens at once and all your workspace's data 30 days later, unless you reinstall.");
		const add = page.locator('a.button', { hasText: 'Add to Slack' });
		assert.equal(await add.count(), 1);
		assert.equal(await add.getAttribute('href'), '/slack/install');
		assert.ok(await add.isVisible());
		await shot('landing');
		await shot('landing-phone', PHONE);
	});

	test('Add to Slack, Allow on the fake Slack page, and land on /installed', async () => {
		// The callback URL, as the browser followed it.
		const seen = (res) => {
			const u = new URL(res.url());
			if (u.origin === conch.url && u.pathname === '/slack/oauth') callbackUrl = res.url();
		};
		page.on('response', seen);
		let state;
		try {
			await clickAndLand('a.button:has-text("Add to Slack")', (u) => u.href.startsWith(slack.authorizeUrl));
			const auth = new URL(page.url());
			assert.equal(auth.searchParams.get('client_id'), TEST_CLIENT_ID);
			assert.equal(auth.searchParams.get('redirect_uri'), `${conch.url}/slack/oauth`);
			state = auth.searchParams.get('state');
			assert.match(state, /^[A-Za-z0-9_-]{43}$/);
			assert.equal(await page.textContent('h1'), TEAM_NAME);
			assert.equal(await page.textContent('#scopes'), 'commands,chat:write,chat:write.public,im:write,mpim:write,users:read,channels:read,groups:read');
			const cookie = (await context.cookies(conch.url)).find((c) => c.name === 'conch_oauth');
			assert.ok(cookie, 'the install set the state cookie in the browser');
			assert.equal(cookie.httpOnly, true);
			assert.equal(cookie.sameSite, 'Lax');
			oauthCookie = cookie.value;
			await shot('authorize');

			const before = exchanges();
			await clickAndLand('#allow', (u) => u.origin === conch.url && u.pathname === '/installed');
			assert.equal(exchanges(), before + 1, 'one code exchange');
		} finally {
			page.off('response', seen);
		}
		assert.ok(callbackUrl, 'the browser went through /slack/oauth');
		const back = new URL(callbackUrl).searchParams;
		assert.equal(back.get('state'), state, 'Slack sent the state back');
		assert.equal(back.get('code'), slack.calls('oauth.v2.access').at(-1).body.code, 'the code exchanged is the one sent back');
		assert.equal(new URL(page.url()).searchParams.get('team'), TEAM_NAME);
		assert.equal(await page.textContent('h1'), `✓ conch is installed in ${TEAM_NAME}`);
		const main = await page.textContent('main');
		assert.match(main, /welcome message from conch in Slack/);
		assert.match(main, /\/dibs on staging/);
		assert.match(main, /\/lunch start/);
		assert.match(main, /\/dibs help/);
		assert.match(main, /30 days later, unless you reinstall/);
		assert.doesNotMatch(await page.content(), /xox[a-z]-/, 'no token on the page');
		const cookies = await context.cookies(conch.url);
		assert.equal(cookies.find((c) => c.name === 'conch_oauth'), undefined, 'the state cookie is gone');
		await shot('installed');
		await shot('installed-phone', PHONE);
	});

	test('the installation is stored with its token sealed, and the welcome DM went out with it', async () => {
		const call = slack.calls('oauth.v2.access').at(-1);
		assert.equal(call.response.ok, true);
		assert.equal(call.response.team.id, TEAM);
		accessToken = call.response.access_token;
		assert.match(accessToken, /^xoxb-/);

		const inst = await sdb.one('SELECT * FROM installations WHERE team_id = $1', [TEAM]);
		assert.ok(inst, 'an installation row');
		assert.equal(inst.active, true);
		assert.equal(inst.bot_user_id, BOT);
		assert.equal(inst.installer_user_id, INSTALLER);
		assert.equal(inst.refresh_token, null);
		assert.match(inst.bot_token, /^v1\.1\.[A-Za-z0-9+/=]+$/);
		assert.equal(vaultOpen(TEST_TOKEN_KEYS, inst.bot_token, TEAM, 'bot_token'), accessToken);
		const team = await sdb.one('SELECT * FROM teams WHERE team_id = $1', [TEAM]);
		assert.equal(team.name, TEAM_NAME);
		assert.equal(team.plan, 'free');
		assert.ok(team.installed_at);
		assert.equal(team.uninstalled_at, null);

		assert.deepEqual(await tablesContaining('xoxb-'), [], 'no table holds a plaintext bot token');
		assert.deepEqual(await tablesContaining(accessToken.slice(5)), [], 'nor any part of it after the prefix');

		const [dm] = await slack.waitFor(() => {
			const c = slack.calls('chat.postMessage').filter((x) => x.body?.channel === INSTALLER && x.status === 200);
			return c.length ? c : null;
		}, 10_000, 'the welcome DM');
		assert.equal(dm.headers.authorization, `Bearer ${accessToken}`);
		assert.equal(dm.team_id, TEAM);
		assert.match(JSON.stringify(dm.body), /\/dibs on staging/);
	});

	test('/dibs help and /dibs on staging work for the team the fake Slack issued', async () => {
		const help = await dibs('help');
		assert.match(help, /\*Dibs: take turns on shared things\*/);
		for (const form of ['on', 'off', 'list', 'q', 'extend', 'kick', 'remove', 'token', 'upgrade', 'help'])
			assert.match(help, new RegExp(`/dibs ${form}\\b`), form);
		assert.doesNotMatch(help, /slack\/install/);

		assert.match(await dibs('on staging'), /^\*staging\* is yours\. `\/dibs off staging` when you are done\./);
		const hold = await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [TEAM, 'staging']);
		assert.equal(hold.user_id, INSTALLER);
		assert.match(await dibs('list'), /\*staging\*\s+held by <@U0INSTALL1>/);
	});

	test('replaying the callback URL shows an error page and asks Slack nothing', async () => {
		const inst = await sdb.one('SELECT bot_token, updated_at FROM installations WHERE team_id = $1', [TEAM]);
		const before = exchanges();

		// Back in history, then the callback URL again, as the browser has it now.
		await page.goBack();
		let res = await page.goto(callbackUrl);
		assert.equal(res.status(), 400);
		assert.equal(await page.textContent('h1'), 'This install link has expired');
		assert.match(await page.textContent('main'), /expired or was already used/);
		assert.equal(await page.locator('a.button').getAttribute('href'), '/slack/install');
		await shot('reused');

		// Even with the state cookie put back, the state is used up.
		await context.addCookies([{ name: 'conch_oauth', value: oauthCookie, url: conch.url, httpOnly: true, sameSite: 'Lax' }]);
		res = await page.goto(callbackUrl);
		assert.equal(res.status(), 400);
		assert.equal(await page.textContent('h1'), 'This install link has expired');

		await sleep(300);
		assert.equal(exchanges(), before, 'no second oauth.v2.access call');
		const now = await sdb.one('SELECT bot_token, updated_at FROM installations WHERE team_id = $1', [TEAM]);
		assert.deepEqual(now, inst, 'the installation is untouched');
	});

	test('Cancel on the fake Slack page shows "install cancelled" and stores nothing', async () => {
		slack.setInstallTarget({ team_id: DENIED_TEAM, team_name: 'Denied Co' });
		const before = exchanges();
		await page.goto(`${conch.url}/`);
		await clickAndLand('a.button:has-text("Add to Slack")', (u) => u.href.startsWith(slack.authorizeUrl));
		assert.equal(await page.textContent('h1'), 'Denied Co');
		const [res] = await Promise.all([
			page.waitForResponse((r) => r.url().startsWith(`${conch.url}/slack/oauth`), { timeout: NAV_TIMEOUT_MS }),
			page.click('#cancel'),
		]);
		await page.waitForLoadState('load');
		assert.equal(res.status(), 403);
		assert.equal(new URL(page.url()).searchParams.get('error'), 'access_denied');
		assert.equal(await page.textContent('h1'), 'Install cancelled');
		assert.match(await page.textContent('main'), /nothing was stored/);
		assert.equal(await page.locator('a.button').getAttribute('href'), '/slack/install');
		await shot('denied');

		assert.equal(exchanges(), before, 'no code exchange');
		assert.equal(await sdb.count('teams', 'team_id = $1', [DENIED_TEAM]), 0);
		assert.equal(await sdb.count('installations', 'team_id = $1', [DENIED_TEAM]), 0);
		assert.equal(await sdb.count('jobs', 'team_id = $1', [DENIED_TEAM]), 0);
	});

	test('after uninstall a command answers with the install link and makes no Slack call', async () => {
		const r = await conch.event(eventEnvelope(TEAM, { type: 'app_uninstalled' }));
		assert.equal(r.status, 200);
		const inst = await sdb.one('SELECT active, bot_token FROM installations WHERE team_id = $1', [TEAM]);
		assert.deepEqual(inst, { active: false, bot_token: null });

		const calls = slack.calls().length;
		for (const text of ['help', 'on staging', 'off staging', 'list']) {
			const reply = await dibs(text);
			assert.match(reply, new RegExp(`isn't installed in this workspace yet\\. Install it: ${conch.url}/slack/install`), text);
		}
		await sleep(700);
		assert.deepEqual(slack.calls().slice(calls).map((c) => c.method), [], 'no Slack call');
		const hold = await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [TEAM, 'staging']);
		assert.equal(hold.user_id, INSTALLER, 'nothing changed');
	});

	test('an org-wide install lands on /installed, which sends the org admin to add conch to workspaces', async () => {
		const org = 'E0123ABCD';
		slack.setInstallTarget({ enterprise_id: org, enterprise_name: 'Browser Org', user_id: 'W0ORGADMN1', bot_user_id: 'W0ORGBOT01' });
		try {
			await page.goto(`${conch.url}/`);
			await clickAndLand('a.button:has-text("Add to Slack")', (u) => u.href.startsWith(slack.authorizeUrl));
			await clickAndLand('#allow', (u) => u.origin === conch.url && u.pathname === '/installed');
		} finally {
			slack.setInstallTarget({ enterprise_id: undefined });
		}
		assert.equal(await page.textContent('h1'), '✓ conch is installed for your org, Browser Org');
		const next = page.locator('#org-next');
		assert.ok(await next.isVisible());
		assert.match(await next.textContent(), /in no workspace yet/);
		const link = page.locator('#org-add-link');
		assert.ok(await link.isVisible());
		assert.equal(await link.getAttribute('href'), `https://app.slack.com/manage/${org}/integrations/profile/A0CONCH01/workspaces/add`);
		assert.match(await page.textContent('main'), /\/dibs on staging/);
		// The line after the box stands apart from it (it was glued to its border).
		const gap = await page.evaluate(() => {
			const box = document.querySelector('#org-next').getBoundingClientRect();
			return document.querySelector('#org-next + .lead').getBoundingClientRect().top - box.bottom;
		});
		assert.ok(gap >= 16, `gap under the org box: ${gap}px`);
		const inst = await sdb.one('SELECT active, bot_user_id FROM installations WHERE team_id = $1', [org]);
		assert.deepEqual(inst, { active: true, bot_user_id: 'W0ORGBOT01' });
		await shot('installed-org');
		await shot('installed-org-phone', PHONE);
	});

	test('the server stops cleanly and never logged a token', async () => {
		assert.ok(accessToken);
		assert.ok(!conch.stderr.includes(accessToken), 'the bot token is not in the log');
		assert.doesNotMatch(conch.stderr, /xox[a-z]-/);
		await conch.stop();
	});
});
