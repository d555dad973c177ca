// Throwaway PostgreSQL 15 clusters for tests.
//
// startCluster() makes a private cluster in a temp dir (owned by `postgres`
// and driven through `runuser` when we are root), listening on 127.0.0.1 on
// a free port and on a unix socket in its dir, tuned for speed rather than
// durability. testCluster() attaches to the cluster scripts/test.sh started
// for the whole run (TEST_CONCH_PG_* in the environment) or, when run alone,
// starts a private one. Each test file makes its own database with
// createDatabase(). Two roles, as in production: the schema owner
// `conch_owner` (migrations run as it: migrateUrl()) and the runtime login
// `conch`, a member of the group role `conch_runtime`, which owns nothing, so
// Row-Level Security applies to it; superuserUrl() is for inspection across RLS.

import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { onExit } from './cleanup.mjs';

export const PG_BIN = process.env.TEST_CONCH_PG_BIN || '/usr/lib/postgresql/15/bin';
export const APP_ROLE = 'conch';
export const OWNER_ROLE = 'conch_owner';
export const RUNTIME_GROUP = 'conch_runtime';
export const SUPERUSER = 'postgres';
const HOST = '127.0.0.1';
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const CMD_TIMEOUT_MS = 60_000;

// Clusters this process owns, stopped synchronously if it exits early.
const owned = new Set();
onExit(() => {
	for (const c of owned) c.stopSync();
});

export async function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.unref();
		srv.on('error', reject);
		srv.listen(0, HOST, () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

function pgTool(name) {
	const p = path.join(PG_BIN, name);
	if (!fs.existsSync(p))
		throw new Error(`PostgreSQL tool ${p} is missing: install postgresql-15 (scripts/deps.sh)`);
	return p;
}

// Runs a PostgreSQL tool as the cluster's owner; rejects with its output.
function runTool(name, args, { timeoutMs = CMD_TIMEOUT_MS } = {}) {
	const tool = pgTool(name);
	const [cmd, argv] = IS_ROOT ? ['runuser', ['-u', SUPERUSER, '--', tool, ...args]] : [tool, args];
	return new Promise((resolve, reject) => {
		const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], cwd: os.tmpdir() });
		let out = '';
		child.stdout.on('data', (d) => (out += d));
		child.stderr.on('data', (d) => (out += d));
		const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
		child.on('error', (err) => {
			clearTimeout(timer);
			reject(new Error(`${name}: ${err.message}`));
		});
		child.on('close', (code, signal) => {
			clearTimeout(timer);
			if (code === 0) resolve(out);
			else reject(new Error(`${name} ${args.join(' ')} failed (${signal || code}):\n${out}`));
		});
	});
}

function runToolSync(name, args) {
	const tool = path.join(PG_BIN, name);
	const [cmd, argv] = IS_ROOT ? ['runuser', ['-u', SUPERUSER, '--', tool, ...args]] : [tool, args];
	return spawnSync(cmd, argv, { stdio: 'ignore', timeout: 30_000, cwd: os.tmpdir() });
}

