// Billing end to end (plans, Checkout, Billing Portal, Stripe webhooks): signed links to a fake Stripe, webhooks signed by our own HMAC
// code and by the official `stripe` package, out-of-order and duplicate
// deliveries, the past_due grace, and a database outage during delivery.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { startFakeSlack } from '../lib/fake_slack.mjs';
import { deliverWebhook, signOfficial, signOwn, signatureOf, startFakeStripe, stripeId } from '../lib/fake_stripe.mjs';
import { startCluster } from '../lib/pg.mjs';
import {
	DEFAULT_USER, TEST_CLIENT_ID, TEST_CLIENT_SECRET, TEST_SESSION_SECRET, db, eventEnvelope, installTeam, startConch, waitUntil,
} from '../lib/server.mjs';

const INSTALLER = DEFAULT_USER;
const FREE_THINGS = 5;
const GRACE_SECONDS = 7 * 86400;

let cluster, dbName, dbUrl, slack, stripe, conch, sdb;

before(async () => {
	// A private cluster: the outage test stops and restarts it.
	cluster = await startCluster();
	dbName = `conch_billing_${process.pid}_${randomBytes(3).toString('hex')}`;
	dbUrl = await cluster.createDatabase(dbName);
	slack = await startFakeSlack({ clientId: TEST_CLIENT_ID, clientSecret: TEST_CLIENT_SECRET });
	stripe = await startFakeStripe();
	conch = await startConch({ databaseUrl: dbUrl, slack, env: stripe.env() });
	sdb = db(cluster.superuserUrl(dbName));
});

after(async () => {
	await conch?.stop();
	await slack?.close();
	await stripe?.close();
	await sdb?.close();
	if (cluster) {
		await cluster.dropDatabase(dbName).catch(() => {});
		await cluster.stop();
	}
});

// --- helpers -----------------------------------------------------------------

function now() {
	return Math.floor(Date.now() / 1000);
}

let teamCounter = 0;
async function newTeam() {
	teamCounter++;
	const team_id = `T0BILL${String(teamCounter).padStart(3, '0')}${randomBytes(2).toString('hex').toUpperCase()}`;
	await installTeam(dbUrl, { team_id, token: slack.issueToken({ team_id }), installer_user_id: INSTALLER });
	// The member directory knows the installer (billing is for them).
	const joined = await conch.event(eventEnvelope(team_id, { type: 'team_join', user: { ...slack.userInfo(INSTALLER), team_id } }));
	assert.equal(joined.status, 200);
	return team_id;
}

// crypto.h's sign_value: payload "." base64url(HMAC(secret, purpose "\n" payload)).
function signValue(secret, purpose, payload) {
	return `${payload}.${createHmac('sha256', secret).update(`${purpose}\n${payload}`).digest('base64url')}`;
}

function linkToken(purpose, team, user = INSTALLER, { expires = now() + 3600, secret = TEST_SESSION_SECRET } = {}) {
	return signValue(secret, purpose, `${team}.${user}.${expires}`);
}

async function open(path) {
	const r = await conch.fetch(path);
	return { status: r.status, location: r.headers.get('location'), text: await r.text() };
}

async function dibs(team, text) {
	const r = await conch.slashCommand({ team_id: team, user_id: INSTALLER, text });
	assert.equal(r.status, 200, r.text);
	return r.json?.text ?? r.text;
}

// The link `/dibs upgrade` answers with.
async function upgradeLinkFromSlack(team, path = '/billing/upgrade') {
	const text = await dibs(team, 'upgrade');
	const m = /<(http[^|>]+)\|/.exec(text);
	assert.ok(m, `no link in: ${text}`);
	const u = new URL(m[1]);
	assert.equal(u.pathname, path);
	return u.pathname + u.search;
}

async function teamPlan(team) {
	return (await sdb.one('SELECT plan FROM teams WHERE team_id = $1', [team])).plan;
}

