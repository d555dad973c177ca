// Slack's published Web API rate limits, for the fake Slack. Written from
// Slack's method reference pages and its rate-limits guide, independently
// of conch's own pacing table (src/slack_pace.c), so that a test cannot
// pass because both read the same wrong number.
//
// Limits apply per method, per app, per workspace. A tier's number is a
// floor ("50+ per minute"): the fake allows TIER_SLACK, 20%, over it in
// any sliding minute, so a client pacing at the published rate with a small
// burst stays inside, and one that bursts past it gets 429 + Retry-After.

export const TIER_PER_MINUTE = { 1: 1, 2: 20, 3: 50, 4: 100 };
export const TIER_SLACK = 1.2;

// method -> tier, as Slack's reference page for each method gives it.
export const METHOD_TIERS = {
	'chat.update': 3,
	'conversations.members': 4,
	'conversations.open': 3,
	'users.info': 4,
	'users.list': 2,
	'views.publish': 4,
	'auth.test': 4,
};

// chat.postMessage is a special tier: about one message a second to one
// channel (short bursts allowed), plus a workspace-wide ceiling.
export const POST_MESSAGE = {
	channelPerSecond: 1,
	channelBurst: 3,          // messages to one channel in any one second
	channelPerMinute: 72,     // 1/s plus the 20% the fake allows
	workspacePerMinute: 600,  // about 525 a minute is quoted, plus slack
};

// Seconds the fake tells a limited client to wait.
export const RETRY_AFTER_SECONDS = 1;
