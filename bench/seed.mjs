// Rows for `make bench` (scripts/bench.sh) that SQL alone cannot make.
//
//   node bench/seed.mjs installations FROM TO
//
// prints, as COPY text (tab-separated), one active installation for each
// team T<1000000+n>, n in [FROM, TO), whose bot token xoxb-bench-T<...> is
// sealed with CONCH_TOKEN_KEYS exactly as the vault does (tests/lib/vault.mjs),
// so background jobs open it and call the Slack stub with it. Columns:
// team_id, app_id, bot_user_id, scopes, bot_token, installer_user_id.

import { seal } from '../tests/lib/vault.mjs';

const ID_BASE = 1000000;
const SCOPES = 'commands,chat:write,im:write,mpim:write,users:read,channels:read,groups:read';

function installations(from, to) {
	const keys = process.env.CONCH_TOKEN_KEYS;
	if (!keys) throw new Error('CONCH_TOKEN_KEYS is not set');
	const lines = [];
	for (let n = from; n < to; n++) {
		const team = `T${ID_BASE + n}`;
		const sealed = seal(keys, `xoxb-bench-${team}`, team, 'bot_token');
		lines.push(`${team}\tA0CONCH01\tU0BOT00001\t${SCOPES}\t${sealed}\tU${ID_BASE}\n`);
		if (lines.length === 10000) {
			process.stdout.write(lines.join(''));
			lines.length = 0;
		}
	}
	process.stdout.write(lines.join(''));
}

const [cmd, a, b] = process.argv.slice(2);
const from = Number(a);
const to = Number(b);
if (cmd !== 'installations' || !Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to < from) {
	process.stderr.write('usage: node bench/seed.mjs installations FROM TO\n');
	process.exit(2);
}
installations(from, to);