async function billingRow(team) {
	return sdb.one('SELECT * FROM billing WHERE team_id = $1', [team]);
}

async function eventRows(id) {
	return sdb.query('SELECT * FROM stripe_events WHERE event_id = $1', [id]);
}

function dms(team, pattern) {
	return slack.calls('chat.postMessage').filter(
		(c) => c.team_id === team && c.body?.channel === INSTALLER && pattern.test(c.body?.text ?? ''),
	);
}

async function send(event, opts = {}) {
	return deliverWebhook(conch, event, { secret: stripe.webhookSecret, signer: 'official', ...opts });
}

async function sendOk(event, opts) {
	const r = await send(event, opts);
	assert.equal(r.status, 200, `webhook ${event.type} answered ${r.status}: ${r.text}`);
	return r;
}

// Checkout through the signed link, then Stripe's side of paying.
async function subscribeThroughCheckout(team, path) {
	const r = await open(path ?? `/billing/upgrade?t=${linkToken('billing-upgrade', team)}`);
	assert.equal(r.status, 303, r.text);
	const sessionId = new URL(r.location).pathname.split('/').pop();
	return stripe.completeCheckout(sessionId);
}

async function makeThings(team, names) {
	const out = [];
	for (const n of names) out.push(await dibs(team, `on ${n}`));
	return out;
}

async function thingCount(team) {
	return Number((await sdb.one('SELECT count(*) AS n FROM things WHERE team_id = $1', [team])).n);
}

// --- signatures ----------------------------------------------------------------

test('our signer and stripe-node produce the same header, and the documented vector', () => {
	const body = '{"id":"evt_test_webhook","object":"event"}';
	const want = 't=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990';
	assert.equal(signOfficial(body, 'whsec_test_secret', 1700000000), want);
	assert.equal(signOwn(body, 'whsec_test_secret', 1700000000), want);
});

test('webhooks signed by stripe-node and by our own code are accepted and stored once', async () => {
	for (const signer of ['official', 'own']) {
		const ev = stripe.event('invoice.paid', { id: stripeId('in'), object: 'invoice', customer: stripeId('cus') });
		const r = await send(ev, { signer });
		assert.equal(r.status, 200, `${signer}: ${r.text}`);
		const rows = await eventRows(ev.id);
		assert.equal(rows.length, 1);
		assert.equal(rows[0].type, 'invoice.paid');
		assert.equal(Number(rows[0].created), ev.created);
		assert.deepEqual(rows[0].payload, ev);
		assert.equal(rows[0].error, 'not an event conch uses');
		assert.ok(rows[0].processed_at);
	}
});

test('several v1 values: any one matching is enough (secret rotation)', async () => {
	const ev = stripe.event('invoice.paid', { id: stripeId('in'), object: 'invoice' });
	const body = JSON.stringify(ev);
	const ts = now();
	const official = signOfficial(body, stripe.webhookSecret, ts);
	const old = signatureOf(body, 'whsec_the_previous_secret', ts);
	const r = await send(ev, { body, header: `t=${ts},v1=${old},${official.split(',')[1]},v0=${old}` });
	assert.equal(r.status, 200, r.text);
	assert.equal((await eventRows(ev.id)).length, 1);
});

