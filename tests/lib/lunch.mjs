// What the Lunch Buddies test files share: the poll DMs as the fake Slack
// saw them, button presses, and waiting on a team's jobs.
//
//   const kit = lunchKit({ get slack() { return slack; }, get conch() { return conch; }, get sdb() { return sdb; } });
//   const dms = await kit.waitForPollDMs(team, poll.poll_id, 12);
//
// The world is read through getters, so a test file may restart conch.

import assert from 'node:assert/strict';
import { blockActions, waitUntil } from './server.mjs';

export const BOT = 'U0BOT00001';

export const people = (tag, n) => [...Array(n).keys()].map((i) => `U${tag}${String(i).padStart(3, '0')}`);

export const ok = (c) => c.status === 200 && c.response?.ok === true;

export const isPollDM = (c) => Array.isArray(c.body?.blocks) && c.body.blocks.some((b) => b.type === 'actions');

export function lunchKit(w) {
	const teamCalls = (team, method) => w.slack.calls(method).filter((c) => c.team_id === team);

	// The delivered poll DMs of a team (optionally of one poll), by user.
	function pollDMs(team, poll) {
		const out = new Map();
		for (const c of teamCalls(team, 'chat.postMessage')) {
			if (!ok(c) || !isPollDM(c)) continue;
			const values = c.body.blocks.filter((b) => b.type === 'actions').flatMap((b) => b.elements.map((e) => e.value));
			if (poll !== undefined && !values.every((v) => v.startsWith(`${poll}:`))) continue;
			if (!out.has(c.body.channel)) out.set(c.body.channel, []);
			out.get(c.body.channel).push(c);
		}
		return out;
	}

	const pollRow = (team, channel) => w.sdb.one(
		'SELECT * FROM lunch_polls WHERE team_id = $1 AND channel_id = $2 ORDER BY poll_id DESC LIMIT 1', [team, channel]);

	return {
		teamCalls,
		pollDMs,
		pollRow,

		waitForPollDMs(team, poll, n, timeoutMs = 15_000) {
			return w.slack.waitFor(() => {
				const dms = pollDMs(team, poll);
				return dms.size >= n ? dms : null;
			}, timeoutMs, `${n} poll DMs of poll ${poll}`);
		},

		// The message a user's poll DM shows now, in the fake's store.
		shownDM(dm) {
			return w.slack.messagesIn(dm.response.channel).find((m) => m.ts === dm.response.ts);
		},

		async press(team, user, dm, value, action_id) {
			const r = await w.conch.interactivity(blockActions({
				team_id: team, user_id: user, channel_id: dm.response.channel, message_ts: dm.response.ts, value,
				action_id: action_id ?? (value.endsWith(':no') ? 'lunch.answer.no' : `lunch.answer.${value.split(':')[1]}`),
			}));
			assert.equal(r.status, 200, r.text);
			return r;
		},

		// The channel's newest poll once there is one newer than after.
		waitForPoll(team, channel, after = 0) {
			return waitUntil(async () => {
				const p = await pollRow(team, channel);
				return p && Number(p.poll_id) > after ? p : null;
			}, { what: `a poll in ${channel}` });
		},

		// No job of the team is due or running (jobs due later, like schedules, do not count).
		async waitIdle(team, timeoutMs = 20_000) {
			await waitUntil(async () => {
				const { n } = await w.sdb.one(
					`SELECT count(*)::int AS n FROM jobs WHERE team_id = $1 AND state IN ('queued', 'running')
					 AND due_at <= now() + interval '2 seconds'`, [team]);
				return n === 0;
			}, { timeoutMs, intervalMs: 100, what: `the jobs of ${team} to finish` });
		},

		deadJobs(team) {
			return w.sdb.query("SELECT kind, last_error FROM jobs WHERE team_id = $1 AND state = 'dead'", [team]);
		},

		// Runs a queued (or finished) job now and waits until it finished.
		async runJobNow(id) {
			await w.sdb.query("UPDATE jobs SET due_at = now(), state = 'queued' WHERE id = $1", [id]);
			return waitUntil(async () => {
				const j = await w.sdb.one('SELECT * FROM jobs WHERE id = $1', [id]);
				return ['done', 'dead', 'cancelled'].includes(j.state) ? j : null;
			}, { timeoutMs: 15_000, what: `job ${id} to finish` });
		},
	};
}
