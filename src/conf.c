/* Configuration: one table describes every key (its type, where it lives
 * in struct conf, its default, and what needs it); loading is defaults,
 * then the file, then CONCH_<KEY> from the environment, each value going
 * through its type's parser. */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cidr.h"
#include "conf.h"
#include "log.h"
#include "util.h"

#define DEFAULT_PATH "conf/conch.conf"
/* How much of a bad value an error message repeats. */
#define ECHO_MAX 64

struct conf conf;

extern char **environ;

enum conf_type { C_STRING, C_INT, C_URL, C_LISTEN, C_LOG_LEVEL, C_KEYS, C_CIDRS };

enum conf_need {
	NEED_NONE,
	NEED_ALWAYS, /* start-up fails while empty */
	NEED_HTTPS,  /* conf_check fails while empty and public_url is https */
};

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset;
	const char *def;
	void (*def_fn)(char *out, size_t len); /* computes the default when def is NULL */
	long long min, max;                    /* C_INT bounds */
	enum conf_need need;
	const char *feature; /* unavailable while empty; conf_check warns */
	const char *same_as; /* empty: takes this earlier key's value */
};

/* Parses and stores a value; on failure writes why (without the key). */
typedef int (*conf_setter)(const struct conf_key *k, const char *v, char *why, size_t len);

static void cpus_times_two(char *out, size_t len);

/* One row: name, type, default, then optional .min/.max, .need, .feature. */
#define KEY(field, ty, dflt, ...)                                                                  \
	{                                                                                          \
		.name = #field, .type = ty, .offset = offsetof(struct conf, field), .def = dflt,   \
		__VA_ARGS__                                                                        \
	}

static const struct conf_key keys[] = {
    KEY(listen, C_LISTEN, "127.0.0.1:8080"),
    KEY(public_url, C_URL, "http://127.0.0.1:8080"),
    KEY(database_url, C_STRING, ""),
    KEY(database_direct_url, C_STRING, "", .same_as = "database_url"),
    KEY(database_migrate_url, C_STRING, "", .same_as = "database_direct_url"),
    KEY(http_threads, C_INT, NULL, .def_fn = cpus_times_two, .min = 1, .max = 256),
    KEY(job_threads, C_INT, "2", .min = 1, .max = 256),
    KEY(slack_client_id, C_STRING, "", .feature = "Add to Slack (install)"),
    KEY(slack_client_secret, C_STRING, "", .feature = "Add to Slack (install)"),
    KEY(slack_signing_secret, C_STRING, "",
        .feature = "slash commands, buttons and events (requests cannot be verified)"),
    KEY(slack_api_url, C_URL, "https://slack.com/api"),
    KEY(slack_authorize_url, C_URL, "https://slack.com/oauth/v2/authorize"),
    KEY(slack_scopes, C_STRING,
        "commands,chat:write,chat:write.public,im:write,mpim:write,users:read,channels:read,groups:"
        "read"),
    KEY(stripe_secret_key, C_STRING, "",
        .feature = "billing (Stripe Checkout and the billing portal)"),
    KEY(stripe_webhook_secret, C_STRING, "",
        .feature = "Stripe webhooks (subscriptions will not update plans)"),
    KEY(stripe_api_url, C_URL, "https://api.stripe.com"),
    KEY(stripe_price_pro, C_STRING, "", .feature = "upgrades to the pro plan"),
    KEY(token_keys, C_KEYS, "", .need = NEED_HTTPS),
    KEY(session_secret, C_STRING, "", .need = NEED_HTTPS),
    KEY(api_token_days, C_INT, "90", .min = 1, .max = 3650),
    KEY(log_level, C_LOG_LEVEL, "info"),
    KEY(assets_dir, C_STRING, "assets"),
    KEY(migrations_dir, C_STRING, "migrations"),
    KEY(job_lease_seconds, C_INT, "60", .min = 2, .max = 3600),
    KEY(outbound_max_inflight, C_INT, "256", .min = 1, .max = 65536),
    KEY(outbound_team_inflight, C_INT, "32", .min = 1, .max = 65536),
    KEY(outbound_stop_seconds, C_INT, "15", .min = 0, .max = 3600),
    KEY(slack_pacing, C_INT, "1", .min = 0, .max = 1),
    KEY(trusted_proxies, C_CIDRS, ""),
    KEY(admin_allow, C_CIDRS, ""),
    KEY(metrics_allow, C_CIDRS, ""),
    KEY(header_timeout_seconds, C_INT, "10", .min = 1, .max = 300),
    KEY(connections_per_address, C_INT, "256", .min = 1, .max = 4096),
    KEY(drain_seconds, C_INT, "5", .min = 0, .max = 300),
    KEY(login_backoff_after_failures, C_INT, "3", .min = 1, .max = 100),
    KEY(login_backoff_base_seconds, C_INT, "1", .min = 1, .max = 3600),
    KEY(login_backoff_max_seconds, C_INT, "300", .min = 1, .max = 86400),
    KEY(api_rate_burst, C_INT, "20", .min = 1, .max = 100000),
    KEY(api_rate_per_second, C_INT, "5", .min = 1, .max = 100000),
    KEY(api_auth_failures_burst, C_INT, "20", .min = 1, .max = 100000),
    KEY(api_auth_failures_per_minute, C_INT, "6", .min = 1, .max = 100000),
    KEY(api_wait_max, C_INT, "200", .min = 0, .max = 10000),
    KEY(webhook_retry_base_seconds, C_INT, "30", .min = 0, .max = 3600),
    KEY(webhook_allow_loopback, C_INT, "0", .min = 0, .max = 1),
    KEY(webhook_test_resolve, C_STRING, ""),
};

