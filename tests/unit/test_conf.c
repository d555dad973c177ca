/* conf_load runs in a fresh temporary directory with every CONCH_
 * variable removed, so the default file and the environment are under the
 * test's control. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "unit.h"
#include "util.h"

extern char **environ;

static char tmpdir[64];
static char oldcwd[4096];

static void
clear_conch_env(void)
{
	char name[256];

	for (;;) {
		char **e = environ;

		while (*e != NULL && strncmp(*e, "CONCH_", 6) != 0)
			e++;
		if (*e == NULL)
			return;
		snprintf(name, sizeof(name), "%.*s", (int)strcspn(*e, "="), *e);
		unsetenv(name);
	}
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(getcwd(oldcwd, sizeof(oldcwd)));
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/conch-conf-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	ck_assert_int_eq(chdir(tmpdir), 0);
	clear_conch_env();
}

static void
teardown(void)
{
	conf_free();
	unlink("test.conf");
	unlink("conf/conch.conf");
	rmdir("conf");
	ck_assert_int_eq(chdir(oldcwd), 0);
	rmdir(tmpdir);
	clear_conch_env();
	log_set_level(LOGL_INFO);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_defaults)
{
	char err[256] = "";
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	ck_assert_str_eq(conf.listen, "127.0.0.1:8080");
	ck_assert_str_eq(conf.listen_host, "127.0.0.1");
	ck_assert_int_eq(conf.listen_port, 8080);
	ck_assert_str_eq(conf.public_url, "http://127.0.0.1:8080");
	ck_assert_int_eq(conf.public_https, 0);
	ck_assert_str_eq(conf.database_url, "");
	ck_assert_int_eq(conf.http_threads, cpus * 2 > 256 ? 256 : cpus * 2);
	ck_assert_int_eq(conf.job_threads, 2);
	ck_assert_str_eq(conf.slack_client_id, "");
	ck_assert_str_eq(conf.slack_client_secret, "");
	ck_assert_str_eq(conf.slack_signing_secret, "");
	ck_assert_str_eq(conf.slack_api_url, "https://slack.com/api");
	ck_assert_str_eq(conf.slack_authorize_url, "https://slack.com/oauth/v2/authorize");
	ck_assert_str_eq(conf.slack_scopes, "commands,chat:write,chat:write.public,im:write,mpim:write,"
	                                    "users:read,channels:read,groups:read");
	ck_assert_str_eq(conf.stripe_secret_key, "");
	ck_assert_str_eq(conf.stripe_webhook_secret, "");
	ck_assert_str_eq(conf.stripe_api_url, "https://api.stripe.com");
	ck_assert_str_eq(conf.stripe_price_pro, "");
	ck_assert_str_eq(conf.token_keys, "");
	ck_assert_str_eq(conf.session_secret, "");
	ck_assert_int_eq(conf.api_token_days, 90);
	ck_assert_str_eq(conf.log_level, "info");
	ck_assert_str_eq(conf.assets_dir, "assets");
	ck_assert_str_eq(conf.migrations_dir, "migrations");
	ck_assert_int_eq(conf.job_lease_seconds, 60);
	ck_assert_str_eq(conf.trusted_proxies, "");
	ck_assert_str_eq(conf.admin_allow, "");
	ck_assert_str_eq(conf.metrics_allow, "");
	ck_assert_int_eq(conf.header_timeout_seconds, 10);
	ck_assert_int_eq(conf.connections_per_address, 256);
	ck_assert_int_eq(conf.drain_seconds, 5);
	ck_assert_int_eq(conf.login_backoff_after_failures, 3);
	ck_assert_int_eq(conf.login_backoff_base_seconds, 1);
	ck_assert_int_eq(conf.login_backoff_max_seconds, 300);
	ck_assert_int_eq(conf.api_rate_burst, 20);
	ck_assert_int_eq(conf.api_rate_per_second, 5);
	ck_assert_int_eq(conf.api_auth_failures_burst, 20);
	ck_assert_int_eq(conf.api_auth_failures_per_minute, 6);
}
END_TEST

START_TEST(test_file_values)
{
	char err[256] = "";

	write_file("test.conf", "# a comment\n"
	                        "\n"
	                        "   # an indented comment\n"
	                        "listen 0.0.0.0:9090\n"
	                        "public_url   https://conch.example.com/  \n"
	                        "database_url postgresql://u@db/conch?sslmode=require\r\n"
	                        "http_threads 12\n"
	                        "\tjob_threads\t3\n"
	                        "slack_client_id 123.456\n"
	                        "slack_scopes commands,chat:write\n"
	                        "stripe_api_url http://127.0.0.1:12111\n"
	                        "token_keys 1:AAAA,2:BBBB==\n"
	                        "session_secret has spaces inside\n"
	                        "log_level debug\n"
	                        "assets_dir /srv/assets\n"
	                        "job_lease_seconds 3600\n"
	                        "slack_client_secret\n");
	ck_assert_int_eq(conf_load("test.conf", err, sizeof(err)), 0);
	ck_assert_str_eq(conf.listen_host, "0.0.0.0");
	ck_assert_int_eq(conf.listen_port, 9090);
	ck_assert_str_eq(conf.public_url, "https://conch.example.com");
	ck_assert_int_eq(conf.public_https, 1);
	ck_assert_str_eq(conf.database_url, "postgresql://u@db/conch?sslmode=require");
	ck_assert_int_eq(conf.http_threads, 12);
	ck_assert_int_eq(conf.job_threads, 3);
	ck_assert_str_eq(conf.slack_client_id, "123.456");
	ck_assert_str_eq(conf.slack_client_secret, "");
	ck_assert_str_eq(conf.slack_scopes, "commands,chat:write");
	ck_assert_str_eq(conf.stripe_api_url, "http://127.0.0.1:12111");
	ck_assert_str_eq(conf.token_keys, "1:AAAA,2:BBBB==");
	ck_assert_str_eq(conf.session_secret, "has spaces inside");
	ck_assert_str_eq(conf.log_level, "debug");
	ck_assert_str_eq(conf.assets_dir, "/srv/assets");
	ck_assert_int_eq(conf.job_lease_seconds, 3600);
	/* untouched keys keep their defaults */
	ck_assert_str_eq(conf.slack_api_url, "https://slack.com/api");
	ck_assert_str_eq(conf.migrations_dir, "migrations");
}
END_TEST

