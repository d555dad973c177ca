/* Configuration: a file of `key value` lines plus CONCH_<KEY> environment
 * overrides, described by one table in conf.c. */
#ifndef CONCH_CONF_H
#define CONCH_CONF_H

#include <stddef.h>

struct conf {
	char *listen;       /* "127.0.0.1:8080" */
	char *listen_host;  /* parsed from listen */
	int listen_port;    /* parsed from listen */
	char *public_url;   /* no trailing slash */
	int public_https;   /* public_url starts with https:// */
	char *database_url; /* "" means the embedded dev database (var/) */
	/* Direct (LISTEN; default database_url) and owner (migrate; default direct). */
	char *database_direct_url;
	char *database_migrate_url;
	int http_threads;
	int job_threads;
	char *slack_client_id;
	char *slack_client_secret;
	char *slack_signing_secret;
	char *slack_api_url;
	char *slack_authorize_url;
	char *slack_scopes;
	char *stripe_secret_key;
	char *stripe_webhook_secret;
	char *stripe_api_url;
	char *stripe_price_pro;
	char *token_keys;
	char *session_secret;
	int api_token_days; /* API tokens expire this many days after they are made */
	/* Extensions (documented in the README). */
	char *log_level;  /* debug, info, warn, error */
	char *assets_dir; /* templates and static files */
	char *migrations_dir;
	int job_lease_seconds; /* how long a runner holds a claimed job */
	/* Outbound engine (src/engine.h): calls in flight at once, of which for
	 * one team; seconds they get on SIGTERM; 1 to pace Slack by tier. */
	int outbound_max_inflight;
	int outbound_team_inflight;
	int outbound_stop_seconds;
	int slack_pacing;
	/* The HTTP edge: who may reach what, and how long a client may take. */
	char *trusted_proxies;            /* CIDRs whose X-Forwarded-For is believed */
	char *admin_allow;                /* CIDRs that may reach /admin ("" = any) */
	char *metrics_allow;              /* CIDRs that may reach /metrics ("" = any) */
	int header_timeout_seconds;       /* request line + headers, from accept */
	int connections_per_address;      /* open connections from one peer */
	int drain_seconds;                /* after SIGTERM, /healthz 503 before closing */
	int login_backoff_after_failures; /* failed logins before any wait */
	int login_backoff_base_seconds;   /* the first wait */
	int login_backoff_max_seconds;    /* the doubling stops here */
	/* API token buckets (all instances together): per token, and per
	 * client address for failed authentications. */
	int api_rate_burst;
	int api_rate_per_second;
	int api_auth_failures_burst;
	int api_auth_failures_per_minute;
	int api_wait_max;               /* requests waiting on ?wait= at once, per instance */
	int webhook_retry_base_seconds; /* first retry of a failed delivery; doubles */
	int webhook_allow_loopback;     /* tests only: http and loopback receivers allowed */
	char *webhook_test_resolve;     /* tests only: "HOST:PORT:ADDR" for deliveries */
};

extern struct conf conf;

/* Loads defaults, then the file (path NULL = conf/conch.conf if present),
 * then the environment. On error writes one line naming the key to err
 * and returns -1. */
int conf_load(const char *path, char *err, size_t errlen);

/* As conf_load, with the file's contents given as text[0..len) (named
 * name in error messages) instead of read from a path. */
int conf_load_text(const char *name, const char *text, size_t len, char *err, size_t errlen);

/* Logs one warning per empty Slack/Stripe key and one per CONCH_
 * variable that names no key; in production (https public_url) fails when
 * token_keys or session_secret is missing. */
int conf_check(char *err, size_t errlen);
/* conf_check for a command: the warnings about features without their
 * keys only when serving is set (they mean nothing to migrate or
 * rotate-keys, and `make run` would print each twice). */
int conf_check_for(int serving, char *err, size_t errlen);
/* The CONCH_ variables part of conf_check: one warning each, naming the
 * closest key. */
void conf_warn_unknown_env(void);

/* The key whose CONCH_<KEY> is closest (by edit distance) to the
 * environment variable name, e.g. database_url for CONCH_DATABSE_URL.
 * Never NULL. */
const char *conf_closest_key(const char *name);

/* Releases every string (tests call conf_load repeatedly). */
void conf_free(void);

#endif
