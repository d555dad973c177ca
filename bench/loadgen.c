/* loadgen: a closed-loop load generator for conch's POST /slack/commands.
 *
 * N keep-alive HTTP/1.1 connections to one address, driven by one epoll
 * thread (the machine is small: a thread per connection would take CPU from
 * the server and PostgreSQL being measured). Each request is a slash command
 * signed as Slack signs it (v0 HMAC-SHA256) with OpenSSL, so the
 * server does all the work it does in production. Every answer must be a 200
 * whose body is a JSON object with a "text" that is not one of conch's
 * failure replies; anything else is counted as an error.
 *
 * Closed loop (default): a connection sends its next request as soon as the
 * previous answer arrives, so the latencies are service times under N
 * concurrent requests, not the latency an open stream of arrivals would see
 * (coordinated omission; bench/README.md). Open loop (--rate R): request i
 * is due at start + i/R whatever happened before; it goes out on the first
 * idle connection, and its latency counts from when it was due, so time
 * spent waiting for a connection is included. Every latency of the measured
 * window is kept and percentiles are exact (nearest rank over the sorted
 * samples).
 *
 * Modes:
 *   onoff  for --duration seconds after --warmup: each connection picks a
 *          random team, user and thing, sends "/dibs on thing-K", then
 *          "/dibs off thing-K" as the same user, and repeats.
 *   timed  --count requests "/dibs on rel-I for Ds" (I = 0..count-1), team
 *          I mod --teams, a user of its own, D = --for-base + I mod
 *          --for-spread: that many timed holds, due spread over --for-spread
 *          seconds.
 *
 * The result is one JSON object on standard output. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONNS_MAX       1024
#define REQ_MAX         2048
#define RESP_MAX        16384
#define SAMPLES_MAX     (50L * 1000 * 1000) /* a bound on memory: 400 MB of samples */
#define TIMEOUT_NS      (10LL * 1000000000) /* one request; then it is an error */
#define DRAIN_NS        (10LL * 1000000000) /* in-flight requests at the end */
#define BAD_SHOWN       5                   /* unexpected answers echoed to stderr */
#define ID_BASE         1000000             /* team T<ID_BASE+n>, user U<ID_BASE+n> */
#define TIMED_USER_BASE 9000000

enum kind { K_ON, K_OFF, K_TIMED, K_KINDS };
static const char *const kind_name[K_KINDS] = {"on", "off", "timed"};

enum error_class { E_IO, E_HTTP, E_JSON, E_REPLY, E_TIMEOUT, E_CLASSES };
static const char *const error_name[E_CLASSES] = {"io", "http_status", "not_json", "reply",
                                                  "timeout"};

/* Replies conch gives when it could not do what was asked. */
static const char *const failure_marks[] = {
    "can't reach its database", "Something went wrong", "isn't installed", "/dibs upgrade",
    "Unknown command",
};

struct options {
	const char *host;
	int port;
	int conns;
	double duration, warmup;
	long count;
	int teams, users, things;
	int for_base, for_spread;
	const char *secret;
	int timed;
	double rate; /* open loop: requests per second; 0: closed loop */
	unsigned long long seed;
};

struct samples {
	int64_t *ns;
	long n, cap;
};

struct conn {
	int fd;
	int busy;
	enum kind kind;
	int team, user, thing;
	long timed_index;
	int off_next;    /* the next request is the "off" of the last "on" */
	int polling_out; /* EPOLLOUT is in the set: a request is half sent */
	char req[REQ_MAX];
	size_t req_len, sent;
	char resp[RESP_MAX];
	size_t resp_len;
	int64_t started;
	unsigned long long rng;
};

static struct options opt = {
    .host = "127.0.0.1",
    .port = 8080,
    .conns = 1,
    .duration = 10,
    .warmup = 0,
    .count = 1000,
    .teams = 100,
    .users = 50,
    .things = 10,
    .for_base = 5,
    .for_spread = 10,
    .seed = 1,
};

static struct conn conns[CONNS_MAX];
static struct samples lat[K_KINDS];
static long errors[E_CLASSES];
static long completed_total;
static long bad_shown;
static long next_timed;
static long backlog_max; /* open loop: most requests due but not yet sent */
static int epfd;
static struct sockaddr_in addr;

