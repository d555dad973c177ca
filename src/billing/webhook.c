/* POST /stripe/webhook: verify the signature over the raw body, then store
 * the event by id and apply it in one transaction. A redelivery finds the
 * id and changes nothing; a database that does not answer gets a 503, and
 * Stripe delivers again later (for up to three days). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "conf.h"
#include "db.h"
#include "log.h"
#include "util.h"

#define NOTE_MAX 200

static const char *
sig_reason(enum stripe_sig sig)
{
	switch (sig) {
	case STRIPE_SIG_MISSING:
		return "missing or malformed signature";
	case STRIPE_SIG_STALE:
		return "stale timestamp";
	default:
		return "invalid signature";
	}
}

/* 1 when the event is new (stored now), 0 when seen before, -1 on failure. */
static int
store(struct tx *tx, const struct stripe_event *ev, const char *body)
{
	char created[24];
	const char *p[4] = {ev->id, ev->type, created, body};
	PGresult *r;
	int fresh;

	snprintf(created, sizeof(created), "%lld", ev->created);
	r = tx_query(tx,
	             "INSERT INTO stripe_events (event_id, type, created, payload) "
	             "VALUES ($1, $2, $3::bigint, $4::jsonb) "
	             "ON CONFLICT (event_id) DO NOTHING RETURNING 1",
	             4, p);
	if (r == NULL)
		return -1;
	fresh = PQntuples(r) == 1;
	PQclear(r);
	return fresh;
}

static int
record_outcome(struct tx *tx, const struct stripe_event *ev, const char *team,
               enum billing_applied applied, const char *note)
{
	const char *p[3] = {ev->id, team[0] ? team : NULL,
	                    applied == BILLING_SKIPPED ? note : NULL};

	/* The event's row is not the team's yet: back to no team's scope. */
	if (tx_scope(tx, NULL) < 0)
		return -1;
	return tx_exec(tx,
	               "UPDATE stripe_events SET team_id = $2, processed_at = now(), error = $3 "
	               "WHERE event_id = $1",
	               3, p);
}

/* The answer when the transaction failed: 503 for an outage, 500 for
 * anything else; both make Stripe try again. */
static void
failed(struct response *res, const struct tx *tx, const struct stripe_event *ev)
{
	log_warn("billing: event %s (%s) not stored; Stripe will retry", ev->id, ev->type);
	if (tx->error == DB_UNAVAILABLE)
		http_reply_text(res, 503, "database unavailable; retry later");
	else
		http_reply_text(res, 500, "event not stored; retry later");
}

static void
store_and_apply(const struct stripe_event *ev, const char *body, struct response *res)
{
	enum billing_applied applied;
	char team[32] = "", note[NOTE_MAX] = "";
	struct tx tx;
	int fresh;

	/* Scoped to no team: the event logs are global, and the event names a
	 * Stripe customer whose team billing_find_team() finds; the changes to
	 * that team run in its scope (find_team sets it). */
	if (tx_begin_system(&tx) < 0 || (fresh = store(&tx, ev, body)) < 0)
		goto fail;
	if (!fresh) {
		if (tx_commit(&tx) < 0)
			goto fail;
		log_info("billing: event %s (%s) was already received", ev->id, ev->type);
		http_reply_text(res, 200, "ok (duplicate)");
		return;
	}
	applied = billing_apply_event(&tx, ev, team, note, sizeof(note));
	if (applied == BILLING_DB_ERROR || record_outcome(&tx, ev, team, applied, note) < 0 ||
	    tx_commit(&tx) < 0)
		goto fail;
	log_set_team(team[0] ? team : NULL);
	log_info("billing: event %s (%s) %s: %s", ev->id, ev->type,
	         applied == BILLING_APPLIED ? "applied" : "stored, not applied", note);
	log_set_team(NULL);
	http_reply_text(res, 200, "ok");
	return;
fail:
	tx_rollback(&tx);
	failed(res, &tx, ev);
}

void
billing_http_webhook(struct request *req, struct response *res)
{
	const char *secret = conf.stripe_webhook_secret;
	struct stripe_event ev;
	enum stripe_sig sig;
	const char *why;

	if (secret == NULL || *secret == '\0') {
		http_reply_text(res, 503,
		                "Stripe webhooks are not configured: set stripe_webhook_secret");
		return;
	}
	sig = stripe_verify(secret, http_header(req, "Stripe-Signature"), req->body, req->body_len,
	                    now_unix());
	if (sig != STRIPE_SIG_OK) {
		log_warn("billing: webhook refused: %s", sig_reason(sig));
		http_reply_text(res, 401, sig_reason(sig));
		return;
	}
	if (stripe_event_parse(req->body, req->body_len, &ev, &why) < 0) {
		log_warn("billing: webhook refused: %s", why);
		http_reply_text(res, 400, why);
	} else {
		store_and_apply(&ev, req->body, res);
	}
	stripe_event_free(&ev);
}
