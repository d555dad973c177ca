/* Signed billing links and the pages they open: /billing/upgrade creates a
 * Stripe Checkout Session and /billing/portal a Billing Portal session,
 * each answered with a 303 to Stripe. A link that does not verify calls
 * nothing. The Stripe call is made inside the browser's request, like the
 * OAuth exchange: the browser is waiting to be sent on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "billing/billing.h"
#include "billing/stripe.h"
#include "conf.h"
#include "crypto.h"
#include "db.h"
#include "home.h"
#include "log.h"
#include "members.h"
#include "plans.h"
#include "slack.h"
#include "util.h"

#define TOKEN_PARAM_MAX 256 /* a link we issued is about 90 characters */

static int
blank(const char *s)
{
	return s == NULL || *s == '\0';
}

int
billing_configured(void)
{
	return !blank(conf.stripe_secret_key) && !blank(conf.stripe_price_pro) &&
	       !blank(conf.session_secret);
}

/* --- signed links ------------------------------------------------------- */

char *
billing_link_token(const char *purpose, const char *team_id, const char *user_id, long now)
{
	char *payload, *token;

	if (blank(conf.session_secret) || !slack_id_valid(team_id, "TE") ||
	    !slack_id_valid(user_id, "UW"))
		return NULL;
	/* Slack ids hold no '.', so the payload splits back unambiguously and
	 * the token needs no escaping in a URL. */
	payload = xasprintf("%s.%s.%lld", team_id, user_id, (long long)now + BILLING_LINK_TTL);
	token = sign_value(conf.session_secret, purpose, payload);
	free(payload);
	return token;
}

static int
split_payload(char *payload, struct billing_link *out)
{
	char *user = strchr(payload, '.');
	char *expires = user ? strchr(user + 1, '.') : NULL;

	if (expires == NULL)
		return -1;
	*user++ = '\0';
	*expires++ = '\0';
	if (!slack_id_valid(payload, "TE") || !slack_id_valid(user, "UW") ||
	    strnum(expires, 0, 99999999999LL, &out->expires) < 0)
		return -1;
	snprintf(out->team_id, sizeof(out->team_id), "%s", payload);
	snprintf(out->user_id, sizeof(out->user_id), "%s", user);
	return 0;
}

enum billing_link_check
billing_link_check(const char *purpose, const char *token, long now, struct billing_link *out)
{
	enum billing_link_check verdict = BILLING_LINK_BAD;
	char *payload;

	memset(out, 0, sizeof(*out));
	if (blank(token) || strlen(token) > TOKEN_PARAM_MAX || blank(conf.session_secret))
		return BILLING_LINK_BAD;
	payload = verify_value(conf.session_secret, purpose, token);
	if (payload != NULL && split_payload(payload, out) == 0)
		verdict = (long long)now > out->expires ? BILLING_LINK_EXPIRED : BILLING_LINK_OK;
	free(payload);
	return verdict;
}

static char *
link_for(const char *purpose, const char *path, const char *team_id, const char *user_id)
{
	char *token = billing_link_token(purpose, team_id, user_id, now_unix());
	char *url;

	if (token == NULL)
		return NULL;
	url = xasprintf("%s%s?t=%s", conf.public_url ? conf.public_url : "", path, token);
	free(token);
	return url;
}

char *
billing_upgrade_link(const char *team_id, const char *user_id)
{
	return link_for(BILLING_PURPOSE_UPGRADE, "/billing/upgrade", team_id, user_id);
}

char *
billing_portal_link(const char *team_id, const char *user_id)
{
	return link_for(BILLING_PURPOSE_PORTAL, "/billing/portal", team_id, user_id);
}

/* --- pages -------------------------------------------------------------- */

static void
error_page(struct response *res, int status, const char *title, const char *message)
{
	http_reply_page(res, status, "error.html",
	                json_pack("{s:s, s:s}", "title", title, "message", message));
}

/* 1 when the keys this page needs are set; otherwise a 503 page names them. */
static int
configured(struct response *res, int needs_price)
{
	json_t *missing = json_array();

	if (blank(conf.stripe_secret_key))
		json_array_append_new(missing, json_string("stripe_secret_key"));
	if (needs_price && blank(conf.stripe_price_pro))
		json_array_append_new(missing, json_string("stripe_price_pro"));
	if (blank(conf.session_secret))
		json_array_append_new(missing, json_string("session_secret"));
	if (json_array_size(missing) == 0) {
		json_decref(missing);
		return 1;
	}
	http_reply_page(
	    res, 503, "error.html",
	    json_pack("{s:s, s:s, s:o, s:b}", "title", "Billing is not set up yet", "message",
	              "This conch server has no Stripe account configured. Set these keys in the "
	              "config file or as CONCH_<KEY> environment variables, then restart it:",
	              "missing", missing, "has_missing", 1));
	return 0;
}

