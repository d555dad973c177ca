/* A Mustache subset. A template is parsed once into a flat token list in
 * which each section knows the index of its closing tag; rendering walks
 * that list with a context stack that lives on the C stack.
 *
 * Values print as: strings as-is, integers in decimal, reals with %.15g,
 * true and false as "true" and "false" (as mustache.js does), null,
 * objects and arrays as nothing. Standalone-line trimming is not done:
 * whitespace around section tags stays, which HTML does not mind.
 * Also supported: {{! comment}}, {{& name}} (raw) and {{> file}} (a
 * partial from the template directory, rendered in the current context). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tmpl.h"
#include "util.h"

#define TMPL_MAX_NESTING   32 /* sections open at once in one template */
#define TMPL_MAX_PARTIALS  8  /* partials within partials */
#define TMPL_MAX_FILE_SIZE (1024 * 1024)

enum tok_kind { T_TEXT, T_VAR, T_RAW, T_SECTION, T_INVERTED, T_CLOSE, T_PARTIAL };

struct tok {
	enum tok_kind kind;
	const char *s; /* text, or the tag's name */
	size_t len;
	size_t end; /* sections: index of the matching T_CLOSE */
};

struct tmpl {
	char *name; /* NULL for a template given as text */
	char *text;
	struct tok *toks;
	size_t ntoks;
};

struct ctx {
	json_t *v;
	const struct ctx *up;
};

struct cache_entry {
	struct tmpl *t;
	struct cache_entry *next;
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cache_entry *cache;
static char *tmpl_dir;

/* --- parsing ------------------------------------------------------------ */

static void
push_tok(struct tmpl *t, size_t *cap, enum tok_kind kind, const char *s, size_t len)
{
	if (t->ntoks == *cap) {
		*cap = *cap ? *cap * 2 : 32;
		t->toks = xrealloc(t->toks, *cap * sizeof(t->toks[0]));
	}
	t->toks[t->ntoks++] = (struct tok){kind, s, len, 0};
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t'))
		(*s)++, (*len)--;
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
		(*len)--;
}

/* Classifies the inside of a {{...}} tag (sigil and name). */
static enum tok_kind
tag_kind(const char **s, size_t *len)
{
	static const struct {
		char sigil;
		enum tok_kind kind;
	} sigils[] = {
	    {'#', T_SECTION}, {'^', T_INVERTED}, {'/', T_CLOSE}, {'>', T_PARTIAL}, {'&', T_RAW}};

	trim(s, len);
	for (size_t i = 0; *len > 0 && i < ARRAY_LEN(sigils); i++) {
		if (**s == sigils[i].sigil) {
			(*s)++, (*len)--;
			trim(s, len);
			return sigils[i].kind;
		}
	}
	return T_VAR;
}

/* Checks nesting: a close must name the innermost open section. */
static int
nest(struct tmpl *t, size_t *stack, size_t *depth)
{
	struct tok *tk = &t->toks[t->ntoks - 1];
	struct tok *open;

	if (tk->kind == T_SECTION || tk->kind == T_INVERTED) {
		if (*depth == TMPL_MAX_NESTING)
			return -1;
		stack[(*depth)++] = t->ntoks - 1;
	} else if (tk->kind == T_CLOSE) {
		if (*depth == 0)
			return -1;
		open = &t->toks[stack[--(*depth)]];
		if (open->len != tk->len || memcmp(open->s, tk->s, tk->len) != 0)
			return -1;
		open->end = t->ntoks - 1;
	}
	return 0;
}

/* Reads one tag starting at p ("{{"); returns the position after it. */
static const char *
parse_tag(struct tmpl *t, size_t *cap, const char *p)
{
	const char *name, *close;
	enum tok_kind kind;
	size_t len;

	if (p[2] == '{') {
		name = p + 3;
		close = strstr(name, "}}}");
		if (close == NULL)
			return NULL;
		len = (size_t)(close - name);
		trim(&name, &len);
		kind = T_RAW;
		close += 3;
	} else {
		name = p + 2;
		close = strstr(name, "}}");
		if (close == NULL)
			return NULL;
		len = (size_t)(close - name);
		close += 2;
		if (len > 0 && *name == '!')
			return close;
		kind = tag_kind(&name, &len);
	}
	if (len == 0 || memchr(name, '{', len) || memchr(name, '}', len) || *name == '=')
		return NULL;
	push_tok(t, cap, kind, name, len);
	return close;
}

static int
parse(struct tmpl *t)
{
	size_t stack[TMPL_MAX_NESTING], depth = 0, cap = 0;
	const char *p = t->text, *open;

	while (*p) {
		open = strstr(p, "{{");
		if (open == NULL)
			open = p + strlen(p);
		if (open > p)
			push_tok(t, &cap, T_TEXT, p, (size_t)(open - p));
		if (*open == '\0')
			break;
		size_t before = t->ntoks;
		p = parse_tag(t, &cap, open);
		if (p == NULL || (t->ntoks > before && nest(t, stack, &depth) != 0))
			return -1;
	}
	return depth == 0 ? 0 : -1;
}

static void
tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	free(t->name);
	free(t->text);
	free(t->toks);
	free(t);
}

