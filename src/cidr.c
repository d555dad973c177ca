/* CIDR lists: parsing with bounds and matching by prefix; IPv4 is kept as
 * IPv4-mapped IPv6 so that one comparison serves both families (a dual
 * stack socket reports IPv4 peers as ::ffff:a.b.c.d). */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "cidr.h"
#include "util.h"

#define ADDR_TEXT_MAX 64 /* longer than any IPv6 address text */
#define V4_OFFSET     96 /* bits before the IPv4 part of a mapped address */

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
cidr_addr_parse(const char *s, size_t len, uint8_t out[16])
{
	char text[ADDR_TEXT_MAX];
	struct in_addr v4;

	if (len == 0 || len >= sizeof(text) || memchr(s, '\0', len) != NULL)
		return -1;
	memcpy(text, s, len);
	text[len] = '\0';
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memcpy(out, v4_mapped_prefix, 12);
		memcpy(out + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, text, out) == 1 ? 0 : -1;
}

/* One "ADDR[/BITS]" of len bytes. */
static int
entry_parse(const char *s, size_t len, struct cidr *c)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	char bits[8];
	long long n;
	int v4;

	if (cidr_addr_parse(s, alen, c->addr) < 0)
		return -1;
	v4 = memchr(s, ':', alen) == NULL;
	c->bits = 128;
	if (slash == NULL)
		return 0;
	if (len - alen - 1 == 0 || len - alen - 1 >= sizeof(bits))
		return -1;
	memcpy(bits, slash + 1, len - alen - 1);
	bits[len - alen - 1] = '\0';
	if (strnum(bits, 0, v4 ? 32 : 128, &n) < 0 || (bits[0] == '0' && bits[1] != '\0'))
		return -1;
	c->bits = (int)n + (v4 ? V4_OFFSET : 0);
	return 0;
}

int
cidr_list_parse(const char *text, struct cidr_list *out, char *why, size_t whylen)
{
	const char *p = text;
	size_t n;

	out->n = 0;
	for (;;) {
		p += strspn(p, ", \t");
		if (*p == '\0')
			return 0;
		n = strcspn(p, ", \t");
		if (out->n == CIDR_LIST_MAX) {
			snprintf(why, whylen, "at most %d CIDRs", CIDR_LIST_MAX);
			break;
		}
		if (entry_parse(p, n, &out->v[out->n]) < 0) {
			char shown[52];

			text_echo(p, n, 48, shown, sizeof(shown));
			snprintf(why, whylen,
			         "expected CIDRs like 10.0.0.0/8 or 2001:db8::/32, separated by "
			         "commas; \"%s\" is not one",
			         shown);
			break;
		}
		out->n++;
		p += n;
	}
	out->n = 0;
	return -1;
}

static int
prefix_equal(const uint8_t *a, const uint8_t *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	if (memcmp(a, b, (size_t)whole) != 0)
		return 0;
	return rest == 0 || ((a[whole] ^ b[whole]) & mask) == 0;
}

int
cidr_list_has(const struct cidr_list *l, const uint8_t addr[16])
{
	for (int i = 0; i < l->n; i++)
		if (prefix_equal(l->v[i].addr, addr, l->v[i].bits))
			return 1;
	return 0;
}

int
cidr_list_has_text(const struct cidr_list *l, const char *addr)
{
	uint8_t a[16];

	return cidr_addr_parse(addr, strlen(addr), a) == 0 && cidr_list_has(l, a);
}