test('bad signatures answer 401 and store nothing', async () => {
	const ev = stripe.event('customer.subscription.updated', stripe.subscription({ status: 'active' }));
	const body = JSON.stringify(ev);
	const ts = now();
	const good = signatureOf(body, stripe.webhookSecret, ts);
	const cases = {
		'tampered body': { tamper: (b) => b.replace('"active"', '"canceled"') },
		'wrong secret': { secret: 'whsec_not_the_right_one' },
		// ts is read once and the cases take a while: keep clear of the
		// 300 s edge here (the unit tables test the edge with a fixed clock).
		'stale timestamp (official signer)': { timestamp: ts - 330 },
		'stale timestamp (own signer)': { timestamp: ts - 3600, signer: 'own' },
		'timestamp far ahead': { timestamp: ts + 330 },
		'no header': { unsigned: true },
		'v0 only': { header: `t=${ts},v0=${good}` },
		'no timestamp': { header: `v1=${good}` },
		'malformed header': { header: `t=${ts}, v1=${good}` },
		'upper-case hex': { header: `t=${ts},v1=${good.toUpperCase()}` },
		'another timestamp': { header: `t=${ts + 1},v1=${good}` },
	};
	const before = await sdb.count('stripe_events');
	for (const [name, opts] of Object.entries(cases)) {
		const r = await send(ev, { body, ...opts });
		assert.equal(r.status, 401, `${name}: ${r.status} ${r.text}`);
	}
	assert.equal(await sdb.count('stripe_events'), before);
	// The same request with the right signature is fine: the cases above
	// failed for their signatures only.
	assert.equal((await send(ev, { body, timestamp: ts })).status, 200);
});

test('a signed body that is not an event answers 400 and stores nothing', async () => {
	const before = await sdb.count('stripe_events');
	for (const body of ['not json', '[]', '{"id":"evt_1","type":"x.y","created":"soon","data":{"object":{}}}',
		'{"id":"evt_1","type":"x.y","created":1,"data":{}}', '{"id":"evt 1","type":"x.y","created":1,"data":{"object":{}}}']) {
		const r = await send(null, { body });
		assert.equal(r.status, 400, `${body}: ${r.text}`);
	}
	assert.equal(await sdb.count('stripe_events'), before);
});

// --- signed links -----------------------------------------------------------

test('/dibs upgrade gives a signed link that opens Stripe Checkout with a 303', async () => {
	const team = await newTeam();
	const path = await upgradeLinkFromSlack(team);
	const before = stripe.requests('/v1/checkout/sessions').length;
	const r = await open(path);
	assert.equal(r.status, 303, r.text);
	const calls = stripe.requests('/v1/checkout/sessions');
	assert.equal(calls.length, before + 1);
	const call = calls.at(-1);
	assert.equal(call.headers.authorization, `Bearer ${stripe.secretKey}`);
	assert.match(call.headers['content-type'], /^application\/x-www-form-urlencoded/);
	assert.match(call.idempotencyKey ?? '', /^conch-checkout-[0-9a-f]{64}$/);
	assert.equal(call.status, 200);
	assert.equal(r.location, call.response.url);
	assert.equal(call.params.mode, 'subscription');
	assert.deepEqual(call.params.line_items, [{ price: stripe.priceId, quantity: '1' }]);
	assert.equal(call.params.client_reference_id, team);
	assert.deepEqual(call.params.metadata, { team_id: team, user_id: INSTALLER });
	assert.deepEqual(call.params.subscription_data, { metadata: { team_id: team } });
	assert.equal(call.params.customer, undefined, 'no customer before the first checkout');
	assert.ok(call.params.success_url.startsWith(conch.url));
	assert.ok(call.params.cancel_url.startsWith(conch.url));

	// A double click opens the same session: same key, Stripe replays.
	const again = await open(path);
	assert.equal(again.status, 303);
	assert.equal(again.location, r.location);
	const last = stripe.requests('/v1/checkout/sessions').at(-1);
	assert.equal(last.idempotencyKey, call.idempotencyKey);
	assert.equal([...stripe.sessions.values()].filter((s) => s.client_reference_id === team).length, 1);
});

