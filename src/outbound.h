/* Outbound HTTPS pieces shared by the Slack and Stripe clients (their
 * transfers run in src/engine.c, whose multi handle keeps connections
 * alive): a response sink with a size cap, and header lists wiped before
 * they are freed (they carry credentials). */
#ifndef CONCH_OUTBOUND_H
#define CONCH_OUTBOUND_H

#include <curl/curl.h>
#include <stddef.h>

#include "util.h"

struct outbound_sink {
	struct buf buf;
	size_t max;   /* bytes accepted; more aborts the transfer */
	int overflow; /* set when the answer was larger than max */
};

/* CURLOPT_WRITEFUNCTION for a struct outbound_sink. */
size_t outbound_sink_write(char *data, size_t size, size_t nmemb, void *arg);

/* Wipes each header (bearer tokens, keys) and frees the list. */
void outbound_headers_free(struct curl_slist *headers);

#endif
