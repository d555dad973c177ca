/* Which X-Request-Id values a client may hand us: kept when they are 1 to
 * 128 characters of [A-Za-z0-9._:-], replaced otherwise. */
#include <string.h>

#include "http.h"
#include "unit.h"
#include "util.h"

static const struct {
	const char *id;
	int valid;
} request_ids[] = {
    {"a", 1},
    {"6f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e", 1},
    {"trace:span.01_x-y", 1},
    {"Root=1-67891233-abcdef012345678912345678", 0},
    {"a,b", 0},
    {"550e8400-e29b-41d4-a716-446655440000", 1},
    {"", 0},
    {" abc", 0},
    {"abc ", 0},
    {"a b", 0},
    {"a\"b", 0},
    {"a\\b", 0},
    {"a\nb", 0},
    {"a\rX-Evil: 1", 0},
    {"a/b", 0},
    {"a%20b", 0},
    {"caf\xc3\xa9", 0},
    {"{\"json\":1}", 0},
    {"<script>", 0},
};

START_TEST(test_request_id_table)
{
	for (size_t i = 0; i < ARRAY_LEN(request_ids); i++) {
		ck_assert_msg(http_request_id_valid(request_ids[i].id) == request_ids[i].valid,
		              "%s: want %d", request_ids[i].id, request_ids[i].valid);
	}
	ck_assert_int_eq(http_request_id_valid(NULL), 0);
}
END_TEST

START_TEST(test_request_id_length)
{
	char id[HTTP_REQUEST_ID_MAX + 2];

	memset(id, 'x', sizeof(id));
	id[HTTP_REQUEST_ID_MAX] = '\0';
	ck_assert_int_eq(http_request_id_valid(id), 1); /* 128 */
	id[HTTP_REQUEST_ID_MAX] = 'x';
	id[HTTP_REQUEST_ID_MAX + 1] = '\0';
	ck_assert_int_eq(http_request_id_valid(id), 0); /* 129 */
}
END_TEST

static Suite *
http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("request_id");

	tcase_add_test(tc, test_request_id_table);
	tcase_add_test(tc, test_request_id_length);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(http_suite)
