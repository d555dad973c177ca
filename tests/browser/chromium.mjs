// What the browser tests share: headless Chromium launched the same way,
// the screenshot folder and sizes, and one teardown for the servers.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../lib/server.mjs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const SHOTS = path.join(ROOT, 'tests/output/screenshots');
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 375, height: 812 };

// Headless Chromium that talks to nothing but what a test opens.
export function launchBrowser() {
	fs.mkdirSync(SHOTS, { recursive: true });
	return chromium.launch({
		executablePath: CHROMIUM,
		args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync'],
	});
}

// Waits for every closing (browser, conch, fakes, pools: promises), drops
// the test's database, then reports the first failure.
export async function closeAll(closables, cluster, dbName) {
	const results = await Promise.allSettled(closables);
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
	for (const r of results) if (r.status === 'rejected') throw r.reason;
}
