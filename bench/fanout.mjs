// bench/fanout.mjs: the fan-out section of `make bench` (bench/README.md).
//
// conch against a real PostgreSQL and the fake Slack of tests/lib, which
// answers every Web API call after a set latency (BENCH_SLACK_LATENCY_MS,
// default 200, Slack's own speed) and, where a row says "limits on",
// enforces Slack's published per-method tiers with 429 + Retry-After
// (tests/lib/slack_tiers.mjs; conch then paces itself, slack_pacing 1).
// Rows:
//   holds     20 timed holds due within one second, each with someone
//             queued: the latest "it's yours" DM after its hold's due
//             time, against 1 s + 2 latencies (limits on);
//   lunch200  /lunch start in a 200-member channel: the last poll DM
//             after the command, against 3 s (limits off);
//   lunch500  the same with 500 members (limits on): time to the last
//             DM, the 429s Slack answered, and the least time the limits
//             allow for the calls that poll made;
//   beside    while that 500-member poll is under way, another team's
//             timed hold hands over: its DM after the due time, against
//             1 s + 2 latencies;
//   teams     BENCH_FANOUT_TEAMS (default 1000) teams each start a
//             20-member poll at once (limits on): poll DMs a second from
//             the first to the last (target 500), and the server's peak
//             resident memory (target under 100 MB), a fresh server.
// Usage: node bench/fanout.mjs [--out FILE] [binary]
// (binary: default $BENCH_CONCH_BIN, else bin/conch). Prints the rows;
// --out also writes them as JSON (scripts/bench.sh puts them in
// bench/results.json).
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../tests/lib/fake_slack.mjs';
import { startCluster } from '../tests/lib/pg.mjs';
import { METHOD_TIERS, POST_MESSAGE, TIER_PER_MINUTE, TIER_SLACK } from '../tests/lib/slack_tiers.mjs';
import { ROOT, TEST_CLIENT_ID, TEST_CLIENT_SECRET, db, installTeam, sleep, startConch, waitUntil } from '../tests/lib/server.mjs';

const args = process.argv.slice(2);
let out = null;
if (args[0] === '--out') {
	out = args[1];
	args.splice(0, 2);
}
const LATENCY_MS = Number(process.env.BENCH_SLACK_LATENCY_MS || 200);
const TEAMS = Number(process.env.BENCH_FANOUT_TEAMS || 1000);
const HOLDS = 20;
// BENCH_FANOUT_ROWS: which parts to run (default all): lunch200, holds,
// lunch500 (with beside), teams.
const ROWS = new Set((process.env.BENCH_FANOUT_ROWS || 'lunch200,holds,lunch500,teams').split(','));
const BOT = 'U0BOT00001';
const binary = path.resolve(args[0] || process.env.BENCH_CONCH_BIN || path.join(ROOT, 'bin/conch'));
const log = (s) => process.stderr.write(`bench: fan-out: ${s}\n`);
const pad = (n, w = 6) => String(n).padStart(w, '0');

// BENCH_PG_STATS=1: pg_stat_statements (nested statements too) into
// bench/pg-statements-fanout.txt at the end.
const PG_STATS = process.env.BENCH_PG_STATS === '1';
const cluster = await startCluster({
	settings: PG_STATS
		? ["shared_preload_libraries = 'pg_stat_statements'", 'pg_stat_statements.track = all',
			'pg_stat_statements.track_planning = on']
		: [],
});
const dbName = `conch_fanout_${randomBytes(3).toString('hex')}`;
const url = await cluster.createDatabase(dbName);
const sdb = db(cluster.superuserUrl(dbName));
const slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET, latencyMs: LATENCY_MS });
let migrated = false;
const servers = [];

async function server(limits) {
	slack.tierLimits = limits;
	// conch's own defaults (job runners, lease, HTTP threads), not the tests'.
	const env = {
		CONCH_SLACK_PACING: limits ? '1' : '0', CONCH_LOG_LEVEL: 'warn', CONCH_JOB_THREADS: process.env.BENCH_JOB_THREADS || null,
		CONCH_JOB_LEASE_SECONDS: null, CONCH_HTTP_THREADS: process.env.BENCH_HTTP_THREADS || null,
	};
	const c = await startConch({ databaseUrl: url, slack, binary, env, migrate: !migrated });
	migrated = true;
	servers.push(c);
	return c;
}

async function stop(c) {
	await c.stop({ allowUnclean: true }).catch(() => {});
	servers.splice(servers.indexOf(c), 1);
}

async function team(id, plan = 'pro') {
	const token = slack.issueToken({ team_id: id, bot_user_id: BOT });
	await installTeam(url, { team_id: id, token, plan, bot_user_id: BOT });
}

