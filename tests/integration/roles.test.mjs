// The upgrade of a live deployment from one database role to two, as
// docs/operations.md describes it: a database migrated before
// 013_roles.sql by the single role `conch` that owned everything (and
// could lift the team scope with conch.all_teams, or drop a policy), then
// deploy/db-bootstrap.sql run by an administrator that is not a superuser
// (like RDS's), then `conch migrate` as conch_owner, then `conch serve` as
// conch. The teams' data survives, the running release keeps its rows
// between the bootstrap and the migration, and afterwards conch owns
// nothing, lifts no scope and changes no policy. The bootstrap runs twice:
// the second run changes nothing.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { OWNER_ROLE, PG_BIN, testCluster } from '../lib/pg.mjs';
import { ROOT, conchEnv, db, installTeam, migrate, startConch, waitUntil } from '../lib/server.mjs';

const A = 'T0ROLESAAA';
const B = 'T0ROLESBBB';
const ADMIN = `conch_admin_${process.pid}`;

let cluster, dbName, dbUrl, oldDir, slack, conch, sdb;

before(async () => {
	cluster = await testCluster();
	dbName = `conch_roles_${process.pid}_${randomBytes(3).toString('hex')}`;
	// The old layout: the application role owns the database and, once
	// migrated by it, every table.
	await cluster.query(`CREATE DATABASE ${dbName} OWNER conch`);
	dbUrl = cluster.url(dbName);
	await cluster.query(`DROP ROLE IF EXISTS ${ADMIN}`);
	await cluster.query(`CREATE ROLE ${ADMIN} LOGIN NOSUPERUSER CREATEROLE CREATEDB`);
	oldDir = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-old-migrations-'));
	for (const f of fs.readdirSync(path.join(ROOT, 'migrations')))
		if (/^\d{3}_.*\.sql$/.test(f) && f < '013') fs.copyFileSync(path.join(ROOT, 'migrations', f), path.join(oldDir, f));
	sdb = db(cluster.superuserUrl(dbName));
	slack = await startFakeSlack();
});

after(async () => {
	await conch?.stop();
	await slack?.close();
	await sdb?.close();
	if (oldDir) fs.rmSync(oldDir, { recursive: true, force: true });
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.query(`DROP OWNED BY ${ADMIN}`, [], 'postgres').catch(() => {});
		await cluster.query(`DROP ROLE IF EXISTS ${ADMIN}`).catch(() => {});
		await cluster.stop();
	}
});

async function asApp(fn) {
	const client = new pg.Client({ connectionString: dbUrl, connectionTimeoutMillis: 10_000 });
	await client.connect();
	try {
		return await fn(client);
	} finally {
		await client.end();
	}
}

// '42501' when refused for want of privilege, 'ok' when it went through
// (rolled back either way).
async function attempt(client, sql) {
	await client.query('BEGIN');
	try {
		await client.query(sql);
		return 'ok';
	} catch (err) {
		return err.code;
	} finally {
		await client.query('ROLLBACK');
	}
}

function bootstrap() {
	return spawnSync(path.join(PG_BIN, 'psql'), [
		'-X', '-q', '-1', '-v', 'owner_password=owner-test-password',
		'-d', cluster.url(dbName, ADMIN), '-f', path.join(ROOT, 'deploy/db-bootstrap.sql'),
	], { encoding: 'utf8', timeout: 60_000 });
}

test('before: the single role owns everything, lifts the scope and may drop a policy', async () => {
	await migrate(conchEnv({ databaseUrl: dbUrl, migrateUrl: dbUrl, env: { CONCH_MIGRATIONS_DIR: oldDir } }));
	for (const team of [A, B]) await installTeam(dbUrl, { team_id: team, token: `xoxb-${team}` });
	await asApp(async (c) => {
		await c.query(`SELECT set_config('conch.all_teams', 'on', false)`);
		const { rows } = await c.query('SELECT team_id FROM teams ORDER BY 1');
		assert.deepEqual(rows.map((r) => r.team_id), [A, B], 'the old hole: every team with one setting');
		assert.equal(await attempt(c, 'DROP POLICY team_scope ON teams'), 'ok', 'the old hole: the owner may drop a policy');
	});
});

