// Faults, bounded: SIGKILL of one of two instances again and again under
// load, a PostgreSQL restart under load, and a Slack that answers 429, 500,
// ok:false or nothing at all. What must hold afterwards is checked in the
// database (the dibs event log and the jobs table) and in the fake Slack's
// record of every call, never assumed from the replies alone.
//
// The load model. Each "solo" user has a thing of their own and alternates
// `on` and `off`, so the state each acknowledged reply describes is exactly
// derivable: held after "is yours"/"already have", free after "released"/
// "don't hold". A request that got no 200 (the instance died under it) or
// got the database-down text leaves the state unknown until the next
// acknowledged reply. Every acknowledged reply must agree with the model
// (an acknowledged `on` followed by "you don't hold it" is a lost command),
// and at the end the stored holder and the event log must agree with it.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { startCluster, testCluster } from '../lib/pg.mjs';
import {
	db, eventEnvelope, installTeam, sanitizerErrors, sleep, startConch, waitUntil,
} from '../lib/server.mjs';

const PRO = 'T0FAULTPRO';
const CHANNEL = 'C0FAULT001';
const DB_DOWN = /can.t reach its database/i;

function textOf(msg) {
	return [msg?.text ?? '', ...(msg?.blocks || []).map((x) => x.text?.text || '')].join('\n');
}

function countBy(list, key) {
	const m = new Map();
	for (const x of list) m.set(key(x), (m.get(key(x)) || 0) + 1);
	return m;
}

// --- the solo model --------------------------------------------------------------

class Solo {
	constructor(user, thing) {
		this.user = user;
		this.thing = thing;
		this.state = 'free';
		this.next = 'on';
		this.acked = { hold: 0, release: 0 };
		this.unacked = { on: 0, off: 0 };
		this.dbDown = 0;
		this.violations = [];
	}

	// Applies one answer (null: no 200 came back) to the model.
	apply(verb, text, where) {
		if (text === null || DB_DOWN.test(text)) {
			if (text !== null) this.dbDown++;
			this.unacked[verb]++;
			this.state = 'unknown';
			return;
		}
		const was = this.state;
		const bad = (why) => this.violations.push(`${this.user} ${verb} ${this.thing} via ${where}: ${why} (model: ${was}); reply: ${text}`);
		if (verb === 'on') {
			if (/is yours/.test(text)) {
				if (was === 'held') bad('"is yours" for a thing the model says is held: an acknowledged on or off was lost');
				this.acked.hold++;
			} else if (/already have/.test(text)) {
				if (was === 'free') bad('"already have" for a thing the model says is free: an acknowledged off was lost');
			} else {
				bad('unexpected reply');
			}
			this.state = 'held';
		} else {
			if (/You released/.test(text)) {
				if (was === 'free') bad('"released" for a thing the model says is free: an acknowledged off was lost');
				this.acked.release++;
			} else if (/don't hold/.test(text)) {
				if (was === 'held') bad('"don\'t hold" for a thing the model says is held: an acknowledged on was lost');
			} else {
				bad('unexpected reply');
			}
			this.state = 'free';
		}
	}

	// The stored holder and the event log against the model.
	async check(sdb, team) {
		const out = [];
		const h = await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [team, this.thing]);
		if (this.state !== 'unknown' && (h?.user_id === this.user) !== (this.state === 'held'))
			out.push(`${this.thing}: stored holder ${h?.user_id ?? 'none'}, model ${this.state}`);
		const ev = await sdb.query(
			`SELECT action, count(*)::int AS n FROM dibs_events WHERE team_id = $1 AND thing = $2 GROUP BY 1`, [team, this.thing]);
		const n = Object.fromEntries(ev.map((r) => [r.action, r.n]));
		const holds = n.hold || 0;
		const releases = n.release || 0;
		if (holds < this.acked.hold || holds > this.acked.hold + this.unacked.on)
			out.push(`${this.thing}: ${holds} hold events for ${this.acked.hold} acknowledged and ${this.unacked.on} unknown ons`);
		if (releases < this.acked.release || releases > this.acked.release + this.unacked.off)
			out.push(`${this.thing}: ${releases} release events for ${this.acked.release} acknowledged and ${this.unacked.off} unknown offs`);
		if (holds - releases !== (h?.user_id === this.user ? 1 : 0))
			out.push(`${this.thing}: ${holds} holds and ${releases} releases in the log, but held=${h?.user_id === this.user}`);
		return out;
	}
}