async function command(conch, team_id, user_id, cmd, text, channel_id = 'C0BENCH001') {
	const r = await conch.slashCommand({ team_id, user_id, channel_id, command: cmd, text });
	if (r.status !== 200) throw new Error(`${cmd} ${text}: ${r.status} ${r.text}`);
}

// chat.postMessage calls answered 200 that match filter, scanned
// incrementally (a call is judged once answered: its team is known then).
function posted(filter) {
	let seen = 0;
	let open = [];
	const got = [];
	return () => {
		const log_ = slack.log;
		for (; seen < log_.length; seen++) if (log_[seen].method === 'chat.postMessage') open.push(log_[seen]);
		const still = [];
		for (const c of open) {
			if (c.status === undefined) still.push(c);
			else if (c.status === 200 && filter(c)) got.push(c);
		}
		open = still;
		return got;
	};
}

// Timed holds of HOLDER on n things of team T, each with someone queued;
// returns a function giving the latest hand-over DM's lateness (ms) once
// all n are in, else null.
async function handovers(conch, T, n, seconds) {
	await team(T);
	for (let i = 0; i < n; i++) await command(conch, T, 'U0HOLDER01', '/dibs', `on box${i} for ${seconds}s`, 'D0BENCH001');
	for (let i = 0; i < n; i++) await command(conch, T, `U0NEXT${pad(i, 4)}`, '/dibs', `on box${i} for 1h`, 'D0BENCH001');
	const due = new Map();
	for (const r of await sdb.query("SELECT thing, extract(epoch FROM release_at) * 1000 AS ms FROM holds WHERE team_id = $1 AND user_id = 'U0HOLDER01'", [T]))
		due.set(r.thing, Number(r.ms));
	const yours = posted((c) => c.team_id === T && /is yours/.test(c.body?.text || ''));
	return () => {
		const got = yours();
		if (got.length < n) return null;
		let worst = 0;
		for (let i = 0; i < n; i++) {
			const dm = got.find((c) => c.body.channel === `U0NEXT${pad(i, 4)}`);
			worst = Math.max(worst, dm.time + LATENCY_MS - due.get(`box${i}`));
		}
		return { worst_ms: worst, due_spread_ms: Math.max(...due.values()) - Math.min(...due.values()) };
	};
}

// A poll of n members in a channel of its own: returns the channel and
// its humans.
function members(T, n) {
	const channel = `C${T.slice(1)}`;
	const humans = [...Array(n).keys()].map((i) => `U${T.slice(2, 8)}${pad(i, 5)}`);
	slack.setMembers(channel, [BOT, ...humans]);
	return { channel, humans };
}

// A team installed for a while has its member directory synced (users.list
// at install, then daily): its members' rows, as that sync writes them, so
// the fan-out reads zones, bots and deactivated people from it.
// BENCH_FANOUT_DIRECTORY=0 leaves it empty (a cold directory: one
// users.info a member).
const DIRECTORY = process.env.BENCH_FANOUT_DIRECTORY !== '0';
async function directory(T, humans) {
	if (!DIRECTORY) return;
	await sdb.query(
		"INSERT INTO members (team_id, user_id, name, tz) SELECT $1, u, lower(u), 'Europe/Paris' FROM unnest($2::text[]) u " +
			'ON CONFLICT DO NOTHING', [T, [BOT, ...humans]]);
	await sdb.query("UPDATE members SET is_bot = true WHERE team_id = $1 AND user_id = $2", [T, BOT]);
	await sdb.query(
		'INSERT INTO member_directory (team_id, synced_at, started_at, listed) VALUES ($1, now(), now(), $2) ' +
			'ON CONFLICT (team_id) DO UPDATE SET synced_at = now()', [T, humans.length + 1]);
}

function pollDms(T, humans) {
	const set = new Set(humans);
	return posted((c) => c.team_id === T && set.has(c.body?.channel));
}

// The least time Slack's published limits allow for the calls team T made
// (refused ones not counted): per method, calls / rate.
function bound(T) {
	const per = new Map();
	for (const c of slack.log)
		if (c.team_id === T && !(c.fault && c.fault.tierLimited)) per.set(c.method, (per.get(c.method) || 0) + 1);
	let worst = { seconds: 0, method: null, calls: 0, per_minute: null };
	for (const [method, calls] of per) {
		const perMinute = method === 'chat.postMessage' ? POST_MESSAGE.workspacePerMinute / TIER_SLACK
			: METHOD_TIERS[method] ? TIER_PER_MINUTE[METHOD_TIERS[method]] : null;
		if (!perMinute) continue;
		const s = (calls / perMinute) * 60;
		if (s > worst.seconds) worst = { seconds: s, method, calls, per_minute: perMinute };
	}
	return worst;
}