#undef KEY

static void
cpus_times_two(char *out, size_t len)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (n < 1)
		n = 1;
	snprintf(out, len, "%ld", n * 2 > 256 ? 256 : n * 2);
}

static char **
str_field(const struct conf_key *k)
{
	return (char **)((char *)&conf + k->offset);
}

static int *
int_field(const struct conf_key *k)
{
	return (int *)((char *)&conf + k->offset);
}

static void
store(char **field, const char *v, size_t len)
{
	free(*field);
	*field = xstrndup(v, len);
}

/* A bad value, cut short and with control characters masked, so that the
 * error stays one readable line. */
static void
echo(const char *v, char *out, size_t len)
{
	text_echo(v, strlen(v), ECHO_MAX, out, len);
}

/* --- setters, one per type ---------------------------------------------- */

static int
set_string(const struct conf_key *k, const char *v, char *why, size_t len)
{
	store(str_field(k), v, strlen(v));
	return 0;
}

static int
set_int(const struct conf_key *k, const char *v, char *why, size_t len)
{
	char shown[ECHO_MAX + 4];
	long long n;

	if (strnum(v, k->min, k->max, &n) != 0) {
		echo(v, shown, sizeof(shown));
		snprintf(why, len, "expected a whole number from %lld to %lld, got \"%s\"", k->min,
		         k->max, shown);
		return -1;
	}
	*int_field(k) = (int)n;
	return 0;
}

static int
set_url(const struct conf_key *k, const char *v, char *why, size_t len)
{
	size_t scheme = strncmp(v, "https://", 8) == 0 ? 8 : strncmp(v, "http://", 7) == 0 ? 7 : 0;
	size_t n = strlen(v);
	char shown[ECHO_MAX + 4];

	/* Callers append paths, so a trailing slash would double up. */
	while (n > scheme && v[n - 1] == '/')
		n--;
	for (size_t i = 0; scheme > 0 && i < n; i++)
		if (isspace((unsigned char)v[i]) || iscntrl((unsigned char)v[i]))
			scheme = 0;
	if (scheme == 0 || n == scheme || v[scheme] == '/') {
		echo(v, shown, sizeof(shown));
		snprintf(why, len, "expected an http:// or https:// URL, got \"%s\"", shown);
		return -1;
	}
	store(str_field(k), v, n);
	return 0;
}