test('the bootstrap hands everything to the owner; the running release keeps its rows', async () => {
	const r = bootstrap();
	assert.equal(r.status, 0, `db-bootstrap.sql failed:\n${r.stderr}${r.stdout}`);
	const owners = await sdb.query(
		`SELECT DISTINCT pg_get_userbyid(c.relowner) AS o FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		 WHERE n.nspname = 'public'`);
	assert.deepEqual(owners.map((o) => o.o), [OWNER_ROLE]);
	const dbOwner = await sdb.one('SELECT pg_get_userbyid(datdba) AS o FROM pg_database WHERE datname = current_database()');
	assert.equal(dbOwner.o, OWNER_ROLE);
	// The old release, as conch, still reads and writes its team's rows.
	await installTeam(dbUrl, { team_id: A, token: 'xoxb-again' });
	await asApp(async (c) => {
		await c.query('BEGIN');
		await c.query(`SELECT set_config('conch.team_id', $1, true)`, [A]);
		const { rows } = await c.query('SELECT count(*)::int AS n FROM installations');
		assert.equal(rows[0].n, 1);
		await c.query('COMMIT');
	});
});

test('after migrate as the owner, serve as conch sees its data, lifts no scope, changes no policy', async () => {
	const m = await migrate(conchEnv({ databaseUrl: dbUrl }));
	assert.match(m.stderr, /013_roles\.sql/);
	conch = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
	const list = await conch.slashCommand({ team_id: A, text: 'list' });
	assert.equal(list.status, 200);
	assert.doesNotMatch(list.json?.text ?? list.text, /install/i, 'A is still installed');
	await asApp(async (c) => {
		await c.query(`SELECT set_config('conch.all_teams', 'on', false)`);
		const { rows } = await c.query('SELECT count(*)::int AS n FROM teams');
		assert.equal(rows[0].n, 0, 'conch.all_teams lifts nothing');
		for (const sql of ['DROP POLICY team_scope ON teams', 'ALTER TABLE teams DISABLE ROW LEVEL SECURITY', 'DROP TABLE teams'])
			assert.equal(await attempt(c, sql), '42501', sql);
	});
	const owned = await sdb.one(`SELECT count(*)::int AS n FROM pg_class WHERE relowner = 'conch'::regrole`);
	assert.equal(owned.n, 0);
	const kept = await sdb.query('SELECT team_id FROM installations ORDER BY 1');
	assert.deepEqual(kept.map((r) => r.team_id), [A, B], 'no data was lost');
});

test('with database_direct_url the job runners LISTEN there, and jobs still run', async () => {
	const direct = `conch_direct_${process.pid}`;
	await cluster.query(`DROP ROLE IF EXISTS ${direct}`);
	await cluster.query(`CREATE ROLE ${direct} LOGIN NOSUPERUSER NOBYPASSRLS IN ROLE conch_runtime`);
	const token = slack.issueToken({ team_id: B });
	await installTeam(dbUrl, { team_id: B, token, plan: 'pro' });
	const other = await startConch({ databaseUrl: dbUrl, slack, migrate: false, env: {
		CONCH_DATABASE_DIRECT_URL: cluster.url(dbName, direct), CONCH_JOB_THREADS: '2',
	} });
	try {
		const sessions = async (user) => (await sdb.query(
			`SELECT query FROM pg_stat_activity WHERE datname = current_database() AND usename = $1 AND pid <> pg_backend_pid()`,
			[user])).map((r) => r.query);
		const listening = await waitUntil(async () => {
			const q = await sessions(direct);
			return q.length === 2 && q.every((x) => x === 'LISTEN conch_jobs') && q;
		}, { what: 'two LISTEN sessions on the direct URL', timeoutMs: 15_000 });
		assert.equal(listening.length, 2);
		// A release hands the thing to the one in line, whose DM is a job.
		const before = slack.calls().length;
		await other.slashCommand({ team_id: B, user_id: 'U0ROLES001', text: 'on staging' });
		await other.slashCommand({ team_id: B, user_id: 'U0ROLES002', text: 'on staging' });
		await other.slashCommand({ team_id: B, user_id: 'U0ROLES001', text: 'off staging' });
		await waitUntil(() => slack.calls().length > before, { what: 'the DM job ran', timeoutMs: 15_000 });
		await other.stop();
	} finally {
		await other.stop().catch(() => {});
		await cluster.query(`DROP ROLE IF EXISTS ${direct}`).catch(() => {});
	}
});

test('the bootstrap run again changes nothing, and conch stops cleanly', async () => {
	const before = await sdb.query(`SELECT relname, relowner, relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' ORDER BY 1`);
	const r = bootstrap();
	assert.equal(r.status, 0, r.stderr);
	const after_ = await sdb.query(`SELECT relname, relowner, relacl::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' ORDER BY 1`);
	assert.deepEqual(after_, before);
	await conch.stop();
});