START_TEST(test_env_overrides_file)
{
	char err[256] = "";

	write_file("test.conf", "job_threads 3\npublic_url http://a.example\nlisten 1.2.3.4:80\n");
	setenv("CONCH_JOB_THREADS", "5", 1);
	setenv("CONCH_PUBLIC_URL", "https://b.example/", 1);
	setenv("CONCH_SLACK_SIGNING_SECRET", "s3cret", 1);
	setenv("CONCH_DATABASE_URL", "", 1);
	ck_assert_int_eq(conf_load("test.conf", err, sizeof(err)), 0);
	ck_assert_int_eq(conf.job_threads, 5);
	ck_assert_str_eq(conf.public_url, "https://b.example");
	ck_assert_int_eq(conf.public_https, 1);
	ck_assert_str_eq(conf.slack_signing_secret, "s3cret");
	ck_assert_str_eq(conf.database_url, "");
	ck_assert_str_eq(conf.listen, "1.2.3.4:80");
}
END_TEST

START_TEST(test_env_without_file)
{
	char err[256] = "";

	setenv("CONCH_HTTP_THREADS", "7", 1);
	setenv("CONCH_LISTEN", "[::1]:8443", 1);
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(conf.http_threads, 7);
	ck_assert_str_eq(conf.listen_host, "::1");
	ck_assert_int_eq(conf.listen_port, 8443);
}
END_TEST