const refused = (T) => slack.log.filter((c) => c.team_id === T && c.fault && c.fault.tierLimited).length;

function peakKb(conch) {
	const s = fs.readFileSync(`/proc/${conch.proc.pid}/status`, 'utf8');
	return Number(/^VmHWM:\s+(\d+)/m.exec(s)[1]);
}

const res = { latency_ms: LATENCY_MS, binary };
try {
	// --- limits off: 200 members ---
	let conch;
	if (ROWS.has('lunch200')) {
		conch = await server(false);
		const T = 'T0FANL0200';
		await team(T);
		const { channel, humans } = members(T, 200);
		await directory(T, humans);
		const dms = pollDms(T, humans);
		const t0 = Date.now();
		await command(conch, T, humans[0], '/lunch', 'start 12:00', channel);
		await waitUntil(() => dms().length >= 200, { timeoutMs: 600_000, intervalMs: 100, what: '200 poll DMs' });
		res.lunch200 = { members: 200, directory: DIRECTORY, last_dm_s: (Math.max(...dms().map((c) => c.time)) + LATENCY_MS - t0) / 1000, target_s: 3 };
		log(`200 members, limits off: last DM ${res.lunch200.last_dm_s.toFixed(2)} s`);
		await stop(conch);
	}

	// --- limits on: holds, then 500 members with a hand-over beside it ---
	if (ROWS.has('holds') || ROWS.has('lunch500')) conch = await server(true);
	if (ROWS.has('holds')) {
		const ready = await handovers(conch, 'T0FANH0001', HOLDS, 8);
		await waitUntil(() => ready(), { timeoutMs: 120_000, what: 'every hand-over DM' });
		res.holds = { holds: HOLDS, ...ready(), target_ms: 1000 + 2 * LATENCY_MS };
		log(`20 holds: last hand-over ${res.holds.worst_ms} ms after due`);
	}
	if (ROWS.has('lunch500')) {
		const T = 'T0FANL0500';
		const B = 'T0FANB0001';
		await team(T);
		const { channel, humans } = members(T, 500);
		await directory(T, humans);
		const dms = pollDms(T, humans);
		const t0 = Date.now();
		await command(conch, T, humans[0], '/lunch', 'start 12:00', channel);
		// The other team's hold falls due while the poll is under way.
		const beside = await handovers(conch, B, 1, 8);
		await waitUntil(() => beside(), { timeoutMs: 120_000, what: 'the other team\'s hand-over DM' });
		const inFlight = dms().length < 500;
		res.beside = { ...beside(), poll_dms_then: dms().length, poll_in_flight: inFlight, target_ms: 1000 + 2 * LATENCY_MS };
		log(`beside a 500-member poll (${res.beside.poll_dms_then} DMs sent then): hand-over ${res.beside.worst_ms} ms after due`);
		await waitUntil(() => dms().length >= 500, { timeoutMs: 1_200_000, intervalMs: 250, what: '500 poll DMs' });
		const b = bound(T);
		const last = (Math.max(...dms().map((c) => c.time)) + LATENCY_MS - t0) / 1000;
		res.lunch500 = {
			members: 500, last_dm_s: last, refused_429: refused(T), bound_s: b.seconds, bound_method: b.method,
			bound_calls: b.calls, bound_per_minute: b.per_minute, over_bound_s: last - b.seconds,
		};
		log(`500 members, limits on: last DM ${last.toFixed(1)} s, ${res.lunch500.refused_429} 429s, bound ${b.seconds.toFixed(1)} s (${b.method})`);
	}
	if (ROWS.has('holds') || ROWS.has('lunch500')) await stop(conch);

	// --- limits on, a fresh server: TEAMS teams x 20 members at once ---
	if (ROWS.has('teams')) {
		conch = await server(true); // first: it migrates the database when it is the first
		const teams = [...Array(TEAMS).keys()].map((i) => `T0FT${pad(i)}`);
		for (let i = 0; i < teams.length; i += 25) await Promise.all(teams.slice(i, i + 25).map((t) => team(t)));
		const polls = teams.map((t) => ({ t, ...members(t, 20) }));
		for (let i = 0; i < polls.length; i += 25) await Promise.all(polls.slice(i, i + 25).map((p) => directory(p.t, p.humans)));
		const all = new Set(polls.flatMap((p) => p.humans));
		const dms = posted((c) => all.has(c.body?.channel));
		const t0 = Date.now();
		for (let i = 0; i < polls.length; i += 50)
			await Promise.all(polls.slice(i, i + 50).map((p) => command(conch, p.t, p.humans[0], '/lunch', 'start 12:00', p.channel)));
		const sentIn = (Date.now() - t0) / 1000;
		await waitUntil(() => dms().length >= 20 * TEAMS, { timeoutMs: 1_800_000, intervalMs: 500, what: `${20 * TEAMS} poll DMs` });
		const times = dms().map((c) => c.time);
		const first = Math.min(...times);
		const lastT = Math.max(...times);
		res.teams = {
			teams: TEAMS, members: 20, dms: times.length, commands_sent_s: sentIn,
			first_dm_s: (first - t0) / 1000, last_dm_s: (lastT - t0) / 1000,
			dms_per_s: (times.length - 1) / Math.max(0.001, (lastT - first) / 1000), target_per_s: 500,
			refused_429: slack.log.filter((c) => c.fault && c.fault.tierLimited && c.team_id?.startsWith('T0FT')).length,
			peak_rss_mb: peakKb(conch) / 1024, target_rss_mb: 100,
		};
		log(`${TEAMS} teams x 20: ${res.teams.dms_per_s.toFixed(0)} DMs/s, peak ${res.teams.peak_rss_mb.toFixed(1)} MB`);
		await stop(conch);
	}
} finally {
	for (const c of [...servers]) await stop(c);
	await slack.close();
	if (PG_STATS) {
		await sdb.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
		const rows = await sdb.query(`
			SELECT calls, round(total_exec_time::numeric) AS exec_ms, round(total_plan_time::numeric) AS plan_ms,
			       plans, round((1000 * total_exec_time / nullif(calls, 0))::numeric, 1) AS us_per_call,
			       left(regexp_replace(query, '\\s+', ' ', 'g'), 110) AS query
			  FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 60`);
		const cols = Object.keys(rows[0] || {});
		fs.writeFileSync(path.join(ROOT, 'bench/pg-statements-fanout.txt'),
			[cols.join(' | '), ...rows.map((r) => cols.map((c) => r[c]).join(' | '))].join('\n') + '\n');
		log('statements by PostgreSQL time in bench/pg-statements-fanout.txt');
	}
	await sdb.close();
	await cluster.stop();
}

