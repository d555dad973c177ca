/* The /admin entry points: a session check, then a small table from sub-
 * path to page. */
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "admin/lib.h"
#include "admin/pages.h"
#include "admin/queue.h"
#include "admin/session.h"
#include "admin/webhooks.h"
#include "form.h"
#include "util.h"

typedef void (*admin_page_fn)(struct request *req, struct response *res,
                              const struct admin_session *s);

static const struct {
	const char *subpath; /* after "/admin/" */
	admin_page_fn page;
} get_pages[] = {
    {"teams", admin_page_teams},
    {"jobs", admin_page_jobs},
    {"webhooks", admin_page_webhooks},
};

/* 1 with *s filled when signed in; otherwise the reply is made. */
static int
require_session(struct request *req, struct response *res, struct admin_session *s)
{
	int rc = admin_session_load(req, s);

	if (rc < 0)
		admin_error(res, 503, NULL, "The database is unavailable; try again shortly.");
	else if (rc == 0)
		http_redirect(res, 303, "/admin/login");
	return rc == 1;
}

void
admin_http_home(struct request *req, struct response *res)
{
	struct admin_session s;

	if (require_session(req, res, &s))
		admin_page_home(req, res, &s);
}

void
admin_http_get(struct request *req, struct response *res)
{
	const char *sub = req->subpath;
	struct admin_session s;

	if (strcmp(sub, "login") == 0) {
		admin_http_login_form(req, res);
		return;
	}
	for (size_t i = 0; i < ARRAY_LEN(get_pages); i++) {
		if (strcmp(sub, get_pages[i].subpath) == 0) {
			if (require_session(req, res, &s))
				get_pages[i].page(req, res, &s);
			return;
		}
	}
	if (strncmp(sub, "teams/", 6) == 0 && sub[6] != '\0') {
		if (require_session(req, res, &s))
			admin_page_team(req, res, &s, sub + 6);
		return;
	}
	http_reply_text(res, 404, "not found");
}

/* "jobs/ID/ACTION" -> id and action; 0 when it has that shape. */
static int
job_action_path(const char *sub, char *id, size_t idcap, const char **action)
{
	const char *slash;
	size_t len;

	if (strncmp(sub, "jobs/", 5) != 0)
		return -1;
	sub += 5;
	slash = strchr(sub, '/');
	len = slash ? (size_t)(slash - sub) : 0;
	if (len == 0 || len >= idcap)
		return -1;
	memcpy(id, sub, len);
	id[len] = '\0';
	*action = slash + 1;
	return strcmp(*action, "retry") == 0 || strcmp(*action, "cancel") == 0 ? 0 : -1;
}

/* Where to go after a job action: a page of ours, never elsewhere. */
static const char *
safe_back(const char *back)
{
	if (back == NULL || strncmp(back, "/admin/", 7) != 0 || strstr(back, "//") != NULL ||
	    strpbrk(back, "\\\r\n") != NULL)
		return "/admin/jobs";
	return back;
}

void
admin_http_post(struct request *req, struct response *res)
{
	struct admin_session s;
	struct form form = {0};
	const char *action;
	char id[24];

	if (strcmp(req->subpath, "login") == 0) {
		admin_http_login(req, res);
		return;
	}
	if (strcmp(req->subpath, "logout") == 0) {
		admin_http_logout(req, res);
		return;
	}
	if (job_action_path(req->subpath, id, sizeof(id), &action) < 0) {
		http_reply_text(res, 404, "not found");
		return;
	}
	if (!require_session(req, res, &s))
		return;
	if (form_parse(req->body, req->body_len, &form) < 0 ||
	    !admin_csrf_ok(req, form_get(&form, "csrf"), s.csrf)) {
		admin_error(res, 403, &s, "missing or wrong CSRF token");
		goto done;
	}
	admin_job_action(req, res, &s, id, action, safe_back(form_get(&form, "back")));
done:
	form_free(&form);
}