/* Each bad input gives -1 and one line that contains every `want`. */
static const struct {
	const char *file; /* NULL: no file */
	const char *env;  /* "NAME=value" or NULL */
	const char *want[3];
	const char *secret; /* must not appear in the message */
} bad_cases[] = {
    {"listen 1.2.3.4:80\nfoo bar\n", NULL, {"test.conf:2: unknown key \"foo\""}, NULL},
    {"listen 1.2.3.4:80\n\nlisten 1.2.3.4:81\n",
     NULL,
     {"test.conf:3: duplicate key \"listen\"", "line 1"},
     NULL},
    {"http_threads x\n",
     NULL,
     {"test.conf:1: http_threads: expected a whole number from 1 to 256, got \"x\""},
     NULL},
    {"http_threads 0\n", NULL, {"test.conf:1: http_threads:", "got \"0\""}, NULL},
    {"http_threads 257\n", NULL, {"http_threads:", "got \"257\""}, NULL},
    {"job_threads -1\n", NULL, {"test.conf:1: job_threads:", "1 to 256"}, NULL},
    {"job_threads 2x\n", NULL, {"job_threads:"}, NULL},
    {"job_threads\n", NULL, {"job_threads:", "got \"\""}, NULL},
    {"job_lease_seconds 1\n", NULL, {"job_lease_seconds:", "2 to 3600"}, NULL},
    {"listen localhost\n",
     NULL,
     {"test.conf:1: listen: expected host:port", "\"localhost\""},
     NULL},
    {"listen localhost:0\n", NULL, {"listen:", "1 to 65535"}, NULL},
    {"listen localhost:65536\n", NULL, {"listen:"}, NULL},
    {"listen :8080\n", NULL, {"listen:"}, NULL},
    {"listen ::1:8080\n", NULL, {"listen:"}, NULL},
    {"public_url ftp://example.com\n", NULL, {"test.conf:1: public_url: expected an http"}, NULL},
    {"public_url example.com\n", NULL, {"public_url:"}, NULL},
    {"public_url https://\n", NULL, {"public_url:"}, NULL},
    {"slack_api_url http://a b\n", NULL, {"slack_api_url:"}, NULL},
    {"stripe_api_url\n", NULL, {"stripe_api_url:"}, NULL},
    {"log_level loud\n",
     NULL,
     {"test.conf:1: log_level: expected debug, info, warn or error"},
     NULL},
    {"token_keys 1:c2VjcmV0,0:c2VjcmV0\n", NULL, {"token_keys:", "entry 2"}, "c2VjcmV0"},
    {"token_keys 1:c2VjcmV0,\n", NULL, {"token_keys:", "entry 2"}, "c2VjcmV0"},
    {"token_keys 1c2VjcmV0\n", NULL, {"token_keys:", "entry 1"}, "c2VjcmV0"},
    {"token_keys 1:c2Vj*mV0\n", NULL, {"token_keys:"}, "c2Vj"},
    {"slack_client_secret=abcdef\n",
     NULL,
     {"unknown key \"slack_client_secret\"", "without \"=\""},
     "abcdef"},
    {"admin_allow 10.0.0.0/33\n", NULL, {"test.conf:1: admin_allow:", "10.0.0.0/33"}, NULL},
    {"metrics_allow localhost\n", NULL, {"test.conf:1: metrics_allow:", "\"localhost\""}, NULL},
    {NULL,
     "CONCH_TRUSTED_PROXIES=10.0.0.0/8;x",
     {"trusted_proxies (from CONCH_TRUSTED_PROXIES):"},
     NULL},
    {"header_timeout_seconds 0\n", NULL, {"header_timeout_seconds:", "1 to 300"}, NULL},
    {"connections_per_address 0\n", NULL, {"connections_per_address:"}, NULL},
    {"drain_seconds -1\n", NULL, {"drain_seconds:", "0 to 300"}, NULL},
    {"login_backoff_max_seconds 0\n", NULL, {"login_backoff_max_seconds:"}, NULL},
    {NULL, "CONCH_HTTP_THREADS=abc", {"http_threads (from CONCH_HTTP_THREADS):", "\"abc\""}, NULL},
    {NULL, "CONCH_LOG_LEVEL=verbose", {"log_level (from CONCH_LOG_LEVEL):"}, NULL},
    {NULL, "CONCH_PUBLIC_URL=www.example.com", {"public_url (from CONCH_PUBLIC_URL):"}, NULL},
    {NULL, "CONCH_JOB_THREADS=1\n2", {"job_threads (from CONCH_JOB_THREADS):", "1?2"}, NULL},
    {"job_threads 4\n", "CONCH_JOB_THREADS=999", {"job_threads (from CONCH_JOB_THREADS)"}, NULL},
};