/* host:port, or [v6 address]:port. */
static int
set_listen(const struct conf_key *k, const char *v, char *why, size_t len)
{
	const char *colon = strrchr(v, ':');
	const char *host = v;
	size_t hlen = colon ? (size_t)(colon - v) : 0;
	char shown[ECHO_MAX + 4];
	long long port;

	if (hlen >= 2 && v[0] == '[' && v[hlen - 1] == ']')
		host++, hlen -= 2;
	if (colon == NULL || hlen == 0 || strnum(colon + 1, 1, 65535, &port) != 0 ||
	    strcspn(host, " \t[]") < hlen || (host == v && memchr(host, ':', hlen))) {
		echo(v, shown, sizeof(shown));
		snprintf(why, len, "expected host:port with a port from 1 to 65535, got \"%s\"",
		         shown);
		return -1;
	}
	store(str_field(k), v, strlen(v));
	store(&conf.listen_host, host, hlen);
	conf.listen_port = (int)port;
	return 0;
}

static int
set_log_level(const struct conf_key *k, const char *v, char *why, size_t len)
{
	char shown[ECHO_MAX + 4];

	if (log_level_parse(v) < 0) {
		echo(v, shown, sizeof(shown));
		snprintf(why, len, "expected debug, info, warn or error, got \"%s\"", shown);
		return -1;
	}
	store(str_field(k), v, strlen(v));
	return 0;
}

/* One "ID:BASE64" entry of len bytes: a positive ID without a leading
 * zero, then base64 characters with at most two '=' at the end. */
static int
key_entry_ok(const char *p, size_t len)
{
	static const char b64[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i = 0, start, pad = 0;

	while (i < len && isdigit((unsigned char)p[i]))
		i++;
	if (i == 0 || p[0] == '0' || i == len || p[i] != ':')
		return 0;
	start = ++i;
	while (i < len && p[i] != '=' && strchr(b64, p[i]) != NULL)
		i++;
	if (i == start)
		return 0;
	while (i < len && p[i] == '=' && pad < 2)
		i++, pad++;
	return i == len;
}

/* Only the shape ID:BASE64[,ID:BASE64...]; vault_init decodes the keys.
 * The value is a secret, so the message never repeats it. */
static int
set_keys(const struct conf_key *k, const char *v, char *why, size_t len)
{
	const char *p = v;

	for (int entry = 1; *v != '\0'; entry++) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (!key_entry_ok(p, n)) {
			snprintf(why, len,
			         "expected ID:BASE64KEY[,ID:BASE64KEY...] with positive IDs; "
			         "entry %d is malformed",
			         entry);
			return -1;
		}
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	store(str_field(k), v, strlen(v));
	return 0;
}

/* Checked here so that a bad list stops start-up naming its key; http.c
 * parses the stored text again when it starts. */
static int
set_cidrs(const struct conf_key *k, const char *v, char *why, size_t len)
{
	struct cidr_list list;

	if (cidr_list_parse(v, &list, why, len) < 0)
		return -1;
	store(str_field(k), v, strlen(v));
	return 0;
}

static const conf_setter setters[] = {
    [C_STRING] = set_string,
    [C_INT] = set_int,
    [C_URL] = set_url,
    [C_LISTEN] = set_listen,
    [C_LOG_LEVEL] = set_log_level,
    [C_KEYS] = set_keys,
    [C_CIDRS] = set_cidrs,
};

/* --- loading ------------------------------------------------------------ */

static const struct conf_key *
find_key(const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (strlen(keys[i].name) == len && strncmp(keys[i].name, name, len) == 0)
			return &keys[i];
	return NULL;
}

static void
load_defaults(void)
{
	char why[256], computed[32];

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		const char *def = keys[i].def;

		if (def == NULL) {
			keys[i].def_fn(computed, sizeof(computed));
			def = computed;
		}
		if (setters[keys[i].type](&keys[i], def, why, sizeof(why)) != 0)
			fatal("default of %s: %s", keys[i].name, why);
	}
}

