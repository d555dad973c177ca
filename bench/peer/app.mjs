// The peer of `make bench`: /dibs on|off as a small Bolt-js + pg app would
// write it, so that conch's figures are also ratios to something ordinary.
// It is fixed on purpose (bench/README.md): two node workers (cluster),
// Bolt's HTTP receiver, an `authorize` that runs one SELECT of the
// installation by team id, and a /dibs handler that runs one autocommit
// call of a plpgsql function (bench/peer/schema.sql), acks with the reply,
// then posts the hand-over DM. bench/pgbench_peer.sql runs the same
// statements straight to PostgreSQL.
//
//   PEER_PORT=8090 PEER_DATABASE_URL=postgresql://peer@127.0.0.1:5432/peer \
//   PEER_SIGNING_SECRET=... PEER_SLACK_API_URL=http://127.0.0.1:PORT/api/ node bench/peer/app.mjs

import cluster from 'node:cluster';
import bolt from '@slack/bolt';
import pg from 'pg';

const { App, HTTPReceiver, LogLevel } = bolt;
const WORKERS = 2;

function need(name) {
	const v = process.env[name];
	if (!v) {
		process.stderr.write(`peer: ${name} is not set\n`);
		process.exit(2);
	}
	return v;
}

const port = Number(need('PEER_PORT'));
const databaseUrl = need('PEER_DATABASE_URL');
const signingSecret = need('PEER_SIGNING_SECRET');
const slackApiUrl = need('PEER_SLACK_API_URL');

if (cluster.isPrimary) {
	let alive = 0;
	let stopping = false;
	for (let i = 0; i < WORKERS; i++) {
		cluster.fork();
		alive++;
	}
	cluster.on('exit', (w, code, signal) => {
		if (--alive === 0 || (code !== 0 && !stopping)) {
			if (!stopping) process.stderr.write(`peer: a worker exited (${signal || code})\n`);
			process.exit(stopping ? 0 : 1);
		}
	});
	for (const sig of ['SIGTERM', 'SIGINT']) {
		process.on(sig, () => {
			stopping = true;
			for (const w of Object.values(cluster.workers)) w.process.kill('SIGTERM');
		});
	}
} else {
	const pool = new pg.Pool({ connectionString: databaseUrl });
	pool.on('error', () => {});

	const receiver = new HTTPReceiver({
		signingSecret,
		endpoints: '/slack/commands',
		customRoutes: [{ path: '/healthz', method: ['GET'], handler: (req, res) => res.end('ok') }],
	});
	const app = new App({
		receiver,
		logLevel: LogLevel.ERROR,
		clientOptions: { slackApiUrl },
		async authorize({ teamId }) {
			const { rows } = await pool.query(
				'SELECT bot_token, bot_user_id FROM peer_installations WHERE team_id = $1', [teamId]);
			if (rows.length === 0) throw new Error(`team ${teamId} is not installed`);
			return { botToken: rows[0].bot_token, botUserId: rows[0].bot_user_id };
		},
	});

	app.command('/dibs', async ({ command, ack, client }) => {
		const [verb, ...rest] = command.text.trim().split(/\s+/);
		const thing = rest.join(' ');
		if ((verb !== 'on' && verb !== 'off') || !thing) {
			await ack({ response_type: 'ephemeral', text: 'Usage: /dibs on|off THING' });
			return;
		}
		if (verb === 'on') {
			const { rows } = await pool.query('SELECT status, "position", holder FROM peer_dibs_on($1, $2, $3)',
				[command.team_id, thing, command.user_id]);
			const r = rows[0];
			const text = r.status === 'queued'
				? `*${thing}* is held by <@${r.holder}>: you are #${r.position} in the queue.`
				: `You have dibs on *${thing}*.`;
			await ack({ response_type: 'ephemeral', text });
			return;
		}
		const { rows } = await pool.query('SELECT status, next_user FROM peer_dibs_off($1, $2, $3)',
			[command.team_id, thing, command.user_id]);
		const r = rows[0];
		const text = {
			released: `You released *${thing}*.`,
			left: `You left the queue for *${thing}*.`,
			not_holder: `You don't hold *${thing}*.`,
			unknown: `There is no *${thing}*.`,
		}[r.status];
		await ack({ response_type: 'ephemeral', text });
		if (r.next_user)
			await client.chat.postMessage({ channel: r.next_user, text: `*${thing}* is yours now (<@${command.user_id}> released it).` });
	});

	app.error(async (err) => {
		process.stderr.write(`peer: ${err.message}\n`);
	});

	await app.start(port);
	process.on('SIGTERM', async () => {
		await app.stop().catch(() => {});
		await pool.end().catch(() => {});
		process.exit(0);
	});
}