const f = (x, d = 2) => (x === undefined || x === null ? '-' : Number(x).toFixed(d));
const met = (ok) => (ok ? 'met   ' : 'MISSED');
const lines = [`Fan-out against a Slack stand-in answering after ${LATENCY_MS} ms (tier limits with 429s where "limits on"):`];
if (res.holds)
	lines.push(`  ${met(res.holds.worst_ms <= res.holds.target_ms)}  ${HOLDS} timed holds due in one second (limits on): last hand-over DM ${f(res.holds.worst_ms / 1000)} s after due (target ${f(res.holds.target_ms / 1000, 1)} s)`);
if (res.lunch200)
	lines.push(`  ${met(res.lunch200.last_dm_s <= 3)}  /lunch start, 200 members (limits off): last DM ${f(res.lunch200.last_dm_s)} s after the command (target 3 s)`);
if (res.lunch500)
	lines.push(`  ${met(res.lunch500.refused_429 <= 5)}  /lunch start, 500 members (limits on): last DM ${f(res.lunch500.last_dm_s, 1)} s, ${res.lunch500.refused_429} 429s; ` +
		`the limits allow it no sooner than ${f(res.lunch500.bound_s, 1)} s (${res.lunch500.bound_calls} ${res.lunch500.bound_method} at ${f(res.lunch500.bound_per_minute, 0)}/min): ${f(res.lunch500.over_bound_s, 1)} s over`);
if (res.teams) {
	lines.push(`  ${met(res.teams.dms_per_s >= 500)}  ${res.teams.teams} teams x 20-member polls at once (limits on): ${f(res.teams.dms_per_s, 0)} DMs/s first to last (target 500), ` +
		`${res.teams.dms} DMs from ${f(res.teams.first_dm_s, 1)} s to ${f(res.teams.last_dm_s, 1)} s after the first command, ${res.teams.refused_429} 429s`);
	lines.push(`  ${met(res.teams.peak_rss_mb < 100)}  peak resident memory in that run: ${f(res.teams.peak_rss_mb, 1)} MB (target under 100 MB)`);
}
if (res.beside)
	lines.push(`  ${met(res.beside.worst_ms <= res.beside.target_ms && res.beside.poll_in_flight)}  a timed hand-over while another team's 500-member poll is in flight (${res.beside.poll_dms_then}/500 DMs sent then): ` +
		`${f(res.beside.worst_ms / 1000)} s after due (target ${f(res.beside.target_ms / 1000, 1)} s)`);
console.log(lines.join('\n'));
res.text = lines;
if (out) fs.writeFileSync(out, `${JSON.stringify(res, null, 2)}\n`);