static void __attribute__((noreturn)) die(const char *what)
{
	fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* xorshift64*: cheap and good enough to spread requests. */
static unsigned long long
rnd(unsigned long long *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static int
rnd_below(unsigned long long *s, int n)
{
	return (int)(rnd(s) % (unsigned long long)n);
}

static void
sample_add(struct samples *s, int64_t ns)
{
	if (s->n == s->cap) {
		if (s->cap >= SAMPLES_MAX)
			return;
		s->cap = s->cap ? s->cap * 2 : 65536;
		s->ns = realloc(s->ns, (size_t)s->cap * sizeof(*s->ns));
		if (s->ns == NULL)
			die("realloc");
	}
	s->ns[s->n++] = ns;
}

/* --- requests ---------------------------------------------------------- */

/* Form-encodes the text of a command: letters, digits and "-._" stay. */
static void
form_escape(char *out, size_t len, const char *s)
{
	size_t o = 0;

	for (; *s && o + 4 < len; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == ' ')
			out[o++] = '+';
		else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		         (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_')
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, len - o, "%%%02X", ch);
	}
	out[o] = '\0';
}

static void
sign(const char *ts, const char *body, size_t body_len, char hex[65])
{
	char base[REQ_MAX + 32];
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned maclen = 0;
	int n = snprintf(base, sizeof(base), "v0:%s:", ts);

	memcpy(base + n, body, body_len);
	HMAC(EVP_sha256(), opt.secret, (int)strlen(opt.secret), (unsigned char *)base,
	     (size_t)n + body_len, mac, &maclen);
	for (unsigned i = 0; i < maclen && i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	hex[64] = '\0';
}

/* The form-encoded body Slack sends for a slash command. */
static size_t
command_body(char *out, size_t len, int team, int user, const char *text, unsigned long long r)
{
	char esc[256];
	int n;

	form_escape(esc, sizeof(esc), text);
	n = snprintf(out, len,
	             "token=benchVerificationToken&team_id=T%d&team_domain=t%d&channel_id=C%d"
	             "&channel_name=general&user_id=U%d&user_name=u%d&command=%%2Fdibs&text=%s"
	             "&api_app_id=A0CONCH01&is_enterprise_install=false"
	             "&response_url=https%%3A%%2F%%2Fhooks.slack.com%%2Fcommands%%2FT%d%%2F1%%2Fx"
	             "&trigger_id=%llu.%llu.%016llx",
	             ID_BASE + team, ID_BASE + team, ID_BASE + team, user, user, esc,
	             ID_BASE + team, r % 1000000000ULL, (r >> 30) % 100000000ULL, r);
	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

static void
build_request(struct conn *c, const char *text)
{
	char body[1024], ts[24], sig[65];
	size_t blen = command_body(body, sizeof(body), c->team, c->user, text, rnd(&c->rng));
	int n;

	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	sign(ts, body, blen, sig);
	n = snprintf(c->req, sizeof(c->req),
	             "POST /slack/commands HTTP/1.1\r\n"
	             "Host: %s:%d\r\n"
	             "User-Agent: Slackbot 1.0 (+https://api.slack.com/robots)\r\n"
	             "Content-Type: application/x-www-form-urlencoded\r\n"
	             "X-Slack-Request-Timestamp: %s\r\n"
	             "X-Slack-Signature: v0=%s\r\n"
	             "Content-Length: %zu\r\n"
	             "\r\n%.*s",
	             opt.host, opt.port, ts, sig, blen, (int)blen, body);
	if (blen == 0 || n <= 0 || (size_t)n >= sizeof(c->req)) {
		fprintf(stderr, "loadgen: request too long\n");
		exit(1);
	}
	c->req_len = (size_t)n;
}

/* Picks the next request of c; 0 when there is none (timed mode done). */
static int
next_request(struct conn *c)
{
	char text[128];

	if (opt.timed) {
		if (next_timed >= opt.count)
			return 0;
		c->timed_index = next_timed++;
		c->kind = K_TIMED;
		c->team = (int)(c->timed_index % opt.teams);
		c->user = TIMED_USER_BASE + (int)c->timed_index;
		snprintf(text, sizeof(text), "on rel-%ld for %lds", c->timed_index,
		         opt.for_base + c->timed_index % opt.for_spread);
	} else if (c->off_next) {
		c->kind = K_OFF;
		c->off_next = 0;
		snprintf(text, sizeof(text), "off thing-%d", c->thing);
	} else {
		c->kind = K_ON;
		c->off_next = 1;
		c->team = rnd_below(&c->rng, opt.teams);
		c->user = ID_BASE + rnd_below(&c->rng, opt.users);
		c->thing = rnd_below(&c->rng, opt.things);
		snprintf(text, sizeof(text), "on thing-%d", c->thing);
	}
	build_request(c, text);
	return 1;
}

/* --- connections --------------------------------------------------------- */

static void
conn_open(struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		die("socket");
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Loopback connects at once; blocking keeps this simple. */
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("connect");
	if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->busy = 0;
	c->polling_out = 0;
	c->off_next = 0; /* start a fresh on/off pair after a reconnect */
}

/* Asks epoll for writability only while a request is half sent. */
static void
want_write(struct conn *c, int on)
{
	struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};

	if (c->polling_out == on)
		return;
	c->polling_out = on;
	epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
fail(struct conn *c, enum error_class e)
{
	errors[e]++;
	if (c->kind == K_TIMED)
		fprintf(stderr, "loadgen: timed request %ld failed (%s)\n", c->timed_index,
		        error_name[e]);
	conn_close(c);
}

static void
send_some(struct conn *c)
{
	while (c->sent < c->req_len) {
		ssize_t n = write(c->fd, c->req + c->sent, c->req_len - c->sent);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			want_write(c, 1);
			return;
		}
		if (n <= 0) {
			fail(c, E_IO);
			return;
		}
		c->sent += (size_t)n;
	}
	want_write(c, 0);
}

/* Sends c's next request; its latency counts from due (now when 0). */
static void
start(struct conn *c, int64_t due)
{
	if (c->fd < 0)
		conn_open(c);
	if (!next_request(c))
		return;
	c->busy = 1;
	c->sent = 0;
	c->resp_len = 0;
	c->started = due ? due : mono_ns();
	send_some(c);
}

/* --- answers --------------------------------------------------------------- */

/* The value of header name in the head, or NULL. */
static const char *
header(const char *head, const char *name)
{
	size_t n = strlen(name);
	const char *p = strstr(head, "\r\n");

	while (p && p[2] != '\r') {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			p += n + 1;
			while (*p == ' ')
				p++;
			return p;
		}
		p = strstr(p, "\r\n");
	}
	return NULL;
}

static void
show_bad(const struct conn *c, const char *why, const char *body, size_t len)
{
	if (bad_shown++ >= BAD_SHOWN)
		return;
	fprintf(stderr, "loadgen: unexpected answer to %s (%s): %.*s\n", kind_name[c->kind], why,
	        (int)(len > 300 ? 300 : len), body);
}

/* Checks a whole answer: 200, a JSON object, a reply that is not a failure. */
static int
judge(const struct conn *c, int status, const char *body, size_t len)
{
	json_error_t jerr;
	json_t *root;
	const char *text;
	int e = -1;

	if (status != 200) {
		show_bad(c, "status", body, len);
		return E_HTTP;
	}
	root = json_loadb(body, len, 0, &jerr);
	text = json_string_value(json_object_get(root, "text"));
	if (text == NULL) {
		show_bad(c, "not JSON with text", body, len);
		e = E_JSON;
	} else if (c->kind == K_TIMED && strstr(text, "is yours until") == NULL) {
		show_bad(c, "no timed hold", body, len);
		e = E_REPLY;
	} else {
		for (size_t i = 0; i < sizeof(failure_marks) / sizeof(*failure_marks); i++)
			if (strstr(text, failure_marks[i])) {
				show_bad(c, "failure reply", body, len);
				e = E_REPLY;
				break;
			}
	}
	json_decref(root);
	return e;
}

static int dechunk(struct conn *c, size_t off, size_t *len);

/* Returns 1 when a whole answer is in c->resp, 0 when more is needed, -1
 * when it cannot be parsed. */
static int
parse(struct conn *c, int *status, size_t *body_off, size_t *body_len, int *closes)
{
	char *end, *cl, *conn_hdr, *te;
	long long n;
	int chunked;

	c->resp[c->resp_len] = '\0';
	end = strstr(c->resp, "\r\n\r\n");
	if (end == NULL)
		return c->resp_len + 1 >= sizeof(c->resp) ? -1 : 0;
	*end = '\0'; /* the head as one string, for header() */
	if (sscanf(c->resp, "HTTP/1.%*c %d", status) != 1)
		return -1;
	cl = (char *)header(c->resp, "Content-Length");
	conn_hdr = (char *)header(c->resp, "Connection");
	*closes = conn_hdr && strncasecmp(conn_hdr, "close", 5) == 0;
	te = (char *)header(c->resp, "Transfer-Encoding");
	chunked = te && strncasecmp(te, "chunked", 7) == 0;
	n = cl ? strtoll(cl, NULL, 10) : -1;
	*end = '\r';
	if (chunked) {
		*body_off = (size_t)(end + 4 - c->resp);
		return dechunk(c, *body_off, body_len);
	}
	if (n < 0 || (size_t)n + (size_t)(end + 4 - c->resp) >= sizeof(c->resp))
		return -1;
	*body_off = (size_t)(end + 4 - c->resp);
	*body_len = (size_t)n;
	return c->resp_len >= *body_off + *body_len;
}

/* A chunked body starting at off (the peer's Bolt app sends one): 0 while
 * incomplete; once complete it is joined in place (*len its length, the
 * response ends with it) and 1 is returned; -1 when it cannot be parsed. */
static int
dechunk(struct conn *c, size_t off, size_t *len)
{
	size_t in = off, out = off;
	int pass;

	for (pass = 0; pass < 2; pass++) {
		in = off;
		for (;;) {
			char *endp, *eol = strstr(c->resp + in, "\r\n");
			unsigned long size;

			if (eol == NULL)
				return 0;
			size = strtoul(c->resp + in, &endp, 16);
			if (endp == c->resp + in)
				return -1;
			in = (size_t)(eol + 2 - c->resp);
			if (size == 0)
				break;
			if (c->resp_len < in + size + 2)
				return 0;
			if (pass == 1) {
				memmove(c->resp + out, c->resp + in, size);
				out += size;
			}
			in += size + 2;
		}
		if (c->resp_len < in + 2)
			return 0; /* the empty line after the last chunk (no trailers) */
	}
	*len = out - off;
	c->resp_len = out;
	c->resp[out] = '\0';
	return 1;
}

static void
receive(struct conn *c, int64_t measure_from, int64_t measure_to)
{
	int status = 0, closes = 0, e, done;
	size_t off = 0, len = 0;
	int64_t now;

	for (;;) {
		ssize_t n = read(c->fd, c->resp + c->resp_len, sizeof(c->resp) - 1 - c->resp_len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n == 0 && !c->busy) { /* an idle connection closed: not an error */
			conn_close(c);
			return;
		}
		if (n <= 0 || !c->busy) {
			fail(c, E_IO);
			return;
		}
		c->resp_len += (size_t)n;
		done = parse(c, &status, &off, &len, &closes);
		if (done < 0) {
			fail(c, E_HTTP);
			return;
		}
		if (done)
			break;
	}
	now = mono_ns();
	completed_total++;
	e = judge(c, status, c->resp + off, len);
	if (e >= 0)
		errors[e]++;
	else if (c->started >= measure_from && c->started < measure_to)
		sample_add(&lat[c->kind], now - c->started);
	c->busy = 0;
	if (closes || c->resp_len != off + len)
		conn_close(c);
}

/* --- results ------------------------------------------------------------- */

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least q of all at or below it. */
static double
rank_ms(const struct samples *s, double q)
{
	long i;

	if (s->n == 0)
		return 0;
	i = (long)((double)s->n * q + 0.999999999) - 1;
	if (i < 0)
		i = 0;
	if (i >= s->n)
		i = s->n - 1;
	return (double)s->ns[i] / 1e6;
}

static json_t *
summary(struct samples *s, double seconds)
{
	double sum = 0;

	if (s->n > 0)
		qsort(s->ns, (size_t)s->n, sizeof(*s->ns), cmp_i64);
	for (long i = 0; i < s->n; i++)
		sum += (double)s->ns[i];
	return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "requests",
	                 (json_int_t)s->n, "rps", seconds > 0 ? (double)s->n / seconds : 0.0,
	                 "mean_ms", s->n ? sum / (double)s->n / 1e6 : 0.0, "p50_ms",
	                 rank_ms(s, 0.50), "p90_ms", rank_ms(s, 0.90), "p99_ms", rank_ms(s, 0.99),
	                 "p999_ms", rank_ms(s, 0.999), "min_ms", rank_ms(s, 0.0), "max_ms",
	                 rank_ms(s, 1.0));
}

