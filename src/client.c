/* The client's address and the allowlists. X-Forwarded-For is read from
 * the right: each hop appends the address it saw, so only the entries
 * added by our own trusted proxies can be believed, and the first one
 * they did not add is the client. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "client.h"
#include "conf.h"
#include "util.h"

static struct cidr_list trusted, admin_allow, metrics_allow;

static void
parse_or_die(const char *key, const char *text, struct cidr_list *out)
{
	char why[160];

	if (cidr_list_parse(text ? text : "", out, why, sizeof(why)) < 0)
		fatal("%s: %s", key, why); /* conf.c checked it already */
}

void
client_init(void)
{
	parse_or_die("trusted_proxies", conf.trusted_proxies, &trusted);
	parse_or_die("admin_allow", conf.admin_allow, &admin_allow);
	parse_or_die("metrics_allow", conf.metrics_allow, &metrics_allow);
}

void
client_peer_text(const struct sockaddr *sa, char *out, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out,
		          (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		inet_ntop(AF_INET, s6->sin6_addr.s6_addr + 12, out, (socklen_t)len);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)len);
	else
		snprintf(out, len, "unknown");
}

/* The entry of xff in [start, end), without surrounding blanks. */
static const char *
trimmed(const char *start, const char *end, size_t *n)
{
	while (start < end && (*start == ' ' || *start == '\t'))
		start++;
	while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*n = (size_t)(end - start);
	return start;
}

void
client_address(const char *peer, const char *xff, char *out, size_t len)
{
	const char *end, *start, *e;
	uint8_t a[16];
	size_t n;

	snprintf(out, len, "%s", peer);
	if (xff == NULL || !cidr_list_has_text(&trusted, peer))
		return;
	/* O(length of the header); a malformed entry ends the walk, leaving
	 * the last hop we could believe. */
	for (end = xff + strlen(xff);; end = start - 1) {
		for (start = end; start > xff && start[-1] != ','; start--)
			;
		e = trimmed(start, end, &n);
		if (cidr_addr_parse(e, n, a) < 0)
			return;
		snprintf(out, len, "%.*s", (int)n, e);
		if (!cidr_list_has(&trusted, a) || start == xff)
			return;
	}
}

int
client_allowed(enum client_guard guard, const char *addr)
{
	const struct cidr_list *l = guard == CLIENT_ADMIN     ? &admin_allow
	                            : guard == CLIENT_METRICS ? &metrics_allow
	                                                      : NULL;

	return l == NULL || l->n == 0 || cidr_list_has_text(l, addr);
}