function chownToPostgres(p) {
	if (!IS_ROOT) return;
	const r = spawnSync('chown', ['-R', `${SUPERUSER}:${SUPERUSER}`, p], { encoding: 'utf8' });
	if (r.status !== 0) throw new Error(`chown ${p}: ${r.stderr || r.error}`);
}

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export class PgCluster {
	// dir holds data/ and the unix socket; owned = this object may stop it.
	constructor({ dir, port, owned: isOwned }) {
		this.dir = dir;
		this.dataDir = path.join(dir, 'data');
		this.port = port;
		this.host = HOST;
		this.owned = isOwned;
		this.running = false;
		this.pools = new Map();
	}

	get logFile() {
		return path.join(this.dir, 'postgres.log');
	}

	url(db, user = APP_ROLE) {
		return `postgresql://${user}@${HOST}:${this.port}/${db}`;
	}

	superuserUrl(db = 'postgres') {
		return this.url(db, SUPERUSER);
	}

	// The schema owner's URL (what `conch migrate` connects as).
	migrateUrl(db) {
		return this.url(db, OWNER_ROLE);
	}

	// Coordinates for child processes (scripts/test.sh exports these).
	env() {
		return {
			TEST_CONCH_PG_HOST: HOST,
			TEST_CONCH_PG_PORT: String(this.port),
			TEST_CONCH_PG_DIR: this.dir,
			TEST_CONCH_PG_SUPERUSER: SUPERUSER,
			TEST_CONCH_PG_ROLE: APP_ROLE,
			TEST_CONCH_PG_OWNER: OWNER_ROLE,
		};
	}

	// A superuser pool on db (kept, closed by close()/stop()).
	pool(db = 'postgres') {
		let p = this.pools.get(db);
		if (!p) {
			p = new pg.Pool({ connectionString: this.superuserUrl(db), max: 4, connectionTimeoutMillis: 10_000 });
			p.on('error', () => {}); // idle clients die in outage tests
			this.pools.set(db, p);
		}
		return p;
	}

	async query(sql, params = [], db = 'postgres') {
		return (await this.pool(db).query(sql, params)).rows;
	}

	// A fresh database owned by the schema owner; returns the runtime role's
	// URL (the owner's is migrateUrl(name), or migrateUrlFor(url)).
	async createDatabase(name) {
		name = name || `conch_${process.pid}_${randomBytes(4).toString('hex')}`;
		if (!IDENT.test(name)) throw new Error(`createDatabase: bad name ${JSON.stringify(name)}`);
		await this.query(`CREATE DATABASE ${name} OWNER ${OWNER_ROLE}`);
		return this.url(name);
	}

	async dropDatabase(name) {
		if (!IDENT.test(name)) throw new Error(`dropDatabase: bad name ${JSON.stringify(name)}`);
		const p = this.pools.get(name);
		if (p) {
			this.pools.delete(name);
			await p.end();
		}
		await this.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
	}

	async closePools() {
		const pools = [...this.pools.values()];
		this.pools.clear();
		await Promise.allSettled(pools.map((p) => p.end()));
	}

	assertOwned(what) {
		if (!this.owned)
			throw new Error(`${what}: this cluster is shared by the whole run; use startCluster() for a private one`);
	}

	async initdb(extra = []) {
		fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
		fs.writeFileSync(this.logFile, '');
		chownToPostgres(this.dir);
		await runTool('initdb', [
			'-D', this.dataDir, '-U', SUPERUSER, '--auth=trust', '-E', 'UTF8',
			'--locale=C.UTF-8', '--no-sync', '--no-instructions',
		]);
		const settings = [
			`listen_addresses = '${HOST}'`,
			`port = ${this.port}`,
			`unix_socket_directories = '${this.dir}'`,
			'fsync = off',
			'synchronous_commit = off',
			'full_page_writes = off',
			'max_connections = 300',
			'shared_buffers = 128MB',
			"log_min_messages = 'warning'",
			"log_line_prefix = '%m [%p] %d '",
			...extra,
		];
		fs.appendFileSync(path.join(this.dataDir, 'postgresql.conf'), `\n# tests/lib/pg.mjs\n${settings.join('\n')}\n`);
	}

	async start() {
		this.assertOwned('start');
		await runTool('pg_ctl', ['start', '-w', '-t', '30', '-D', this.dataDir, '-l', this.logFile, '-o', `-p ${this.port}`]);
		this.running = true;
	}

	// Stops the server but keeps the data (outage tests); start() resumes.
	async stopTemporarily() {
		this.assertOwned('stopTemporarily');
		await this.closePools();
		await runTool('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'fast', '-D', this.dataDir]);
		this.running = false;
	}

	async restart() {
		await this.stopTemporarily();
		await this.start();
	}

	// Owned: stops the server and removes its files. Shared: closes pools.
	async stop() {
		await this.closePools();
		if (!this.owned) return;
		if (this.running) {
			await runTool('pg_ctl', ['stop', '-w', '-t', '30', '-m', 'fast', '-D', this.dataDir]).catch((err) => {
				this.stopSync();
				throw err;
			});
			this.running = false;
		}
		fs.rmSync(this.dir, { recursive: true, force: true });
		owned.delete(this);
	}

	stopSync() {
		if (!this.owned) return;
		if (this.running) runToolSync('pg_ctl', ['stop', '-w', '-t', '20', '-m', 'immediate', '-D', this.dataDir]);
		this.running = false;
		fs.rmSync(this.dir, { recursive: true, force: true });
		owned.delete(this);
	}

	// Leaves the cluster running after this process exits (pg-cli start).
	detach() {
		owned.delete(this);
	}
}

// The roles deploy/db-bootstrap.sql makes in production.
async function createRole(cluster) {
	await cluster.query(`CREATE ROLE ${OWNER_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`);
	await cluster.query(`CREATE ROLE ${RUNTIME_GROUP} NOLOGIN NOSUPERUSER NOBYPASSRLS`);
	await cluster.query(`CREATE ROLE ${APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE IN ROLE ${RUNTIME_GROUP}`);
}

// The owner's URL for a runtime URL of a test cluster (same host and
// database, user conch_owner); any other URL is returned as it is.
export function migrateUrlFor(url) {
	try {
		const u = new URL(url);
		if (decodeURIComponent(u.username) !== APP_ROLE) return url;
		u.username = OWNER_ROLE;
		return u.toString();
	} catch {
		return url;
	}
}

// A new private cluster; the caller must stop() it. settings: more
// postgresql.conf lines (the benchmarks' pg_stat_statements).
export async function startCluster({ port, settings = [] } = {}) {
	const base = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-pg-'));
	fs.chmodSync(base, 0o755);
	const cluster = new PgCluster({ dir: base, port: port || (await freePort()), owned: true });
	owned.add(cluster);
	try {
		await cluster.initdb(settings);
		await cluster.start();
		await createRole(cluster);
	} catch (err) {
		cluster.stopSync();
		throw err;
	}
	return cluster;
}

// The run's shared cluster from the environment, else a private one.
export async function testCluster() {
	const port = process.env.TEST_CONCH_PG_PORT;
	if (!port) return startCluster();
	const dir = process.env.TEST_CONCH_PG_DIR || '';
	const cluster = new PgCluster({ dir, port: Number(port), owned: false });
	cluster.running = true;
	try {
		await cluster.query('SELECT 1');
	} catch (err) {
		throw new Error(`TEST_CONCH_PG_PORT=${port} is set but PostgreSQL does not answer there: ${err.message}`);
	}
	return cluster;
}
