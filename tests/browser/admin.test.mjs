// The operator pages in headless Chromium, from a fresh database: an
// account made with `conch admin-user`, a wrong then the right password,
// the teams list with a test team, the team's page, the dead jobs, a retry
// that queues the job, and a form posted without its CSRF token refused.
// Screenshots go to tests/output/screenshots/admin-*.png.

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SHOTS, closeAll, launchBrowser } from './chromium.mjs';
import { testCluster } from '../lib/pg.mjs';
import { conchEnv, db, installTeam, runConch, startConch } from '../lib/server.mjs';

const PASSWORD = 'a long operator passphrase';
const TEAM = 'TBROWSER01';
const TEAM_NAME = 'Browser Test Team';

describe('operator pages in a browser', () => {
	let cluster, dbName, dbUrl, conch, sdb, browser, page, deadJob, otherDeadJob;

	async function shot(name) {
		await page.screenshot({ path: path.join(SHOTS, `admin-${name}.png`), fullPage: true });
	}

	async function jobState(id) {
		return (await sdb.one('SELECT state FROM jobs WHERE id = $1', [id])).state;
	}

	async function insertDeadJob(payload) {
		// attempts 5 of 8: once retried, the runner (which has no handler
		// for this kind) requeues it with about a minute of backoff.
		const row = await sdb.one(
			`INSERT INTO jobs (kind, team_id, payload, state, attempts, max_attempts, last_error, finished_at)
			 VALUES ('admin.browser', $1, $2, 'dead', 5, 8, 'slack said invalid_auth', now()) RETURNING id`,
			[TEAM, JSON.stringify(payload)],
		);
		return Number(row.id);
	}

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_admin_browser_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		conch = await startConch({ databaseUrl: dbUrl });
		sdb = db(cluster.superuserUrl(dbName));

		const made = await runConch(['admin-user', 'operator'], { env: conchEnv({ databaseUrl: dbUrl }), input: `${PASSWORD}\n` });
		assert.equal(made.code, 0, made.stderr);
		assert.equal(made.stdout.trim(), 'admin user operator created');

		await installTeam(dbUrl, { team_id: TEAM, name: TEAM_NAME, token: `xoxb-${randomBytes(8).toString('hex')}` });
		await sdb.query(`INSERT INTO things (team_id, name, display_name) VALUES ($1, 'staging', 'staging')`, [TEAM]);
		deadJob = await insertDeadJob({ thing: 'staging', bot_token: 'xoxb-should-never-show' });
		otherDeadJob = await insertDeadJob({ thing: 'staging' });

		browser = await launchBrowser();
		const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
		page = await context.newPage();
	});

	after(async () => {
		await closeAll([browser?.close(), conch?.stop(), sdb?.close()], cluster, dbName);
	});

	async function sessionCookie() {
		return (await page.context().cookies()).find((c) => c.name === 'conch_admin');
	}

	test('a wrong password is refused, the right one signs in', async () => {
		await page.goto(`${conch.url}/admin`);
		assert.equal(new URL(page.url()).pathname, '/admin/login', 'sent to the sign-in page');
		await shot('login');

		await page.fill('input[name="name"]', 'operator');
		await page.fill('input[name="password"]', 'not the right passphrase');
		const wrong = await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
		assert.equal(wrong[0].status(), 401);
		assert.match(await page.textContent('.error'), /Wrong name or password/);
		assert.equal(await sessionCookie(), undefined);
		await shot('login-wrong');

		await page.fill('input[name="password"]', PASSWORD);
		await Promise.all([page.waitForNavigation(), page.click('button[type="submit"]')]);
		assert.equal(new URL(page.url()).pathname, '/admin');
		assert.equal(await page.textContent('h1'), 'Overview');
		const cookie = await sessionCookie();
		assert.ok(cookie, 'a session cookie');
		assert.equal(cookie.httpOnly, true);
		assert.equal(cookie.sameSite, 'Lax');
		await shot('home');
	});

	test('after repeated failures from this address the sign-in page says how long to wait', async () => {
		// Twelve recorded failures for this name from 127.0.0.1 (the browser):
		// the wait has grown to its cap, login_backoff_max_seconds (300 s).
		await sdb.query("INSERT INTO admin_login_failures (key) SELECT 'pair:operator@127.0.0.1' FROM generate_series(1, 12)");
		const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
		const fresh = await context.newPage();
		try {
			await fresh.goto(`${conch.url}/admin/login`);
			await fresh.fill('input[name="name"]', 'operator');
			await fresh.fill('input[name="password"]', PASSWORD);
			const [answer] = await Promise.all([fresh.waitForNavigation(), fresh.click('button[type="submit"]')]);
			assert.equal(answer.status(), 429);
			assert.match(await fresh.textContent('.error'), /Too many failed attempts: wait 5 minutes and try again/);
			assert.equal(await fresh.inputValue('input[name="name"]'), 'operator', 'the name is kept');
			await fresh.screenshot({ path: path.join(SHOTS, 'admin-login-wait.png'), fullPage: true });
		} finally {
			await sdb.query('DELETE FROM admin_login_failures');
			await context.close();
		}
	});

	test('the teams list shows the test team, and its page opens', async () => {
		await Promise.all([page.waitForNavigation(), page.click('nav >> text=Teams')]);
		const row = page.locator('tbody tr', { hasText: TEAM });
		assert.equal(await row.count(), 1);
		assert.match(await row.textContent(), new RegExp(TEAM_NAME));
		assert.match(await row.textContent(), /installed/);
		await shot('teams');

		await page.fill('input[name="q"]', 'browser');
		await Promise.all([page.waitForNavigation(), page.click('form.filter button')]);
		assert.deepEqual(await page.locator('tbody tr td:first-child').allTextContents(), [TEAM]);

		await Promise.all([page.waitForNavigation(), page.click(`a[href="/admin/teams/${TEAM}"]`)]);
		assert.match(await page.textContent('h1'), new RegExp(TEAM_NAME));
		const text = await page.textContent('main');
		assert.match(text, /stored, encrypted/);
		assert.match(text, /staging/);
		assert.match(text, new RegExp(`${deadJob}`));
		assert.doesNotMatch(await page.content(), /xoxb-/, 'no token on the page');
		await shot('team');
	});

	test('retrying a dead job queues it', async () => {
		await Promise.all([page.waitForNavigation(), page.click('nav >> text=Jobs')]);
		await Promise.all([page.waitForNavigation(), page.click('.tabs a:has-text("dead")')]);
		assert.match(page.url(), /state=dead/);
		const row = page.locator(`#job-${deadJob}`);
		assert.equal(await row.count(), 1);
		assert.match(await row.textContent(), /\[redacted\]/);
		await shot('jobs-dead');

		await Promise.all([page.waitForNavigation(), row.locator('button:has-text("Retry")').click()]);
		assert.match(await page.textContent('.notice'), new RegExp(`Job ${deadJob} is queued to run now`));
		assert.equal(await page.locator(`#job-${deadJob}`).count(), 0, 'no longer dead');
		await shot('jobs-retried');

		await Promise.all([page.waitForNavigation(), page.click('.tabs a:has-text("queued")')]);
		const queued = page.locator(`#job-${deadJob}`);
		assert.equal(await queued.count(), 1, 'listed as queued');
		assert.match(await queued.textContent(), /queued/);
		assert.ok(['queued', 'running'].includes(await jobState(deadJob)));
		await shot('jobs-queued');
	});

	// Stored but not applied is normal Stripe traffic (an invoice.paid, an
	// out-of-order update): both pages show those events as not applied.
	test('webhook events that were not applied show so on the webhooks and team pages', async () => {
		const events = [
			['evt_browser_invoice', 'invoice.paid', 'not a subscription event', 'now()'],
			['evt_browser_late', 'customer.subscription.updated', 'older than the stored state', 'now()'],
			['evt_browser_ok', 'customer.subscription.created', null, 'now()'],
		];
		for (const [id, type, error, processed] of events)
			await sdb.query(
				`INSERT INTO stripe_events (event_id, type, created, team_id, payload, processed_at, error)
				 VALUES ($1, $2, 1700000000, $3, '{}', ${processed}, $4)`,
				[id, type, TEAM, error],
			);
		for (const [p, name] of [['/admin/webhooks', 'webhooks'], [`/admin/teams/${TEAM}`, 'team-events']]) {
			const res = await page.goto(`${conch.url}${p}`);
			assert.equal(res.status(), 200, p);
			for (const [id, , error] of events.slice(0, 2)) {
				const text = await page.locator('tbody tr', { hasText: id }).textContent();
				assert.match(text, /not applied/, `${p}: ${id}`);
				assert.ok(text.includes(error), `${p}: ${id} says why`);
			}
			const ok = await page.locator('tbody tr', { hasText: 'evt_browser_ok' }).textContent();
			assert.match(ok, /applied/, p);
			assert.doesNotMatch(ok, /not applied/, p);
			await shot(name);
		}
	});

	test('a form posted without its CSRF token is refused', async () => {
		await page.goto(`${conch.url}/admin/jobs?state=dead`);
		const form = page.locator(`#job-${otherDeadJob} form[action$="/retry"]`);
		assert.equal(await form.count(), 1);
		await form.locator('input[name="csrf"]').evaluate((input) => input.remove());
		const [res] = await Promise.all([page.waitForNavigation(), form.locator('button').click()]);
		assert.equal(res.status(), 403);
		assert.match(await page.textContent('main'), /missing or wrong CSRF token/);
		assert.equal(await jobState(otherDeadJob), 'dead', 'nothing changed');
		await shot('csrf-refused');
	});

	test('readable on a phone, and log out', async () => {
		await page.setViewportSize({ width: 390, height: 844 });
		await page.goto(`${conch.url}/admin/teams`);
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(overflow <= 0, `the page itself does not scroll sideways (${overflow}px)`);
		await shot('teams-phone');
		await page.setViewportSize({ width: 1366, height: 800 });

		await Promise.all([page.waitForNavigation(), page.click('form.logout button')]);
		assert.equal(new URL(page.url()).pathname, '/admin/login');
		assert.equal(await sessionCookie(), undefined);
		await page.goto(`${conch.url}/admin/jobs`);
		assert.equal(new URL(page.url()).pathname, '/admin/login', 'signed out');
	});
});
