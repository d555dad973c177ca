/* Outbound HTTPS over libcurl, shared by the Slack and Stripe clients: one
 * easy handle per thread (kept between calls so connections stay alive,
 * freed when the thread exits), a response sink with a size cap, and
 * header lists wiped before they are freed (they carry credentials). */
#ifndef CONCH_OUTBOUND_H
#define CONCH_OUTBOUND_H

#include <curl/curl.h>
#include <stddef.h>

#include "util.h"

/* The thread's handle, reset to defaults; NULL if curl cannot make one. */
CURL *outbound_handle(void);
/* curl_easy_perform, counted in conch_outbound_calls_in_flight. */
CURLcode outbound_perform(CURL *h);

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
