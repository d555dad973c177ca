/* Stripe's side of billing (Checkout and Billing Portal sessions, webhook
 * events; README "Slack and Stripe"): the API client
 * over libcurl, webhook signatures, and the event JSON read into plain
 * structs. Nothing here touches the database. */
#ifndef CONCH_BILLING_STRIPE_H
#define CONCH_BILLING_STRIPE_H

#include <stddef.h>
#include <jansson.h>

/* --- API client ------------------------------------------------------- */

#define STRIPE_CONNECT_TIMEOUT 5  /* seconds */
#define STRIPE_TOTAL_TIMEOUT   15 /* seconds for one attempt */
#define STRIPE_ATTEMPTS        2  /* a retry reuses the Idempotency-Key */

enum stripe_outcome {
	STRIPE_OK,          /* 2xx with a JSON object */
	STRIPE_REFUSED,     /* 4xx: Stripe's error object says why */
	STRIPE_UNAVAILABLE, /* connection, timeout, 5xx, 429, non-JSON answer */
	STRIPE_NOT_CONFIGURED,
};

struct stripe_result {
	enum stripe_outcome outcome;
	long http_status;
	char type[64];     /* error.type, e.g. "invalid_request_error" */
	char code[64];     /* error.code, e.g. "resource_missing"; may be "" */
	char message[256]; /* error.message, or what went wrong in transport */
	json_t *body;      /* the answer when JSON; owned */
};

/* POST {stripe_api_url}{path} with a form body, Authorization: Bearer
 * stripe_secret_key and the Idempotency-Key (sent unchanged on the retry
 * of a failure Stripe says is worth retrying). path is "/v1/...". The
 * attempts run in the outbound engine, nobody waits: done(out, arg) is
 * called exactly once (on the engine thread, or at once when the call
 * cannot start) and must not block. */
typedef void (*stripe_done)(struct stripe_result *out, void *arg);
void stripe_post_async(const char *path, const char *form_body, const char *idempotency_key,
                       stripe_done done, void *arg, struct stripe_result *out);
void stripe_result_free(struct stripe_result *r);

/* Appends "&key=value" (or "key=value" at the start), percent-encoded. */
struct buf;
void stripe_form_add(struct buf *form, const char *key, const char *value);

/* --- webhook signatures ----------------------------------------------- */

enum stripe_sig {
	STRIPE_SIG_OK = 0,
	STRIPE_SIG_MISSING,  /* no header, no t=, no v1=, or malformed */
	STRIPE_SIG_STALE,    /* |now - t| > tolerance */
	STRIPE_SIG_MISMATCH, /* no v1 matches */
};

#define STRIPE_SIG_TOLERANCE  300
#define STRIPE_SIG_HEADER_MAX 8192

/* Checks a Stripe-Signature header over the raw body: any v1 may match
 * (several appear while a secret rolls), compared in constant time. */
enum stripe_sig stripe_verify(const char *secret, const char *header, const char *body, size_t len,
                              long now);
/* hex(HMAC-SHA256(secret, t "." body)) into out (65 bytes). */
void stripe_sign(const char *secret, const char *t, const char *body, size_t len, char out[65]);

/* --- events ----------------------------------------------------------- */

#define STRIPE_ID_MAX 255

struct stripe_event {
	json_t *root;   /* owned */
	const char *id; /* evt_... */
	const char *type;
	long long created; /* unix seconds */
	json_t *object;    /* data.object, borrowed from root */
};

/* Parses and checks an event body. Returns 0, or -1 with a short reason. */
int stripe_event_parse(const char *body, size_t len, struct stripe_event *ev, const char **why);
void stripe_event_free(struct stripe_event *ev);

/* The fields conch uses, pointing into the event; absent ones are NULL. */
struct stripe_subscription {
	const char *id;
	const char *customer;
	const char *status;
	const char *team_id;          /* metadata.team_id */
	long long current_period_end; /* 0 when absent */
	int cancel_at_period_end;
};

struct stripe_checkout {
	const char *id;
	const char *mode;
	const char *team_id; /* client_reference_id, else metadata.team_id */
	const char *customer;
	const char *subscription;
};

struct stripe_invoice {
	const char *id;
	const char *customer;
	const char *subscription;
	const char *team_id; /* the subscription's metadata.team_id, when present */
	long long attempt_count;
	long long next_payment_attempt; /* 0 when Stripe will not retry */
};

int stripe_subscription_read(json_t *object, struct stripe_subscription *out, const char **why);
int stripe_checkout_read(json_t *object, struct stripe_checkout *out, const char **why);
int stripe_invoice_read(json_t *object, struct stripe_invoice *out, const char **why);

/* 1 when s looks like a Stripe id: 1 to STRIPE_ID_MAX of A-Z a-z 0-9 _ */
int stripe_valid_id(const char *s);

#endif
