// contrib/conch-ci against the real server (run by dash, a strict POSIX
// sh): it waits in line with ?wait= until it holds the thing, runs the
// command, and releases on every way out; its exit code is the command's.
// Also checks the GitHub Action runs the script with its inputs as
// environment variables.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnv } from '../lib/env.mjs';
import { waitUntil } from '../lib/server.mjs';

const SCRIPT = new URL('../../contrib/conch-ci/conch-ci', import.meta.url).pathname;
const ACTION = new URL('../../contrib/github-action/action.yml', import.meta.url).pathname;
const CI = 'U0CIBOT001';
const HUMAN = 'U0CIHUMAN1';

let env, cluster, dbUrl, slack, conch, sdb, team, token, dir;

before(async () => {
	env = await startEnv({ name: 'ci', teamPrefix: 'T0CI' });
	({ cluster, dbUrl, slack, conch, sdb, team } = env);
	token = /`(conch_[A-Za-z0-9_-]+)`/.exec(await dibs(CI, 'token'))[1];
	dir = mkdtempSync(join(tmpdir(), 'conch-ci-'));
});

after(() => env?.close());

async function dibs(user, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: user, channel_id: 'C0CI000001', command: '/dibs', text });
	assert.equal(r.status, 200, `/dibs ${text}: HTTP ${r.status} ${r.text}`);
	return r.json.text;
}

function run(args, env = {}) {
	const child = spawn('dash', [SCRIPT, ...args], {
		env: { PATH: process.env.PATH, CONCH_URL: conch.url, CONCH_TOKEN: token, ...env },
		stdio: ['pipe', 'pipe', 'pipe'],
	});
	let stdout = '', stderr = '';
	child.stdout.on('data', (d) => (stdout += d));
	child.stderr.on('data', (d) => (stderr += d));
	child.err = () => stderr;
	child.done = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout: () => stdout, stderr: () => stderr })));
	return child;
}

const holder = async (thing) => (await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [team, thing]))?.user_id ?? null;
const inLine = (thing) => sdb.count('queue', 'team_id = $1 AND thing = $2 AND user_id = $3', [team, thing, CI]);
async function endings(thing) {
	return (await sdb.query('SELECT user_id, ending FROM dibs_hold_history WHERE team_id = $1 AND thing = $2 ORDER BY id', [team, thing])).map((r) => `${r.user_id}:${r.ending}`);
}

test('a free thing: runs the command while holding it, releases, exits with its code', async () => {
	const mark = join(dir, 'free');
	const r = run(['-f', '1h', '-r', 'ci "run" 7', 'qa/eu', 'sh', '-c', `echo "$(cat)" > ${mark}; exit 0`]);
	r.stdin.end('from stdin');
	const { code, stderr } = await r.done;
	assert.equal(code, 0, stderr());
	assert.equal(readFileSync(mark, 'utf8'), 'from stdin\n', 'the command reads the script\'s stdin');
	assert.equal(await holder('qa/eu'), null);
	assert.deepEqual(await endings('qa/eu'), [`${CI}:released`]);
	const reason = await sdb.one('SELECT reason FROM dibs_hold_history WHERE team_id = $1 AND thing = $2', [team, 'qa/eu']);
	assert.equal(reason.reason, 'ci "run" 7');
});

test('a failing command: its exit code is propagated and the thing released', async () => {
	const r = run(['build', 'sh', '-c', 'exit 7']);
	r.stdin.end();
	const { code } = await r.done;
	assert.equal(code, 7);
	assert.equal(await holder('build'), null);
	assert.deepEqual(await endings('build'), [`${CI}:released`]);
});

test('queued: waits in line, runs only once the thing is handed over, then releases', async () => {
	await dibs(HUMAN, 'on stage');
	const mark = join(dir, 'stage');
	const r = run(['-w', '2', 'stage', 'sh', '-c', `echo ran > ${mark}`]);
	r.stdin.end();
	await waitUntil(async () => (await inLine('stage')) === 1, { what: 'conch-ci in line' });
	// Several ?wait=2 rounds pass while the human holds it; the command does not run.
	await waitUntil(async () => (r.err().match(/waiting for stage/g) || []).length >= 2, { what: 'two rounds in line' });
	assert.equal(existsSync(mark), false);
	assert.match(await dibs(HUMAN, 'off stage'), new RegExp(`It is now <@${CI}>'s`));
	const { code, stderr } = await r.done;
	assert.equal(code, 0, stderr());
	assert.match(stderr(), /waiting for stage \(place 1 in line\)/);
	assert.equal(readFileSync(mark, 'utf8'), 'ran\n');
	assert.deepEqual(await endings('stage'), [`${HUMAN}:handed_over`, `${CI}:released`]);
	assert.equal(await holder('stage'), null);
});