START_TEST(test_bad_values)
{
	char err[512] = "";
	const char *path = NULL;

	if (bad_cases[_i].file != NULL) {
		write_file("test.conf", bad_cases[_i].file);
		path = "test.conf";
	}
	if (bad_cases[_i].env != NULL) {
		const char *env = bad_cases[_i].env;
		char name[64];

		snprintf(name, sizeof(name), "%.*s", (int)strcspn(env, "="), env);
		setenv(name, strchr(env, '=') + 1, 1);
	}
	ck_assert_int_eq(conf_load(path, err, sizeof(err)), -1);
	ck_assert_msg(err[0] != '\0' && strchr(err, '\n') == NULL, "not one line: %s", err);
	for (int i = 0; i < 3 && bad_cases[_i].want[i]; i++)
		ck_assert_msg(strstr(err, bad_cases[_i].want[i]) != NULL, "\"%s\" lacks \"%s\"",
		              err, bad_cases[_i].want[i]);
	if (bad_cases[_i].secret != NULL)
		ck_assert_msg(strstr(err, bad_cases[_i].secret) == NULL, "leaks the value: %s",
		              err);
	/* a failed load leaves nothing behind */
	ck_assert_ptr_null(conf.listen);
}
END_TEST

START_TEST(test_missing_named_file)
{
	char err[256] = "";

	ck_assert_int_eq(conf_load("nope.conf", err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "nope.conf"));
	ck_assert_ptr_null(strchr(err, '\n'));
}
END_TEST

START_TEST(test_default_file_used_when_present)
{
	char err[256] = "";

	ck_assert_int_eq(mkdir("conf", 0700), 0);
	write_file("conf/conch.conf", "job_threads 7\nbogus 1\n");
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "conf/conch.conf:2: unknown key \"bogus\""));
	write_file("conf/conch.conf", "job_threads 7\n");
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(conf.job_threads, 7);
}
END_TEST

START_TEST(test_trailing_slash_stripped)
{
	char err[256] = "";

	write_file("test.conf", "public_url http://localhost:8080/\n"
	                        "slack_api_url http://127.0.0.1:9000/api//\n");
	ck_assert_int_eq(conf_load("test.conf", err, sizeof(err)), 0);
	ck_assert_str_eq(conf.public_url, "http://localhost:8080");
	ck_assert_str_eq(conf.slack_api_url, "http://127.0.0.1:9000/api");
	ck_assert_int_eq(conf.public_https, 0);
}
END_TEST

START_TEST(test_reload_replaces)
{
	char err[256] = "";

	write_file("test.conf", "job_threads 9\n");
	ck_assert_int_eq(conf_load("test.conf", err, sizeof(err)), 0);
	ck_assert_int_eq(conf.job_threads, 9);
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	ck_assert_int_eq(conf.job_threads, 2);
	conf_free();
	ck_assert_ptr_null(conf.public_url);
}
END_TEST

/* conf_check in production: what is set, and which key the error names. */
static const struct {
	const char *token_keys, *session_secret;
	int rc;
	const char *names;
} https_cases[] = {
    {"", "", -1, "token_keys"},
    {"1:AAAA", "", -1, "session_secret"},
    {"", "s", -1, "token_keys"},
    {"1:AAAA", "s", 0, NULL},
};

START_TEST(test_https_requires_secrets)
{
	char err[256] = "";

	setenv("CONCH_PUBLIC_URL", "https://conch.example.com", 1);
	setenv("CONCH_TOKEN_KEYS", https_cases[_i].token_keys, 1);
	setenv("CONCH_SESSION_SECRET", https_cases[_i].session_secret, 1);
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	log_set_level(LOGL_ERROR);
	ck_assert_int_eq(conf_check(err, sizeof(err)), https_cases[_i].rc);
	if (https_cases[_i].names != NULL) {
		ck_assert_ptr_nonnull(strstr(err, https_cases[_i].names));
		ck_assert_ptr_nonnull(strstr(err, "https"));
	}
}
END_TEST

START_TEST(test_http_needs_no_secrets)
{
	char err[256] = "";

	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	log_set_level(LOGL_ERROR);
	ck_assert_int_eq(conf_check(err, sizeof(err)), 0);
}
END_TEST

