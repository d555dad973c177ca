/* oauth.v2.access answers: what conch accepts from Slack before sealing a
 * token, as a table of answers and verdicts. */
#include <string.h>

#include <jansson.h>

#include "oauth/oauth.h"
#include "unit.h"

#define GOOD_INSTALL                                                                               \
	"{\"ok\":true,\"app_id\":\"A0CONCH01\",\"access_token\":\"xoxb-1-2-abc\","                 \
	"\"token_type\":\"bot\",\"scope\":\"commands,chat:write\",\"bot_user_id\":\"U0BOT00001\"," \
	"\"team\":{\"id\":\"T0TEAM0001\",\"name\":\"Acme\"},\"enterprise\":null,"                  \
	"\"is_enterprise_install\":false,\"authed_user\":{\"id\":\"U0INSTALL1\"}"

#define ORG_INSTALL                                                                                \
	"{\"ok\":true,\"app_id\":\"A0CONCH01\",\"access_token\":\"xoxb-1-2-org\","                 \
	"\"token_type\":\"bot\",\"scope\":\"commands,chat:write\",\"bot_user_id\":\"W0BOT00001\"," \
	"\"team\":null,\"enterprise\":{\"id\":\"E0123ABCD\",\"name\":\"Acme Org\"},"               \
	"\"is_enterprise_install\":true,\"authed_user\":{\"id\":\"W0INSTALL1\"}"

static const struct {
	const char *json;
	enum oauth_grant_kind kind;
	int ok;
} answers[] = {
    {GOOD_INSTALL "}", OAUTH_GRANT_INSTALL, 1},
    {GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\",\"expires_in\":43200}", OAUTH_GRANT_INSTALL,
     1},
    /* rotation fields come together and well formed */
    {GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\"}", OAUTH_GRANT_INSTALL, 0},
    {GOOD_INSTALL ",\"expires_in\":43200}", OAUTH_GRANT_INSTALL, 0},
    {GOOD_INSTALL ",\"refresh_token\":\"xoxb-1-abc\",\"expires_in\":43200}", OAUTH_GRANT_INSTALL,
     0},
    {GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\",\"expires_in\":5}", OAUTH_GRANT_INSTALL, 0},
    {GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\",\"expires_in\":\"43200\"}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":false,\"error\":\"invalid_code\"}", OAUTH_GRANT_INSTALL, 0},
    {"[]", OAUTH_GRANT_INSTALL, 0},
    /* a user token, or a bot token of the wrong type */
    {"{\"ok\":true,\"access_token\":\"xoxp-1\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"user\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb- "
     "space\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    /* the team id must look like one */
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0'; DROP\"}}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\"}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"B0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"team\":{\"id\":\"T0TEAM0001\"}}",
     OAUTH_GRANT_INSTALL, 0},
    /* org-wide installs: the org (enterprise.id, an E id) is the installation */
    {ORG_INSTALL "}", OAUTH_GRANT_INSTALL, 1},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"U0B1\","
     "\"scope\":\"a\",\"team\":{\"id\":\"T0TEAM0001\"},\"is_enterprise_install\":true}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"W0B1\","
     "\"scope\":\"a\",\"team\":null,\"enterprise\":{\"id\":\"T0TEAM0001\"},"
     "\"is_enterprise_install\":true}",
     OAUTH_GRANT_INSTALL, 0},
    {"{\"ok\":true,\"access_token\":\"xoxb-1\",\"token_type\":\"bot\",\"bot_user_id\":\"W0B1\","
     "\"scope\":\"a\",\"team\":null,\"enterprise\":null,\"is_enterprise_install\":true}",
     OAUTH_GRANT_INSTALL, 0},
    /* a refresh answer needs only the tokens */
    {"{\"ok\":true,\"access_token\":\"xoxb-2\",\"refresh_token\":\"xoxe-2\",\"expires_in\":43200}",
     OAUTH_GRANT_REFRESH, 1},
    {"{\"ok\":true,\"access_token\":\"xoxb-2\",\"token_type\":\"user\",\"refresh_token\":\"xoxe-"
     "2\","
     "\"expires_in\":43200}",
     OAUTH_GRANT_REFRESH, 0},
    {"{\"ok\":true,\"access_token\":\"xoxe-2\",\"refresh_token\":\"xoxe-2\",\"expires_in\":43200}",
     OAUTH_GRANT_REFRESH, 0},
};

