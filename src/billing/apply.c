/* What a Stripe event does to a team: checkout links the customer and
 * subscription, subscription events set the plan (the rules live in
 * migrations/006_billing.sql), a failed payment and the end of the grace
 * period tell the installer. Everything happens in the caller's
 * transaction, so an event is applied exactly when it is stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "db.h"
#include "jobs.h"
#include "log.h"
#include "slack.h"
#include "util.h"

#define GRACE_JOB "billing.grace_end"

enum message { MSG_UPGRADED, MSG_PAYMENT_FAILED, MSG_GRACE_ENDED };

/* --- messages to the installer ------------------------------------------ */

static const char *const message_texts[] = {
    [MSG_UPGRADED] = ":tada: This workspace is now on conch *Pro*: unlimited things, timed "
                     "releases, the REST API and lunch polls of any size. Thank you!",
    [MSG_PAYMENT_FAILED] = ":warning: A payment for conch Pro failed. Pro stays on for a 7-day "
                           "grace period while Stripe tries again; to keep it, update the "
                           "payment method.",
    [MSG_GRACE_ENDED] = "The 7-day grace period for the conch Pro payment has ended, so this "
                        "workspace is now on the Free plan. Nothing was deleted: things over "
                        "the Free limit keep working, but no new ones can be made. Type "
                        "`/dibs upgrade` to subscribe again.",
};

static char *
message_text(enum message m, const char *portal)
{
	struct buf b;

	buf_init(&b);
	buf_puts(&b, message_texts[m]);
	if (portal != NULL)
		buf_printf(&b, " <%s|Open the billing portal> (the link works for an hour).",
		           portal);
	return buf_steal(&b);
}

/* DMs the team's installer (through a slack.call job in tx); no installer
 * on record is not an error. 0 or -1. */
static int
notify(struct tx *tx, const char *team_id, enum message m, const char *dedupe)
{
	const char *p[1] = {team_id};
	PGresult *r;
	char *portal, *text;
	json_t *args;
	int rc;

	r = tx_query(tx,
	             "SELECT installer_user_id FROM installations "
	             "WHERE team_id = $1 AND active AND installer_user_id <> ''",
	             1, p);
	if (r == NULL)
		return -1;
	if (PQntuples(r) != 1) {
		log_info("billing: no installer to tell (%s)", dedupe);
		PQclear(r);
		return 0;
	}
	portal = billing_portal_link(team_id, db_str(r, 0, 0));
	text = message_text(m, portal);
	args = json_pack("{s:s, s:s, s:[o]}", "channel", db_str(r, 0, 0), "text", text, "blocks",
	                 slack_section(text));
	rc = slack_enqueue(tx, team_id, "chat.postMessage", args, dedupe) < 0 ? -1 : 0;
	free(text);
	free(portal);
	PQclear(r);
	return rc;
}

/* --- finding the team ----------------------------------------------------- */

/* The team an object belongs to: the one its customer pays for, else the
 * one its metadata names; either must exist. Found, the transaction is
 * scoped to it from here on. 1 found, 0 not ours, -1 on a database error. */
static int
find_team(struct tx *tx, const char *customer, const char *named, char team[32])
{
	const char *p[2] = {customer, named};
	PGresult *r;
	int found;

	team[0] = '\0';
	if (customer == NULL && named == NULL)
		return 0;
	r = tx_query(tx, "SELECT billing_find_team($1, $2)", 2, p);
	if (r == NULL)
		return -1;
	found = PQntuples(r) == 1 && !db_null(r, 0, 0);
	if (found)
		snprintf(team, 32, "%s", db_str(r, 0, 0));
	PQclear(r);
	if (found && tx_scope(tx, team) < 0)
		return -1;
	return found;
}

static enum billing_applied
skipped(char *note, size_t len, const char *why)
{
	snprintf(note, len, "%s", why);
	return BILLING_SKIPPED;
}

static enum billing_applied
db_error(char *note, size_t len)
{
	snprintf(note, len, "database error");
	return BILLING_DB_ERROR;
}

/* --- checkout.session.completed ---------------------------------------- */