test('forged, altered, expired or misused links show an error page and call nothing', async () => {
	const team = await newTeam();
	const good = linkToken('billing-upgrade', team);
	const [payload, sig] = [good.slice(0, good.lastIndexOf('.')), good.slice(good.lastIndexOf('.') + 1)];
	const cases = [
		['no token', '/billing/upgrade', 403],
		['empty token', '/billing/upgrade?t=', 403],
		['garbage', '/billing/upgrade?t=hello', 403],
		['other secret', `/billing/upgrade?t=${linkToken('billing-upgrade', team, INSTALLER, { secret: 'not-the-secret' })}`, 403],
		['altered team', `/billing/upgrade?t=${payload.replace(team, 'T0OTHERTEAM')}.${sig}`, 403],
		['altered expiry', `/billing/upgrade?t=${payload.replace(/\d+$/, String(now() + 999999))}.${sig}`, 403],
		['altered signature', `/billing/upgrade?t=${payload}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'Q' : 'A'}`, 403],
		['portal link on upgrade', `/billing/upgrade?t=${linkToken('billing-portal', team)}`, 403],
		['upgrade link on portal', `/billing/portal?t=${good}`, 403],
		['expired', `/billing/upgrade?t=${linkToken('billing-upgrade', team, INSTALLER, { expires: now() - 1 })}`, 410],
		['expired portal', `/billing/portal?t=${linkToken('billing-portal', team, INSTALLER, { expires: now() - 60 })}`, 410],
	];
	const before = stripe.requests().length;
	for (const [name, path, status] of cases) {
		const r = await open(path);
		assert.equal(r.status, status, `${name}: ${r.status}`);
		assert.match(r.text, /<h1>/, `${name}: an error page`);
		assert.equal(r.location, null);
	}
	assert.equal(stripe.requests().length, before, 'Stripe was never called');
});

test('the portal needs a customer; unknown teams get a page', async () => {
	const team = await newTeam();
	const r = await open(`/billing/portal?t=${linkToken('billing-portal', team)}`);
	assert.equal(r.status, 409);
	assert.match(r.text, /no subscription yet/);
	const ghost = await open(`/billing/upgrade?t=${linkToken('billing-upgrade', 'T0NOSUCHTEAM')}`);
	assert.equal(ghost.status, 404);
	assert.equal(stripe.requests('/v1/billing_portal/sessions').length, 0);
});

test("Stripe's errors become clear pages; retries reuse the Idempotency-Key", async () => {
	const team = await newTeam();
	const path = `/billing/upgrade?t=${linkToken('billing-upgrade', team)}`;
	const calls = () => stripe.requests('/v1/checkout/sessions');

	let n = calls().length;
	stripe.failNext('/v1/checkout/sessions', { status: 400, type: 'invalid_request_error', code: 'resource_missing', message: "No such price: 'price_x'" });
	let r = await open(path);
	assert.equal(r.status, 502);
	assert.match(r.text, /resource_missing/);
	assert.doesNotMatch(r.text, new RegExp(stripe.secretKey));
	assert.equal(calls().length, n + 1, 'a 4xx is not retried');
	assert.ok(conch.logs(/resource_missing/).length > 0, 'the log says what Stripe said');

	n = calls().length;
	stripe.failNext('/v1/checkout/sessions', { status: 500, type: 'api_error', message: 'boom' }, 2);
	r = await open(path);
	assert.equal(r.status, 502);
	assert.match(r.text, /could not be reached/);
	const tries = calls().slice(n);
	assert.equal(tries.length, 2, 'a 5xx is retried once');
	assert.equal(tries[0].idempotencyKey, tries[1].idempotencyKey);

	n = calls().length;
	stripe.failNext('/v1/checkout/sessions', { status: 500, type: 'api_error', shouldRetry: false });
	r = await open(path);
	assert.equal(r.status, 502);
	assert.equal(calls().length, n + 1, 'Stripe-Should-Retry: false is obeyed');

	n = calls().length;
	stripe.failNext('/v1/checkout/sessions', { status: 503, type: 'api_error' });
	r = await open(path);
	assert.equal(r.status, 303, 'the retry succeeded');
	const ok = calls().slice(n);
	assert.equal(ok.length, 2);
	assert.equal(ok[0].idempotencyKey, ok[1].idempotencyKey);
	assert.ok(!conch.logs(new RegExp(stripe.secretKey)).length, 'the secret key never reaches the log');
});

// --- the whole story -----------------------------------------------------------

