// A fake Stripe API on 127.0.0.1 that behaves as Stripe's Checkout, Billing
// Portal and webhook signing do, plus builders for webhook events and two signers: our
// own HMAC code and the official `stripe` npm package, so the verifier in
// conch is checked against Stripe's own implementation.
//
//   const stripe = await startFakeStripe();
//   stripe.url             -> CONCH_STRIPE_API_URL
//   stripe.secretKey       -> CONCH_STRIPE_SECRET_KEY (sk_test_...)
//   stripe.webhookSecret   -> CONCH_STRIPE_WEBHOOK_SECRET (whsec_...)
//   stripe.priceId         -> CONCH_STRIPE_PRICE_PRO
//   stripe.requests('/v1/checkout/sessions') -> [{ path, headers, idempotencyKey, form, params, status, response }]
//   stripe.failNext('/v1/checkout/sessions', { status: 402, type: 'card_error', code: 'card_declined' });
//   const { session, subscription } = stripe.completeCheckout(sessionId);
//   const ev = stripe.event('customer.subscription.updated', { ...subscription, status: 'past_due' });
//   await deliverWebhook(conch, ev, { secret: stripe.webhookSecret, signer: 'official' });
//
// Every API request is recorded in order, refused ones too.

import { HOST, listenLocal } from './listen.mjs';
import { createHmac, randomBytes } from 'node:crypto';
import Stripe from 'stripe';
import { httpRequest } from './server.mjs';

const MAX_BODY = 1 << 20;
const API_VERSION = '2025-03-31.basil';
const MONTH = 30 * 86400;

function rand(n = 12) {
	// Stripe ids: a prefix and base62-looking characters.
	return randomBytes(n).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, n + 2) || 'x';
}

export function stripeId(prefix) {
	return `${prefix}_${rand(14)}`;
}

function now() {
	return Math.floor(Date.now() / 1000);
}

// Form bodies as Stripe reads them: bracket keys become nested objects,
// numeric indexes become arrays ("line_items[0][price]=p" ->
// { line_items: [{ price: 'p' }] }).
export function parseStripeForm(raw) {
	const out = {};
	for (const [key, value] of new URLSearchParams(raw)) {
		const parts = key.match(/^[^[\]]+|\[[^[\]]*\]/g);
		if (!parts || parts.join('') !== key) throw new Error(`malformed key ${key}`);
		const path = parts.map((p) => (p.startsWith('[') ? p.slice(1, -1) : p));
		let node = out;
		for (let i = 0; i < path.length; i++) {
			const k = /^\d+$/.test(path[i]) ? Number(path[i]) : path[i];
			if (i === path.length - 1) {
				node[k] = value;
			} else {
				if (node[k] === undefined) node[k] = /^\d+$/.test(path[i + 1]) ? [] : {};
				node = node[k];
			}
		}
	}
	return out;
}

class StripeError extends Error {
	constructor(status, type, message, code, param) {
		super(message);
		this.status = status;
		this.body = { error: { type, message, ...(code ? { code } : {}), ...(param ? { param } : {}) } };
	}
}

export class FakeStripe {
	constructor({ secretKey, webhookSecret, priceId } = {}) {
		this.secretKey = secretKey ?? `sk_test_${rand(24)}`;
		this.webhookSecret = webhookSecret ?? `whsec_${rand(32)}`;
		this.priceId = priceId ?? `price_${rand(14)}`;
		this.server = null;
		this.sockets = new Set();
		this.held = null; // see hold()
		this.reset();
	}

	// Forgets requests, faults and objects.
	reset() {
		this.log = [];
		this.faults = new Map();      // path -> [fault]
		this.idempotency = new Map(); // key -> { path, raw, status, body }
		this.customers = new Map();
		this.sessions = new Map();
		this.subscriptions = new Map();
		this.portalSessions = new Map();
	}

	get url() {
		return `http://${HOST}:${this.port}`;
	}

	// CONCH_* settings that point conch at this fake.
	env() {
		return {
			CONCH_STRIPE_API_URL: this.url,
			CONCH_STRIPE_SECRET_KEY: this.secretKey,
			CONCH_STRIPE_WEBHOOK_SECRET: this.webhookSecret,
			CONCH_STRIPE_PRICE_PRO: this.priceId,
		};
	}

