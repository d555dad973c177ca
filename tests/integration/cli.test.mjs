// The command line: --help and its spellings, an unknown command, version,
// and the warning for a CONCH_ variable that names no configuration key.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testCluster } from '../lib/pg.mjs';
import { ROOT, conchEnv, runConch } from '../lib/server.mjs';

const SUBCOMMANDS = ['serve', 'migrate', 'rotate-keys', 'admin-user NAME', 'version', 'manifest'];

function assertNoSanitizer(r, what) {
	assert.deepEqual(r.sanitizer, [], `${what}: sanitizer report:\n${r.stderr}`);
}

describe('command line', () => {
	for (const arg of ['--help', '-h', 'help']) {
		test(`${arg}: usage on standard output, exit 0, every subcommand and -c FILE`, async () => {
			const r = await runConch([arg]);
			assertNoSanitizer(r, arg);
			assert.equal(r.code, 0, r.stderr);
			assert.equal(r.stderr, '');
			assert.match(r.stdout, /^usage: conch /);
			for (const sub of SUBCOMMANDS) assert.match(r.stdout, new RegExp(`^  ${sub} `, 'm'), `${sub} listed`);
			assert.match(r.stdout, /^  -c FILE /m);
		});
	}

	for (const args of [['serve', '--help'], ['manifest', '-h'], ['admin-user', '--help']]) {
		test(`${args.join(' ')}: help after a command is help too (standard output, exit 0), and runs nothing`, async () => {
			const r = await runConch(args, { env: { CONCH_DATABASE_URL: 'postgresql://nobody@127.0.0.1:1/none' } });
			assertNoSanitizer(r, args.join(' '));
			assert.equal(r.code, 0, r.stderr);
			assert.equal(r.stderr, '');
			assert.match(r.stdout, /^usage: conch /);
		});
	}

	for (const args of [['frobnicate'], ['serv'], ['--nope'], []]) {
		test(`${JSON.stringify(args)}: usage on standard error, exit 2`, async () => {
			const r = await runConch(args);
			assertNoSanitizer(r, args.join(' '));
			assert.equal(r.code, 2, r.stderr);
			assert.equal(r.stdout, '');
			assert.match(r.stderr, /^usage: conch /m);
			if (args.length) assert.match(r.stderr, new RegExp(`unknown command "${args[0]}"`));
		});
	}

	test('version prints the VERSION file and the git commit', async () => {
		const version = fs.readFileSync(path.join(ROOT, 'VERSION'), 'utf8').trim();
		assert.match(version, /^\d+\.\d+\.\d+$/);
		let commit = 'unknown';
		try {
			commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
		} catch {}
		for (const arg of ['version', '--version']) {
			const r = await runConch([arg]);
			assert.equal(r.code, 0, r.stderr);
			// The binary may predate the newest commit; its commit is still a hash.
			assert.match(r.stdout, /^conch (\d+\.\d+\.\d+) \(commit ([0-9a-f]{7,40}|unknown)\)\n$/);
			assert.equal(r.stdout.split(' ')[1], version);
			if (commit === 'unknown') assert.match(r.stdout, /\(commit unknown\)/);
		}
	});
});

describe('unknown CONCH_ variables', () => {
	let cluster;
	let dbUrl;

	before(async () => {
		cluster = await testCluster();
		dbUrl = await cluster.createDatabase();
	});

	after(async () => {
		await cluster?.stop();
	});

	function warnings(r) {
		return r.stderr
			.split('\n')
			.filter((l) => l.includes('is not a configuration key'))
			.map((l) => JSON.parse(l));
	}

	test('a misspelt variable is one warning naming the closest key; the run goes on', async () => {
		const r = await runConch(['migrate'], {
			env: conchEnv({ databaseUrl: dbUrl, env: { CONCH_DATABSE_URL: 'postgresql://nobody@127.0.0.1:1/secret_db' } }),
		});
		assertNoSanitizer(r, 'migrate');
		assert.equal(r.code, 0, r.stderr);
		const w = warnings(r);
		assert.equal(w.length, 1, r.stderr);
		assert.equal(w[0].level, 'warn');
		assert.equal(w[0].msg, 'CONCH_DATABSE_URL is not a configuration key; did you mean CONCH_DATABASE_URL?');
		assert.ok(!r.stderr.includes('secret_db'), 'the value is never logged');
	});

	test('one warning per unknown variable, none for known ones', async () => {
		const r = await runConch(['migrate'], {
			env: conchEnv({ databaseUrl: dbUrl, env: { CONCH_LISTN: '127.0.0.1:1', CONCH_JOB_THREAD: '3' } }),
		});
		assert.equal(r.code, 0, r.stderr);
		const msgs = warnings(r).map((w) => w.msg).sort();
		assert.deepEqual(msgs, [
			'CONCH_JOB_THREAD is not a configuration key; did you mean CONCH_JOB_THREADS?',
			'CONCH_LISTN is not a configuration key; did you mean CONCH_LISTEN?',
		]);
		const clean = await runConch(['migrate'], { env: conchEnv({ databaseUrl: dbUrl }) });
		assert.equal(clean.code, 0, clean.stderr);
		assert.deepEqual(warnings(clean), []);
	});

	test('migrate does not warn about Slack and Stripe keys it never uses (serve does: the unit tests of conf_check)', async () => {
		const env = conchEnv({ databaseUrl: dbUrl });
		delete env.CONCH_SLACK_CLIENT_ID;
		const r = await runConch(['migrate'], { env });
		assert.equal(r.code, 0, r.stderr);
		assert.ok(!/is not set: .* will be unavailable/.test(r.stderr), r.stderr);
	});
});
