#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tmpl.h"
#include "unit.h"
#include "util.h"

/* template, data (JSON), expected output (NULL: a syntax error). */
static const struct {
	const char *text, *data, *want;
} cases[] = {
    {"plain text", "{}", "plain text"},
    {"", "{}", ""},
    {"Hello {{name}}!", "{\"name\":\"Ann\"}", "Hello Ann!"},
    {"{{ name }}", "{\"name\":\"Ann\"}", "Ann"},
    {"{{x}}", "{\"x\":\"<a href=\\\"/\\\">'&'</a>\"}",
     "&lt;a href=&quot;/&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"},
    {"{{{x}}}", "{\"x\":\"<b>&</b>\"}", "<b>&</b>"},
    {"{{& x}}", "{\"x\":\"<b>&</b>\"}", "<b>&</b>"},
    {"{{n}}|{{r}}|{{t}}|{{f}}|{{z}}|{{o}}|{{a}}",
     "{\"n\":-42,\"r\":1.5,\"t\":true,"
     "\"f\":false,\"z\":null,\"o\":{},\"a\":[1]}",
     "-42|1.5|true|false|||"},
    {"[{{missing}}]", "{}", "[]"},
    {"{{a.b.c}}", "{\"a\":{\"b\":{\"c\":\"deep\"}}}", "deep"},
    {"[{{a.x}}][{{a.b.c.d}}]", "{\"a\":{\"b\":{\"c\":\"s\"}}}", "[][]"},
    {"{{#items}}[{{name}}]{{/items}}", "{\"items\":[{\"name\":\"a\"},{\"name\":\"b\"}]}", "[a][b]"},
    {"{{#xs}}{{.}},{{/xs}}", "{\"xs\":[1,\"two\",3.25]}", "1,two,3.25,"},
    {"{{#user}}{{name}} of {{team}}{{/user}}", "{\"user\":{\"name\":\"ann\"},\"team\":\"T1\"}",
     "ann of T1"},
    {"{{#teams}}{{#things}}{{name}}@{{team}};{{/things}}{{/teams}}",
     "{\"teams\":[{\"team\":\"T1\",\"things\":[{\"name\":\"db\"},{\"name\":\"web\"}]},"
     "{\"team\":\"T2\",\"things\":[{\"name\":\"ci\"}]}]}",
     "db@T1;web@T1;ci@T2;"},
    {"{{name}}{{#inner}}{{name}}{{/inner}}{{name}}",
     "{\"name\":\"out\",\"inner\":{\"name\":\"in\"}}", "outinout"},
    {"{{#a.b}}{{c}}{{/a.b}}", "{\"a\":{\"b\":{\"c\":\"x\"}}}", "x"},
    {"{{#on}}yes{{/on}}", "{\"on\":true}", "yes"},
    {"{{#s}}[{{.}}]{{/s}}", "{\"s\":\"str\"}", "[str]"},
    {"{{#n}}{{.}}{{/n}}", "{\"n\":3}", "3"},
    {"{{#f}}x{{/f}}{{#z}}x{{/z}}{{#m}}x{{/m}}{{#e}}x{{/e}}{{#s}}x{{/s}}{{#n}}x{{/n}}",
     "{\"f\":false,\"z\":null,\"e\":[],\"s\":\"\",\"n\":0}", ""},
    {"{{^items}}none{{/items}}", "{\"items\":[]}", "none"},
    {"{{^items}}none{{/items}}", "{\"items\":[1]}", ""},
    {"{{^items}}none{{/items}}", "{}", "none"},
    {"{{^f}}no{{/f}}{{^t}}no{{/t}}", "{\"f\":false,\"t\":true}", "no"},
    {"{{#list}}{{name}}{{^last}}, {{/last}}{{/list}}",
     "{\"list\":[{\"name\":\"a\"},{\"name\":\"b\",\"last\":true}]}", "a, b"},
    {"a{{! a comment }}b", "{}", "ab"},
    {"{ not a tag } {x}", "{}", "{ not a tag } {x}"},
    {"{{#x}}{{#x}}nested same{{/x}}{{/x}}", "{\"x\":true}", "nested same"},
    {"{{#a}}", "{}", NULL},
    {"{{^a}}never shown", "{\"a\":true}", NULL},
    {"{{/a}}", "{}", NULL},
    {"{{#a}}{{/b}}", "{}", NULL},
    {"{{#a}}{{#b}}{{/a}}{{/b}}", "{}", NULL},
    {"{{name", "{}", NULL},
    {"{{}}", "{}", NULL},
    {"{{#}}{{/}}", "{}", NULL},
    {"{{{x}}", "{}", NULL},
    {"{{=<% %>=}}", "{}", NULL},
};

START_TEST(test_render)
{
	json_error_t e;
	json_t *data = json_loads(cases[_i].data, 0, &e);
	char *out;

	ck_assert_msg(data != NULL, "bad test data: %s", e.text);
	out = tmpl_render(cases[_i].text, data);
	if (cases[_i].want == NULL) {
		ck_assert_msg(out == NULL, "\"%s\" rendered \"%s\"", cases[_i].text, out);
	} else {
		ck_assert_msg(out != NULL, "\"%s\" failed", cases[_i].text);
		ck_assert_str_eq(out, cases[_i].want);
	}
	free(out);
	json_decref(data);
}
END_TEST

