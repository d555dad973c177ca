// Job kinds are rows of job_kinds: a job queued by the feature SQL gets its
// kind's attempts from there (not the column's default), C and SQL queue
// through the same job_enqueue(), and a server that handles a kind without
// a row refuses to start, naming it.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startEnv } from '../lib/env.mjs';
import { conchEnv, db, runConch } from '../lib/server.mjs';
import { freePort, migrateUrlFor } from '../lib/pg.mjs';

let env, owner;

before(async () => {
	env = await startEnv({ name: 'kinds', teamPrefix: 'T0KND' });
	owner = db(migrateUrlFor(env.dbUrl));
});

after(async () => {
	await owner?.close();
	await env?.close();
});

async function dibs(text, user) {
	const r = await env.conch.slashCommand({ team_id: env.team, user_id: user, channel_id: 'C0KINDS01', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json;
}

test('a timed release queued by SQL gets the attempts of its job_kinds row, not the column default', async () => {
	const row = await owner.one("SELECT max_attempts FROM job_kinds WHERE kind = 'dibs.release'");
	assert.equal(row.max_attempts, 20);
	const column = await env.sdb.one(
		"SELECT column_default FROM information_schema.columns WHERE table_name = 'jobs' AND column_name = 'max_attempts'");
	assert.equal(column.column_default, '8', 'the default the SQL enqueues used to get');
	await dibs('on kinds-timer for 2h', 'U0KND00001');
	const jobs = await env.sdb.query("SELECT max_attempts FROM jobs WHERE team_id = $1 AND kind = 'dibs.release'", [env.team]);
	assert.equal(jobs.length, 1);
	assert.equal(jobs[0].max_attempts, 20);
});

test("every job the command queued, from SQL or C, has its row's attempts", async () => {
	const rows = await env.sdb.query(
		`SELECT j.kind, j.max_attempts, k.max_attempts AS row FROM jobs j JOIN job_kinds k USING (kind)
		  WHERE j.team_id = $1`, [env.team]);
	assert.ok(rows.length >= 2, `jobs of the hold: ${JSON.stringify(rows)}`);
	for (const r of rows) assert.equal(r.max_attempts, r.row, `${r.kind} has its row's attempts`);
});

test('job_enqueue() refuses a kind without a row, naming it', async () => {
	await assert.rejects(
		env.sdb.query("SELECT job_enqueue('nope.kind', NULL)"),
		/job kind "nope\.kind" has no row in job_kinds/);
});

test('the runtime role cannot change the limits', async () => {
	const app = db(env.dbUrl);
	try {
		await assert.rejects(app.query("UPDATE job_kinds SET max_attempts = 1 WHERE kind = 'dibs.release'"), /permission denied/);
	} finally {
		await app.close();
	}
});

test('serve refuses to start when a kind it handles has no row, and says which', async () => {
	await env.conch.stop();
	await owner.query("DELETE FROM job_kinds WHERE kind = 'dibs.remind'");
	try {
		const port = await freePort();
		const r = await runConch(['serve', '-c', '/dev/null'], {
			env: { ...conchEnv({ databaseUrl: env.dbUrl, slack: env.slack }), CONCH_LISTEN: `127.0.0.1:${port}`, CONCH_PUBLIC_URL: `http://127.0.0.1:${port}` },
			timeoutMs: 30_000,
		});
		assert.notEqual(r.code, 0, 'serve exits');
		assert.match(r.stderr, /job kind \\?"dibs\.remind\\?", which has no row in job_kinds/);
		assert.doesNotMatch(r.stderr, /"dibs\.release\\?", which has no row/, 'only the missing kind is named');
		assert.deepEqual(r.sanitizer, []);
	} finally {
		await owner.query("INSERT INTO job_kinds (kind, max_attempts) VALUES ('dibs.remind', 5) ON CONFLICT DO NOTHING");
	}
});