/* The link's token when it verifies; otherwise the page says why. */
static const char *
verified_link(struct request *req, struct response *res, const char *purpose,
              struct billing_link *link)
{
	const char *token = http_query(req, "t");

	switch (billing_link_check(purpose, token, now_unix(), link)) {
	case BILLING_LINK_OK:
		return token;
	case BILLING_LINK_EXPIRED:
		error_page(
		    res, 410, "This link has expired",
		    "Billing links work for an hour. Type /dibs upgrade in Slack for a new one.");
		break;
	default:
		log_warn("billing: %s refused a link that does not verify", req->path);
		error_page(
		    res, 403, "This link is not valid",
		    "It may have been cut short or changed. Type /dibs upgrade in Slack for a "
		    "new one.");
		break;
	}
	return NULL;
}

/* The team's standing as the pages need it, and whether the user may pay. */
struct standing {
	int found;
	int installed;
	int subscribed; /* a live subscription: one more checkout would charge twice */
	int pro;        /* on a paid plan */
	int may_pay;    /* enum member_verdict */
	char customer[STRIPE_ID_MAX + 1];
};

/* Reads within tx; the caller commits (a directory lookup may be queued). */
static int
standing_in(struct tx *tx, const char *team_id, const char *user_id, struct standing *st)
{
	const char *p[1] = {team_id};
	struct plan plan;
	PGresult *r;

	memset(st, 0, sizeof(*st));
	r = tx_query(
	    tx,
	    "SELECT t.uninstalled_at IS NULL, coalesce(b.stripe_customer, ''), "
	    "coalesce(b.subscription_status IN ('active', 'trialing', 'past_due', 'unpaid', "
	    "'paused'), false) "
	    "FROM teams t LEFT JOIN billing b ON b.team_id = t.team_id "
	    "WHERE t.team_id = $1",
	    1, p);
	if (r == NULL)
		return -1;
	if (PQntuples(r) == 1) {
		st->found = 1;
		st->installed = db_str(r, 0, 0)[0] == 't';
		snprintf(st->customer, sizeof(st->customer), "%s", db_str(r, 0, 1));
		st->subscribed = db_str(r, 0, 2)[0] == 't';
	}
	PQclear(r);
	if (!st->found)
		return 0;
	if (plan_load(tx, team_id, &plan) < 0 ||
	    (st->may_pay = members_may_manage(tx, team_id, user_id)) < 0)
		return -1;
	st->pro = strcmp(plan.name, "free") != 0;
	return 0;
}

static int
read_standing(const char *team_id, const char *user_id, struct standing *st)
{
	struct tx tx;

	if (tx_begin(&tx, team_id) < 0 || standing_in(&tx, team_id, user_id, st) < 0) {
		tx_rollback(&tx);
		return -1;
	}
	return tx_commit(&tx);
}

/* Sends the browser to the session's url, or explains Stripe's failure. */
static void
follow(struct response *res, enum stripe_outcome o, struct stripe_result *r, const char *what)
{
	const char *url = json_string_value(json_object_get(r->body, "url"));
	char *msg;

	if (o == STRIPE_OK && url != NULL &&
	    (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) &&
	    strpbrk(url, "\r\n") == NULL) {
		http_redirect(res, 303, url);
		return;
	}
	if (o == STRIPE_REFUSED) {
		msg = xasprintf("Stripe refused to open the %s (%s). Please try again later; if it "
		                "keeps happening, tell the people who run this conch server.",
		                what,
		                r->code[0]   ? r->code
		                : r->type[0] ? r->type
		                             : "no reason given");
		error_page(res, 502, "Stripe said no", msg);
		free(msg);
		return;
	}
	msg = xasprintf("Stripe could not be reached to open the %s. Please try again in a minute.",
	                what);
	error_page(res, 502, "Stripe is not answering", msg);
	free(msg);
}

/* A Stripe session call in the outbound engine while the request waits. */
struct session_wait {
	struct request *req;
	const char *what; /* "billing portal", "checkout" */
	char team[32];
	struct stripe_result r;
};

/* On an HTTP worker, with Stripe's answer: the redirect or the error page. */
static void
session_answered(struct request *req, struct response *res, void *arg)
{
	struct session_wait *w = arg;

	(void)req;
	log_set_team(w->team);
	if (w->r.outcome == STRIPE_OK && strcmp(w->what, "checkout") == 0 &&
	    json_is_string(json_object_get(w->r.body, "id")))
		log_info("billing: checkout session %s opened",
		         json_string_value(json_object_get(w->r.body, "id")));
	follow(res, w->r.outcome, &w->r, w->what);
	stripe_result_free(&w->r);
	free(w);
}