test('SIGTERM during the command: the command is stopped, the thing released, exit 143', async () => {
	const started = join(dir, 'term');
	const r = run(['deploy', 'sh', '-c', `touch ${started}; sleep 60`]);
	r.stdin.end();
	await waitUntil(async () => existsSync(started) && (await holder('deploy')) === CI, { what: 'the command runs holding deploy' });
	r.kill('SIGTERM');
	const { code } = await r.done;
	assert.equal(code, 143);
	assert.equal(await holder('deploy'), null);
	assert.deepEqual(await endings('deploy'), [`${CI}:released`]);
});

test('SIGINT while waiting in line: leaves the line, exit 130', async () => {
	await dibs(HUMAN, 'on line');
	const r = run(['-w', '30', 'line', 'true']);
	r.stdin.end();
	await waitUntil(async () => (await inLine('line')) === 1, { what: 'in line' });
	r.kill('SIGINT');
	const { code } = await r.done;
	assert.equal(code, 130);
	assert.equal(await inLine('line'), 0);
	assert.equal(await holder('line'), HUMAN);
});

test('usage and API errors exit 2 before running anything', async () => {
	const bad = run(['bad name', 'true']);
	bad.stdin.end();
	assert.equal((await bad.done).code, 2);
	const noToken = run(['x', 'true'], { CONCH_TOKEN: '' });
	noToken.stdin.end();
	assert.match((await noToken.done).stderr(), /set CONCH_TOKEN/);
	const wrong = run(['x', 'true'], { CONCH_TOKEN: 'conch_not_a_real_token_at_all' });
	wrong.stdin.end();
	const w = await wrong.done;
	assert.equal(w.code, 2);
	assert.match(w.stderr(), /the API answered 401/);
	const badFor = run(['-f', '99d', 'x', 'true']);
	badFor.stdin.end();
	assert.match((await badFor.done).stderr(), /the API answered 400/);
	assert.equal(await sdb.count('things', "team_id = $1 AND name = 'x'", [team]), 0);
});

test('the GitHub Action runs conch-ci with its inputs as environment variables', async () => {
	const yml = readFileSync(ACTION, 'utf8');
	assert.match(yml, /using: composite/);
	const runBlock = /run: \|\n((?: {8}.*\n?)+)/.exec(yml)[1].replace(/^ {8}/gm, '');
	assert.doesNotMatch(runBlock, /\$\{\{/, 'no input is pasted into the shell text');
	const mark = join(dir, 'action');
	const child = spawn('dash', ['-e', '-c', runBlock], {
		env: {
			PATH: process.env.PATH,
			GITHUB_ACTION_PATH: new URL('../../contrib/github-action', import.meta.url).pathname,
			CONCH_URL: conch.url,
			CONCH_TOKEN: token,
			CONCH_CI_THING: 'action-thing',
			CONCH_CI_COMMAND: `echo "$CONCH_CI_THING" > ${mark}; exit 5`,
			CONCH_CI_FOR: '',
			CONCH_CI_REASON: 'run 1; $(touch /tmp/never)',
			CONCH_CI_WAIT: '60',
		},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	const code = await new Promise((resolve) => child.on('close', resolve));
	assert.equal(code, 5);
	assert.equal(readFileSync(mark, 'utf8'), 'action-thing\n');
	assert.deepEqual(await endings('action-thing'), [`${CI}:released`]);
	const reason = await sdb.one('SELECT reason FROM dibs_hold_history WHERE team_id = $1 AND thing = $2', [team, 'action-thing']);
	assert.equal(reason.reason, 'run 1; $(touch /tmp/never)');
});

test('stops cleanly', async () => {
	await conch.stop();
	conch = null;
});
