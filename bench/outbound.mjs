// bench/outbound.mjs: how long fan-outs and timed hand-overs take when
// every Slack call takes 200 ms (the fake Slack's latencyMs), tier limits
// off. Prints two figures:
//   holds: 20 timed holds due within about a second, each with someone
//          queued: the latest "it's yours" DM after its hold's due time;
//   lunch: /lunch start in a 200-member channel: the last poll DM after
//          the command.
// Usage: node bench/outbound.mjs [binary]   (default $BENCH_CONCH_BIN, else
// bin/conch). Not part of make test: a measurement, not an assertion.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { startFakeSlack } from '../tests/lib/fake_slack.mjs';
import { startCluster } from '../tests/lib/pg.mjs';
import { ROOT, TEST_CLIENT_ID, TEST_CLIENT_SECRET, db, installTeam, sleep, startConch, waitUntil } from '../tests/lib/server.mjs';

const LATENCY_MS = 200;
const HOLDS = 20;
const MEMBERS = 200;
const BOT = 'U0BOT00001';
const binary = path.resolve(process.argv[2] || process.env.BENCH_CONCH_BIN || path.join(ROOT, 'bin/conch'));

const cluster = await startCluster();
const name = `conch_bench_${randomBytes(3).toString('hex')}`;
const url = await cluster.createDatabase(name);
const sdb = db(cluster.superuserUrl(name));
const slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, latencyMs: LATENCY_MS });
const conch = await startConch({ databaseUrl: url, slack, binary });

async function team(id, plan = 'pro') {
	const token = slack.issueToken({ team_id: id, bot_user_id: BOT });
	await installTeam(url, { team_id: id, token, plan, bot_user_id: BOT });
}

async function command(team_id, user_id, cmd, text, channel_id = 'C0BENCH001') {
	const r = await conch.slashCommand({ team_id, user_id, channel_id, command: cmd, text });
	if (r.status !== 200) throw new Error(`${cmd} ${text}: ${r.status} ${r.text}`);
}

async function holds() {
	const T = 'T0BENCHH01';
	await team(T);
	const start = Date.now();
	for (let i = 0; i < HOLDS; i++) await command(T, 'U0HOLDER01', '/dibs', `on box${i} for 8s`);
	const setup = Date.now() - start;
	for (let i = 0; i < HOLDS; i++) await command(T, `U0NEXT${String(i).padStart(4, '0')}`, '/dibs', `on box${i} for 1h`);
	const due = new Map();
	for (const r of await sdb.query("SELECT thing, extract(epoch FROM release_at) * 1000 AS ms FROM holds WHERE team_id = $1 AND user_id = 'U0HOLDER01'", [T]))
		due.set(r.thing, Number(r.ms));
	const yours = () => slack.calls('chat.postMessage').filter((c) => /is yours/.test(c.body?.text || ''));
	await waitUntil(() => yours().length >= HOLDS, { timeoutMs: 120_000, what: 'every hand-over DM' });
	let worst = 0;
	for (let i = 0; i < HOLDS; i++) {
		const to = `U0NEXT${String(i).padStart(4, '0')}`;
		const dm = yours().find((c) => c.body.channel === to);
		worst = Math.max(worst, dm.time + LATENCY_MS - due.get(`box${i}`));
	}
	return { worst, setup };
}

async function lunch() {
	const T = 'T0BENCHL01';
	const channel = 'C0BENCHL01';
	await team(T);
	const humans = [...Array(MEMBERS).keys()].map((i) => `U0L${String(i).padStart(6, '0')}`);
	slack.setMembers(channel, [BOT, ...humans]);
	const t0 = Date.now();
	await command(T, humans[0], '/lunch', 'start 12:00', channel);
	const asked = () => slack.calls('chat.postMessage').filter((c) => c.team_id === T && humans.includes(c.body?.channel));
	await waitUntil(() => asked().length >= MEMBERS, { timeoutMs: 300_000, intervalMs: 100, what: 'every poll DM' });
	return Math.max(...asked().map((c) => c.time)) + LATENCY_MS - t0;
}

try {
	const h = await holds();
	await sleep(500);
	const l = await lunch();
	console.log(`binary: ${binary}`);
	console.log(`fake Slack latency: ${LATENCY_MS} ms, tier limits off`);
	console.log(`holds: ${HOLDS} timed holds (created over ${h.setup} ms): last hand-over DM ${(h.worst / 1000).toFixed(2)} s after its due time`);
	console.log(`lunch: /lunch start with ${MEMBERS} members: last poll DM ${(l / 1000).toFixed(2)} s after the command`);
} finally {
	await conch.stop({ allowUnclean: true }).catch(() => {});
	await slack.close();
	await sdb.close();
	await cluster.stop();
}