/* Takes ownership of text. */
static struct tmpl *
tmpl_compile(char *text, const char *name)
{
	struct tmpl *t = xcalloc(1, sizeof(*t));

	t->text = text;
	t->name = name ? xstrdup(name) : NULL;
	if (parse(t) != 0) {
		if (name != NULL)
			log_error("template %s: unclosed or mismatched tag", name);
		tmpl_free(t);
		return NULL;
	}
	return t;
}

/* --- the file cache ----------------------------------------------------- */

static char *
read_file(const char *path)
{
	struct buf b;
	char chunk[8192];
	size_t n;
	int bad;
	FILE *f = fopen(path, "rb");

	if (f == NULL)
		return NULL;
	buf_init(&b);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= TMPL_MAX_FILE_SIZE)
		buf_append(&b, chunk, n);
	bad = ferror(f);
	fclose(f);
	if (bad || b.len > TMPL_MAX_FILE_SIZE || memchr(b.data, '\0', b.len)) {
		log_error("template %s: unreadable, too large or binary", path);
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static int
bad_name(const char *name)
{
	return name == NULL || name[0] == '\0' || name[0] == '/' || strstr(name, "..") != NULL;
}

static struct tmpl *
cache_find(const char *name)
{
	for (struct cache_entry *e = cache; e != NULL; e = e->next)
		if (strcmp(e->t->name, name) == 0)
			return e->t;
	return NULL;
}

/* Cached templates are never freed while serving (tmpl_init runs before
 * threads start), so the pointer stays valid after the lock is dropped. */
static struct tmpl *
load(const char *name)
{
	struct cache_entry *e;
	struct tmpl *t;
	char *path, *text;

	if (bad_name(name))
		return NULL;
	pthread_mutex_lock(&cache_lock);
	t = cache_find(name);
	if (t == NULL) {
		path = xasprintf("%s/%s", tmpl_dir ? tmpl_dir : "assets", name);
		text = read_file(path);
		free(path);
		t = text ? tmpl_compile(text, name) : NULL;
		if (t != NULL) {
			e = xmalloc(sizeof(*e));
			e->t = t;
			e->next = cache;
			cache = e;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return t;
}

void
tmpl_init(const char *dir)
{
	pthread_mutex_lock(&cache_lock);
	while (cache != NULL) {
		struct cache_entry *next = cache->next;

		tmpl_free(cache->t);
		free(cache);
		cache = next;
	}
	free(tmpl_dir);
	tmpl_dir = dir ? xstrdup(dir) : NULL;
	pthread_mutex_unlock(&cache_lock);
}

/* --- rendering ---------------------------------------------------------- */

/* Resolves a (possibly dotted) name: the first part is looked up outward
 * through the context stack, the rest inside what it found. */
static json_t *
lookup(const struct ctx *c, const char *name, size_t len)
{
	const char *dot;
	json_t *v = NULL;
	size_t part;

	if (len == 1 && name[0] == '.')
		return c ? c->v : NULL;
	dot = memchr(name, '.', len);
	part = dot ? (size_t)(dot - name) : len;
	for (; c != NULL && v == NULL; c = c->up)
		if (json_is_object(c->v))
			v = json_object_getn(c->v, name, part);
	while (v != NULL && dot != NULL) {
		name = dot + 1;
		len -= part + 1;
		dot = memchr(name, '.', len);
		part = dot ? (size_t)(dot - name) : len;
		v = json_is_object(v) ? json_object_getn(v, name, part) : NULL;
	}
	return v;
}

static int
truthy(json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
	case JSON_TRUE:
		return 1;
	case JSON_ARRAY:
		return json_array_size(v) > 0;
	case JSON_STRING:
		return json_string_length(v) > 0;
	case JSON_INTEGER:
		return json_integer_value(v) != 0;
	case JSON_REAL:
		return json_real_value(v) != 0.0;
	default:
		return 0;
	}
}

static void
put_escaped(struct buf *out, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		switch (s[i]) {
		case '&':
			buf_puts(out, "&amp;");
			break;
		case '<':
			buf_puts(out, "&lt;");
			break;
		case '>':
			buf_puts(out, "&gt;");
			break;
		case '"':
			buf_puts(out, "&quot;");
			break;
		case '\'':
			buf_puts(out, "&#39;");
			break;
		default:
			buf_putc(out, s[i]);
		}
	}
}

static void
put_value(struct buf *out, json_t *v, int escape)
{
	char num[64];
	const char *s = num;
	size_t len;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_STRING:
		s = json_string_value(v);
		len = json_string_length(v);
		break;
	case JSON_INTEGER:
		len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		                       json_integer_value(v));
		break;
	case JSON_REAL:
		len = (size_t)snprintf(num, sizeof(num), "%.15g", json_real_value(v));
		break;
	case JSON_TRUE:
		s = "true", len = 4;
		break;
	case JSON_FALSE:
		s = "false", len = 5;
		break;
	default:
		return;
	}
	if (escape)
		put_escaped(out, s, len);
	else
		buf_append(out, s, len);
}