static void
session_done(struct stripe_result *out, void *arg)
{
	struct session_wait *w = arg;

	(void)out;
	http_continue(w->req, session_answered, w);
}

/* Opens a session without holding a worker: the request is suspended
 * until Stripe answers (session_answered replies). */
static void
open_session(struct request *req, const char *team, const char *what, const char *path,
             const char *form, const char *key)
{
	struct session_wait *w = xcalloc(1, sizeof(*w));

	w->req = req;
	w->what = what;
	snprintf(w->team, sizeof(w->team), "%s", team);
	http_defer(req);
	stripe_post_async(path, form, key, session_done, w, &w->r);
}

static void
open_portal(struct request *req, const char *team, const char *customer)
{
	struct buf form;
	char *return_url = xasprintf("%s/", conf.public_url);
	char nonce[33], key[48];

	/* A portal session lives minutes: each visit asks for a fresh one. */
	random_hex16(nonce);
	snprintf(key, sizeof(key), "conch-portal-%s", nonce);
	buf_init(&form);
	stripe_form_add(&form, "customer", customer);
	stripe_form_add(&form, "return_url", return_url);
	open_session(req, team, "billing portal", "/v1/billing_portal/sessions", form.data, key);
	buf_free(&form);
	free(return_url);
}

/* Derived from the link, so a double click opens the same session. The
 * customer is part of it: Stripe refuses a key reused with other data. */
static void
checkout_key(const char *token, const char *customer, char out[80])
{
	char *material = xasprintf("%s\n%s", token, customer);
	char hash[65];

	sha256_hex(material, hash);
	snprintf(out, 80, "conch-checkout-%s", hash);
	free(material);
}

static void
open_checkout(struct request *req, const char *token, const struct billing_link *link,
              const struct standing *st)
{
	char *success = xasprintf("%s/?billing=success", conf.public_url);
	char *cancel = xasprintf("%s/?billing=cancelled", conf.public_url);
	struct buf form;
	char key[80];

	buf_init(&form);
	stripe_form_add(&form, "mode", "subscription");
	stripe_form_add(&form, "line_items[0][price]", conf.stripe_price_pro);
	stripe_form_add(&form, "line_items[0][quantity]", "1");
	stripe_form_add(&form, "success_url", success);
	stripe_form_add(&form, "cancel_url", cancel);
	stripe_form_add(&form, "client_reference_id", link->team_id);
	if (st->customer[0])
		stripe_form_add(&form, "customer", st->customer);
	stripe_form_add(&form, "metadata[team_id]", link->team_id);
	stripe_form_add(&form, "metadata[user_id]", link->user_id);
	stripe_form_add(&form, "subscription_data[metadata][team_id]", link->team_id);
	checkout_key(token, st->customer, key);
	open_session(req, link->team_id, "checkout", "/v1/checkout/sessions", form.data, key);
	buf_free(&form);
	free(cancel);
	free(success);
}

/* Loads the link's team and checks again that the user it was made for
 * may still pay (a link can be forwarded, an admin demoted); 0, or -1 with
 * the page written. */
static int
team_standing(struct response *res, const struct billing_link *link, struct standing *st)
{
	if (read_standing(link->team_id, link->user_id, st) < 0) {
		error_page(res, 503, "conch can't reach its database",
		           "Nothing was charged. Please try the link again in a minute.");
		return -1;
	}
	if (!st->found) {
		error_page(res, 404, "This workspace is not using conch",
		           "Install conch in Slack first, then type /dibs upgrade.");
		return -1;
	}
	if (st->may_pay == MEMBER_UNKNOWN) {
		error_page(res, 503, "conch is still checking who you are",
		           "It has not yet learnt this workspace's owners and admins. Nothing was "
		           "charged. Please try the link again in a minute.");
		return -1;
	}
	if (st->may_pay != MEMBER_YES) {
		log_info("billing: %s refused: the link's user may not manage billing",
		         link->user_id);
		error_page(res, 403, "Billing is for workspace owners and admins",
		           "This link was made for someone who may no longer manage billing: "
		           "only the workspace's owners and admins and the person who installed "
		           "conch can. Type /dibs upgrade in Slack to see who.");
		return -1;
	}
	return 0;
}

