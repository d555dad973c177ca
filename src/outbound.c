/* Outbound HTTPS plumbing shared by the Slack and Stripe clients. */
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>

#include "metrics.h"
#include "outbound.h"

static pthread_key_t handle_key;
static pthread_once_t handle_once = PTHREAD_ONCE_INIT;

static void
handle_free(void *h)
{
	curl_easy_cleanup(h);
}

static void
handle_key_create(void)
{
	if (pthread_key_create(&handle_key, handle_free) != 0)
		fatal("outbound: pthread_key_create failed");
}

CURL *
outbound_handle(void)
{
	CURL *h;

	pthread_once(&handle_once, handle_key_create);
	h = pthread_getspecific(handle_key);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	h = curl_easy_init();
	if (h && pthread_setspecific(handle_key, h) != 0) {
		curl_easy_cleanup(h);
		h = NULL;
	}
	return h;
}

CURLcode
outbound_perform(CURL *h)
{
	CURLcode rc;

	metrics_outbound_inflight_add(1);
	rc = curl_easy_perform(h);
	metrics_outbound_inflight_add(-1);
	return rc;
}

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