/* conf_check's lines that contain needle (stderr sent to a file),
 * joined; *n is how many. */
static char *
check_lines(const char *needle, int *n)
{
	char err[256], line[1024];
	FILE *tmp = tmpfile();
	int saved = dup(STDERR_FILENO);
	struct buf b;

	buf_init(&b);
	*n = 0;
	ck_assert_int_eq(conf_load(NULL, err, sizeof(err)), 0);
	ck_assert_int_ge(dup2(fileno(tmp), STDERR_FILENO), 0);
	ck_assert_int_eq(conf_check(err, sizeof(err)), 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp) != NULL) {
		if (strstr(line, needle) != NULL) {
			buf_puts(&b, line);
			(*n)++;
		}
	}
	fclose(tmp);
	return buf_steal(&b);
}

/* Warnings that a feature is unavailable. */
static int
count_warnings(void)
{
	int n;

	free(check_lines("unavailable", &n));
	return n;
}

START_TEST(test_check_warns_per_missing_key)
{
	ck_assert_int_eq(count_warnings(), 6);
	setenv("CONCH_SLACK_CLIENT_ID", "1.2", 1);
	setenv("CONCH_SLACK_CLIENT_SECRET", "x", 1);
	setenv("CONCH_STRIPE_PRICE_PRO", "price_1", 1);
	ck_assert_int_eq(count_warnings(), 3);
	setenv("CONCH_SLACK_SIGNING_SECRET", "x", 1);
	setenv("CONCH_STRIPE_SECRET_KEY", "sk_test", 1);
	setenv("CONCH_STRIPE_WEBHOOK_SECRET", "whsec_x", 1);
	ck_assert_int_eq(count_warnings(), 0);
}
END_TEST

/* A misspelt variable, and the key it was most likely meant to be. */
static const struct {
	const char *env, *closest;
} closest_cases[] = {
    {"CONCH_DATABSE_URL", "database_url"},
    {"CONCH_DATABASE_URI", "database_url"},
    {"CONCH_LISTN", "listen"},
    {"CONCH_SLACK_SIGNING_SECRT", "slack_signing_secret"},
    {"CONCH_STRIPE_WEBHOOK_SECRETS", "stripe_webhook_secret"},
    {"CONCH_JOB_THREAD", "job_threads"},
    {"CONCH_HTTP_THREDS", "http_threads"},
    {"CONCH_TOKEN_KEY", "token_keys"},
    {"CONCH_LOGLEVEL", "log_level"},
    {"CONCH_public_url", "public_url"},
};

START_TEST(test_closest_key)
{
	ck_assert_str_eq(conf_closest_key(closest_cases[_i].env), closest_cases[_i].closest);
}
END_TEST

/* conf_check's lines that name an unknown variable, joined. */
static char *
unknown_env_warnings(void)
{
	int n;

	return check_lines("is not a configuration key", &n);
}

START_TEST(test_unknown_env_warns_once_with_suggestion)
{
	char *out;

	setenv("CONCH_DATABASE_URL", "postgresql://x@127.0.0.1/x", 1);
	setenv("CONCH_JOB_THREADS", "3", 1);
	out = unknown_env_warnings();
	ck_assert_str_eq(out, "");
	free(out);
	setenv("CONCH_DATABSE_URL", "postgresql://y@127.0.0.1/y", 1);
	out = unknown_env_warnings();
	ck_assert_msg(strstr(out, "\"level\":\"warn\"") != NULL, "%s", out);
	ck_assert_msg(strstr(out, "CONCH_DATABSE_URL is not a configuration key; did you mean "
	                          "CONCH_DATABASE_URL?") != NULL,
	              "%s", out);
	ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "one line: %s", out);
	/* The value is not a key's, but it may still be a secret: never echoed. */
	ck_assert_ptr_null(strstr(out, "postgresql://y"));
	free(out);
	ck_assert_str_eq(conf.database_url, "postgresql://x@127.0.0.1/x");
}
END_TEST