	async listen() {
		this.server = await listenLocal((req, res) => this.handle(req, res), this.sockets);
		this.port = this.server.address().port;
		return this;
	}

	async close() {
		if (!this.server) return;
		const closed = new Promise((resolve) => this.server.close(resolve));
		for (const s of this.sockets) s.destroy();
		await closed;
		this.server = null;
	}

	// --- test controls --------------------------------------------------------

	// fault: { status, type, code, message, shouldRetry } answers the next n
	// requests to path with Stripe's error object; { hangMs } delays them.
	failNext(path, fault, n = 1) {
		if (!fault || !(fault.status || fault.hangMs)) throw new Error(`failNext(${path}): unknown fault`);
		const q = this.faults.get(path) || [];
		for (let i = 0; i < n; i++) q.push(fault);
		this.faults.set(path, q);
	}

	requests(path) {
		return path ? this.log.filter((r) => r.path === path) : [...this.log];
	}

	createCustomer({ email = 'billing@example.com', metadata = {} } = {}) {
		const c = { id: stripeId('cus'), object: 'customer', created: now(), email, livemode: false, metadata };
		this.customers.set(c.id, c);
		return c;
	}

	// What Stripe does when the customer pays on the Checkout page: a
	// customer (unless the session had one), an active subscription carrying
	// subscription_data.metadata, and the session completed.
	completeCheckout(sessionId, { status = 'active' } = {}) {
		const session = this.sessions.get(sessionId);
		if (!session) throw new Error(`completeCheckout: no session ${sessionId}`);
		const customer = session.customer ?? this.createCustomer().id;
		const subscription = this.subscription({
			customer,
			status,
			metadata: session._subscriptionMetadata ?? {},
		});
		Object.assign(session, {
			customer,
			subscription: subscription.id,
			status: 'complete',
			payment_status: 'paid',
		});
		return { session: this.publicSession(session), subscription, customer };
	}

	// A realistic subscription object (API version 2025-03-31: the period
	// sits on the items).
	subscription({ id, customer, status = 'active', metadata = {}, created = now(), cancel_at_period_end = false } = {}) {
		const sub = {
			id: id ?? stripeId('sub'),
			object: 'subscription',
			application: null,
			billing_cycle_anchor: created,
			cancel_at: null,
			cancel_at_period_end,
			canceled_at: status === 'canceled' ? now() : null,
			collection_method: 'charge_automatically',
			created,
			currency: 'usd',
			customer: customer ?? this.createCustomer().id,
			default_payment_method: null,
			ended_at: status === 'canceled' ? now() : null,
			items: {
				object: 'list',
				data: [
					{
						id: stripeId('si'),
						object: 'subscription_item',
						created,
						current_period_start: created,
						current_period_end: created + MONTH,
						metadata: {},
						price: {
							id: this.priceId,
							object: 'price',
							active: true,
							currency: 'usd',
							product: 'prod_conchpro',
							recurring: { interval: 'month', interval_count: 1 },
							type: 'recurring',
							unit_amount: 900,
						},
						quantity: 1,
						subscription: id,
					},
				],
				has_more: false,
				url: '/v1/subscription_items',
			},
			latest_invoice: stripeId('in'),
			livemode: false,
			metadata,
			start_date: created,
			status,
			trial_end: null,
			trial_start: null,
		};
		sub.items.data[0].subscription = sub.id;
		this.subscriptions.set(sub.id, sub);
		return structuredClone(sub);
	}

	invoice(subscription, { attempt_count = 1, next_payment_attempt = now() + 3 * 86400 } = {}) {
		return {
			id: stripeId('in'),
			object: 'invoice',
			amount_due: 900,
			amount_paid: 0,
			attempt_count,
			attempted: true,
			billing_reason: 'subscription_cycle',
			collection_method: 'charge_automatically',
			created: now(),
			currency: 'usd',
			customer: subscription.customer,
			livemode: false,
			next_payment_attempt,
			paid: false,
			parent: {
				type: 'subscription_details',
				quote_details: null,
				subscription_details: { metadata: subscription.metadata, subscription: subscription.id },
			},
			status: 'open',
		};
	}

	// An event as Stripe delivers it.
	event(type, object, { created = now(), id = stripeId('evt'), previous_attributes } = {}) {
		return {
			id,
			object: 'event',
			api_version: API_VERSION,
			created,
			data: { object: structuredClone(object), ...(previous_attributes ? { previous_attributes } : {}) },
			livemode: false,
			pending_webhooks: 1,
			request: { id: null, idempotency_key: null },
			type,
		};
	}