static char *
trim(char *s)
{
	char *end = s + strlen(s);

	while (*s == ' ' || *s == '\t')
		s++;
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* One "key value" line; seen[] holds the line each key was first set on. */
static int
load_line(const char *path, int lineno, char *line, int *seen, char *err, size_t errlen)
{
	char *key = trim(line), *value;
	size_t klen = strcspn(key, " \t");
	const struct conf_key *k;
	char why[256];

	if (*key == '\0' || *key == '#')
		return 0;
	value = trim(key + klen);
	k = find_key(key, klen);
	if (k == NULL) {
		/* Cut at '=' so that "secret=VALUE" does not echo the value, and
		 * masked like a bad value so that the error stays one line. */
		size_t eq = strcspn(key, "=");
		char shown[ECHO_MAX + 4];

		key[eq < klen ? eq : klen] = '\0';
		echo(key, shown, sizeof(shown));
		snprintf(err, errlen, "%s:%d: unknown key \"%s\"%s", path, lineno, shown,
		         eq < klen ? " (write \"key value\", without \"=\")" : "");
		return -1;
	}
	if (seen[k - keys] != 0) {
		snprintf(err, errlen, "%s:%d: duplicate key \"%s\" (first set on line %d)", path,
		         lineno, k->name, seen[k - keys]);
		return -1;
	}
	seen[k - keys] = lineno;
	if (setters[k->type](k, value, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s:%d: %s: %s", path, lineno, k->name, why);
		return -1;
	}
	return 0;
}

/* The lines of text, split at '\n' as getline would; name is what error
 * messages call it. */
static int
load_text(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	int seen[ARRAY_LEN(keys)] = {0};
	int lineno = 0, rc = 0;
	size_t start = 0, n;
	const char *nl;
	char *line;

	while (rc == 0 && start < len) {
		nl = memchr(text + start, '\n', len - start);
		n = nl ? (size_t)(nl - (text + start)) + 1 : len - start;
		lineno++;
		if (memchr(text + start, '\0', n) != NULL) {
			snprintf(err, errlen, "%s:%d: the line contains a NUL byte", name, lineno);
			return -1;
		}
		line = xstrndup(text + start, n);
		rc = load_line(name, lineno, line, seen, err, errlen);
		free(line);
		start += n;
	}
	return rc == 0 ? 0 : -1;
}

/* The whole file into b (a configuration file is small). */
static int
read_file(const char *path, struct buf *b, char *err, size_t errlen)
{
	char chunk[4096];
	size_t n;
	int rc = 0;
	FILE *f = fopen(path, "r");

	buf_init(b);
	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot read the configuration: %s", path,
		         strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(b, chunk, n);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read the configuration: %s", path,
		         strerror(errno));
		buf_free(b);
		rc = -1;
	}
	fclose(f);
	return rc;
}

static void
env_name(const char *key, char *out, size_t len)
{
	size_t i = (size_t)snprintf(out, len, "CONCH_");

	for (; *key && i + 1 < len; key++)
		out[i++] = (char)toupper((unsigned char)*key);
	out[i] = '\0';
}

/* The key whose CONCH_<KEY> is name, or NULL. */
static const struct conf_key *
find_env_key(const char *name)
{
	char env[64];

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		env_name(keys[i].name, env, sizeof(env));
		if (strcmp(env, name) == 0)
			return &keys[i];
	}
	return NULL;
}

static int
load_env(char *err, size_t errlen)
{
	char name[64], why[256];
	const char *v;

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		env_name(keys[i].name, name, sizeof(name));
		v = getenv(name);
		if (v != NULL && setters[keys[i].type](&keys[i], v, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s (from %s): %s", keys[i].name, name, why);
			return -1;
		}
	}
	return 0;
}

static int
check_required(char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (keys[i].need == NEED_ALWAYS && keys[i].type != C_INT &&
		    (*str_field(&keys[i]))[0] == '\0') {
			snprintf(err, errlen, "%s is required", keys[i].name);
			return -1;
		}
	}
	return 0;
}