/* Our own CPU time, so the report can say what the load generator took
 * from the machine. */
static double
cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void
report(double seconds, long dropped)
{
	struct samples all = {0};
	json_t *out, *errs = json_object();
	long nerr = 0;

	for (int k = 0; k < K_KINDS; k++)
		for (long i = 0; i < lat[k].n; i++)
			sample_add(&all, lat[k].ns[i]);
	for (int e = 0; e < E_CLASSES; e++) {
		json_object_set_new(errs, error_name[e], json_integer(errors[e]));
		nerr += errors[e];
	}
	out = summary(&all, seconds);
	json_object_set_new(out, "mode", json_string(opt.timed ? "timed" : "onoff"));
	json_object_set_new(out, "loop", json_string(opt.rate > 0 ? "open" : "closed"));
	if (opt.rate > 0) {
		json_object_set_new(out, "rate", json_real(opt.rate));
		json_object_set_new(out, "backlog_max", json_integer(backlog_max));
	}
	json_object_set_new(out, "connections", json_integer(opt.conns));
	json_object_set_new(out, "seconds", json_real(seconds));
	json_object_set_new(out, "errors", json_integer(nerr + dropped));
	json_object_set_new(errs, "unfinished", json_integer(dropped));
	json_object_set_new(out, "error_detail", errs);
	json_object_set_new(out, "completed_total", json_integer(completed_total));
	json_object_set_new(out, "cpu_s", json_real(cpu_seconds()));
	for (int k = 0; k < K_KINDS; k++)
		if (lat[k].n)
			json_object_set_new(out, kind_name[k], summary(&lat[k], seconds));
	json_dumpf(out, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(out);
	free(all.ns);
}

/* --- main ---------------------------------------------------------------- */

static void __attribute__((noreturn)) usage(void)
{
	fputs("usage: loadgen --secret S [--host 127.0.0.1] [--port 8080] [--connections N]\n"
	      "         [--duration SEC] [--warmup SEC] [--teams N] [--users N] [--things N]\n"
	      "         [--seed N] [--rate PER_SECOND]\n"
	      "         [--timed --count N --for-base SEC --for-spread SEC]\n",
	      stderr);
	exit(2);
}

/* A number from the command line, within [lo, hi]. */
static double
num(const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "loadgen: %s is not a number from %g to %g\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static void
parse_args(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--timed") == 0) {
			opt.timed = 1;
			continue;
		}
		if (v == NULL)
			usage();
		i++;
		if (strcmp(a, "--host") == 0)
			opt.host = v;
		else if (strcmp(a, "--port") == 0)
			opt.port = (int)num(v, 1, 65535);
		else if (strcmp(a, "--connections") == 0)
			opt.conns = (int)num(v, 1, CONNS_MAX);
		else if (strcmp(a, "--duration") == 0)
			opt.duration = num(v, 0.1, 3600);
		else if (strcmp(a, "--warmup") == 0)
			opt.warmup = num(v, 0, 3600);
		else if (strcmp(a, "--count") == 0)
			opt.count = (long)num(v, 1, 1e7);
		else if (strcmp(a, "--teams") == 0)
			opt.teams = (int)num(v, 1, 1e7);
		else if (strcmp(a, "--users") == 0)
			opt.users = (int)num(v, 1, 1e6);
		else if (strcmp(a, "--things") == 0)
			opt.things = (int)num(v, 1, 1e6);
		else if (strcmp(a, "--for-base") == 0)
			opt.for_base = (int)num(v, 1, 86400);
		else if (strcmp(a, "--for-spread") == 0)
			opt.for_spread = (int)num(v, 1, 86400);
		else if (strcmp(a, "--rate") == 0)
			opt.rate = num(v, 1, 1e6);
		else if (strcmp(a, "--seed") == 0)
			opt.seed = (unsigned long long)num(v, 0, 1e15);
		else if (strcmp(a, "--secret") == 0)
			opt.secret = v;
		else
			usage();
	}
	if (opt.secret == NULL || *opt.secret == '\0' || (opt.timed && opt.rate > 0))
		usage();
}