	// --- HTTP -------------------------------------------------------------------

	async handle(req, res) {
		const chunks = [];
		let size = 0;
		for await (const c of req) {
			size += c.length;
			if (size > MAX_BODY) return this.send(res, 413, { error: { type: 'invalid_request_error', message: 'too large' } });
			chunks.push(c);
		}
		const raw = Buffer.concat(chunks).toString('utf8');
		const url = new URL(req.url, this.url);
		if (req.method === 'GET' && /^\/(checkout|portal)\//.test(url.pathname)) {
			res.writeHead(200, { 'content-type': 'text/html' });
			return res.end(`<html><body>fake Stripe page ${url.pathname}</body></html>`);
		}
		const entry = {
			method: req.method,
			path: url.pathname,
			headers: req.headers,
			idempotencyKey: req.headers['idempotency-key'] ?? null,
			raw,
			form: Object.fromEntries(new URLSearchParams(raw)),
			params: null,
			time: Date.now(),
		};
		this.log.push(entry);
		try {
			entry.params = parseStripeForm(raw);
			const { status, body, replayed } = await this.answer(req, entry);
			entry.status = status;
			entry.response = body;
			this.send(res, status, body, replayed ? { 'idempotent-replayed': 'true' } : {});
		} catch (err) {
			const e = err instanceof StripeError ? err : new StripeError(500, 'api_error', err.message);
			entry.status = e.status;
			entry.response = e.body;
			this.send(res, e.status, e.body, e.headers);
		}
	}

	send(res, status, body, headers = {}) {
		res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${rand(14)}`, ...headers });
		res.end(JSON.stringify(body));
	}

	checkAuth(req) {
		const auth = req.headers.authorization || '';
		const m = /^Bearer (sk_test_\S+)$/.exec(auth);
		if (!m) throw new StripeError(401, 'invalid_request_error', 'You did not provide an API key.');
		if (m[1] !== this.secretKey)
			throw new StripeError(401, 'invalid_request_error', `Invalid API Key provided: sk_test_****${m[1].slice(-4)}`);
	}

	async answer(req, entry) {
		this.checkAuth(req);
		if (req.method !== 'POST') throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (${req.method}: ${entry.path}).`);
		await this.gate(entry);
		const fault = (this.faults.get(entry.path) || []).shift();
		if (fault?.hangMs) await new Promise((r) => setTimeout(r, fault.hangMs));
		else if (fault) {
			const e = new StripeError(fault.status, fault.type ?? 'api_error', fault.message ?? 'Injected failure', fault.code);
			if (fault.shouldRetry !== undefined) e.headers = { 'stripe-should-retry': String(fault.shouldRetry) };
			throw e;
		}
		const key = entry.idempotencyKey;
		if (key) {
			const seen = this.idempotency.get(key);
			if (seen) {
				if (seen.path !== entry.path || seen.raw !== entry.raw)
					throw new StripeError(400, 'idempotency_error',
						`Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`);
				return { status: seen.status, body: structuredClone(seen.body), replayed: true };
			}
		}
		const result = this.route(entry);
		// Stripe keeps the result of a request that ran, success or 4xx.
		if (key) this.idempotency.set(key, { path: entry.path, raw: entry.raw, status: result.status, body: structuredClone(result.body) });
		return result;
	}

	// --- held requests (hold / release) ------------------------------------

	// Every API request waits, unanswered, until release().
	hold() {
		this.held = [];
	}

	heldCount() {
		return this.held ? this.held.length : 0;
	}

	release() {
		const h = this.held || [];
		this.held = null;
		for (const go of h) go();
	}

	gate(entry) {
		if (!this.held) return undefined;
		entry.held = true;
		return new Promise((go) => this.held.push(go));
	}

	route(entry) {
		if (entry.path === '/v1/checkout/sessions') return { status: 200, body: this.createCheckout(entry.params) };
		if (entry.path === '/v1/billing_portal/sessions') return { status: 200, body: this.createPortal(entry.params) };
		throw new StripeError(404, 'invalid_request_error', `Unrecognized request URL (POST: ${entry.path}).`);
	}

	needCustomer(id, param) {
		if (!this.customers.has(id))
			throw new StripeError(400, 'invalid_request_error', `No such customer: '${id}'`, 'resource_missing', param);
	}

	createCheckout(p) {
		if (p.mode !== 'subscription' && p.mode !== 'payment' && p.mode !== 'setup')
			throw new StripeError(400, 'invalid_request_error', 'Missing required param: mode.', 'parameter_missing', 'mode');
		if (!p.success_url)
			throw new StripeError(400, 'invalid_request_error', 'Missing required param: success_url.', 'parameter_missing', 'success_url');
		const item = p.line_items?.[0];
		if (!item?.price)
			throw new StripeError(400, 'invalid_request_error', 'Missing required param: line_items[0][price].', 'parameter_missing', 'line_items[0][price]');
		if (item.price !== this.priceId)
			throw new StripeError(400, 'invalid_request_error', `No such price: '${item.price}'`, 'resource_missing', 'line_items[0][price]');
		if (p.customer) this.needCustomer(p.customer, 'customer');
		const id = `cs_test_${rand(40)}`;
		const session = {
			id,
			object: 'checkout.session',
			cancel_url: p.cancel_url ?? null,
			client_reference_id: p.client_reference_id ?? null,
			created: now(),
			currency: 'usd',
			customer: p.customer ?? null,
			expires_at: now() + 86400,
			livemode: false,
			metadata: p.metadata ?? {},
			mode: p.mode,
			payment_status: 'unpaid',
			status: 'open',
			subscription: null,
			success_url: p.success_url,
			url: `${this.url}/checkout/${id}`,
			_subscriptionMetadata: p.subscription_data?.metadata ?? {},
			_lineItems: p.line_items,
		};
		this.sessions.set(id, session);
		return this.publicSession(session);
	}

	publicSession(session) {
		const { _subscriptionMetadata, _lineItems, ...pub } = session;
		return structuredClone(pub);
	}

	createPortal(p) {
		if (!p.customer)
			throw new StripeError(400, 'invalid_request_error', 'Missing required param: customer.', 'parameter_missing', 'customer');
		this.needCustomer(p.customer, 'customer');
		const id = `bps_${rand(24)}`;
		const s = {
			id,
			object: 'billing_portal.session',
			configuration: 'bpc_fake',
			created: now(),
			customer: p.customer,
			livemode: false,
			return_url: p.return_url ?? null,
			url: `${this.url}/portal/${id}`,
		};
		this.portalSessions.set(id, s);
		return structuredClone(s);
	}
}

