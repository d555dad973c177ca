/* libFuzzer target for configuration files: conf_load_text over any bytes
 * either loads a configuration that keeps conf.h's promises (every number
 * within its bounds, URLs without a trailing slash, a listen address with
 * a port) or fails with one line of error that names where. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

#define NAME "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_url(const char *u)
{
	size_t n;

	if (u == NULL)
		abort();
	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		abort();
	n = strlen(u);
	if (u[n - 1] == '/')
		abort();
}

static void
check_loaded(void)
{
	if (conf.listen == NULL || conf.listen_host == NULL || conf.listen_host[0] == '\0')
		abort();
	if (conf.listen_port < 1 || conf.listen_port > 65535)
		abort();
	if (conf.http_threads < 1 || conf.http_threads > 256 || conf.job_threads < 1 ||
	    conf.job_threads > 256 || conf.job_lease_seconds < 2 || conf.job_lease_seconds > 3600)
		abort();
	check_url(conf.public_url);
	check_url(conf.slack_api_url);
	check_url(conf.slack_authorize_url);
	check_url(conf.stripe_api_url);
	if (conf.public_https != (strncmp(conf.public_url, "https://", 8) == 0))
		abort();
	if (conf.database_url == NULL || conf.token_keys == NULL || conf.log_level == NULL)
		abort();
}

/* One line that says where: "fuzz.conf:N: ..." or the key from the
 * environment. */
static void
check_error(const char *err, size_t errlen)
{
	if (err[0] == '\0' || strnlen(err, errlen) == errlen)
		abort();
	for (const char *p = err; *p; p++)
		if (*p == '\n' || *p == '\r')
			abort();
	if (strncmp(err, NAME ":", strlen(NAME) + 1) != 0 && strstr(err, "(from CONCH_") == NULL &&
	    strstr(err, " is required") == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	err[0] = '\0';
	if (conf_load_text(NAME, (const char *)data, size, err, sizeof(err)) == 0)
		check_loaded();
	else
		check_error(err, sizeof(err));
	conf_free();
	return 0;
}