/* Fails requests that took too long; returns how many are in flight. */
static int
sweep(int64_t now)
{
	int inflight = 0;

	for (int i = 0; i < opt.conns; i++) {
		if (!conns[i].busy)
			continue;
		if (now - conns[i].started > TIMEOUT_NS)
			fail(&conns[i], E_TIMEOUT);
		else
			inflight++;
	}
	return inflight;
}

/* Closed loop: every idle connection sends at once. Open loop: the
 * requests due by now (and before the end) go out on idle connections, the
 * oldest first. Returns 0 once there is nothing more to send. */
static int
issue(int64_t now, int64_t t0, int64_t end, long *sent_open)
{
	int64_t due;

	if (opt.rate <= 0 && !opt.timed && now >= end)
		return 0;
	for (int i = 0; i < opt.conns; i++) {
		if (conns[i].busy)
			continue;
		if (opt.rate <= 0) {
			start(&conns[i], 0);
			continue;
		}
		due = t0 + (int64_t)((double)*sent_open * 1e9 / opt.rate);
		if (due >= end)
			return 0;
		if (due > now)
			break;
		start(&conns[i], due);
		(*sent_open)++;
	}
	if (opt.rate > 0) {
		long due_now = (long)((double)(now - t0) * opt.rate / 1e9) + 1;

		if (due_now - *sent_open > backlog_max)
			backlog_max = due_now - *sent_open;
	}
	return !opt.timed || next_timed < opt.count;
}