// Replays a thing's event log in order: every hold or promote starts on a
// free thing, every release and expire ends the current holder's hold.
// A release that fired twice or released a later hold breaks it.
async function replay(sdb, team, thing) {
	const ev = await sdb.query('SELECT id, action, user_id FROM dibs_events WHERE team_id = $1 AND thing = $2 ORDER BY id', [team, thing]);
	const out = [];
	let holder = null;
	for (const e of ev) {
		if (e.action === 'hold' || e.action === 'promote') {
			if (holder) out.push(`${thing}: ${e.action} of ${e.user_id} while ${holder} held it (event ${e.id})`);
			holder = e.user_id;
		} else if (e.action === 'release' || e.action === 'expire') {
			if (holder !== e.user_id) out.push(`${thing}: ${e.action} of ${e.user_id} while ${holder ?? 'nobody'} held it (event ${e.id})`);
			holder = null;
		}
	}
	return out;
}

// --- (a) SIGKILL one of two instances, again and again, under load -----------------

describe('SIGKILL of one of two instances every few seconds under load', () => {
	const LOAD_MS = 36_000;
	const KILL_EVERY_MS = 4_000;
	let cluster, dbName, dbUrl, slack, sdb;
	const slots = [null, null];
	const ports = [0, 0];
	const retired = []; // killed instances, checked for sanitizer reports
	const kills = [];

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_kill_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		slack = await startFakeSlack();
		slots[0] = await startConch({ databaseUrl: dbUrl, slack });
		slots[1] = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
		ports[0] = slots[0].port;
		ports[1] = slots[1].port;
		sdb = db(cluster.superuserUrl(dbName));
		await installTeam(dbUrl, { team_id: PRO, token: slack.issueToken({ team_id: PRO }), plan: 'pro' });
	});

	after(async () => {
		for (const s of [...slots, ...retired]) await s?.stop({ allowUnclean: true }).catch(() => {});
		await slack?.close();
		await sdb?.close();
		if (cluster) {
			await cluster.dropDatabase(dbName).catch(() => {});
			await cluster.stop();
		}
	});

	// One command to a live instance; null when no 200 came back.
	async function send(text, user) {
		const up = [0, 1].filter((i) => slots[i] && !slots[i].exitInfo);
		if (up.length === 0) return { text: null, where: 'none' };
		const i = up[Math.floor(Math.random() * up.length)];
		const server = slots[i];
		try {
			const r = await server.slashCommand({ team_id: PRO, user_id: user, channel_id: CHANNEL, command: '/dibs', text });
			return { text: r.status === 200 && r.json ? textOf(r.json) : null, where: `slot ${i}` };
		} catch {
			return { text: null, where: `slot ${i}` };
		}
	}

	// Sends until a 200 comes back (each attempt counts in the model).
	async function sendAcked(text, user, onReply, deadline) {
		while (Date.now() < deadline) {
			const r = await send(text, user);
			onReply?.(r);
			if (r.text !== null && !DB_DOWN.test(r.text)) return r.text;
			await sleep(100);
		}
		return null;
	}

	async function holderOf(thing) {
		return (await sdb.one('SELECT user_id, hold_id FROM holds WHERE team_id = $1 AND thing = $2', [PRO, thing])) ?? null;
	}

	function yourTurnDms(user, thing) {
		return slack.calls('chat.postMessage').filter((c) => c.status === 200 && c.body?.channel === user
			&& new RegExp(`\\*${thing}\\* is yours`).test(c.body.text));
	}

	function dmHold(call) {
		const btn = (call.body.blocks || []).flatMap((x) => x.elements || []).find((e) => e.action_id === 'dibs.release');
		return btn ? btn.value.split(' ')[1] : null;
	}

	test('acknowledged commands survive, timed releases fire once, DMs are not repeated, every job finishes', async () => {
		const stopAt = Date.now() + LOAD_MS;
		const solos = Array.from({ length: 8 }, (_, i) => new Solo(`U0KSOLO${String(i).padStart(3, '0')}`, `solo-${i}`));
		const pairs = Array.from({ length: 3 }, (_, j) => ({
			a: `U0KPAIRA${String(j).padStart(2, '0')}`, b: `U0KPAIRB${String(j).padStart(2, '0')}`, thing: `timed-${j}`,
			rounds: 0, violations: [],
		}));

		async function soloLoop(s) {
			while (Date.now() < stopAt) {
				const verb = s.next;
				const r = await send(`${verb} ${s.thing}`, s.user);
				s.apply(verb, r.text, r.where);
				s.next = verb === 'on' ? 'off' : 'on';
				await sleep(20);
			}
		}

		// a takes the thing for 2 s, b queues behind; the release hands it to
		// b, who waits for the "is yours" DM and lets go; again.
		async function pairLoop(p) {
			while (Date.now() < stopAt) {
				const deadline = Date.now() + 20_000;
				const ta = await sendAcked(`on ${p.thing} for 2s`, p.a, null, deadline);
				if (ta === null) return p.violations.push(`${p.thing}: no answer to a's on`);
				if (!/is yours until|already have/.test(ta)) return p.violations.push(`${p.thing}: a's on answered: ${ta}`);
				const tb = await sendAcked(`on ${p.thing}`, p.b, null, deadline);
				if (tb === null) return p.violations.push(`${p.thing}: no answer to b's on`);
				if (!/in the queue|is yours|already have/.test(tb)) return p.violations.push(`${p.thing}: b's on answered: ${tb}`);
				try {
					await waitUntil(async () => (await holderOf(p.thing))?.user_id !== p.a, { timeoutMs: 15_000, intervalMs: 100, what: `${p.thing} released` });
				} catch {
					return p.violations.push(`${p.thing}: a's 2 s hold was not released within 15 s`);
				}
				const h = await holderOf(p.thing);
				// b was promoted (and is owed a DM) unless a's hold had ended
				// before b asked.
				const promoted = h && (await sdb.count('jobs', "kind = 'dibs.notify' AND dedupe_key = $1", [`notify:your_turn:${h.hold_id}`])) > 0;
				if (h?.user_id === p.b && promoted) {
					try {
						await waitUntil(() => yourTurnDms(p.b, p.thing).some((c) => dmHold(c) === String(h.hold_id)), {
							timeoutMs: 15_000, intervalMs: 100, what: 'your_turn DM',
						});
					} catch {
						p.violations.push(`${p.thing}: no "is yours" DM to b for hold ${h.hold_id} within 15 s`);
					}
				}
				if (h?.user_id === p.b) {
					const off = await sendAcked(`off ${p.thing}`, p.b, null, Date.now() + 20_000);
					if (off === null || !/You released|don't hold/.test(off)) return p.violations.push(`${p.thing}: b's off answered: ${off}`);
				}
				p.rounds++;
			}
		}

		async function killer() {
			let k = 0;
			while (Date.now() + KILL_EVERY_MS < stopAt) {
				await sleep(KILL_EVERY_MS - 1500);
				const i = k++ % 2;
				const victim = slots[i];
				kills.push(Date.now());
				await victim.kill('SIGKILL');
				retired.push(victim);
				slots[i] = null;
				await sleep(300);
				slots[i] = await startConch({ databaseUrl: dbUrl, slack, migrate: false, port: ports[i] });
			}
		}

		const t0 = Date.now();
		await Promise.all([killer(), ...solos.map(soloLoop), ...pairs.map(pairLoop)]);
		const loadSecs = (Date.now() - t0) / 1000;

		// Let due releases, reclaimed leases and notifications finish.
		await waitUntil(async () => (await sdb.count('jobs', "state = 'running' OR (state = 'queued' AND due_at <= now())")) === 0, {
			timeoutMs: 20_000, intervalMs: 200, what: 'the job queue to drain',
		});
		await sleep(1000);

		const acked = solos.reduce((n, s) => n + s.acked.hold + s.acked.release, 0);
		const unknown = solos.reduce((n, s) => n + s.unacked.on + s.unacked.off, 0);
		console.log(`faults: ${kills.length} SIGKILLs in ${loadSecs.toFixed(0)} s; solo commands: ${acked} acknowledged state changes, ${unknown} unanswered; timed rounds: ${pairs.map((p) => p.rounds).join(', ')}`);
		assert.ok(kills.length >= 7, `killed ${kills.length} times`);
		assert.ok(acked >= 100, `enough load: ${acked} acknowledged state changes`);
		assert.ok(pairs.every((p) => p.rounds >= 3), `every timed pair completed rounds: ${pairs.map((p) => p.rounds)}`);

		// No acknowledged command lost, none applied twice.
		const violations = [...solos.flatMap((s) => s.violations), ...pairs.flatMap((p) => p.violations)];
		for (const s of solos) violations.push(...(await s.check(sdb, PRO)));
		for (const x of [...solos.map((s) => s.thing), ...pairs.map((p) => p.thing)]) violations.push(...(await replay(sdb, PRO, x)));
		assert.deepEqual(violations, []);

		// Timed holds: each of a's holds ended by its release, exactly once;
		// none is left past due.
		for (const p of pairs) {
			const ev = await sdb.query('SELECT action, user_id, count(*)::int AS n FROM dibs_events WHERE team_id = $1 AND thing = $2 GROUP BY 1, 2', [PRO, p.thing]);
			const n = (action, user) => ev.find((r) => r.action === action && r.user_id === user)?.n ?? 0;
			assert.equal(n('expire', p.a), n('hold', p.a) + n('promote', p.a), `${p.thing}: every timed hold of a was released once`);
			assert.equal(n('release', p.a), 0);
			assert.ok(n('expire', p.a) >= p.rounds);
		}
		assert.equal(await sdb.count('holds', 'team_id = $1 AND release_at < now() - interval \'2 seconds\'', [PRO]), 0, 'no timed hold left past due');

		// DMs: one "is yours" per promotion and one "ended" per expiry; a
		// repeat is only excused for a job whose runner was killed between
		// Slack's answer and recording it (attempts > 1): at-least-once.
		const jobs = await sdb.query("SELECT dedupe_key, attempts, state FROM jobs WHERE kind = 'dibs.notify'");
		const attemptsOf = new Map(jobs.map((j) => [j.dedupe_key, j.attempts]));
		const excused = [];
		const repeated = [];
		for (const p of pairs) {
			const promotes = await sdb.count('dibs_events', "team_id = $1 AND thing = $2 AND action = 'promote'", [PRO, p.thing]);
			const perHold = countBy(yourTurnDms(p.b, p.thing), dmHold);
			assert.equal(perHold.size, promotes, `${p.thing}: an "is yours" DM for each of ${promotes} promotions`);
			for (const [hold, count] of perHold) {
				if (count === 1) continue;
				((attemptsOf.get(`notify:your_turn:${hold}`) ?? 1) > 1 ? excused : repeated).push(`${p.thing} your_turn hold ${hold} x${count}`);
			}
			const expires = await sdb.count('dibs_events', "team_id = $1 AND thing = $2 AND action = 'expire'", [PRO, p.thing]);
			const ended = slack.calls('chat.postMessage').filter((c) => c.status === 200 && c.body?.channel === p.a
				&& new RegExp(`hold on \\*${p.thing}\\* ended`).test(c.body.text)).length;
			const retried = jobs.filter((j) => /^notify:expired:/.test(j.dedupe_key) && j.attempts > 1).length;
			assert.ok(ended >= expires, `${p.thing}: an "ended" DM for each of ${expires} expiries (got ${ended})`);
			if (ended > expires) (ended - expires <= retried ? excused : repeated).push(`${p.thing} expired x${ended - expires} extra`);
		}
		if (excused.length) console.log(`faults: DMs repeated after a kill between Slack's answer and the job's record: ${excused.join('; ')}`);
		assert.deepEqual(repeated, [], 'DMs sent twice without a killed runner to explain it');
		assert.ok(excused.length <= kills.length, 'at most one repeat per kill');

		// Every job is done (or, for superseded timers, cancelled); nothing is
		// running, overdue or dead.
		const states = await sdb.query('SELECT kind, state, count(*)::int AS n, max(attempts) AS max_attempts FROM jobs GROUP BY 1, 2 ORDER BY 1, 2');
		console.log(`faults: jobs after the kills: ${states.map((r) => `${r.kind} ${r.state} ${r.n} (max attempts ${r.max_attempts})`).join('; ')}`);
		assert.deepEqual(states.filter((r) => !['done', 'cancelled'].includes(r.state) && !(r.state === 'queued')), []);
		assert.equal(await sdb.count('jobs', "state = 'queued' AND due_at < now()"), 0);
	});

	test('the killed instances left no sanitizer report and the live ones stop cleanly', async () => {
		for (const k of retired) assert.deepEqual(sanitizerErrors(k.stderr), [], `killed instance on port ${k.port}`);
		for (const s of slots) {
			const { code, signal } = await s.stop();
			assert.deepEqual([code, signal], [0, null]);
		}
		for (const k of retired) await k.stop({ allowUnclean: true });
	});
});

// --- (b) PostgreSQL restarts under load ----------------------------------------------

describe('PostgreSQL restart under load', () => {
	let own, slack, server, sdb, dbName;

	before(async () => {
		own = await startCluster();
		dbName = `conch_pgr_${process.pid}`;
		const url = await own.createDatabase(dbName);
		slack = await startFakeSlack();
		server = await startConch({ databaseUrl: url, slack });
		sdb = db(own.superuserUrl(dbName));
		await installTeam(url, { team_id: PRO, token: slack.issueToken({ team_id: PRO }), plan: 'pro' });
	});

	after(async () => {
		await server?.stop({ allowUnclean: true }).catch(() => {});
		await slack?.close();
		await sdb?.close();
		await own?.stop();
	});

	test('503 while down, healthy within 5 s of its return without a restart, nothing acknowledged lost', async () => {
		const solos = Array.from({ length: 6 }, (_, i) => new Solo(`U0PSOLO${String(i).padStart(3, '0')}`, `pg-${i}`));
		let running = true;
		const answered = { during: 0, after: 0 };
		let phase = 'before';
		let firstDoneAfter = null;
		let tBack = 0;
		const odd = [];
		async function loop(s) {
			while (running) {
				const verb = s.next;
				let text = null;
				try {
					const r = await server.slashCommand({ team_id: PRO, user_id: s.user, channel_id: CHANNEL, command: '/dibs', text: `${verb} ${s.thing}` });
					if (r.status === 200 && r.json) text = textOf(r.json);
					if (r.status !== 200 || r.json?.response_type !== 'ephemeral') odd.push(`${phase}: HTTP ${r.status} ${r.text}`);
				} catch (err) {
					odd.push(`${phase}: ${err.message}`);
				}
				s.apply(verb, text, phase);
				if (text !== null && phase === 'down') answered.during++;
				if (text !== null && !DB_DOWN.test(text) && phase === 'back') {
					answered.after++;
					firstDoneAfter ??= Date.now() - tBack;
				}
				s.next = verb === 'on' ? 'off' : 'on';
				await sleep(20);
			}
		}
		const loops = solos.map(loop);
		await sleep(2000);

		// A timed hold that falls due while the database is down, with
		// someone queued behind it.
		assert.match(textOf((await server.slashCommand({ team_id: PRO, user_id: 'U0PTIMERA1', channel_id: CHANNEL, text: 'on pgtimer for 3s' })).json), /is yours until/);
		assert.match(textOf((await server.slashCommand({ team_id: PRO, user_id: 'U0PTIMERB1', channel_id: CHANNEL, text: 'on pgtimer' })).json), /#1 in the queue/);

		const tStop = Date.now();
		await own.stopTemporarily();
		phase = 'down';
		let downSecs;
		try {
			await waitUntil(async () => (await server.request('/healthz')).status === 503, { timeoutMs: 5_000, intervalMs: 50, what: '/healthz 503' });
			downSecs = (Date.now() - tStop) / 1000;
			const cmd = await server.slashCommand({ team_id: PRO, user_id: 'U0POUTAGE1', channel_id: CHANNEL, text: 'on anything' });
			assert.equal(cmd.status, 200);
			assert.match(textOf(cmd.json), DB_DOWN);
			assert.equal(cmd.json.response_type, 'ephemeral');
			const ev = await server.event(eventEnvelope(PRO, { type: 'app_home_opened', user: 'U0POUTAGE1', channel: 'D1', tab: 'home' }));
			assert.equal(ev.status, 503, `an event while the database is down: ${ev.status} ${ev.text}`);
			const ver = await server.event({ type: 'url_verification', token: 'x', challenge: 'still-here' });
			assert.equal(ver.status, 200, 'url_verification needs no database');
			await sleep(4000); // pgtimer falls due meanwhile
		} finally {
			await own.start();
		}
		tBack = Date.now();
		phase = 'back';
		await waitUntil(async () => (await server.request('/healthz')).status === 200, { timeoutMs: 5_000, intervalMs: 25, what: '/healthz 200 within 5 s of the database returning' });
		const recovery = Date.now() - tBack;
		await waitUntil(() => firstDoneAfter !== null, { timeoutMs: 5_000, what: 'a command done after the return' });
		await sleep(2000);
		running = false;
		await Promise.all(loops);
		console.log(`faults: PostgreSQL stopped: /healthz 503 after ${downSecs.toFixed(2)} s; back: /healthz 200 after ${recovery} ms, first command done after ${firstDoneAfter} ms; ${answered.during} commands answered while down`);
		assert.ok(recovery <= 5000);
		assert.deepEqual(odd, [], 'every command got a 200 ephemeral answer, down or not');
		assert.ok(answered.during > 0, 'commands were answered during the outage');

		const violations = solos.flatMap((s) => s.violations);
		for (const s of solos) violations.push(...(await s.check(sdb, PRO)));
		for (const s of solos) violations.push(...(await replay(sdb, PRO, s.thing)));
		assert.deepEqual(violations, []);
		assert.ok(solos.every((s) => s.dbDown > 0), 'every worker saw the database-down answer');

		// The hold that fell due during the outage is released once after it,
		// and the next holder is told once.
		await waitUntil(async () => (await sdb.one("SELECT user_id FROM holds WHERE team_id = $1 AND thing = 'pgtimer'", [PRO]))?.user_id === 'U0PTIMERB1', {
			timeoutMs: 5_000, what: 'pgtimer released after the return',
		});
		const late = await sdb.one("SELECT extract(epoch FROM at) AS at FROM dibs_events WHERE team_id = $1 AND thing = 'pgtimer' AND action = 'expire'", [PRO]);
		console.log(`faults: the hold due during the outage was released ${(Number(late.at) * 1000 - tBack).toFixed(0)} ms after the database returned`);
		await slack.waitFor(() => slack.calls('chat.postMessage').find((c) => c.body?.channel === 'U0PTIMERB1' && /\*pgtimer\* is yours/.test(c.body.text)), 10_000);
		await sleep(500);
		assert.equal(await sdb.count('dibs_events', "team_id = $1 AND thing = 'pgtimer' AND action = 'expire'", [PRO]), 1);
		assert.equal(slack.calls('chat.postMessage').filter((c) => c.body?.channel === 'U0PTIMERB1').length, 1);

		// A job enqueued now is picked up at once (the runners listen again).
		const t1 = Date.now();
		await server.slashCommand({ team_id: PRO, user_id: 'U0PTIMERB1', channel_id: CHANNEL, text: 'off pgtimer' });
		await server.slashCommand({ team_id: PRO, user_id: 'U0PWAKE001', channel_id: CHANNEL, text: 'on wake' });
		await server.slashCommand({ team_id: PRO, user_id: 'U0PWAKE002', channel_id: CHANNEL, text: 'on wake' });
		await server.slashCommand({ team_id: PRO, user_id: 'U0PWAKE001', channel_id: CHANNEL, text: 'off wake' });
		await slack.waitFor(() => slack.calls('chat.postMessage').find((c) => c.body?.channel === 'U0PWAKE002'), 5_000);
		console.log(`faults: a DM enqueued after the outage was sent ${Date.now() - t1} ms later`);
		await waitUntil(async () => (await sdb.count('jobs', "state = 'running'")) === 0, { timeoutMs: 5_000, what: 'no job running' });
		assert.deepEqual(await sdb.query("SELECT kind, last_error FROM jobs WHERE state = 'dead'"), []);
	});

	// What a PostgreSQL shutdown does to a command in flight: its backend is
	// ended with 57P01 (admin shutdown) in the middle of the statement. That
	// is "unavailable" (the database-down line; nothing changed), not a bug.
	test('a command whose statement PostgreSQL ends mid-flight (57P01) gets the database-down line and changes nothing', async () => {
		const thing = 'inflight';
		let r = await server.slashCommand({ team_id: PRO, user_id: 'U0PFLIGHT1', channel_id: CHANNEL, text: `on ${thing}` });
		assert.match(textOf(r.json), /is yours/);
		const before_ = await sdb.count('dibs_events', 'team_id = $1 AND thing = $2', [PRO, thing]);
		// Hold the thing's row so the next command's statement waits on it.
		const locker = await sdb.pool.connect();
		try {
			await locker.query('BEGIN');
			await locker.query('SELECT 1 FROM things WHERE team_id = $1 AND name = $2 FOR UPDATE', [PRO, thing]);
			const reply = server.slashCommand({ team_id: PRO, user_id: 'U0PFLIGHT1', channel_id: CHANNEL, text: `off ${thing}` });
			let waiting = [];
			await waitUntil(async () => {
				waiting = (await sdb.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'conch' AND datname = $1 AND wait_event_type = 'Lock'", [dbName])).map((x) => x.pid);
				return waiting.length === 1;
			}, { what: 'the command waiting on the row lock' });
			await sdb.query('SELECT pg_terminate_backend(p) FROM unnest($1::int[]) p', [waiting]);
			r = await reply;
		} finally {
			await locker.query('ROLLBACK').catch(() => {});
			locker.release();
		}
		assert.equal(r.status, 200, r.text);
		assert.match(textOf(r.json), DB_DOWN);
		assert.equal(await sdb.count('dibs_events', 'team_id = $1 AND thing = $2', [PRO, thing]), before_, 'nothing changed');
		assert.equal((await sdb.one('SELECT user_id FROM holds WHERE team_id = $1 AND thing = $2', [PRO, thing])).user_id, 'U0PFLIGHT1');
		// The next command finds a working connection again.
		r = await server.slashCommand({ team_id: PRO, user_id: 'U0PFLIGHT1', channel_id: CHANNEL, text: `off ${thing}` });
		assert.match(textOf(r.json), /You released/);
	});

	// The other side of the classification: a failure that is not an outage
	// (here 42883, a function the statement names is missing, as after a
	// skipped migration) gets the generic reply, never "can't reach".
	// Neither statement has run on this server before, so none is prepared
	// yet (a prepared one would still find the renamed function by its id).
	test('a database failure that is not an outage gets "Something went wrong", not the database-down line', async () => {
		const broken = [['dibs_remove(text, text, text)', 'remove nothing-here', '/dibs'], ['lunch_unschedule(text, text)', 'unschedule', '/lunch']];
		for (const [fn] of broken) await sdb.query(`ALTER FUNCTION ${fn} RENAME TO ${fn.split('(')[0]}_away`);
		try {
			for (const [, text, command] of broken) {
				const r = await server.slashCommand({ team_id: PRO, user_id: 'U0PBUG0001', channel_id: CHANNEL, command, text });
				assert.equal(r.status, 200, r.text);
				assert.equal(textOf(r.json), 'Something went wrong; nothing changed.', `${command} ${text}`);
			}
		} finally {
			for (const [fn] of broken) await sdb.query(`ALTER FUNCTION ${fn.split('(')[0]}_away(${fn.split('(')[1]} RENAME TO ${fn.split('(')[0]}`);
		}
		const r = await server.slashCommand({ team_id: PRO, user_id: 'U0PBUG0001', channel_id: CHANNEL, command: '/lunch', text: 'unschedule' });
		assert.match(textOf(r.json), /no scheduled lunch poll/);
	});

	test('the server stops cleanly after the outage', async () => {
		const { code, signal } = await server.stop();
		assert.deepEqual([code, signal], [0, null]);
	});
});

// --- (c) Slack answers 429, 500, ok:false, or hangs ------------------------------------

describe('Slack failing: 429, 500, ok:false and a hang past the timeout', () => {
	const TEAM = 'T0SLACKFLT';
	let cluster, dbName, dbUrl, slack, server, sdb;

	before(async () => {
		cluster = await testCluster();
		dbName = `conch_slackf_${process.pid}_${randomBytes(3).toString('hex')}`;
		dbUrl = await cluster.createDatabase(dbName);
		slack = await startFakeSlack();
		// The production relation: a lease longer than Slack's 10 s timeout,
		// so a hung call ends in the timeout, not in a takeover.
		server = await startConch({ databaseUrl: dbUrl, slack, env: { CONCH_JOB_LEASE_SECONDS: '30' } });
		sdb = db(cluster.superuserUrl(dbName));
		await installTeam(dbUrl, { team_id: TEAM, token: slack.issueToken({ team_id: TEAM }), plan: 'pro' });
	});

	after(async () => {
		await server?.stop({ allowUnclean: true }).catch(() => {});
		await slack?.close();
		await sdb?.close();
		if (cluster) {
			await cluster.dropDatabase(dbName).catch(() => {});
			await cluster.stop();
		}
	});

	async function enqueueDm(channel, text) {
		const [row] = await sdb.query(
			"INSERT INTO jobs (kind, team_id, payload) VALUES ('slack.call', $1, $2::jsonb) RETURNING id",
			[TEAM, JSON.stringify({ method: 'chat.postMessage', args: { channel, text } })],
		);
		return row.id;
	}

	async function job(id) {
		return sdb.one(
			'SELECT state, attempts, last_error, extract(epoch FROM due_at) AS due FROM jobs WHERE id = $1', [id]);
	}

	function callsWith(text) {
		return slack.calls('chat.postMessage').filter((c) => c.body?.text === text);
	}

	// How many times Slack accepted a message with this text.
	function deliveries(text) {
		return callsWith(text).filter((c) => c.status === 200 && c.response?.ok).length;
	}

	async function waitState(id, state, timeoutMs) {
		return waitUntil(async () => {
			const j = await job(id);
			return j.state === state ? j : null;
		}, { timeoutMs, intervalMs: 50, what: `job ${id} ${state}` });
	}

	test('429 with Retry-After 1: rescheduled at Retry-After without using an attempt, then delivered once', async () => {
		slack.failNext('chat.postMessage', { status: 429, retryAfter: 1 }, 2);
		const text = 'fault 429';
		const id = await enqueueDm('U0F429', text);
		const mid = await waitUntil(async () => {
			const j = await job(id);
			return j.state === 'queued' && j.last_error === 'ratelimited' ? j : null;
		}, { timeoutMs: 5_000, intervalMs: 20, what: 'the 429 recorded' });
		assert.equal(mid.attempts, 0, 'a 429 gives the attempt back');
		const first = callsWith(text)[0];
		const wait = Number(mid.due) * 1000 - first.time;
		assert.ok(wait >= 800 && wait <= 2500, `due again after Retry-After (${wait.toFixed(0)} ms)`);
		const done = await waitState(id, 'done', 10_000);
		const calls = callsWith(text);
		assert.deepEqual(calls.map((c) => c.status), [429, 429, 200]);
		for (let i = 1; i < calls.length; i++)
			assert.ok(calls[i].time - calls[i - 1].time >= 900, `call ${i + 1} came ${calls[i].time - calls[i - 1].time} ms after the 429`);
		assert.equal(done.attempts, 1, 'only the successful try counts');
		assert.equal(deliveries(text), 1);
	});

	test('HTTP 500 twice: retried with growing backoff, then delivered once', async () => {
		slack.failNext('chat.postMessage', { status: 500 }, 2);
		const text = 'fault 500';
		const id = await enqueueDm('U0F500', text);
		const backoffs = [];
		for (const attempts of [1, 2]) {
			const j = await waitUntil(async () => {
				const x = await job(id);
				return x.state === 'queued' && x.attempts === attempts ? x : null;
			}, { timeoutMs: 10_000, intervalMs: 20, what: `attempt ${attempts} failed` });
			assert.equal(j.last_error, 'HTTP 500');
			backoffs.push(Number(j.due) * 1000 - callsWith(text)[attempts - 1].time);
		}
		// Base 2 s then 4 s, each within +/-25% (plus the call's own time).
		assert.ok(backoffs[0] >= 1400 && backoffs[0] <= 2900, `first backoff ${backoffs[0].toFixed(0)} ms`);
		assert.ok(backoffs[1] >= 2900 && backoffs[1] <= 5500, `second backoff ${backoffs[1].toFixed(0)} ms`);
		const done = await waitState(id, 'done', 10_000);
		assert.equal(done.attempts, 3);
		assert.equal(done.last_error, null);
		assert.deepEqual(callsWith(text).map((c) => c.status), [500, 500, 200]);
		assert.equal(deliveries(text), 1);
		console.log(`faults: backoff after 500s: ${backoffs.map((b) => `${(b / 1000).toFixed(2)} s`).join(', ')}`);
	});

	test('ok:false internal_error is retried; channel_not_found is dead at once, with its error visible', async () => {
		slack.failNext('chat.postMessage', { ok: false, error: 'internal_error' });
		const id = await enqueueDm('U0FINT', 'fault internal');
		const done = await waitState(id, 'done', 10_000);
		assert.equal(done.attempts, 2);
		assert.equal(deliveries('fault internal'), 1);

		slack.failNext('chat.postMessage', { ok: false, error: 'channel_not_found' });
		const dead = await enqueueDm('C0GONE0001', 'fault permanent');
		const j = await waitState(dead, 'dead', 5_000);
		assert.equal(j.attempts, 1, 'a permanent error is not retried');
		assert.equal(j.last_error, 'channel_not_found');
		await sleep(2500);
		assert.equal(callsWith('fault permanent').length, 1, 'and never called again');
		const m = await server.request('/metrics');
		assert.match(m.text, /^conch_jobs\{kind="slack\.call",state="dead"\} 1$/m, 'the dead job shows in /metrics');
		assert.match(m.text, /^conch_jobs_finished_total\{kind="slack\.call",result="dead"\} 1$/m);
	});

	test('a burst against a rate limit: every DM delivered once, 429s cost no attempts', async () => {
		slack.rateLimit('chat.postMessage', 5, 1);
		try {
			const ids = [];
			for (let i = 0; i < 20; i++) ids.push(await enqueueDm(`U0FBURST${String(i).padStart(2, '0')}`, `burst ${i}`));
			await waitUntil(async () => (await sdb.count('jobs', 'id = ANY($1) AND state = \'done\'', [ids])) === ids.length, {
				timeoutMs: 20_000, intervalMs: 100, what: 'the burst delivered',
			});
			const calls = slack.calls('chat.postMessage').filter((c) => /^burst \d+$/.test(c.body?.text));
			const limited = calls.filter((c) => c.status === 429).length;
			const ok = countBy(calls.filter((c) => c.status === 200), (c) => c.body.text);
			assert.ok(limited > 0, 'the limit was hit');
			assert.equal(ok.size, 20);
			assert.deepEqual([...ok.values()].filter((n) => n !== 1), []);
			const att = await sdb.query('SELECT attempts FROM jobs WHERE id = ANY($1)', [ids]);
			assert.deepEqual(att.filter((r) => r.attempts !== 1), []);
			console.log(`faults: a burst of 20 DMs at 5/s met ${limited} 429s and was delivered once each`);
		} finally {
			slack.rateLimit('chat.postMessage', 0);
		}
	});

	test('a call that hangs past the 10 s client timeout is retried and delivered once', async () => {
		slack.failNext('chat.postMessage', { hang: true });
		const text = 'fault hang';
		const id = await enqueueDm('U0FHANG', text);
		await slack.waitFor(() => callsWith(text).length > 0, 10_000, 'the hung call');
		const mid = await waitUntil(async () => {
			const j = await job(id);
			return j.state === 'queued' && j.attempts === 1 ? j : null;
		}, { timeoutMs: 15_000, intervalMs: 100, what: 'the hung call timed out' });
		assert.match(mid.last_error, /timeout|timed out/i);
		const done = await waitState(id, 'done', 10_000);
		const calls = callsWith(text);
		assert.equal(calls.length, 2);
		const gap = calls[1].time - calls[0].time;
		assert.ok(gap >= 9500 && gap <= 15_000, `retried ${gap} ms after the hung call`);
		assert.equal(done.attempts, 2);
		assert.equal(deliveries(text), 1);
		console.log(`faults: a hung Slack call was retried after ${(gap / 1000).toFixed(1)} s`);
	});

	test('the server stops cleanly', async () => {
		const { code, signal } = await server.stop();
		assert.deepEqual([code, signal], [0, null]);
	});
});
