// A stand-in for Slack's Web API during `make bench` (scripts/bench.sh).
//
//   node bench/slack_stub.mjs PORTFILE
//
// Listens on 127.0.0.1 (a free port, written to PORTFILE once listening) and
// answers every POST /api/METHOD at once with {"ok": true, ...}, so the
// background jobs that send DMs really make their HTTP calls and finish,
// without tests/lib/fake_slack.mjs's bookkeeping (it records every call)
// weighing on a 2-core machine under load. A call whose bearer token is not
// one the benchmark sealed (xoxb-bench-T<digits>) gets ok:false
// "not_authed" (permanent, and not a revocation), so a job that sent the
// wrong token would end dead and show up in the figures.
//
// GET /stats answers {"calls": {"method": n, ...}, "refused": n}.

import fs from 'node:fs';
import http from 'node:http';

const portFile = process.argv[2];
if (!portFile) {
	process.stderr.write('usage: node bench/slack_stub.mjs PORTFILE\n');
	process.exit(2);
}

const calls = {};
let refused = 0;
let seq = 0;

function json(res, obj, status = 200) {
	const body = JSON.stringify(obj);
	res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
	res.end(body);
}

function answer(method) {
	const ts = `${Math.floor(Date.now() / 1000)}.${String(++seq % 1e6).padStart(6, '0')}`;
	if (method === 'conversations.open') return { ok: true, channel: { id: 'D0BENCH01' } };
	return { ok: true, channel: 'D0BENCH01', ts, message: { ts } };
}

const server = http.createServer((req, res) => {
	req.resume();
	req.on('end', () => {
		if (req.method === 'GET' && req.url === '/stats') return json(res, { calls, refused });
		const m = req.url.match(/^\/api\/([A-Za-z0-9_.]+)$/);
		if (!m || req.method !== 'POST') return json(res, { ok: false, error: 'unknown_method' }, 404);
		if (!/^Bearer xoxb-bench-T\d+$/.test(req.headers.authorization || '')) {
			refused++;
			return json(res, { ok: false, error: 'not_authed' });
		}
		calls[m[1]] = (calls[m[1]] || 0) + 1;
		json(res, answer(m[1]));
	});
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
	fs.writeFileSync(`${portFile}.tmp`, `${server.address().port}\n`);
	fs.renameSync(`${portFile}.tmp`, portFile);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
