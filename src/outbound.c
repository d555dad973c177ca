/* Outbound HTTPS plumbing shared by the Slack and Stripe clients. */
#include <string.h>

#include <openssl/crypto.h>

#include "outbound.h"

size_t
outbound_sink_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct outbound_sink *s = arg;
	size_t n = size * nmemb;

	if (n > s->max - s->buf.len) {
		s->overflow = 1;
		return 0;
	}
	buf_append(&s->buf, data, n);
	return n;
}

void
outbound_headers_free(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h; h = h->next)
		OPENSSL_cleanse(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}