START_TEST(test_null_data)
{
	char *out = tmpl_render("a{{x}}b{{^x}}c{{/x}}", NULL);

	ck_assert_str_eq(out, "abc");
	free(out);
	ck_assert_ptr_null(tmpl_render(NULL, NULL));
}
END_TEST

/* --- files and partials ------------------------------------------------- */

static char dir[64];

static const struct {
	const char *name, *text;
} files[] = {
    {"header.html", "<h1>{{title}}</h1>"},
    {"item.html", "<i>{{.}}</i>"},
    {"page.html", "{{> header.html}}<p>{{#items}}{{> item.html}}{{/items}}</p>"},
    {"loop.html", "x{{> loop.html}}"},
    {"bad.html", "{{#x}}"},
    {"uses_bad.html", "a{{> bad.html}}"},
    {"uses_missing.html", "a{{> nope.html}}"},
    {"empty.html", ""},
};

static void
write_file(const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
	free(path);
}

static void
setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/conch-tmpl-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	for (size_t i = 0; i < ARRAY_LEN(files); i++)
		write_file(files[i].name, files[i].text);
	tmpl_init(dir);
	log_set_level(LOGL_ERROR + 1); /* the failures below log; keep the output clean */
}

static void
teardown(void)
{
	for (size_t i = 0; i < ARRAY_LEN(files); i++) {
		char *path = xasprintf("%s/%s", dir, files[i].name);

		unlink(path);
		free(path);
	}
	rmdir(dir);
	tmpl_init(NULL);
	log_set_level(LOGL_INFO);
}

static json_t *
page_data(void)
{
	return json_pack("{s:s, s:[i,i]}", "title", "T&C", "items", 1, 2);
}

START_TEST(test_file_with_partials)
{
	json_t *data = page_data();
	char *out = tmpl_render_file("page.html", data);

	ck_assert_ptr_nonnull(out);
	ck_assert_str_eq(out, "<h1>T&amp;C</h1><p><i>1</i><i>2</i></p>");
	free(out);
	out = tmpl_render("[{{> header.html}}]", data);
	ck_assert_str_eq(out, "[<h1>T&amp;C</h1>]");
	free(out);
	out = tmpl_render_file("empty.html", data);
	ck_assert_str_eq(out, "");
	free(out);
	json_decref(data);
}
END_TEST

START_TEST(test_file_failures)
{
	static const char *const bad[] = {
	    "loop.html",     "bad.html",      "uses_bad.html", "uses_missing.html",
	    "missing.html",  "../etc/passwd", "/etc/passwd",   "",
	    "a/../page.html"};
	json_t *data = page_data();

	for (size_t i = 0; i < ARRAY_LEN(bad); i++)
		ck_assert_msg(tmpl_render_file(bad[i], data) == NULL, "rendered %s", bad[i]);
	ck_assert_ptr_null(tmpl_render_file(NULL, data));
	ck_assert_ptr_null(tmpl_render("{{> ../page.html}}", data));
	json_decref(data);
}
END_TEST

/* A file is read once: later edits show only after tmpl_init. */
START_TEST(test_cache)
{
	json_t *data = page_data();
	char *out;

	out = tmpl_render_file("header.html", data);
	ck_assert_str_eq(out, "<h1>T&amp;C</h1>");
	free(out);
	write_file("header.html", "<h2>{{title}}</h2>");
	out = tmpl_render_file("header.html", data);
	ck_assert_str_eq(out, "<h1>T&amp;C</h1>");
	free(out);
	tmpl_init(dir);
	out = tmpl_render_file("header.html", data);
	ck_assert_str_eq(out, "<h2>T&amp;C</h2>");
	free(out);
	json_decref(data);
}
END_TEST

static void *
render_loop(void *arg)
{
	json_t *data = arg;

	for (int i = 0; i < 200; i++) {
		char *out = tmpl_render_file("page.html", data);

		if (out == NULL || strcmp(out, "<h1>T&amp;C</h1><p><i>1</i><i>2</i></p>") != 0)
			return (void *)1;
		free(out);
	}
	return NULL;
}

START_TEST(test_concurrent_first_use)
{
	json_t *data = page_data();
	pthread_t th[4];
	void *rc;

	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, render_loop, data), 0);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], &rc);
		ck_assert_ptr_null(rc);
	}
	json_decref(data);
}
END_TEST

static Suite *
tmpl_suite(void)
{
	Suite *s = suite_create("tmpl");
	TCase *text = tcase_create("text");
	TCase *file = tcase_create("files");

	tcase_add_loop_test(text, test_render, 0, (int)ARRAY_LEN(cases));
	tcase_add_test(text, test_null_data);
	suite_add_tcase(s, text);
	tcase_add_checked_fixture(file, setup, teardown);
	tcase_add_test(file, test_file_with_partials);
	tcase_add_test(file, test_file_failures);
	tcase_add_test(file, test_cache);
	tcase_add_test(file, test_concurrent_first_use);
	suite_add_tcase(s, file);
	return s;
}

UNIT_SUITE(tmpl_suite)
