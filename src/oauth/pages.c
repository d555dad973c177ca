/* The pages around installing that need no database: /privacy and /terms
 * (what is stored, for how long, how a workspace deletes it) and the
 * favicon. */
#include <string.h>

#include "conf.h"
#include "http.h"
#include "oauth/oauth.h"
#include "tmpl.h"

/* The purge delay comes from the code that schedules the purge, so the
 * page cannot promise another number. */
static void
legal_page(struct response *res, const char *name, const char *title)
{
	http_reply_page(res, 200, name,
	                json_pack("{s:s, s:i, s:s}", "title", title, "purge_days",
	                          OAUTH_PURGE_DELAY / 86400, "public_url", conf.public_url));
}

void
oauth_http_privacy(struct request *req, struct response *res)
{
	legal_page(res, "privacy.html", "Privacy policy");
}

void
oauth_http_terms(struct request *req, struct response *res)
{
	legal_page(res, "terms.html", "Terms of service");
}

void
oauth_http_favicon(struct request *req, struct response *res)
{
	char *svg = tmpl_render_file("favicon.svg", NULL);

	if (svg == NULL) {
		http_reply_text(res, 404, "not found");
		return;
	}
	http_set_header(res, "Cache-Control", "public, max-age=86400");
	http_reply(res, 200, "image/svg+xml", svg, strlen(svg));
}
