// One test file's world: a database on the run's cluster, a fake Slack, a
// conch serving both, an inspection handle, and one installed Pro team.
//
//   let env;
//   before(async () => { env = await startEnv({ name: 'wait', teamPrefix: 'T0WAI' }); });
//   after(() => env?.close());
//
// close() undoes whatever was made, also after a setup that failed half way.

import { randomBytes } from 'node:crypto';
import { startFakeSlack } from './fake_slack.mjs';
import { testCluster } from './pg.mjs';
import { db, installTeam, startConch } from './server.mjs';

export async function startEnv({ name, teamPrefix, env = {} }) {
	const e = {
		async close() {
			await e.conch?.stop({ allowUnclean: true }).catch(() => {});
			await e.slack?.close();
			await e.sdb?.close();
			if (e.cluster) {
				if (e.dbName) await e.cluster.dropDatabase(e.dbName).catch(() => {});
				await e.cluster.stop();
			}
		},
	};
	try {
		e.cluster = await testCluster();
		e.dbName = `conch_${name}_${process.pid}_${randomBytes(3).toString('hex')}`;
		e.dbUrl = await e.cluster.createDatabase(e.dbName);
		e.slack = await startFakeSlack();
		e.conch = await startConch({ databaseUrl: e.dbUrl, slack: e.slack, env });
		e.sdb = db(e.cluster.superuserUrl(e.dbName));
		e.team = `${teamPrefix}${randomBytes(2).toString('hex').toUpperCase()}`;
		await installTeam(e.dbUrl, { team_id: e.team, token: e.slack.issueToken({ team_id: e.team }), plan: 'pro' });
	} catch (err) {
		await e.close();
		throw err;
	}
	return e;
}
