// The public pages besides installing, in headless Chromium: /privacy and
// /terms reached from the landing page's footer, what they promise, the
// favicon, and that nothing is loaded from anywhere but conch.
// Screenshots go to tests/output/screenshots/pages-*.png (375 and 1280 px).

import assert from 'node:assert/strict';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { SHOTS, DESKTOP, PHONE, closeAll, launchBrowser } from './chromium.mjs';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { testCluster } from '../lib/pg.mjs';
import { TEST_CLIENT_ID, TEST_CLIENT_SECRET, httpRequest, startConch } from '../lib/server.mjs';

const NAV_TIMEOUT_MS = 15_000;
const PURGE = /30 days/;

describe('privacy, terms and favicon in a browser', () => {
	let cluster, dbName, dbUrl, slack, conch, browser, context, page;
	const foreign = []; // requests to anywhere but conch

	async function shots(name) {
		for (const [suffix, size] of [['', DESKTOP], ['-phone', PHONE]]) {
			await page.setViewportSize(size);
			const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
			assert.ok(overflow <= 0, `${name} at ${size.width}px does not scroll sideways (${overflow}px)`);
			await page.screenshot({ path: path.join(SHOTS, `pages-${name}${suffix}.png`), fullPage: true });
		}
		await page.setViewportSize(DESKTOP);
	}

	async function clickAndLand(locator, pathname) {
		await Promise.all([
			page.waitForURL((u) => u.pathname === pathname, { timeout: NAV_TIMEOUT_MS }),
			locator.click(),
		]);
		await page.waitForLoadState('load', { timeout: NAV_TIMEOUT_MS });
	}

	// The footer's links, as [text, href].
	async function footerLinks() {
		const out = [];
		for (const a of await page.locator('footer a').all()) out.push([(await a.textContent()).trim(), await a.getAttribute('href')]);
		return out;
	}

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_pages_browser_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
		conch = await startConch({ databaseUrl: dbUrl, slack });
		browser = await launchBrowser();
		context = await browser.newContext({ viewport: DESKTOP });
		page = await context.newPage();
		page.setDefaultTimeout(NAV_TIMEOUT_MS);
		page.on('request', (req) => {
			const u = new URL(req.url());
			if (u.protocol !== 'data:' && u.origin !== conch.url) foreign.push(req.url());
		});
	});

	after(async () => {
		await closeAll([browser?.close(), conch?.stop(), slack?.close()], cluster, dbName);
	});

	test('the landing page says "Your data" once and links to privacy and terms', async () => {
		const res = await page.goto(`${conch.url}/`);
		assert.equal(res.status(), 200);
		const body = await page.textContent('body');
		assert.equal(body.split('Your data').length - 1, 1, 'one "Your data"');
		assert.equal(body.split('If you uninstall, we delete your tokens').length - 1, 1, 'the promise once');
		assert.deepEqual(await footerLinks(), [['Privacy', '/privacy'], ['Terms', '/terms']]);
		assert.equal(await page.locator('section[aria-labelledby="data"] a[href="/privacy"]').count(), 1);
	});

	test('Privacy in the footer opens the privacy policy: what is kept, how long, how to delete', async () => {
		await page.goto(`${conch.url}/`);
		await clickAndLand(page.locator('footer a', { hasText: 'Privacy' }), '/privacy');
		assert.equal(await page.title(), 'Privacy policy · conch');
		assert.equal((await page.textContent('h1')).trim(), 'Privacy policy');
		const rows = {};
		for (const tr of await page.locator('table tbody tr').all()) {
			rows[(await tr.locator('th').textContent()).trim()] = (await tr.locator('td').last().textContent()).trim();
		}
		const kept = (prefix) => {
			const key = Object.keys(rows).find((k) => k.startsWith(prefix));
			assert.ok(key, `a row for ${prefix}: ${Object.keys(rows).join(' | ')}`);
			return rows[key];
		};
		assert.match(kept('The bot token'), /deleted at once/);
		// As docs/data-retention.md and the cleanup jobs keep them.
		assert.match(kept('Dibs:'), /^a hold until it is released/);
		assert.equal(kept('Dibs history'), 'each hold\'s entry 90 days after it ended; the log until deletion');
		assert.equal(kept('Webhook subscriptions'), 'until the subscription is deleted, or until deletion');
		assert.equal(kept('Ids of the events Slack has sent'), '7 days');
		assert.equal(kept('Fingerprints of recent signed requests'), 'at least 10 minutes, at most about a day');
		assert.equal(kept('API rate-limit counters'), '1 day after the last request');
		assert.equal(kept('The member directory'), 'until deletion');
		const deleting = await page.textContent('section:has(#deleting)');
		assert.match(deleting, /Uninstall conch/);
		assert.match(deleting, /deletes the workspace's tokens immediately/);
		assert.match(deleting, PURGE);
		assert.match(await page.textContent('main'), new RegExp(conch.url.replace(/[.]/g, '\\.')));
		assert.deepEqual(await footerLinks(), [['Privacy', '/privacy'], ['Terms', '/terms']]);
		await shots('privacy');
	});

	test('Terms in the footer opens the terms, which link back to the privacy policy', async () => {
		await page.goto(`${conch.url}/`);
		await clickAndLand(page.locator('footer a', { hasText: 'Terms' }), '/terms');
		assert.equal(await page.title(), 'Terms of service · conch');
		assert.equal((await page.textContent('h1')).trim(), 'Terms of service');
		const main = await page.textContent('main');
		assert.match(main, /\/dibs upgrade/);
		assert.match(main, PURGE);
		await shots('terms');
		await clickAndLand(page.locator('main a', { hasText: 'privacy policy' }).first(), '/privacy');
		assert.equal((await page.textContent('h1')).trim(), 'Privacy policy');
	});

	test('every page links the favicon, which is an SVG served by conch', async () => {
		for (const p of ['/', '/privacy', '/terms', '/installed']) {
			await page.goto(`${conch.url}${p}`);
			const icon = page.locator('head link[rel="icon"]');
			assert.equal(await icon.count(), 1, `${p}: one icon link`);
			assert.equal(await icon.getAttribute('href'), '/favicon.svg');
		}
		for (const p of ['/favicon.svg', '/favicon.ico']) {
			const r = await httpRequest(`${conch.url}${p}`);
			assert.equal(r.status, 200, p);
			assert.equal(r.headers['content-type'], 'image/svg+xml', p);
			assert.match(r.text, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
			assert.doesNotMatch(r.text, /href=|<script/i, 'self-contained, no script');
		}
		// Chromium decodes it: drawn in an <img> it has a size.
		await page.goto(`${conch.url}/terms`);
		const size = await page.evaluate(async () => {
			const img = new Image();
			img.src = '/favicon.svg';
			await img.decode();
			return [img.naturalWidth, img.naturalHeight];
		});
		assert.deepEqual(size, [64, 64]);
	});

	test('no page loaded anything from outside conch', () => {
		assert.deepEqual(foreign, []);
	});
});
