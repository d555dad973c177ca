// PgBouncer in transaction mode in front of a test cluster, the way a
// production database is usually reached.
//
//   const bouncer = await startPgBouncer(dbUrl);   // the runtime role's URL
//   bouncer.url        // the same database through the pooler
//   bouncer.statementErrors()   // lines of its log that a statement caused
//   await bouncer.stop();
//
// With TEST_CONCH_PGBOUNCER=1 in the environment, startConch() puts one in
// front of every conch it starts: database_url names the pooler and
// database_direct_url the cluster (LISTEN); `conch migrate` still connects
// directly. conch.stop() then fails on a statement error in either log.
//
// Debian's pgbouncer (1.18) refuses to run as root, so as root it runs as
// the `postgres` user, which owns its directory.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onExit } from './cleanup.mjs';
import { freePort } from './pg.mjs';

export const PGBOUNCER_BIN = process.env.TEST_CONCH_PGBOUNCER_BIN || '/usr/sbin/pgbouncer';
// Fewer server connections than conch has threads, so clients really do
// take turns on them.
const POOL_SIZE = 6;
const START_TIMEOUT_MS = 10_000;
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

// Pooler errors that mean PostgreSQL could not be reached (an outage test
// stops the cluster), not that a statement was wrong.
const UNAVAILABLE = /got packet 'E' from server when not linked|server login has been failing|server conn crashed|no more connections allowed|server_login_retry|database does not allow connections|the database system is (starting up|shutting down)|terminating connection|pgbouncer cannot connect to server|query_wait_timeout|client_login_timeout|server shutting down/i;

export function pgbouncerEnabled() {
	return process.env.TEST_CONCH_PGBOUNCER === '1';
}

function postgresIds() {
	const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
	const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
	if (uid.status !== 0 || gid.status !== 0) throw new Error('pgbouncer: running as root needs a postgres user to run it as');
	return { uid: Number(uid.stdout), gid: Number(gid.stdout) };
}

function waitForPort(port, child, log) {
	const deadline = Date.now() + START_TIMEOUT_MS;
	return new Promise((resolve, reject) => {
		const attempt = () => {
			if (child.exitCode !== null) return reject(new Error(`pgbouncer exited (${child.exitCode}):\n${log()}`));
			const s = net.connect(port, '127.0.0.1');
			s.once('connect', () => {
				s.destroy();
				resolve();
			});
			s.once('error', () => {
				s.destroy();
				if (Date.now() > deadline) reject(new Error(`pgbouncer did not listen on ${port} within ${START_TIMEOUT_MS} ms:\n${log()}`));
				else setTimeout(attempt, 50);
			});
		};
		attempt();
	});
}

export class PgBouncer {
	constructor({ dir, port, child, target }) {
		this.dir = dir;
		this.port = port;
		this.child = child;
		this.target = target;
		this.output = '';
		this.exited = new Promise((resolve) => child.on('close', resolve));
		this.removeExit = onExit(() => this.stopSync());
	}

	get logFile() {
		return path.join(this.dir, 'pgbouncer.log');
	}

	// The target URL with the pooler's host and port.
	get url() {
		const u = new URL(this.target);
		u.hostname = '127.0.0.1';
		u.port = String(this.port);
		return u.toString();
	}

	log() {
		let text = '';
		try {
			text = fs.readFileSync(this.logFile, 'utf8');
		} catch {}
		return text + this.output;
	}

	// Log lines that report a refused or failed statement or a protocol
	// error: anything at WARNING/ERROR/FATAL except PostgreSQL being away.
	statementErrors() {
		return this.log()
			.split('\n')
			.filter((l) => /\b(WARNING|ERROR|FATAL)\b/.test(l) && !UNAVAILABLE.test(l));
	}

	async stop() {
		if (this.child.exitCode === null && this.child.signalCode === null) {
			this.child.kill('SIGTERM');
			await this.exited;
		}
		this.removeExit();
		fs.rmSync(this.dir, { recursive: true, force: true });
	}

	stopSync() {
		if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
		fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

// A pgbouncer in transaction mode in front of the host and port of
// targetUrl (trust authentication, as the test clusters use), serving every
// database; stop() it.
export async function startPgBouncer(targetUrl) {
	if (!fs.existsSync(PGBOUNCER_BIN))
		throw new Error(`${PGBOUNCER_BIN} is missing: install pgbouncer (scripts/deps.sh test)`);
	const target = new URL(targetUrl);
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'conch-pgbouncer-'));
	const port = await freePort();
	const users = ['conch', 'conch_owner', 'postgres', decodeURIComponent(target.username)];
	fs.writeFileSync(path.join(dir, 'users.txt'), [...new Set(users)].map((u) => `"${u}" ""`).join('\n') + '\n');
	const conf = [
		'[databases]',
		`* = host=${target.hostname} port=${target.port}`,
		'[pgbouncer]',
		'listen_addr = 127.0.0.1',
		`listen_port = ${port}`,
		'unix_socket_dir =',
		'auth_type = trust',
		`auth_file = ${path.join(dir, 'users.txt')}`,
		'pool_mode = transaction',
		'max_client_conn = 1000',
		`default_pool_size = ${POOL_SIZE}`,
		'max_db_connections = 0',
		`logfile = ${path.join(dir, 'pgbouncer.log')}`,
		'log_connections = 0',
		'log_disconnections = 0',
		'log_pooler_errors = 1',
		'server_login_retry = 1',
		'ignore_startup_parameters = extra_float_digits,options',
	];
	const confFile = path.join(dir, 'pgbouncer.ini');
	fs.writeFileSync(confFile, conf.join('\n') + '\n');
	const opts = { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir };
	if (IS_ROOT) {
		const { uid, gid } = postgresIds();
		fs.chownSync(dir, uid, gid);
		for (const f of fs.readdirSync(dir)) fs.chownSync(path.join(dir, f), uid, gid);
		Object.assign(opts, { uid, gid });
	}
	const child = spawn(PGBOUNCER_BIN, [confFile], opts);
	const bouncer = new PgBouncer({ dir, port, child, target: targetUrl });
	child.stdout.on('data', (d) => (bouncer.output += d));
	child.stderr.on('data', (d) => (bouncer.output += d));
	try {
		await waitForPort(port, child, () => bouncer.log());
	} catch (err) {
		await bouncer.stop();
		throw err;
	}
	return bouncer;
}
