/* libFuzzer target for CIDR lists and X-Forwarded-For: the input is a list
 * and a header separated by a newline. Any bytes parse or fail cleanly; a
 * parsed list holds every address it was written with; the client address
 * taken from the header is the peer or one of the header's entries. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cidr.h"
#include "client.h"
#include "conf.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PEER "10.0.0.1"

/* Each entry's own address is in the list it came from. */
static void
check_list(const char *text)
{
	struct cidr_list l;
	char why[160];

	if (cidr_list_parse(text, &l, why, sizeof(why)) < 0) {
		if (l.n != 0 || why[0] == '\0')
			abort();
		return;
	}
	for (int i = 0; i < l.n; i++)
		if (!cidr_list_has(&l, l.v[i].addr) || l.v[i].bits < 0 || l.v[i].bits > 128)
			abort();
}

static void
check_client(const char *xff)
{
	char out[CLIENT_ADDR_MAX];

	client_address(PEER, xff, out, sizeof(out));
	if (strcmp(out, PEER) != 0 && strstr(xff, out) == NULL)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *text = xstrndup((const char *)data, size), *xff = strchr(text, '\n');
	char err[256];

	if (!ready) {
		setenv("CONCH_TRUSTED_PROXIES", "10.0.0.0/8,2001:db8::/32", 1);
		if (conf_load(NULL, err, sizeof(err)) < 0)
			abort();
		client_init();
		ready = 1;
	}
	if (xff)
		*xff++ = '\0';
	check_list(text);
	if (xff)
		check_client(xff);
	free(text);
	return 0;
}
