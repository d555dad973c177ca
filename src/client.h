/* Who is asking: the client's address (the socket peer, or the
 * X-Forwarded-For client when the peer is a trusted proxy) and whether it
 * may reach a guarded route (admin_allow, metrics_allow). */
#ifndef CONCH_CLIENT_H
#define CONCH_CLIENT_H

#include <stddef.h>
#include <sys/socket.h>

#define CLIENT_ADDR_MAX 64

enum client_guard { CLIENT_OPEN = 0, CLIENT_ADMIN, CLIENT_METRICS };

/* Parses trusted_proxies, admin_allow and metrics_allow from conf (already
 * validated by conf.c). */
void client_init(void);

/* The text form of a socket address ("unknown" when it is neither IPv4
 * nor IPv6); IPv4-mapped IPv6 peers are written as IPv4. */
void client_peer_text(const struct sockaddr *sa, char *out, size_t len);

/* The client address of a request from peer whose X-Forwarded-For headers,
 * joined in order with ",", are xff (NULL: none): the right-most address
 * that is not a trusted proxy, believed only while every hop to its right
 * (starting with the peer) is trusted. */
void client_address(const char *peer, const char *xff, char *out, size_t len);

/* 1 when addr may reach a route with this guard. */
int client_allowed(enum client_guard guard, const char *addr);

#endif
