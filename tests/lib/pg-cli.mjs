// One PostgreSQL cluster for a whole test run (scripts/test.sh).
//
//   eval "$(node tests/lib/pg-cli.mjs start)"   prints `export TEST_CONCH_PG_...=...` lines
//   node tests/lib/pg-cli.mjs stop              stops and removes the cluster named by
//                                               TEST_CONCH_PG_DIR (or the directory given)

import fs from 'node:fs';
import path from 'node:path';
import { PgCluster, startCluster } from './pg.mjs';

function shellQuote(s) {
	return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

async function start() {
	const cluster = await startCluster();
	cluster.detach();
	await cluster.closePools();
	const env = cluster.env();
	for (const [k, v] of Object.entries(env)) process.stdout.write(`export ${k}=${shellQuote(v)}\n`);
}

async function stop(dir) {
	if (!dir) throw new Error('stop: TEST_CONCH_PG_DIR is not set and no directory was given');
	if (!fs.existsSync(path.join(dir, 'data', 'PG_VERSION'))) {
		fs.rmSync(dir, { recursive: true, force: true });
		return;
	}
	const cluster = new PgCluster({ dir, port: 0, owned: true });
	cluster.running = true;
	await cluster.stop();
}

const [cmd, arg] = process.argv.slice(2);
try {
	if (cmd === 'start') await start();
	else if (cmd === 'stop') await stop(arg || process.env.TEST_CONCH_PG_DIR);
	else {
		process.stderr.write('usage: pg-cli.mjs start|stop [DIR]\n');
		process.exit(2);
	}
} catch (err) {
	process.stderr.write(`pg-cli: ${err.message}\n`);
	process.exit(1);
}
