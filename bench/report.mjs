// The JSON side of `make bench` (scripts/bench.sh):
//
//   node bench/report.mjs wait-http URL SECONDS      exits 0 once URL answers 200
//   node bench/report.mjs get URL                    prints the body of a GET
//   node bench/report.mjs line onoff|pgbench-SCRIPT FILE   one progress line
//   node bench/report.mjs pgbench OUT LOGDIR CLIENTS SECONDS
//                                                    summarises one pgbench run (its
//                                                    stdout in OUT, per-transaction logs
//                                                    in LOGDIR) as JSON on stdout
//   node bench/report.mjs final WORKDIR RESULTS      assembles WORKDIR's pieces into
//                                                    RESULTS (bench/results.json) and
//                                                    prints the table
//
// Percentiles are nearest-rank over every recorded sample, as in loadgen.c.

import fs from 'node:fs';
import path from 'node:path';

function rank(sorted, q) {
	if (sorted.length === 0) return null;
	const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * q) - 1));
	return sorted[i];
}

function readJson(file, fallback = null) {
	try {
		return JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch {
		return fallback;
	}
}

// KEY=VALUE lines (numbers stay strings; the caller converts).
function readEnv(file) {
	const out = {};
	if (!fs.existsSync(file)) return out;
	for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
		const m = line.match(/^([A-Za-z0-9_]+)=(.*)$/);
		if (m) out[m[1]] = m[2];
	}
	return out;
}

function hzOf(cpu) {
	return Number(cpu.hz || 100);
}

async function waitHttp(url, seconds) {
	const deadline = Date.now() + seconds * 1000;
	while (Date.now() < deadline) {
		try {
			const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
			if (r.status === 200) return 0;
		} catch {}
		await new Promise((r) => setTimeout(r, 100));
	}
	return 1;
}

// pgbench's own figures from its output, latencies from its -l logs
// (one line per script run: client, number, latency in us, script, epoch s, us).
function pgbench(outFile, logDir, clients, seconds) {
	const text = fs.readFileSync(outFile, 'utf8');
	const num = (re) => {
		const m = text.match(re);
		return m ? Number(m[1]) : null;
	};
	const lat = [];
	for (const f of fs.readdirSync(logDir)) {
		for (const line of fs.readFileSync(path.join(logDir, f), 'utf8').split('\n')) {
			const cols = line.trim().split(/\s+/);
			if (cols.length >= 3 && /^\d+$/.test(cols[2])) lat.push(Number(cols[2]) / 1000);
		}
	}
	lat.sort((a, b) => a - b);
	const tps = num(/tps = ([0-9.]+) \(without initial connection time\)/);
	const failed = num(/number of failed transactions: (\d+)/) ?? 0;
	const aborted = (text.match(/client \d+ aborted/g) || []).length;
	return {
		clients: Number(clients),
		seconds: Number(seconds),
		scripts: num(/number of transactions actually processed: (\d+)/),
		tps,
		// One script run is one /dibs on and one /dibs off.
		commands_per_s: tps === null ? null : 2 * tps,
		failed: failed + aborted,
		script_latency_ms: { p50: rank(lat, 0.5), p99: rank(lat, 0.99), max: rank(lat, 1) },
	};
}