/* Keys left empty take the value of the key they default to (in table
 * order, so a chain resolves). */
static void
resolve_same_as(void)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		char **field = str_field(&keys[i]);
		if (keys[i].same_as == NULL || (*field)[0] != '\0')
			continue;
		for (size_t k = 0; k < i; k++)
			if (strcmp(keys[k].name, keys[i].same_as) == 0)
				store(field, *str_field(&keys[k]), strlen(*str_field(&keys[k])));
	}
}

/* Defaults, then text when not NULL, then the environment. */
static int
load_all(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	int rc = -1;

	conf_free();
	load_defaults();
	if (text != NULL && load_text(name, text, len, err, errlen) != 0)
		goto fail;
	if (load_env(err, errlen) != 0 || check_required(err, errlen) != 0)
		goto fail;
	resolve_same_as();
	conf.public_https = strncmp(conf.public_url, "https://", 8) == 0;
	rc = 0;
fail:
	if (rc != 0)
		conf_free();
	return rc;
}

int
conf_load(const char *path, char *err, size_t errlen)
{
	struct buf b;
	int rc;

	if (path == NULL && access(DEFAULT_PATH, F_OK) == 0)
		path = DEFAULT_PATH;
	if (path == NULL)
		return load_all(NULL, NULL, 0, err, errlen);
	if (read_file(path, &b, err, errlen) != 0) {
		conf_free();
		return -1;
	}
	rc = load_all(path, b.data, b.len, err, errlen);
	buf_free(&b);
	return rc;
}

int
conf_load_text(const char *name, const char *text, size_t len, char *err, size_t errlen)
{
	return load_all(name ? name : "(text)", text ? text : "", text ? len : 0, err, errlen);
}

const char *
conf_closest_key(const char *name)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1;
	char env[64];

	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		size_t d;

		env_name(keys[i].name, env, sizeof(env));
		d = edit_distance(name, env);
		if (d < best_d)
			best = keys[i].name, best_d = d;
	}
	return best;
}

/* A CONCH_ variable that names no key is most likely a misspelt one whose
 * value is being ignored: say so, once per variable. */
void
conf_warn_unknown_env(void)
{
	char name[64], closest[64];

	for (char **e = environ; *e != NULL; e++) {
		size_t len = strcspn(*e, "=");

		if (strncmp(*e, "CONCH_", 6) != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)len, *e);
		if (len < sizeof(name) && find_env_key(name) != NULL)
			continue;
		env_name(conf_closest_key(name), closest, sizeof(closest));
		log_warn("%s is not a configuration key; did you mean %s?", name, closest);
	}
}

int
conf_check(char *err, size_t errlen)
{
	return conf_check_for(1, err, errlen);
}

int
conf_check_for(int serving, char *err, size_t errlen)
{
	char name[64];

	conf_warn_unknown_env();

	for (size_t i = 0; serving && i < ARRAY_LEN(keys); i++) {
		if (keys[i].feature == NULL || (*str_field(&keys[i]))[0] != '\0')
			continue;
		env_name(keys[i].name, name, sizeof(name));
		log_warn("%s is not set: %s will be unavailable (set %s)", keys[i].name,
		         keys[i].feature, name);
	}
	for (size_t i = 0; i < ARRAY_LEN(keys); i++) {
		if (keys[i].need != NEED_HTTPS || !conf.public_https ||
		    (*str_field(&keys[i]))[0] != '\0')
			continue;
		env_name(keys[i].name, name, sizeof(name));
		snprintf(err, errlen, "%s is required when public_url is https (set %s)",
		         keys[i].name, name);
		return -1;
	}
	return 0;
}

void
conf_free(void)
{
	for (size_t i = 0; i < ARRAY_LEN(keys); i++)
		if (keys[i].type != C_INT)
			free(*str_field(&keys[i]));
	free(conf.listen_host);
	memset(&conf, 0, sizeof(conf));
}
