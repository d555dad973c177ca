/* CIDR lists (IPv4 and IPv6) and the question "is this address in one of
 * them": one parser and one matcher for admin_allow, metrics_allow and
 * trusted_proxies. */
#ifndef CONCH_CIDR_H
#define CONCH_CIDR_H

#include <stddef.h>
#include <stdint.h>

#define CIDR_LIST_MAX 64

struct cidr {
	uint8_t addr[16]; /* IPv4 as an IPv4-mapped IPv6 address */
	int bits;         /* prefix length over those 128 bits */
};

struct cidr_list {
	struct cidr v[CIDR_LIST_MAX];
	int n;
};

/* Parses an address ("10.0.0.1", "2001:db8::1", an IPv4-mapped IPv6
 * address counts as IPv4) into 16 bytes. 0, or -1 when it is none. */
int cidr_addr_parse(const char *s, size_t len, uint8_t out[16]);

/* Parses "CIDR[,CIDR...]" (commas and/or spaces; a bare address is one
 * host). An empty text is an empty list. On error writes why to why and
 * returns -1 (the list is then empty). */
int cidr_list_parse(const char *text, struct cidr_list *out, char *why, size_t whylen);

/* 1 when the address (16 bytes, as cidr_addr_parse gives) is in the list. */
int cidr_list_has(const struct cidr_list *l, const uint8_t addr[16]);

/* 1 when the address text is valid and in the list. */
int cidr_list_has_text(const struct cidr_list *l, const char *addr);

#endif