static enum billing_applied
apply_checkout(struct tx *tx, const struct stripe_event *ev, char team[32], char *note, size_t len)
{
	struct stripe_checkout c;
	const char *why;
	const char *p[3];
	int found;

	if (stripe_checkout_read(ev->object, &c, &why) < 0)
		return skipped(note, len, why);
	if (c.mode != NULL && strcmp(c.mode, "subscription") != 0)
		return skipped(note, len, "not a subscription checkout");
	/* The checkout is what ties a customer to a team: trust only the
	 * team it was opened for, not an earlier mapping. */
	found = find_team(tx, NULL, c.team_id, team);
	if (found <= 0)
		return found < 0 ? db_error(note, len)
		                 : skipped(note, len, "client_reference_id names no team");
	p[0] = team;
	p[1] = c.customer;
	p[2] = c.subscription;
	/* The customer may have paid for another team before: its row moves
	 * here first (out of this team's sight until then). */
	if ((c.customer != NULL && tx_exec(tx, "SELECT billing_map_customer($2, $1)", 2, p) < 0) ||
	    tx_exec(tx, "SELECT billing_link_checkout($1, $2, $3)", 3, p) < 0)
		return db_error(note, len);
	snprintf(note, len, "linked customer %s", c.customer ? c.customer : "(none)");
	return BILLING_APPLIED;
}

/* --- customer.subscription.* ---------------------------------------------- */

struct applied_state {
	int applied;
	char plan_before[32];
	char plan_after[32];
	long long grace; /* unix seconds, 0 when none */
	int grace_started;
	char why_not[64];
};

static int
run_apply(struct tx *tx, const char *team, const struct stripe_subscription *s, const char *status,
          long long created, struct applied_state *st)
{
	char created_s[24], period_s[24];
	const char *p[7] = {team,
	                    s->customer,
	                    s->id,
	                    status,
	                    created_s,
	                    period_s,
	                    s->cancel_at_period_end ? "true" : "false"};
	PGresult *r;

	snprintf(created_s, sizeof(created_s), "%lld", created);
	snprintf(period_s, sizeof(period_s), "%lld", s->current_period_end);
	r = tx_query(tx,
	             "SELECT applied, plan_before, plan_after, "
	             "coalesce(extract(epoch FROM grace)::bigint, 0), grace_started, "
	             "coalesce(skipped, '') "
	             "FROM billing_apply_subscription($1, $2, $3, $4, $5::bigint, $6::bigint, "
	             "$7::boolean)",
	             7, p);
	if (r == NULL || PQntuples(r) != 1) {
		PQclear(r);
		return -1;
	}
	st->applied = db_str(r, 0, 0)[0] == 't';
	snprintf(st->plan_before, sizeof(st->plan_before), "%s", db_str(r, 0, 1));
	snprintf(st->plan_after, sizeof(st->plan_after), "%s", db_str(r, 0, 2));
	st->grace = strtoll(db_str(r, 0, 3), NULL, 10);
	st->grace_started = db_str(r, 0, 4)[0] == 't';
	snprintf(st->why_not, sizeof(st->why_not), "%s", db_str(r, 0, 5));
	PQclear(r);
	return 0;
}

/* The job that ends this grace; deduplicated on the subscription and the
 * grace's end, so a redelivered or reordered past_due never adds another. */
static int
schedule_grace_end(struct tx *tx, const char *team, const char *subscription, long long grace)
{
	char *dedupe = xasprintf("grace:%s:%lld", subscription, grace);
	json_t *payload =
	    json_pack("{s:s, s:I}", "subscription", subscription, "grace_until", (json_int_t)grace);
	int64_t id = job_enqueue(tx, GRACE_JOB, team, payload, (double)grace, dedupe);

	free(dedupe);
	return id < 0 ? -1 : 0;
}

static enum billing_applied
apply_subscription(struct tx *tx, const struct stripe_event *ev, char team[32], char *note,
                   size_t len)
{
	struct stripe_subscription s;
	struct applied_state st = {0};
	const char *why, *status;
	char *dedupe;
	int found, rc = 0;

	if (stripe_subscription_read(ev->object, &s, &why) < 0)
		return skipped(note, len, why);
	/* A deleted subscription is over whatever its object last said. */
	status = strcmp(ev->type, "customer.subscription.deleted") == 0 ? "canceled" : s.status;
	found = find_team(tx, s.customer, s.team_id, team);
	if (found <= 0)
		return found < 0 ? db_error(note, len)
		                 : skipped(note, len, "no team for this customer");
	if (run_apply(tx, team, &s, status, ev->created, &st) < 0)
		return db_error(note, len);
	if (!st.applied)
		return skipped(note, len, st.why_not);
	if (st.grace_started)
		rc = schedule_grace_end(tx, team, s.id, st.grace);
	if (rc == 0 && strcmp(st.plan_after, "pro") == 0 && strcmp(st.plan_before, "pro") != 0) {
		dedupe = xasprintf("billing:upgraded:%s", ev->id);
		rc = notify(tx, team, MSG_UPGRADED, dedupe);
		free(dedupe);
	}
	if (rc < 0)
		return db_error(note, len);
	snprintf(note, len, "%s: plan %s -> %s", status, st.plan_before, st.plan_after);
	return BILLING_APPLIED;
}