void
billing_http_upgrade(struct request *req, struct response *res)
{
	struct billing_link link;
	struct standing st;
	const char *token;

	if (!configured(res, 1) ||
	    (token = verified_link(req, res, BILLING_PURPOSE_UPGRADE, &link)) == NULL)
		return;
	log_set_team(link.team_id);
	if (team_standing(res, &link, &st) < 0)
		goto out;
	if (!st.installed) {
		error_page(res, 404, "conch is not installed in this workspace",
		           "Install conch in Slack again, then type /dibs upgrade.");
		goto out;
	}
	/* A live subscription (even one whose payment failed) is fixed in the
	 * portal: a second checkout would make a second subscription. */
	if (st.subscribed && st.customer[0])
		open_portal(req, link.team_id, st.customer);
	else
		open_checkout(req, token, &link, &st);
out:
	log_set_team(NULL);
}

void
billing_http_portal(struct request *req, struct response *res)
{
	struct billing_link link;
	struct standing st;

	if (!configured(res, 0) || verified_link(req, res, BILLING_PURPOSE_PORTAL, &link) == NULL)
		return;
	log_set_team(link.team_id);
	if (team_standing(res, &link, &st) < 0)
		goto out;
	if (st.customer[0] == '\0')
		error_page(
		    res, 409, "Your team has no subscription yet",
		    "There is nothing to manage yet. Type /dibs upgrade in Slack to subscribe.");
	else
		open_portal(req, link.team_id, st.customer);
out:
	log_set_team(NULL);
}

/* --- who may pay: the command and the App Home ---------------------------- */

static void
refuse_payer(struct tx *tx, const char *team_id, struct response *res)
{
	struct buf names;
	char *text;

	buf_init(&names);
	if (members_name_managers(tx, team_id, &names) <= 0) {
		names.len = 0;
		buf_puts(&names, "one of them");
	}
	text = xasprintf("Upgrades and billing are for the workspace's owners and admins and the "
	                 "person who installed conch. Ask %s to type `/dibs upgrade`.",
	                 names.data);
	slack_reply_text(res, text);
	free(text);
	buf_free(&names);
}

/* What one who may pay is offered, as mrkdwn with a link made for them: a
 * team on Pro gets its Billing Portal, never a second checkout. NULL when
 * there is nothing to offer (Pro without a Stripe customer) or no link. */
static char *
payer_offer(const char *team_id, const char *user_id, const struct standing *st)
{
	char *link, *text = NULL;

	if (st->pro && st->customer[0] && (link = billing_portal_link(team_id, user_id)) != NULL)
		text = xasprintf("Your team is on Pro. <%s|Manage the subscription> (plan, card, "
		                 "invoices); the link is for you and works for one hour.",
		                 link);
	else if (!st->pro && (link = billing_upgrade_link(team_id, user_id)) != NULL)
		text = xasprintf("<%s|Upgrade to Pro> for unlimited things, timed releases and the "
		                 "API (the link is for you and works for one hour).",
		                 link);
	else
		return NULL;
	free(link);
	return text;
}

void
billing_upgrade_command(struct tx *tx, const char *team_id, const char *user_id,
                        struct response *res)
{
	struct standing st;
	char *text;

	if (!billing_configured()) {
		slack_reply_text(res, "Billing is not configured on this conch server yet.");
		return;
	}
	if (standing_in(tx, team_id, user_id, &st) < 0) {
		slack_reply_db_error(res, tx->error);
		return;
	}
	if (!st.found || st.may_pay == MEMBER_UNKNOWN) {
		/* the lookup queued in tx commits with this answer */
		slack_reply_text(res, "conch is still learning who the owners and admins of this "
		                      "workspace are. Please try again in a minute.");
		return;
	}
	if (st.may_pay != MEMBER_YES) {
		refuse_payer(tx, team_id, res);
		return;
	}
	text = payer_offer(team_id, user_id, &st);
	slack_reply_text(res,
	                 text ? text : "Your team is already on Pro; there is nothing to upgrade.");
	free(text);
}

char *
billing_home_prompt(const char *team_id, const char *user_id, int *unknown)
{
	struct standing st;

	*unknown = 0;
	if (!billing_configured() || read_standing(team_id, user_id, &st) < 0)
		return NULL;
	if (st.found && st.may_pay == MEMBER_UNKNOWN)
		*unknown = 1;
	if (!st.found || st.may_pay != MEMBER_YES)
		return NULL;
	return payer_offer(team_id, user_id, &st);
}

/* The App Home's billing section: the prompt, for those who may pay. */
static int
home_section(const char *team_id, const char *user_id, json_t *blocks)
{
	int unknown;
	char *prompt = billing_home_prompt(team_id, user_id, &unknown);

	if (prompt) {
		json_array_append_new(blocks, slack_context(prompt));
		free(prompt);
	}
	return unknown ? HOME_LOOKUP : 0;
}

void
billing_home_init(void)
{
	home_register(90, home_section);
}