START_TEST(test_grant_parse_table)
{
	json_error_t err;
	json_t *body = json_loads(answers[_i].json, 0, &err);
	struct oauth_grant g;
	const char *why = NULL;
	int rc;

	ck_assert_msg(body != NULL, "case %d: %s", _i, err.text);
	rc = oauth_grant_parse(body, answers[_i].kind, &g, &why);
	ck_assert_msg((rc == 0) == answers[_i].ok, "case %d: rc %d (%s)", _i, rc, why ? why : "");
	if (rc != 0)
		ck_assert_ptr_nonnull(why);
	json_decref(body);
}
END_TEST

START_TEST(test_grant_fields)
{
	json_t *body = json_loads(GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\","
	                                       "\"expires_in\":43200}",
	                          0, NULL);
	struct oauth_grant g;
	const char *why;

	ck_assert_int_eq(oauth_grant_parse(body, OAUTH_GRANT_INSTALL, &g, &why), 0);
	ck_assert_str_eq(g.team_id, "T0TEAM0001");
	ck_assert_str_eq(g.team_name, "Acme");
	ck_assert_str_eq(g.app_id, "A0CONCH01");
	ck_assert_str_eq(g.bot_user_id, "U0BOT00001");
	ck_assert_str_eq(g.installer_user_id, "U0INSTALL1");
	ck_assert_str_eq(g.scopes, "commands,chat:write");
	ck_assert_str_eq(g.access_token, "xoxb-1-2-abc");
	ck_assert_str_eq(g.refresh_token, "xoxe-1-abc");
	ck_assert_int_eq(g.expires_in, 43200);
	json_decref(body);
}
END_TEST

START_TEST(test_grant_org_wide)
{
	json_t *body = json_loads(ORG_INSTALL "}", 0, NULL);
	struct oauth_grant g;
	const char *why;

	ck_assert_int_eq(oauth_grant_parse(body, OAUTH_GRANT_INSTALL, &g, &why), 0);
	ck_assert_int_eq(g.org_wide, 1);
	ck_assert_str_eq(g.team_id, "E0123ABCD");
	ck_assert_str_eq(g.team_name, "Acme Org");
	ck_assert_str_eq(g.bot_user_id, "W0BOT00001");
	ck_assert_str_eq(g.installer_user_id, "W0INSTALL1");
	json_decref(body);
}
END_TEST

START_TEST(test_grant_wipe)
{
	json_t *body = json_loads(GOOD_INSTALL ",\"refresh_token\":\"xoxe-1-abc\","
	                                       "\"expires_in\":43200}",
	                          0, NULL);
	const char *access = json_string_value(json_object_get(body, "access_token"));
	const char *refresh = json_string_value(json_object_get(body, "refresh_token"));
	size_t alen = strlen(access), rlen = strlen(refresh);

	oauth_grant_wipe(body);
	for (size_t i = 0; i < alen; i++)
		ck_assert_int_eq(access[i], 0);
	for (size_t i = 0; i < rlen; i++)
		ck_assert_int_eq(refresh[i], 0);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(body, "team"), "id")),
	                 "T0TEAM0001");
	json_decref(body);
}
END_TEST

static Suite *
oauth_suite(void)
{
	Suite *s = suite_create("oauth");
	TCase *tc = tcase_create("grant");

	tcase_add_loop_test(tc, test_grant_parse_table, 0,
	                    (int)(sizeof(answers) / sizeof(answers[0])));
	tcase_add_test(tc, test_grant_fields);
	tcase_add_test(tc, test_grant_org_wide);
	tcase_add_test(tc, test_grant_wipe);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(oauth_suite)