/* --- invoice.payment_failed ----------------------------------------------- */

static enum billing_applied
apply_payment_failed(struct tx *tx, const struct stripe_event *ev, char team[32], char *note,
                     size_t len)
{
	struct stripe_invoice inv;
	const char *why;
	char *dedupe;
	int found, rc;

	if (stripe_invoice_read(ev->object, &inv, &why) < 0)
		return skipped(note, len, why);
	found = find_team(tx, inv.customer, inv.team_id, team);
	if (found <= 0)
		return found < 0 ? db_error(note, len)
		                 : skipped(note, len, "no team for this customer");
	dedupe = xasprintf("billing:payment_failed:%s", ev->id);
	rc = notify(tx, team, MSG_PAYMENT_FAILED, dedupe);
	free(dedupe);
	if (rc < 0)
		return db_error(note, len);
	snprintf(note, len, "payment failed for invoice %s", inv.id);
	return BILLING_APPLIED;
}

/* --- dispatch --------------------------------------------------------------- */

typedef enum billing_applied (*event_fn)(struct tx *, const struct stripe_event *, char[32], char *,
                                         size_t);

static const struct {
	const char *type;
	event_fn fn;
} handlers[] = {
    {"checkout.session.completed", apply_checkout},
    {"customer.subscription.created", apply_subscription},
    {"customer.subscription.updated", apply_subscription},
    {"customer.subscription.deleted", apply_subscription},
    {"customer.subscription.paused", apply_subscription},
    {"customer.subscription.resumed", apply_subscription},
    {"invoice.payment_failed", apply_payment_failed},
};

enum billing_applied
billing_apply_event(struct tx *tx, const struct stripe_event *ev, char team[32], char *note,
                    size_t notelen)
{
	team[0] = '\0';
	for (size_t i = 0; i < ARRAY_LEN(handlers); i++)
		if (strcmp(handlers[i].type, ev->type) == 0)
			return handlers[i].fn(tx, ev, team, note, notelen);
	return skipped(note, notelen, "not an event conch uses");
}

/* --- the end of a grace period ------------------------------------------ */

static enum job_result
grace_end_job(struct job *job)
{
	const char *sub = json_string_value(json_object_get(job->payload, "subscription"));
	json_t *grace = json_object_get(job->payload, "grace_until");
	char grace_s[24], *dedupe;
	const char *p[3] = {job->team_id, sub, grace_s};
	struct tx tx;
	PGresult *r;
	int ended;

	if (job->team_id == NULL || !stripe_valid_id(sub) || !json_is_integer(grace)) {
		snprintf(job->error, sizeof(job->error),
		         "grace_end needs a team, subscription, time");
		return JOB_DEAD;
	}
	snprintf(grace_s, sizeof(grace_s), "%lld", (long long)json_integer_value(grace));
	if (tx_begin(&tx, job->team_id) < 0)
		goto fail;
	r = tx_query(&tx, "SELECT billing_end_grace($1, $2, $3::bigint)", 3, p);
	ended = r != NULL && db_str(r, 0, 0)[0] == 't';
	PQclear(r);
	if (ended) {
		dedupe = xasprintf("billing:grace_end:%s:%s", sub, grace_s);
		notify(&tx, job->team_id, MSG_GRACE_ENDED, dedupe);
		free(dedupe);
	}
	if (tx_commit(&tx) < 0)
		goto fail;
	if (ended)
		log_info("billing: grace ended for %s; the team is on the free plan", sub);
	return JOB_DONE;
fail:
	tx_rollback(&tx);
	snprintf(job->error, sizeof(job->error), "database unavailable");
	return JOB_RETRY;
}

void
billing_init(void)
{
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		fatal("billing: curl_global_init failed");
	jobs_register(GRACE_JOB, grace_end_job);
	billing_home_init();
}