export async function startFakeStripe(opts) {
	return new FakeStripe(opts).listen();
}

// --- webhook signatures -------------------------------------------------------

// Stripe's v1 signature in node:crypto: hex HMAC-SHA256(secret, t.payload).
export function signatureOf(payload, secret, timestamp) {
	return createHmac('sha256', secret).update(`${timestamp}.${payload}`).digest('hex');
}

export function signOwn(payload, secret, timestamp = now()) {
	return `t=${timestamp},v1=${signatureOf(payload, secret, timestamp)}`;
}

const officialStripe = new Stripe('sk_test_for_signing_only');

// The official stripe package's test header (stripe-node).
export function signOfficial(payload, secret, timestamp = now()) {
	return officialStripe.webhooks.generateTestHeaderString({ payload, secret, timestamp });
}

// POSTs an event to /stripe/webhook as Stripe does. opts: secret, signer
// ('own' | 'official'), timestamp, header (overrides the signature),
// unsigned, tamper (changes the body after signing), body (raw text
// instead of JSON.stringify(event)).
export function deliverWebhook(conch, event, opts = {}) {
	const body = opts.body ?? JSON.stringify(event, null, 2);
	const secret = opts.secret;
	const ts = opts.timestamp ?? now();
	let header = opts.header;
	if (header === undefined && !opts.unsigned) {
		if (!secret) throw new Error('deliverWebhook: a secret is needed');
		header = opts.signer === 'official' ? signOfficial(body, secret, ts) : signOwn(body, secret, ts);
	}
	const sent = opts.tamper ? opts.tamper(body) : body;
	const headers = { 'Content-Type': 'application/json; charset=utf-8', 'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' };
	if (header !== undefined && !opts.unsigned) headers['Stripe-Signature'] = header;
	return httpRequest(`${conch.url}/stripe/webhook`, { method: 'POST', headers, body: sent });
}