static int render(const struct tmpl *t, size_t from, size_t to, const struct ctx *c,
                  struct buf *out, int depth);

static int
render_section(const struct tmpl *t, size_t i, const struct ctx *c, struct buf *out, int depth)
{
	const struct tok *tk = &t->toks[i];
	json_t *v = lookup(c, tk->s, tk->len);
	struct ctx inner = {v, c};

	if (tk->kind == T_INVERTED)
		return truthy(v) ? 0 : render(t, i + 1, tk->end, c, out, depth);
	if (!truthy(v))
		return 0;
	if (!json_is_array(v))
		return render(t, i + 1, tk->end, &inner, out, depth);
	for (size_t k = 0; k < json_array_size(v); k++) {
		inner.v = json_array_get(v, k);
		if (render(t, i + 1, tk->end, &inner, out, depth) != 0)
			return -1;
	}
	return 0;
}

static int
render_partial(const struct tok *tk, const struct ctx *c, struct buf *out, int depth)
{
	char *name = xstrndup(tk->s, tk->len);
	struct tmpl *p = NULL;

	if (depth < TMPL_MAX_PARTIALS)
		p = load(name);
	if (p == NULL)
		log_error("template partial %s: missing, invalid or nested too deeply", name);
	free(name);
	return p ? render(p, 0, p->ntoks, c, out, depth + 1) : -1;
}

static int
render(const struct tmpl *t, size_t from, size_t to, const struct ctx *c, struct buf *out,
       int depth)
{
	for (size_t i = from; i < to; i++) {
		const struct tok *tk = &t->toks[i];

		switch (tk->kind) {
		case T_TEXT:
			buf_append(out, tk->s, tk->len);
			break;
		case T_VAR:
		case T_RAW:
			put_value(out, lookup(c, tk->s, tk->len), tk->kind == T_VAR);
			break;
		case T_SECTION:
		case T_INVERTED:
			if (render_section(t, i, c, out, depth) != 0)
				return -1;
			i = tk->end;
			break;
		case T_PARTIAL:
			if (render_partial(tk, c, out, depth) != 0)
				return -1;
			break;
		case T_CLOSE:
			break;
		}
	}
	return 0;
}

static char *
render_tmpl(const struct tmpl *t, json_t *data)
{
	struct ctx root = {data, NULL};
	struct buf out;

	buf_init(&out);
	if (render(t, 0, t->ntoks, &root, &out, 0) != 0) {
		buf_free(&out);
		return NULL;
	}
	return buf_steal(&out);
}

char *
tmpl_render(const char *text, json_t *data)
{
	struct tmpl *t;
	char *out;

	if (text == NULL || (t = tmpl_compile(xstrdup(text), NULL)) == NULL)
		return NULL;
	out = render_tmpl(t, data);
	tmpl_free(t);
	return out;
}

char *
tmpl_render_file(const char *name, json_t *data)
{
	struct tmpl *t = load(name);

	if (t == NULL) {
		log_error("template %s: missing or invalid", bad_name(name) ? "(bad name)" : name);
		return NULL;
	}
	return render_tmpl(t, data);
}
