/* conch: serve, migrate, rotate-keys, admin-user, version, manifest. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin/admin.h"
#include "conf.h"
#include "db.h"
#include "http.h"
#include "instances.h"
#include "jobs.h"
#include "keys.h"
#include "log.h"
#include "manifest.h"
#include "metrics.h"
#include "routes.h"
#include "slack.h"
#include "tmpl.h"
#include "util.h"
#include "vault.h"
#include "version.h"

/* Used when database_url is empty: the database `make run` starts under var/. */
#define DEV_DATABASE_URL "postgresql://conch@127.0.0.1:5433/conch"
#define DEV_MIGRATE_URL  "postgresql://conch_owner@127.0.0.1:5433/conch"

static const char usage_text[] =
    "usage: conch COMMAND [-c FILE]\n"
    "\n"
    "commands:\n"
    "  serve             serve HTTP and run the background job runners\n"
    "  migrate           apply pending migrations from migrations_dir, in order\n"
    "  rotate-keys       re-encrypt every stored secret with the newest key of token_keys\n"
    "  admin-user NAME   create or reset an operator account (password on standard input)\n"
    "  version           print the version and git commit\n"
    "  manifest          print the Slack app manifest (JSON) for public_url\n"
    "  help              print this text (also -h, --help)\n"
    "\n"
    "options:\n"
    "  -c FILE           read the configuration from FILE (default conf/conch.conf\n"
    "                    when it exists); CONCH_<KEY> environment variables win\n";

/* Asked for: standard output, success. A mistake: standard error, 2. */
static _Noreturn void
usage(FILE *to)
{
	fputs(usage_text, to);
	exit(to == stdout ? 0 : 2);
}

/* Loads configuration and sets up logging, the vault and the database;
 * serving: warn about the features that miss their keys. */
static void
setup(const char *conf_path, int serving)
{
	char err[512];
	int level;

	if (conf_load(conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "conch: %s\n", err);
		exit(1);
	}
	level = log_level_parse(conf.log_level);
	log_set_level(level < 0 ? LOGL_INFO : (enum log_level)level);
	if (conf_check_for(serving, err, sizeof(err)) < 0) {
		fprintf(stderr, "conch: %s\n", err);
		exit(1);
	}
	if (vault_init(conf.token_keys, err, sizeof(err)) < 0) {
		fprintf(stderr, "conch: token_keys: %s\n", err);
		exit(1);
	}
	/* A Slack call outliving its lease would be taken over and made twice. */
	if (conf.job_lease_seconds < 2 * SLACK_TIMEOUT_SECONDS)
		log_warn(
		    "job_lease_seconds is %d, under %d: a slow Slack call may be retried while "
		    "it is still running (fine for tests, not for production)",
		    conf.job_lease_seconds, 2 * SLACK_TIMEOUT_SECONDS);
	if (!vault_ready())
		log_warn("token_keys is not set: installs cannot store bot tokens");
	if (conf.database_url[0] == '\0')
		log_info("database_url is not set: using the development database at %s",
		         DEV_DATABASE_URL);
	db_init(conf.database_url[0] ? conf.database_url : DEV_DATABASE_URL);
	db_init_direct(conf.database_direct_url[0] ? conf.database_direct_url : NULL);
	tmpl_init(conf.assets_dir);
}

/* As the schema owner (database_migrate_url), not the runtime role. */
static int
cmd_migrate(void)
{
	int n;

	db_init(conf.database_migrate_url[0] ? conf.database_migrate_url : DEV_MIGRATE_URL);
	n = db_migrate(conf.migrations_dir);
	if (n < 0) {
		fprintf(stderr, "conch: migrate failed (see the log above)\n");
		return 1;
	}
	log_info("migrations: %d applied, database is up to date", n);
	return 0;
}

/* After SIGTERM, drain_seconds of /healthz answering 503 while requests
 * are still served, so that the load balancer stops sending new ones
 * before the listener closes. SIGINT, or a second signal, stops at once. */