/* Uncommented, the example file must load and restate the defaults. */
START_TEST(test_example_file)
{
	char *path = xasprintf("%s/conf/conch.conf.example", oldcwd), line[1024], err[256] = "";
	FILE *in = fopen(path, "r"), *out = fopen("test.conf", "w");
	int keys = 0;

	ck_assert_msg(in != NULL, "cannot open %s", path);
	ck_assert_ptr_nonnull(out);
	while (fgets(line, sizeof(line), in) != NULL) {
		size_t n = strspn(line + 1, "abcdefghijklmnopqrstuvwxyz_");

		if (line[0] == '#' && n > 0 && (line[1 + n] == ' ' || line[1 + n] == '\n')) {
			fputs(line + 1, out);
			keys++;
		}
	}
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_int_eq(keys, 45);
	ck_assert_msg(conf_load("test.conf", err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(conf.listen, "127.0.0.1:8080");
	ck_assert_str_eq(conf.public_url, "http://127.0.0.1:8080");
	ck_assert_str_eq(conf.slack_scopes, "commands,chat:write,chat:write.public,im:write,mpim:write,"
	                                    "users:read,channels:read,groups:read");
	ck_assert_str_eq(conf.slack_authorize_url, "https://slack.com/oauth/v2/authorize");
	ck_assert_str_eq(conf.stripe_api_url, "https://api.stripe.com");
	ck_assert_int_eq(conf.job_threads, 2);
	ck_assert_int_eq(conf.job_lease_seconds, 60);
	ck_assert_str_eq(conf.token_keys, "");
	free(path);
}
END_TEST

/* database_direct_url defaults to database_url, database_migrate_url to
 * database_direct_url; a value given (file or environment) wins. */
static const struct {
	const char *file, *env_direct, *env_migrate;
	const char *url, *direct, *migrate;
} db_url_cases[] = {
    {"", NULL, NULL, "", "", ""},
    {"database_url P\n", NULL, NULL, "P", "P", "P"},
    {"database_url P\ndatabase_direct_url D\n", NULL, NULL, "P", "D", "D"},
    {"database_url P\ndatabase_migrate_url M\n", NULL, NULL, "P", "P", "M"},
    {"database_url P\n", "D", "M", "P", "D", "M"},
    {"database_url P\ndatabase_direct_url D\n", "", NULL, "P", "P", "P"},
};

START_TEST(test_database_urls_chain)
{
	char err[256] = "";

	write_file("test.conf", db_url_cases[_i].file);
	if (db_url_cases[_i].env_direct)
		setenv("CONCH_DATABASE_DIRECT_URL", db_url_cases[_i].env_direct, 1);
	if (db_url_cases[_i].env_migrate)
		setenv("CONCH_DATABASE_MIGRATE_URL", db_url_cases[_i].env_migrate, 1);
	ck_assert_int_eq(conf_load("test.conf", err, sizeof(err)), 0);
	ck_assert_str_eq(conf.database_url, db_url_cases[_i].url);
	ck_assert_str_eq(conf.database_direct_url, db_url_cases[_i].direct);
	ck_assert_str_eq(conf.database_migrate_url, db_url_cases[_i].migrate);
}
END_TEST

static Suite *
conf_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_file_values);
	tcase_add_test(tc, test_env_overrides_file);
	tcase_add_test(tc, test_env_without_file);
	tcase_add_loop_test(tc, test_bad_values, 0, (int)ARRAY_LEN(bad_cases));
	tcase_add_test(tc, test_missing_named_file);
	tcase_add_test(tc, test_default_file_used_when_present);
	tcase_add_test(tc, test_trailing_slash_stripped);
	tcase_add_test(tc, test_reload_replaces);
	tcase_add_loop_test(tc, test_https_requires_secrets, 0, (int)ARRAY_LEN(https_cases));
	tcase_add_test(tc, test_http_needs_no_secrets);
	tcase_add_test(tc, test_check_warns_per_missing_key);
	tcase_add_loop_test(tc, test_closest_key, 0, (int)ARRAY_LEN(closest_cases));
	tcase_add_test(tc, test_unknown_env_warns_once_with_suggestion);
	tcase_add_test(tc, test_example_file);
	tcase_add_loop_test(tc, test_database_urls_chain, 0, (int)ARRAY_LEN(db_url_cases));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(conf_suite)