/* How long epoll may wait: until the next open-loop request is due. */
static struct timespec
wait_for(int64_t now, int64_t t0, long sent_open, int issuing)
{
	int64_t ns = 100 * 1000000LL, due;

	if (issuing && opt.rate > 0) {
		due = t0 + (int64_t)((double)sent_open * 1e9 / opt.rate);
		if (due - now < ns)
			ns = due > now ? due - now : 0;
	}
	return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

static void
handle_events(int64_t measure_from, int64_t end, const struct timespec *tmo)
{
	struct epoll_event evs[256];
	int n = epoll_pwait2(epfd, evs, 256, tmo, NULL);

	if (n < 0 && errno != EINTR)
		die("epoll_pwait2");
	for (int i = 0; i < n; i++) {
		struct conn *c = evs[i].data.ptr;

		if (c->fd < 0)
			continue;
		if (evs[i].events & EPOLLOUT)
			send_some(c);
		if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			receive(c, measure_from, end);
	}
}

int
main(int argc, char **argv)
{
	struct timespec tmo;
	int64_t t0, measure_from, end, now;
	int issuing = 1, inflight;
	long dropped = 0, sent_open = 0;

	parse_args(argc, argv);
	addr.sin_family = AF_INET;
	addr.sin_port = htons((uint16_t)opt.port);
	if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) {
		fprintf(stderr, "loadgen: --host must be an IPv4 address\n");
		return 2;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0)
		die("epoll_create1");
	for (int i = 0; i < opt.conns; i++) {
		conns[i].fd = -1;
		conns[i].rng =
		    (opt.seed + 1) * 0x9E3779B97F4A7C15ULL + (unsigned long long)i * 7919 + 1;
		conn_open(&conns[i]);
	}
	t0 = mono_ns();
	measure_from = t0 + (int64_t)(opt.warmup * 1e9);
	end = opt.timed ? INT64_MAX : measure_from + (int64_t)(opt.duration * 1e9);
	for (;;) {
		now = mono_ns();
		if (issuing)
			issuing = issue(now, t0, end, &sent_open);
		inflight = sweep(now);
		if (!issuing && inflight == 0)
			break;
		if (now > end && now - end > DRAIN_NS) {
			/* In the open loop, requests still unsent count as lost too. */
			dropped =
			    inflight +
			    (opt.rate > 0 ? (long)((double)(end - t0) * opt.rate / 1e9) - sent_open
			                  : 0);
			break;
		}
		tmo = wait_for(now, t0, sent_open, issuing);
		handle_events(measure_from, end, &tmo);
	}
	now = mono_ns();
	report(opt.timed ? (double)(now - measure_from) / 1e9 : opt.duration, dropped);
	return 0;
}