// pg_test_fsync's figures: { section: [{ method, ops_per_s, usecs_per_op }] }
// (a method it cannot use on this system has ops_per_s null).
function fsyncFigures(file) {
	if (!fs.existsSync(file)) return null;
	const out = {};
	let section = 'preamble';
	for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
		const head = line.match(/^(Compare|Non-sync'ed)\s.*$/);
		if (head) {
			section = line.trim().replace(/:$/, '');
			continue;
		}
		const m = line.match(/^\s+(\S.*?\S)\s{2,}([0-9.,]+) ops\/sec\s+([0-9.,]+) usecs\/op/);
		const na = line.match(/^\s+(\S.*?\S)\s{2,}n\/a/);
		if (m) (out[section] ??= []).push({ method: m[1], ops_per_s: Number(m[2].replace(/,/g, '')), usecs_per_op: Number(m[3].replace(/,/g, '')) });
		else if (na) (out[section] ??= []).push({ method: na[1], ops_per_s: null, usecs_per_op: null });
	}
	return Object.keys(out).length ? out : null;
}

// --- the final report ------------------------------------------------------

const CONNS = [1, 16, 64];
const SIZES = [
	['small', 'small'],
	['large', 'large'],
];

function fmt(v, digits = 1) {
	if (v === null || v === undefined || Number.isNaN(v)) return '-';
	return Number(v).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function pad(s, n, right = false) {
	s = String(s);
	return right ? s.padEnd(n) : s.padStart(n);
}

// Where the CPU of a run went: per request (us) and in cores. "others" is
// the machine's busy time that none of conch, PostgreSQL and the client
// used: other work on the machine, which the figures of that run suffered.
function cpuUse(cpu, requests, clientSeconds, hz) {
	if (!cpu || !cpu.wall_s || !requests) return null;
	const wall = Number(cpu.wall_s);
	const secs = {
		conch: Number(cpu.conch_ticks || 0) / hz,
		postgres: Number(cpu.postgres_ticks) / hz,
		client: clientSeconds,
		machine: Number(cpu.machine_ticks) / hz,
	};
	secs.others = Math.max(0, secs.machine - secs.conch - secs.postgres - secs.client);
	const out = { wall_s: wall, requests };
	for (const [k, v] of Object.entries(secs)) {
		out[`${k}_us_per_request`] = (v / requests) * 1e6;
		out[`${k}_cores`] = v / wall;
	}
	return out;
}

// How the server's HTTP work spread over its threads during a run, from
// "TID NAME TICKS" snapshots before and after: ticks per HTTP worker (the
// threads src/http.c names http-worker) and how many did at least a tenth.
function threadUse(base) {
	const read = (f) => {
		const m = new Map();
		if (!fs.existsSync(f)) return m;
		for (const line of fs.readFileSync(f, 'utf8').split('\n')) {
			const [tid, name, ticks] = line.trim().split(/\s+/);
			if (ticks !== undefined) m.set(tid, { name, ticks: Number(ticks) });
		}
		return m;
	};
	const before = read(`${base}.before`);
	const after = read(`${base}.after`);
	if (after.size === 0) return null;
	const workers = [...after].filter(([, v]) => /^http-worker/.test(v.name))
		.map(([tid, v]) => v.ticks - (before.get(tid)?.ticks ?? 0));
	const total = workers.reduce((a, b) => a + b, 0);
	return {
		http_worker_ticks: workers.sort((a, b) => b - a),
		http_workers: workers.length,
		http_workers_busy: workers.filter((t) => total > 0 && t >= total / 10).length,
	};
}

function serverRun(dir, name, hz) {
	const run = readJson(path.join(dir, `${name}.json`));
	if (!run) return null;
	run.cpu = cpuUse(readEnv(path.join(dir, `${name}.cpu.env`)), run.completed_total, run.cpu_s ?? 0, hz);
	run.threads = threadUse(path.join(dir, `${name}.threads`));
	return run;
}

function pgbenchRun(dir, name, hz) {
	const p = readJson(path.join(dir, `${name}.json`));
	if (!p) return null;
	const cpu = readEnv(path.join(dir, `${name}.cpu.env`));
	p.cpu = cpuUse(cpu, 2 * (p.scripts || 0), Number(cpu.children_ticks || 0) / hz, hz);
	return p;
}

// Every round NAME-1, NAME-2, ... that exists, loaded by load(name).
function rounds(dir, name, load) {
	const out = [];
	for (let r = 1; fs.existsSync(path.join(dir, `${name}-${r}.json`)); r++) {
		const run = load(`${name}-${r}`);
		if (run) out.push(run);
	}
	return out;
}

// The round with the median of key (the lower middle one for an even
// count), with the spread of key over all rounds and all rounds' key figures.
function median(runs, key) {
	const sorted = [...runs].sort((a, b) => (a[key] ?? 0) - (b[key] ?? 0));
	const m = { ...sorted[Math.floor((sorted.length - 1) / 2)] };
	m.rounds = runs.map((r) => ({
		[key]: r[key],
		p50_ms: r.p50_ms ?? r.script_latency_ms?.p50,
		p99_ms: r.p99_ms ?? r.script_latency_ms?.p99,
		errors: r.errors ?? r.failed,
		others_cores: r.cpu?.others_cores ?? null,
		...(r.threads ? { http_workers_busy: r.threads.http_workers_busy } : {}),
	}));
	m[`${key}_min`] = sorted[0][key];
	m[`${key}_max`] = sorted[sorted.length - 1][key];
	return m;
}

function assemble(dir) {
	const meta = readEnv(path.join(dir, 'meta.env'));
	const hz = Number(meta.clk_tck || 100);
	const res = {
		generated_at: new Date().toISOString(),
		machine: {
			cpus: Number(meta.cpus),
			busy_before_start_cores: meta.busy_cores ? Number(meta.busy_cores) : null,
			kernel: meta.kernel,
			postgresql: meta.pg_version,
			conch_version: meta.conch_version,
		},
		settings: {
			conch: {
				binary: meta.conch_bin,
				bench_sql: meta.bench_sql || null,
				pgoptions: meta.pgoptions || null,
				http_threads: Number(meta.http_threads),
				job_threads: Number(meta.job_threads),
				log_level: 'warn',
			},
			postgresql: readJson(path.join(dir, 'pg_settings.json'), {}),
			load: {
				seconds_per_run: Number(meta.seconds),
				rounds: Number(meta.repeat),
				warmup_seconds_per_run: Number(meta.run_warmup),
				users: Number(meta.users),
				things_per_team: Number(meta.things),
				teams_small: Number(meta.teams_small),
				teams_large: Number(meta.teams_large),
			},
		},
		database: {
			small: readJson(path.join(dir, 'db-small.json')),
			large: readJson(path.join(dir, 'db-large.json')),
			seed_seconds: meta.seed_seconds ? Number(meta.seed_seconds) : null,
		},
		onoff: {},
		open_loop: readJson(path.join(dir, 'open-small-16.json')),
		pgbench: {},
		timed_releases: readJson(path.join(dir, 'timed.json')),
		timed_create: readJson(path.join(dir, 'timed-create.json')),
		jobs: {
			noop: readJson(path.join(dir, 'jobs-noop.json')),
			dm: readJson(path.join(dir, 'jobs-dm.json')),
		},
		slack_stub: readJson(path.join(dir, 'stub.json')),
		fanout: readJson(path.join(dir, 'fanout.json')),
		memory: {
			vmhwm_kb: meta.vmhwm_kb ? Number(meta.vmhwm_kb) : null,
			vmrss_kb: meta.vmrss_kb ? Number(meta.vmrss_kb) : null,
		},
		server: {
			exit: meta.server_exit ?? null,
			log_warnings: Number(meta.log_warnings || 0),
			log_errors: Number(meta.log_errors || 0),
		},
	};
	for (const [size] of SIZES) {
		res.onoff[size] = {};
		res.pgbench[size] = {};
		for (const c of CONNS) {
			const runs = rounds(dir, `onoff-${size}-${c}`, (name) => serverRun(dir, name, hz));
			if (runs.length) res.onoff[size][c] = median(runs, 'rps');
			for (const script of ['command', 'server', 'peer']) {
				const p = rounds(dir, `pgbench-${size}-${script}-${c}`, (name) => pgbenchRun(dir, name, hz));
				if (p.length) (res.pgbench[size][script] ??= {})[c] = median(p, 'commands_per_s');
			}
		}
	}
	res.open_loop = serverRun(dir, 'open-small-16', hz);
	// The peer (bench/peer) on the 100-team database, and an open loop at
	// 1,000 requests/s for both.
	res.peer = {};
	for (const c of CONNS) {
		const runs = rounds(dir, `peer-small-${c}`, (name) => serverRun(dir, name, hz));
		if (runs.length) res.peer[c] = median(runs, 'rps');
	}
	res.open_loop_1000 = {
		conch: serverRun(dir, 'open1000-small-16', hz),
		peer: serverRun(dir, 'open1000-peer-16', hz),
	};
	res.defaults_16 = serverRun(dir, 'defaults-small-16', hz);
	res.pg_test_fsync = fsyncFigures(path.join(dir, 'fsync.txt'));
	res.targets = targets(res);
	return res;
}

function ratio(res, size, c, script = 'command') {
	const run = res.onoff[size]?.[c];
	const pg = res.pgbench[size]?.[script]?.[c];
	if (!run || !pg || !pg.commands_per_s) return null;
	return run.rps / pg.commands_per_s;
}

// pgbench's best commands/s at any client count: what PostgreSQL allows.
function bestPg(res, size, script = 'command') {
	const runs = Object.values(res.pgbench[size]?.[script] || {});
	return runs.length ? Math.max(...runs.map((r) => r.commands_per_s || 0)) : null;
}

const SIZE_LABEL = { small: '100 teams', large: '100,000 teams' };

function targets(res) {
	const t = [];
	const add = (name, value, unit, met) => t.push({ name, value, unit, met: value === null ? false : met });
	for (const size of ['small', 'large']) {
		const p99 = res.onoff[size]?.[16]?.p99_ms ?? null;
		add(`p99 under 5 ms at 16 connections, closed loop (${SIZE_LABEL[size]})`, p99, 'ms', p99 !== null && p99 < 5);
	}
	for (const size of ['small', 'large'])
		for (const c of [16, 64]) {
			const r = ratio(res, size, c);
			add(`at least 80% of pgbench at ${c} connections (${SIZE_LABEL[size]})`, r === null ? null : 100 * r, '%',
				r !== null && r >= 0.8);
		}
	for (const c of [16, 64]) {
		const conch = res.onoff.small?.[c]?.rps;
		const peer = res.peer?.[c]?.rps;
		const sql = res.pgbench.small?.peer?.[c]?.commands_per_s;
		const rp = conch && peer ? conch / peer : null;
		const rs = conch && sql ? conch / sql : null;
		add(`conch at least 2.5x the peer at ${c} connections (100 teams)`, rp, 'x', rp !== null && rp >= 2.5);
		add(`conch at least 0.9x pgbench of the peer's SQL at ${c} connections (100 teams)`, rs, 'x', rs !== null && rs >= 0.9);
	}
	const open = res.open_loop_1000?.conch;
	const openP99 = open ? open.p99_ms : null;
	add('p99 under 5 ms in an open loop at 1,000 requests/s (16 connections, 100 teams)', openP99, 'ms',
		openP99 !== null && openP99 < 5 && open.errors === 0);
	const late = res.timed_releases?.p99_ms ?? null;
	const all = res.timed_releases && res.timed_releases.released === res.timed_releases.count;
	add('timed-release lateness p99 under 250 ms (all released)', late, 'ms', late !== null && late < 250 && all);
	const mb = res.memory.vmhwm_kb === null ? null : res.memory.vmhwm_kb / 1024;
	add('server peak resident memory under 50 MB', mb, 'MB', mb !== null && mb < 50);
	const errs = Object.values(res.onoff).flatMap((s) => Object.values(s))
		.reduce((n, r) => n + r.rounds.reduce((k, x) => k + (x.errors || 0), 0), 0) + (res.open_loop?.errors || 0) +
		(res.open_loop_1000?.conch?.errors || 0) + (res.defaults_16?.errors || 0);
	add('no failed requests', errs, 'errors', errs === 0);
	const fo = res.fanout;
	if (fo) {
		const lat = fo.latency_ms;
		add(`fan-out: 20 timed holds, last DM within 1 s + 2 latencies (${(1 + lat / 500).toFixed(1)} s)`,
			fo.holds ? fo.holds.worst_ms / 1000 : null, 's', !!fo.holds && fo.holds.worst_ms <= fo.holds.target_ms);
		add('fan-out: /lunch start, 200 members, limits off, last DM within 3 s', fo.lunch200?.last_dm_s ?? null, 's',
			!!fo.lunch200 && fo.lunch200.last_dm_s <= 3);
		add('fan-out: /lunch start, 500 members, limits on, a handful of 429s at most', fo.lunch500?.refused_429 ?? null,
			'errors', !!fo.lunch500 && fo.lunch500.refused_429 <= 5);
		add('fan-out: 1,000 teams x 20-member polls, at least 500 DMs/s', fo.teams?.dms_per_s ?? null, 'DMs/s',
			!!fo.teams && fo.teams.teams >= 1000 && fo.teams.dms_per_s >= 500);
		add('fan-out: peak resident memory in that run under 100 MB', fo.teams?.peak_rss_mb ?? null, 'MB',
			!!fo.teams && fo.teams.peak_rss_mb < 100);
		add('fan-out: a timed DM beside a 500-member poll within 1 s + 2 latencies', fo.beside ? fo.beside.worst_ms / 1000 : null,
			's', !!fo.beside && fo.beside.poll_in_flight && fo.beside.worst_ms <= fo.beside.target_ms);
	}
	return t;
}

function pct(a, b) {
	return a && b ? `${fmt((100 * a) / b, 0)}%` : '-';
}

function printTable(res) {
	const out = [];
	const o = (s = '') => out.push(s);
	const row = (cols, widths) => cols.map((c, i) => pad(c, widths[i], i === 0)).join('');
	const pgs = res.settings.postgresql;
	const load = res.settings.load;
	o(`conch benchmark: ${res.machine.cpus} CPUs, PostgreSQL ${res.machine.postgresql} on the same machine ` +
		`(synchronous_commit=${pgs.synchronous_commit ?? '?'}, shared_buffers=${pgs.shared_buffers ?? '?'}); conch ` +
		`${res.machine.conch_version}, ${res.settings.conch.http_threads} HTTP threads, ` +
		`${res.settings.conch.job_threads} job runners`);
	if (res.settings.conch.bench_sql || res.settings.conch.pgoptions)
		o(`Variant: BENCH_SQL=${res.settings.conch.bench_sql ?? ''} PGOPTIONS=${res.settings.conch.pgoptions ?? ''}`);
	if (res.machine.busy_before_start_cores !== null)
		o(`Other work on the machine before the start: ${fmt(res.machine.busy_before_start_cores, 2)} cores busy`);
	o();
	o(`Signed /dibs on + /dibs off, closed loop: ${load.seconds_per_run} s per run, ${load.rounds} rounds interleaved ` +
		'with pgbench; the median round by req/s (range over rounds). Latency is that of one command.');
	const w1 = [16, 6, 8, 16, 8, 8, 8, 7, 9, 11];
	o(row(['database', 'conns', 'req/s', 'range', 'p50 ms', 'p99 ms', 'max ms', 'errors', 'others', 'busy HTTP'], w1));
	for (const size of ['small', 'large'])
		for (const c of CONNS) {
			const r = res.onoff[size]?.[c];
			if (!r) continue;
			const errs = r.rounds.reduce((n, x) => n + (x.errors || 0), 0);
			const busyHttp = r.rounds.map((x) => x.http_workers_busy ?? '?').join(',');
			o(row([SIZE_LABEL[size], c, fmt(r.rps, 0), `${fmt(r.rps_min, 0)}-${fmt(r.rps_max, 0)}`, fmt(r.p50_ms, 2),
				fmt(r.p99_ms, 2), fmt(r.max_ms, 1), errs, fmt(r.cpu?.others_cores, 2), busyHttp], w1));
		}
	o('  errors: over all rounds. others: cores busy but not charged to conch, PostgreSQL or the client (kernel');
	o('  threads working for them, such as journal commits and network softirqs, and any unrelated work).');
	o(`  busy HTTP: per round, how many of conch's ${res.settings.conch.http_threads} HTTP threads did at least a tenth of its HTTP work.`);
	const ol = res.open_loop;
	if (ol)
		o(`Open loop (no coordinated omission) at ${fmt(ol.rate, 0)} requests/s, half the closed loop's, over ` +
			`${ol.connections} connections, 100 teams: p50 ${fmt(ol.p50_ms, 2)} ms, p90 ${fmt(ol.p90_ms, 2)} ms, ` +
			`p99 ${fmt(ol.p99_ms, 2)} ms, max ${fmt(ol.max_ms, 1)} ms, ${ol.errors} errors (others ` +
			`${fmt(ol.cpu?.others_cores, 2)} cores)`);
	const db = res.database;
	if (db.large)
		o(`100,000-team database: ${fmt(db.large.teams, 0)} teams, ${fmt(db.large.things, 0)} things, ` +
			`${fmt(db.large.events, 0)} events, ${fmt(db.large.size_mb, 0)} MB, seeded in ${fmt(db.seed_seconds, 0)} s`);
	o();
	o('The server against pgbench running the same SQL (commands/s = 2 x pgbench scripts/s): "command" sends the');
	o('command transactions alone, "full" every statement the server sends (its installed-team check too);');
	o('"best" is pgbench\'s highest figure at any client count.');
	const w2 = [16, 6, 8, 10, 8, 10, 8, 10, 8];
	o(row(['database', 'conns', 'server', 'command', 'ratio', 'best', 'ratio', 'full', 'ratio'], w2));
	for (const size of ['small', 'large'])
		for (const c of CONNS) {
			const r = res.onoff[size]?.[c];
			if (!r) continue;
			const pg = res.pgbench[size]?.command?.[c]?.commands_per_s;
			const full = res.pgbench[size]?.server?.[c]?.commands_per_s;
			const best = bestPg(res, size);
			o(row([SIZE_LABEL[size], c, fmt(r.rps, 0), fmt(pg, 0), pct(r.rps, pg), fmt(best, 0), pct(r.rps, best),
				fmt(full, 0), pct(r.rps, full)], w2));
		}
	o();
	o('Against the peer (bench/peer: Bolt-js + pg, 2 node workers, one SELECT to authorize and one function call');
	o('per command, then the hand-over DM) and pgbench running exactly the peer\'s SQL, 100 teams, median rounds:');
	const w4 = [8, 9, 9, 9, 9, 8, 10, 8, 10, 8];
	const x = (a, b) => (a && b ? `${fmt(a / b, 2)}x` : '-');
	o(row(['conns', 'conch', 'p99 ms', 'peer', 'p99 ms', 'x peer', 'peer SQL', 'x SQL', 'PG us/cmd', 'peer PG'], w4));
	for (const c of [16, 64]) {
		const r = res.onoff.small?.[c];
		const pr = res.peer?.[c];
		const sql = res.pgbench.small?.peer?.[c];
		if (!r && !pr) continue;
		o(row([c, fmt(r?.rps, 0), fmt(r?.p99_ms, 2), fmt(pr?.rps, 0), fmt(pr?.p99_ms, 2), x(r?.rps, pr?.rps),
			fmt(sql?.commands_per_s, 0), x(r?.rps, sql?.commands_per_s), fmt(r?.cpu?.postgres_us_per_request, 0),
			fmt(pr?.cpu?.postgres_us_per_request, 0)], w4));
	}
	o('  x peer, x SQL: conch\'s rate over the peer\'s and over pgbench\'s. PG us/cmd: PostgreSQL CPU per command');
	o('  (all its processes, microseconds) while conch ran; peer PG: the same while the peer ran. conch here has');
	o('  channel announcements and check-ins off, so that it sends what the peer sends (the reply, the hand-over DM).');
	const dflt = res.defaults_16;
	if (dflt)
		o(`  With its defaults (announcements and check-ins on), 16 connections: conch ${fmt(dflt.rps, 0)} req/s, p99 ` +
			`${fmt(dflt.p99_ms, 2)} ms, ${x(dflt.rps, res.peer?.[16]?.rps)} the peer, PostgreSQL ` +
			`${fmt(dflt.cpu?.postgres_us_per_request, 0)} us per command, ${dflt.errors} errors.`);
	for (const [who, ol] of Object.entries(res.open_loop_1000 || {}))
		if (ol)
			o(`Open loop at ${fmt(ol.rate, 0)} requests/s over ${ol.connections} connections, ${who}: p50 ${fmt(ol.p50_ms, 2)} ms, ` +
				`p99 ${fmt(ol.p99_ms, 2)} ms, max ${fmt(ol.max_ms, 1)} ms, ${ol.errors} errors, PostgreSQL ` +
				`${fmt(ol.cpu?.postgres_us_per_request, 0)} us per command`);
	const fsy = res.pg_test_fsync;
	if (fsy) {
		const one = Object.entries(fsy).find(([k]) => /one 8kB write/.test(k));
		if (one)
			o(`pg_test_fsync, one 8kB write (the most durable commits a second this disk allows): ${one[1]
				.map((m) => `${m.method} ${m.ops_per_s === null ? 'n/a' : `${fmt(m.ops_per_s, 0)}/s (${fmt(m.usecs_per_op, 0)} us)`}`)
				.join(', ')}; wal_sync_method is ${pgs.wal_sync_method ?? '?'}`);
	}
	o();
	o('Where the CPU went, in microseconds per command (cores in brackets), median rounds (others: see above):');
	const w3 = [34, 15, 16, 15, 15];
	o(row(['run', 'conch', 'postgres', 'client', 'others'], w3));
	const cell = (cpu, k) => (cpu ? `${fmt(cpu[`${k}_us_per_request`], 0)} (${fmt(cpu[`${k}_cores`], 2)})` : '-');
	for (const size of ['small', 'large']) {
		for (const c of CONNS) {
			const r = res.onoff[size]?.[c];
			if (r?.cpu)
				o(row([`server, ${SIZE_LABEL[size]}, ${c}`, cell(r.cpu, 'conch'), cell(r.cpu, 'postgres'),
					cell(r.cpu, 'client'), cell(r.cpu, 'others')], w3));
		}
		for (const c of CONNS) {
			const r = size === 'small' ? res.peer?.[c] : null;
			if (r?.cpu)
				o(row([`peer (in conch's column), ${c}`, cell(r.cpu, 'conch'), cell(r.cpu, 'postgres'),
					cell(r.cpu, 'client'), cell(r.cpu, 'others')], w3));
		}
		for (const script of ['command', 'server', 'peer'])
			for (const c of CONNS) {
				const p = res.pgbench[size]?.[script]?.[c];
				if (p?.cpu)
					o(row([`pgbench ${script === 'server' ? 'full' : script}, ${SIZE_LABEL[size]}, ${c}`, '-',
						cell(p.cpu, 'postgres'), cell(p.cpu, 'client'), cell(p.cpu, 'others')], w3));
			}
	}
	o();
	const tr = res.timed_releases;
	if (tr)
		o(`Timed releases: ${tr.released}/${tr.count} released; lateness p50 ${fmt(tr.p50_ms, 0)} ms, ` +
			`p99 ${fmt(tr.p99_ms, 0)} ms, max ${fmt(tr.max_ms, 0)} ms (to the 'expire' event; to the job's ` +
			`finish: p99 ${fmt(tr.finished_p99_ms, 0)} ms)`);
	for (const [name, j] of [['no-op releases', res.jobs.noop], ['DMs to the Slack stub', res.jobs.dm]])
		if (j)
			o(`Background jobs (${name}): ${j.done}/${j.jobs} done, ${j.dead} dead, in ${fmt(j.seconds, 2)} s = ` +
				`${fmt(j.per_second, 0)} jobs/s`);
	if (res.slack_stub)
		o(`Slack stub: ${Object.entries(res.slack_stub.calls || {}).map(([k, v]) => `${k} ${v}`).join(', ') || 'no calls'}` +
			`, refused ${res.slack_stub.refused}`);
	if (res.fanout?.text) {
		o();
		for (const line of res.fanout.text) o(line);
		o();
	}
	o(`Server peak resident memory (VmHWM): ${fmt(res.memory.vmhwm_kb / 1024, 1)} MB; at the end ` +
		`${fmt(res.memory.vmrss_kb / 1024, 1)} MB`);
	o(`Server log: ${res.server.log_warnings} warnings, ${res.server.log_errors} errors; exit status after SIGTERM: ` +
		`${res.server.exit}`);
	o();
	o('Targets');
	for (const t of res.targets)
		o(`  ${t.met ? 'met   ' : 'MISSED'}  ${t.name}: ${t.value === null ? 'no figure' : `${fmt(t.value, t.unit === 'errors' ? 0 : 1)} ${t.unit}`}`);
	return out.join('\n');
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'wait-http') {
	process.exit(await waitHttp(args[0], Number(args[1] || 20)));
} else if (cmd === 'get') {
	const r = await fetch(args[0], { signal: AbortSignal.timeout(5000) });
	process.stdout.write(await r.text());
} else if (cmd === 'pgbench') {
	process.stdout.write(`${JSON.stringify(pgbench(args[0], args[1], args[2], args[3]))}\n`);
} else if (cmd === 'line') {
	// One progress line for a run (WHAT FILE CPUENV); exits 1 when it had errors.
	const r = readJson(args[1]);
	if (!r) process.exit(1);
	const cpu = readEnv(args[2]);
	// The client: the load generator reports its own CPU; pgbench is this script's child.
	const client = r.cpu_s ?? Number(cpu.children_ticks || 0) / hzOf(cpu);
	const others = Math.max(0, (Number(cpu.machine_ticks) - Number(cpu.conch_ticks || 0) - Number(cpu.postgres_ticks))
		/ hzOf(cpu) - client) / Number(cpu.wall_s);
	const busy = `machine ${fmt(Number(cpu.machine_ticks) / hzOf(cpu) / Number(cpu.wall_s), 2)} cores busy, others ${fmt(others, 2)}`;
	const th = args[3] && args[0] === 'server' ? threadUse(args[3]) : null;
	const spread = th ? `, ${th.http_workers_busy} of ${th.http_workers} HTTP threads busy` : '';
	if (args[0] === 'server' || args[0] === 'peer')
		process.stdout.write(`bench:   ${args[0]} ${r.loop === 'open' ? `open loop ${fmt(r.rate, 0)}/s` : 'closed loop'}, ` +
			`${r.connections} connections: ${fmt(r.rps, 0)} req/s, p50 ${fmt(r.p50_ms, 2)} ms, p99 ${fmt(r.p99_ms, 2)} ms, ` +
			`max ${fmt(r.max_ms, 1)} ms, ${r.errors} errors (${busy}${spread})\n`);
	else
		process.stdout.write(`bench:   ${args[0]}, ${r.clients} clients: ${fmt(r.commands_per_s, 0)} commands/s, ` +
			`script p99 ${fmt(r.script_latency_ms.p99, 2)} ms, ${r.failed} failed (${busy})\n`);
	process.exit(r.errors || r.failed ? 1 : 0);
} else if (cmd === 'half-rate') {
	// Half the median closed-loop rate of DIR's SIZE runs at CONNS connections.
	const runs = rounds(args[0], `onoff-${args[1]}-${args[2]}`, (name) => readJson(path.join(args[0], `${name}.json`)));
	const m = runs.length ? median(runs, 'rps').rps : 2;
	process.stdout.write(`${Math.max(1, Math.round(m / 2))}\n`);
} else if (cmd === 'final') {
	const res = assemble(args[0]);
	fs.writeFileSync(args[1], `${JSON.stringify(res, null, 2)}\n`);
	process.stdout.write(`${printTable(res)}\n`);
} else {
	process.stderr.write('usage: node bench/report.mjs wait-http|get|pgbench|final ...\n');
	process.exit(2);
}