test('free -> pro -> past_due -> grace end -> free -> cancelled, nothing deleted', async () => {
	const team = await newTeam();
	assert.equal(await teamPlan(team), 'free');
	const names = Array.from({ length: FREE_THINGS }, (_, i) => `box-${i + 1}`);
	await makeThings(team, names);
	assert.equal(await thingCount(team), FREE_THINGS);
	assert.match(await dibs(team, 'on box-6'), /\/dibs upgrade/, 'the free plan refuses a sixth thing');
	assert.equal(await thingCount(team), FREE_THINGS);
	assert.match(await dibs(team, 'token'), /Pro plan/, 'the free plan has no API');

	// Checkout through the link /dibs upgrade gives.
	const { session, subscription, customer } = await subscribeThroughCheckout(team, await upgradeLinkFromSlack(team));
	assert.deepEqual(subscription.metadata, { team_id: team });
	const t0 = now();

	// Stripe often sends the subscription before the checkout: the
	// subscription's metadata names the team.
	await sendOk(stripe.event('customer.subscription.created', subscription, { created: t0 }));
	assert.equal(await teamPlan(team), 'pro');
	await sendOk(stripe.event('checkout.session.completed', session, { created: t0 }), { signer: 'own' });
	let b = await billingRow(team);
	assert.equal(b.stripe_customer, customer);
	assert.equal(b.stripe_subscription, subscription.id);
	assert.equal(b.subscription_status, 'active');
	assert.ok(b.current_period_end > new Date());
	const map = await sdb.one('SELECT team_id FROM stripe_customers WHERE customer = $1', [customer]);
	assert.equal(map.team_id, team);
	await slack.waitFor(() => dms(team, /now on conch \*Pro\*/).length === 1, 10_000, 'the upgrade DM');

	// Pro: no limit on things.
	assert.doesNotMatch(await dibs(team, 'on box-6'), /upgrade/);
	assert.doesNotMatch(await dibs(team, 'on box-7'), /upgrade/);
	assert.equal(await thingCount(team), FREE_THINGS + 2);
	const token = /`(conch_[^`]+)`/.exec(await dibs(team, 'token'))?.[1];
	assert.ok(token, 'Pro gives API tokens');
	const api = () => conch.fetch('/api/v1/things', { headers: { authorization: `Bearer ${token}` } });
	assert.equal((await api()).status, 200);

	// /dibs upgrade of a paying team links the portal, and its old
	// upgrade link goes there too: never a second checkout.
	const checkouts = stripe.requests('/v1/checkout/sessions').length;
	assert.equal((await open(await upgradeLinkFromSlack(team, '/billing/portal'))).status, 303);
	const again = await open(`/billing/upgrade?t=${linkToken('billing-upgrade', team)}`);
	assert.equal(again.status, 303);
	assert.match(again.location, /\/portal\/bps_/);
	assert.equal(stripe.requests('/v1/checkout/sessions').length, checkouts);
	const portal = await open(`/billing/portal?t=${linkToken('billing-portal', team)}`);
	assert.equal(portal.status, 303);
	const pcall = stripe.requests('/v1/billing_portal/sessions').at(-1);
	assert.equal(pcall.params.customer, customer);
	assert.equal(portal.location, pcall.response.url);
	assert.ok(pcall.params.return_url.startsWith(conch.url));

	// A payment fails: the installer hears of it, once per event.
	const failedEv = stripe.event('invoice.payment_failed', stripe.invoice(subscription), { created: t0 + 5 });
	await sendOk(failedEv);
	await sendOk(failedEv);
	await slack.waitFor(() => dms(team, /payment for conch Pro failed/).length === 1, 10_000, 'the payment-failed DM');

	// past_due: still Pro, for a 7-day grace.
	const pastDue = stripe.event('customer.subscription.updated', { ...subscription, status: 'past_due' }, { created: t0 + 10 });
	await sendOk(pastDue);
	assert.equal(await teamPlan(team), 'pro');
	b = await billingRow(team);
	assert.equal(b.subscription_status, 'past_due');
	assert.equal(b.grace_until.getTime() / 1000, t0 + 10 + GRACE_SECONDS);
	const jobs = () => sdb.query("SELECT * FROM jobs WHERE kind = 'billing.grace_end' AND team_id = $1", [team]);
	assert.equal((await jobs()).length, 1);
	assert.equal((await jobs())[0].due_at.getTime(), b.grace_until.getTime());
	// A redelivery, and a later past_due update, change nothing.
	await sendOk(pastDue);
	await sendOk(stripe.event('customer.subscription.updated', { ...subscription, status: 'past_due' }, { created: t0 + 11 }));
	assert.equal((await jobs()).length, 1);
	assert.equal((await billingRow(team)).grace_until.getTime(), b.grace_until.getTime());

	// Seven days later (made now): the grace ends, the team is on free.
	await sdb.query("UPDATE jobs SET due_at = now() WHERE kind = 'billing.grace_end' AND team_id = $1", [team]);
	await waitUntil(async () => (await jobs())[0].state === 'done', { timeoutMs: 15_000, what: 'the grace_end job' });
	assert.equal(await teamPlan(team), 'free');
	assert.ok((await billingRow(team)).grace_until <= new Date());
	await slack.waitFor(() => dms(team, /grace period .* has ended/).length === 1, 10_000, 'the grace-ended DM');

	// Nothing deleted: every thing stays usable, but no new one can be made.
	assert.equal(await thingCount(team), FREE_THINGS + 2);
	assert.match(await dibs(team, 'off box-7'), /released/);
	assert.match(await dibs(team, 'on box-7'), /yours/);
	assert.match(await dibs(team, 'on box-8'), /\/dibs upgrade/);
	assert.match(await dibs(team, 'on box-2 for 1h'), /Pro plan/);
	// The subscription is still alive (past_due): upgrading means fixing
	// the card in the portal, not a second subscription.
	const fix = await open(await upgradeLinkFromSlack(team));
	assert.equal(fix.status, 303);
	assert.match(fix.location, /\/portal\/bps_/);
	const refused = await api();
	assert.equal(refused.status, 403);
	assert.equal((await refused.json()).error, 'plan_required');

	// Another past_due update after the grace keeps the team on free.
	await sendOk(stripe.event('customer.subscription.updated', { ...subscription, status: 'past_due' }, { created: t0 + 20 }));
	assert.equal(await teamPlan(team), 'free');

	// Stripe gives up and cancels; an old "active" arriving late is ignored.
	await sendOk(stripe.event('customer.subscription.deleted', { ...subscription, status: 'canceled' }, { created: t0 + 30 }));
	const late = stripe.event('customer.subscription.updated', subscription, { created: t0 + 1 });
	await sendOk(late);
	assert.equal(await teamPlan(team), 'free');
	assert.equal((await billingRow(team)).subscription_status, 'canceled');
	assert.match((await eventRows(late.id))[0].error, /older/);
	assert.equal(await thingCount(team), FREE_THINGS + 2);
	assert.equal(dms(team, /now on conch \*Pro\*/).length, 1);

	// Subscribing again reuses the team's Stripe customer.
	const back = await open(await upgradeLinkFromSlack(team));
	assert.equal(back.status, 303);
	assert.match(back.location, /\/checkout\/cs_test_/);
	assert.equal(stripe.requests('/v1/checkout/sessions').at(-1).params.customer, customer);
});

test('a payment recovered within the grace keeps Pro and cancels the grace job', async () => {
	const team = await newTeam();
	const { subscription } = await subscribeThroughCheckout(team);
	const t0 = now();
	await sendOk(stripe.event('customer.subscription.created', subscription, { created: t0 }));
	await sendOk(stripe.event('customer.subscription.updated', { ...subscription, status: 'past_due' }, { created: t0 + 1 }));
	const [job] = await sdb.query("SELECT * FROM jobs WHERE kind = 'billing.grace_end' AND team_id = $1", [team]);
	assert.equal(job.state, 'queued');
	await sendOk(stripe.event('customer.subscription.updated', subscription, { created: t0 + 2 }));
	assert.equal(await teamPlan(team), 'pro');
	assert.equal((await sdb.one('SELECT state FROM jobs WHERE id = $1', [job.id])).state, 'cancelled');
	assert.equal((await billingRow(team)).grace_until, null);
});

test('out-of-order and duplicate subscription events end in the newest state, applied once', async () => {
	const team = await newTeam();
	const { subscription } = await subscribeThroughCheckout(team);
	const t0 = now();
	const created = stripe.event('customer.subscription.created', subscription, { created: t0 });
	const trialing = stripe.event('customer.subscription.updated', { ...subscription, status: 'trialing' }, { created: t0 + 1 });
	const canceled = stripe.event('customer.subscription.deleted', { ...subscription, status: 'canceled' }, { created: t0 + 5 });

	// Newest first, then the older ones, each twice.
	for (const ev of [canceled, trialing, created, canceled, created]) await sendOk(ev);
	assert.equal(await teamPlan(team), 'free');
	const b = await billingRow(team);
	assert.equal(b.subscription_status, 'canceled');
	assert.equal(Number(b.status_event_created), t0 + 5);
	for (const ev of [canceled, trialing, created]) assert.equal((await eventRows(ev.id)).length, 1);
	assert.equal(dms(team, /now on conch \*Pro\*/).length, 0, 'no upgrade DM for a state that never applied');

	// Ties apply: an event with the same created as the stored state.
	await sendOk(stripe.event('customer.subscription.updated', { ...subscription, status: 'active' }, { created: t0 + 5 }));
	assert.equal(await teamPlan(team), 'pro');

	// A new subscription after cancelling takes over; a stray cancelled one
	// never downgrades a paying team.
	const stray = stripe.subscription({ customer: subscription.customer, status: 'canceled', metadata: { team_id: team } });
	const strayEv = stripe.event('customer.subscription.deleted', stray, { created: t0 + 50 });
	await sendOk(strayEv);
	assert.equal(await teamPlan(team), 'pro');
	assert.match((await eventRows(strayEv.id))[0].error, /another subscription/);
	assert.equal((await billingRow(team)).stripe_subscription, subscription.id);
	await sendOk(stripe.event('customer.subscription.deleted', { ...subscription, status: 'canceled' }, { created: t0 + 60 }));
	assert.equal(await teamPlan(team), 'free');
	const renewed = stripe.subscription({ customer: subscription.customer, status: 'active', metadata: { team_id: team } });
	await sendOk(stripe.event('customer.subscription.created', renewed, { created: t0 + 70 }));
	assert.equal(await teamPlan(team), 'pro');
	assert.equal((await billingRow(team)).stripe_subscription, renewed.id);
});

test('events that name no team of ours are stored and answered 200', async () => {
	const sub = stripe.subscription({ status: 'active', metadata: { team_id: 'T0NOSUCHTEAM' } });
	const ev = stripe.event('customer.subscription.created', sub);
	await sendOk(ev);
	const [row] = await eventRows(ev.id);
	assert.equal(row.team_id, null);
	assert.match(row.error, /no team/);
	const cs = stripe.event('checkout.session.completed', {
		id: `cs_test_${randomBytes(8).toString('hex')}`, object: 'checkout.session', mode: 'subscription',
		client_reference_id: 'T0NOSUCHTEAM', customer: stripeId('cus'), subscription: sub.id, metadata: {},
	});
	await sendOk(cs);
	assert.match((await eventRows(cs.id))[0].error, /names no team/);
	assert.equal(await sdb.count('stripe_customers', 'customer = $1', [cs.data.object.customer]), 0);
});

test('a checkout moves a customer that paid for another team to the team it was opened for', async () => {
	const first = await newTeam();
	const second = await newTeam();
	const customer = stripeId('cus');
	const checkout = (team) => stripe.event('checkout.session.completed', {
		id: `cs_test_${randomBytes(8).toString('hex')}`, object: 'checkout.session', mode: 'subscription',
		client_reference_id: team, customer, subscription: stripeId('sub'), metadata: {},
	});
	await sendOk(checkout(first));
	assert.deepEqual(await sdb.query('SELECT team_id FROM stripe_customers WHERE customer = $1', [customer]), [{ team_id: first }]);
	// The row is the first team's, out of the second team's sight: moved by
	// billing_map_customer(), not lost and not duplicated.
	const ev = checkout(second);
	await sendOk(ev);
	assert.equal((await eventRows(ev.id))[0].error, null);
	assert.deepEqual(await sdb.query('SELECT team_id FROM stripe_customers WHERE customer = $1', [customer]), [{ team_id: second }]);
	assert.equal((await billingRow(second)).stripe_customer, customer);
});

// --- not configured ----------------------------------------------------------------

test('without Stripe keys the pages and the webhook say what to configure', async () => {
	const bare = await startConch({ databaseUrl: dbUrl, slack, migrate: false });
	try {
		const team = await newTeam();
		const r = await bare.fetch(`/billing/upgrade?t=${linkToken('billing-upgrade', team)}`);
		const html = await r.text();
		assert.equal(r.status, 503);
		assert.match(html, /stripe_secret_key/);
		assert.match(html, /stripe_price_pro/);
		const p = await bare.fetch(`/billing/portal?t=${linkToken('billing-portal', team)}`);
		assert.equal(p.status, 503);
		assert.doesNotMatch(await p.text(), /stripe_price_pro/);
		const w = await deliverWebhook(bare, stripe.event('invoice.paid', {}), { secret: stripe.webhookSecret });
		assert.equal(w.status, 503);
		assert.match(w.text, /stripe_webhook_secret/);
		const reply = await bare.slashCommand({ team_id: team, user_id: INSTALLER, text: 'upgrade' });
		assert.match(reply.json.text, /not configured/);
	} finally {
		await bare.stop();
	}
});

// --- the database goes away during a delivery ------------------------------------------

test('a webhook during a database outage gets 503, and the retry applies it exactly once', async () => {
	const team = await newTeam();
	const { subscription, session } = await subscribeThroughCheckout(team);
	const ev = stripe.event('customer.subscription.created', subscription);
	const cs = stripe.event('checkout.session.completed', session);

	await cluster.stopTemporarily();
	try {
		for (const e of [ev, cs]) {
			const r = await send(e);
			assert.equal(r.status, 503, `during the outage: ${r.status} ${r.text}`);
		}
	} finally {
		await cluster.start();
	}
	await conch.waitHealthy();
	// Stripe's retries: the same event, signed again, until one is taken
	// (an instance may still answer 503 while it reconnects).
	const deliverUntilTaken = (e) => waitUntil(async () => (await send(e, { timestamp: now() })).status === 200,
		{ timeoutMs: 15_000, intervalMs: 250, what: `a retry of ${e.type} to be accepted` });
	for (const e of [ev, cs]) await deliverUntilTaken(e);
	assert.equal(await teamPlan(team), 'pro');
	assert.equal((await eventRows(ev.id)).length, 1);
	assert.equal((await billingRow(team)).stripe_customer, subscription.customer);
	// And once more, as Stripe may: nothing changes.
	for (const e of [ev, cs]) await deliverUntilTaken(e);
	await slack.waitFor(() => dms(team, /now on conch \*Pro\*/).length >= 1, 10_000, 'the upgrade DM');
	await new Promise((r) => setTimeout(r, 500));
	assert.equal(dms(team, /now on conch \*Pro\*/).length, 1, 'one DM: the event was applied once');
	assert.equal(await sdb.count('jobs', "team_id = $1 AND kind = 'slack.call'", [team]), 1);
});

test('conch stops cleanly', async () => {
	await conch.stop();
});