static void
drain(const sigset_t *stop, int sig)
{
	struct timespec wait = {.tv_sec = conf.drain_seconds};

	if (sig != SIGTERM || conf.drain_seconds == 0) {
		log_info("received %s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
		return;
	}
	log_info("received SIGTERM: draining for %d s (/healthz answers 503), then stopping",
	         conf.drain_seconds);
	http_drain_begin();
	if (sigtimedwait(stop, NULL, &wait) > 0)
		log_info("a second signal: stopping now");
	else
		log_info("drained: stopping");
}

static int
cmd_serve(void)
{
	char err[512];
	sigset_t stop;
	int sig;

	if (db_check_migrated(conf.migrations_dir, err, sizeof(err)) < 0) {
		fprintf(stderr, "conch: %s\n", err);
		return 1;
	}
	/* Threads inherit this mask, so only sigwait() below sees the signals. */
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	metrics_set_build(CONCH_VERSION, CONCH_COMMIT);
	features_init();
	if (instances_start() < 0 || jobs_start(conf.job_threads) < 0 ||
	    http_start(conch_routes) < 0) {
		fprintf(stderr, "conch: cannot start (see the log above)\n");
		return 1;
	}
	features_start();
	log_info("conch %s (commit %s) ready", CONCH_VERSION, CONCH_COMMIT);
	sigwait(&stop, &sig);
	drain(&stop, sig);
	http_stop();
	jobs_stop();
	instances_stop();
	log_info("stopped");
	return 0;
}

/* Needs only the configuration: an operator runs it before the Slack app
 * (and so its secrets) exists. */
static int
cmd_manifest(const char *conf_path)
{
	char err[512];
	json_t *manifest;

	if (conf_load(conf_path, err, sizeof(err)) < 0) {
		fprintf(stderr, "conch: %s\n", err);
		return 1;
	}
	/* On standard error, so the JSON on standard output stays whole: a
	 * misspelt CONCH_PUBLIC_URL would otherwise give a manifest for
	 * 127.0.0.1, which Slack cannot reach. */
	conf_warn_unknown_env();
	if (!conf.public_https)
		log_warn("public_url is %s: Slack sends requests only to https URLs it can reach; "
		         "set public_url (CONCH_PUBLIC_URL) to the server's public https URL",
		         conf.public_url);
	features_init();
	manifest = manifest_build(conch_routes);
	json_dumpf(manifest, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(manifest);
	conf_free();
	return 0;
}

int
main(int argc, char **argv)
{
	const char *cmd, *conf_path = NULL, *name = NULL;
	int rc;

	if (argc < 2)
		usage(stderr);
	cmd = argv[1];
	if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
		usage(stdout);
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		printf("conch %s (commit %s)\n", CONCH_VERSION, CONCH_COMMIT);
		return 0;
	}
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "migrate") != 0 &&
	    strcmp(cmd, "rotate-keys") != 0 && strcmp(cmd, "admin-user") != 0 &&
	    strcmp(cmd, "manifest") != 0) {
		fprintf(stderr, "conch: unknown command \"%s\"\n", cmd);
		usage(stderr);
	}
	for (int i = 2; i < argc; i++) {
		/* `conch serve --help` asks for help too: not a mistake. */
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			usage(stdout);
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf_path = argv[++i];
		else if (strcmp(cmd, "admin-user") == 0 && name == NULL && argv[i][0] != '-')
			name = argv[i];
		else
			usage(stderr);
	}
	if (strcmp(cmd, "admin-user") == 0 && name == NULL)
		usage(stderr);

	if (strcmp(cmd, "manifest") == 0)
		return cmd_manifest(conf_path);
	setup(conf_path, strcmp(cmd, "serve") == 0);
	if (strcmp(cmd, "serve") == 0)
		rc = cmd_serve();
	else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate();
	else if (strcmp(cmd, "rotate-keys") == 0)
		rc = keys_rotate() < 0 ? 1 : 0;
	else
		rc = admin_user_command(name) < 0 ? 1 : 0;
	db_thread_close();
	vault_clear();
	conf_free();
	return rc;
}
