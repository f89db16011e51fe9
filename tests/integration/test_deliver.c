/*
 * Integration test of deliver against real HTTP servers on loopback: an
 * in-process libevent evhttp server on the same event loop, plus a
 * listening socket that never accepts (a target that hangs). Checks the
 * request as the receiver sees it (headers, signature), the outcome
 * mapping, the address policy, the caps and their fairness, cancellation.
 */
#include "promo_webhooks/deliver.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "promo_webhooks/sign.h"
#include "testutil.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

static struct event_base *base;

/* ---- the receiver ---------------------------------------------------- */

struct seen {
	char content_type[64];
	char user_agent[64];
	char webhook_id[64];
	char timestamp[32];
	char signature[128];
	int has_signature;
	char expect[32];
	int has_expect;
	char method[8];
	char body[256];
	size_t body_len;
};

struct server {
	struct evhttp *http;
	int port;
	int hits_ok;         /* /ok */
	int hits_redirected; /* /after-redirect */
	int hits_total;
	int hits_echo;       /* /echo/<n>?n=<n> with body {"n":<n>} */
	int current;         /* requests received, not yet answered */
	int max_current;
	struct seen last;
};

static void copy_header(struct evkeyvalq *h, const char *name, char *out,
			size_t outlen, int *present)
{
	const char *v = evhttp_find_header(h, name);

	if (present)
		*present = v != NULL;
	snprintf(out, outlen, "%s", v ? v : "");
}

struct delayed {
	struct server *srv;
	struct evhttp_request *req;
};

static void delayed_reply(evutil_socket_t fd, short what, void *arg)
{
	struct delayed *dl = arg;

	(void)fd;
	(void)what;
	dl->srv->current--;
	evhttp_send_reply(dl->req, 200, "OK", NULL);
	free(dl);
}

static void server_cb(struct evhttp_request *req, void *arg)
{
	struct server *srv = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evkeyvalq *in = evhttp_request_get_input_headers(req);
	struct evbuffer *body = evhttp_request_get_input_buffer(req);
	struct evbuffer *out;

	srv->hits_total++;
	if (!path)
		path = "/";
	if (strcmp(path, "/ok") == 0) {
		struct seen *s = &srv->last;
		size_t n = evbuffer_get_length(body);

		srv->hits_ok++;
		copy_header(in, "Content-Type", s->content_type, sizeof(s->content_type), NULL);
		copy_header(in, "User-Agent", s->user_agent, sizeof(s->user_agent), NULL);
		copy_header(in, "webhook-id", s->webhook_id, sizeof(s->webhook_id), NULL);
		copy_header(in, "webhook-timestamp", s->timestamp, sizeof(s->timestamp), NULL);
		copy_header(in, "webhook-signature", s->signature, sizeof(s->signature),
			    &s->has_signature);
		copy_header(in, "Expect", s->expect, sizeof(s->expect), &s->has_expect);
		snprintf(s->method, sizeof(s->method), "%s",
			 evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST" : "other");
		if (n >= sizeof(s->body))
			n = sizeof(s->body) - 1;
		evbuffer_copyout(body, s->body, n);
		s->body[n] = '\0';
		s->body_len = evbuffer_get_length(body);
		evhttp_send_reply(req, 200, "OK", NULL);
	} else if (strncmp(path, "/echo/", 6) == 0) {
		/* Counted when path, query and body name the same n: each
		 * request went to its own URL. */
		const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
		char want_q[32], want_body[32], got[32];
		size_t n = evbuffer_get_length(body);

		snprintf(want_q, sizeof(want_q), "n=%s", path + 6);
		snprintf(want_body, sizeof(want_body), "{\"n\":%s}", path + 6);
		if (n >= sizeof(got))
			n = sizeof(got) - 1;
		evbuffer_copyout(body, got, n);
		got[n] = '\0';
		if (q && strcmp(q, want_q) == 0 && strcmp(got, want_body) == 0)
			srv->hits_echo++;
		evhttp_send_reply(req, 204, "No Content", NULL);
	} else if (strcmp(path, "/fail") == 0) {
		evhttp_send_reply(req, 500, "Internal Server Error", NULL);
	} else if (strcmp(path, "/created") == 0) {
		evhttp_send_reply(req, 204, "No Content", NULL);
	} else if (strcmp(path, "/redirect") == 0) {
		char loc[64];

		snprintf(loc, sizeof(loc), "http://127.0.0.1:%d/after-redirect", srv->port);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Location", loc);
		evhttp_send_reply(req, 302, "Found", NULL);
	} else if (strcmp(path, "/after-redirect") == 0) {
		srv->hits_redirected++;
		evhttp_send_reply(req, 200, "OK", NULL);
	} else if (strcmp(path, "/big") == 0) {
		/* 2 MiB: more than deliver reads. */
		out = evbuffer_new();
		if (out) {
			static char chunk[65536];
			int i;

			memset(chunk, 'x', sizeof(chunk));
			for (i = 0; i < 32; i++)
				evbuffer_add(out, chunk, sizeof(chunk));
		}
		evhttp_send_reply(req, 200, "OK", out);
		if (out)
			evbuffer_free(out);
	} else if (strcmp(path, "/slow") == 0) {
		/* Answered 20 ms later; counts how many are open at once. */
		struct delayed *dl = malloc(sizeof(*dl));
		struct timeval tv = { 0, 20000 };

		if (!dl) {
			evhttp_send_reply(req, 503, "Busy", NULL);
			return;
		}
		dl->srv = srv;
		dl->req = req;
		srv->current++;
		if (srv->current > srv->max_current)
			srv->max_current = srv->current;
		if (event_base_once(base, -1, EV_TIMEOUT, delayed_reply, dl, &tv) < 0) {
			srv->current--;
			free(dl);
			evhttp_send_reply(req, 503, "Busy", NULL);
		}
	} else {
		evhttp_send_reply(req, 404, "Not Found", NULL);
	}
}

static int local_port(evutil_socket_t fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	return ntohs(sin.sin_port);
}

static int server_start(struct server *srv)
{
	struct evhttp_bound_socket *bs;

	memset(srv, 0, sizeof(*srv));
	srv->http = evhttp_new(base);
	if (!srv->http)
		return -1;
	bs = evhttp_bind_socket_with_handle(srv->http, "127.0.0.1", 0);
	if (!bs)
		return -1;
	srv->port = local_port(evhttp_bound_socket_get_fd(bs));
	evhttp_set_gencb(srv->http, server_cb, srv);
	return srv->port > 0 ? 0 : -1;
}

/* A loopback socket that listens but never accepts: connections complete
 * in the kernel's backlog and then nothing ever answers. */
static int hang_listener(int *port)
{
	struct sockaddr_in sin;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 128) < 0) {
		close(fd);
		return -1;
	}
	*port = local_port(fd);
	return fd;
}

/* A loopback port with nothing listening. */
static int closed_port(void)
{
	int port, fd = hang_listener(&port);

	if (fd < 0)
		return -1;
	close(fd);
	return port;
}

/* ---- the client side ------------------------------------------------- */

struct outcome {
	int called;
	struct deliver_result res;
	int64_t done_at_ms; /* monotonic */
	int tag;
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int done_count;

static void on_done(void *arg, const struct deliver_result *res)
{
	struct outcome *o = arg;

	o->called++;
	o->res = *res;
	o->done_at_ms = mono_ms();
	done_count++;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Runs the loop until done_count reaches want or timeout_ms passes. */
static void run_until(int want, int timeout_ms)
{
	struct timeval tv = { 0, 10000 };
	struct event *t = event_new(base, -1, EV_PERSIST, tick, NULL);
	int64_t end = mono_ms() + timeout_ms;

	event_add(t, &tv);
	while (done_count < want && mono_ms() < end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

static void run_for(int ms)
{
	run_until(1 << 30, ms);
}

static char *dup_body(const char *s)
{
	size_t n = strlen(s);
	char *p = malloc(n + 1);

	if (p)
		memcpy(p, s, n + 1);
	return p;
}

/* max_queued: 0, or the saturation bound (deliver_request.max_queued). */
static int submit_capped_body(struct deliver *d, const char *url, const char *body,
			      const char *secret, size_t max_queued, struct outcome *o)
{
	struct deliver_request req;

	memset(&req, 0, sizeof(req));
	req.target = url;
	req.body = dup_body(body);
	req.body_len = strlen(body);
	req.content_type = "application/json";
	req.message_id = "msg_0123456789abcdef0123456789abcdef";
	req.secret = secret;
	req.max_queued = max_queued;
	return deliver_submit(d, &req, on_done, o);
}

static int submit(struct deliver *d, const char *url, const char *body,
		  const char *secret, struct outcome *o)
{
	return submit_capped_body(d, url, body, secret, 0, o);
}

static void config_init(struct config *cfg, long timeout_ms, long total,
			long per_target, int allow_private)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->delivery_timeout_ms = timeout_ms;
	cfg->max_in_flight = total;
	cfg->max_in_flight_per_target = per_target;
	cfg->allow_private_targets = allow_private;
}

static struct deliver *new_deliver(const struct config *cfg)
{
	char err[256];
	struct deliver *d = deliver_new(base, cfg, err, sizeof(err));

	if (!d)
		fprintf(stderr, "deliver_new: %s\n", err);
	return d;
}

/* ---- the cases ------------------------------------------------------- */

static void test_ok_and_headers(struct server *srv)
{
	struct config cfg;
	struct deliver *d;
	struct outcome o;
	char url[128], sig[SIGN_SIGNATURE_LEN];
	const char *body = "{\"id\":\"msg_1\",\"event\":\"Promotion.Created\"}";
	int64_t before = (int64_t)time(NULL), ts;

	config_init(&cfg, 5000, 64, 8, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", srv->port);

	/* Unsigned. */
	memset(&o, 0, sizeof(o));
	done_count = 0;
	CHECK_INT(submit(d, url, body, NULL, &o), 0);
	CHECK_INT(o.called, 0); /* never inside submit */
	CHECK_INT(deliver_pending(d), 1);
	run_until(1, 5000);
	CHECK_INT(o.called, 1);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(o.res.status, 200);
	CHECK_STR(o.res.error, "");
	CHECK(o.res.started_ms / 1000 >= before);
	CHECK(o.res.duration_ms >= 0 && o.res.duration_ms < 5000);
	CHECK_INT(deliver_pending(d), 0);
	CHECK_STR(srv->last.method, "POST");
	CHECK_STR(srv->last.content_type, "application/json");
	CHECK_STR(srv->last.user_agent, "promo-webhooks/" PW_VERSION);
	CHECK_STR(srv->last.webhook_id, "msg_0123456789abcdef0123456789abcdef");
	CHECK_STR(srv->last.body, body);
	CHECK_INT(srv->last.body_len, strlen(body));
	CHECK_INT(srv->last.has_signature, 0);
	CHECK_INT(srv->last.has_expect, 0);
	ts = strtoll(srv->last.timestamp, NULL, 10);
	CHECK(ts >= before && ts <= (int64_t)time(NULL));
	CHECK_INT(ts, o.res.started_ms / 1000);

	/* Signed: the receiver can verify with the secret. */
	memset(&o, 0, sizeof(o));
	done_count = 0;
	CHECK_INT(submit(d, url, body, SECRET, &o), 0);
	run_until(1, 5000);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(srv->last.has_signature, 1);
	ts = strtoll(srv->last.timestamp, NULL, 10);
	CHECK_INT(sign_signature(SECRET, "msg_0123456789abcdef0123456789abcdef", ts,
				 body, strlen(body), sig),
		  0);
	CHECK_STR(srv->last.signature, sig);
	CHECK(strncmp(srv->last.signature, "v1,", 3) == 0);

	/* A malformed secret fails without a request. */
	memset(&o, 0, sizeof(o));
	done_count = 0;
	srv->hits_total = 0;
	CHECK_INT(submit(d, url, body, "not-a-secret", &o), 0);
	run_until(1, 5000);
	CHECK_INT(o.res.outcome, DELIVER_OTHER);
	CHECK_INT(srv->hits_total, 0);

	/* Any 2xx is a success. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/created", srv->port);
	memset(&o, 0, sizeof(o));
	done_count = 0;
	CHECK_INT(submit(d, url, body, NULL, &o), 0);
	run_until(1, 5000);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(o.res.status, 204);

	/* An oversized answer is cut off; the status still decides. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/big", srv->port);
	memset(&o, 0, sizeof(o));
	done_count = 0;
	CHECK_INT(submit(d, url, body, NULL, &o), 0);
	run_until(1, 5000);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(o.res.status, 200);
	deliver_free(d);
}

static void test_error_outcomes(struct server *srv)
{
	struct config cfg;
	struct deliver *d;
	struct outcome o[6];
	char url[128];
	int hang_port, hang_fd, closed;

	memset(o, 0, sizeof(o));
	config_init(&cfg, 300, 64, 8, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	hang_fd = hang_listener(&hang_port);
	CHECK(hang_fd >= 0);
	closed = closed_port();
	CHECK(closed > 0);
	srv->hits_redirected = 0;
	done_count = 0;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/fail", srv->port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[0]), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/redirect", srv->port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[1]), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", hang_port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[2]), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", closed);
	CHECK_INT(submit(d, url, "{}", NULL, &o[3]), 0);
	CHECK_INT(submit(d, "ftp://127.0.0.1/x", "{}", NULL, &o[4]), 0);
	CHECK_INT(submit(d, "not a url", "{}", NULL, &o[5]), 0);
	CHECK_INT(done_count, 0);
	CHECK_INT(deliver_pending(d), 6);
	run_until(6, 5000);
	CHECK_INT(done_count, 6);

	CHECK_INT(o[0].res.outcome, DELIVER_HTTP_STATUS);
	CHECK_INT(o[0].res.status, 500);
	CHECK_STR(o[0].res.error, "HTTP 500");

	CHECK_INT(o[1].res.outcome, DELIVER_HTTP_STATUS);
	CHECK_INT(o[1].res.status, 302);
	CHECK_INT(srv->hits_redirected, 0);

	CHECK_INT(o[2].res.outcome, DELIVER_TIMEOUT);
	CHECK_INT(o[2].res.status, 0);
	CHECK(o[2].res.duration_ms >= 250 && o[2].res.duration_ms < 2000);
	CHECK(o[2].res.error[0] != '\0');

	CHECK_INT(o[3].res.outcome, DELIVER_CONNECT);
	CHECK_INT(o[3].res.status, 0);
	CHECK(o[3].res.error[0] != '\0');

	CHECK_INT(o[4].res.outcome, DELIVER_OTHER);
	CHECK_INT(o[5].res.outcome, DELIVER_OTHER);
	CHECK_INT(deliver_pending(d), 0);

	deliver_free(d);
	close(hang_fd);

	/* A name that does not resolve; TLS to a plain HTTP server. These
	 * classify errors, not time: a resolver's answer or a TLS handshake
	 * under a sanitizer on a busy machine can take longer than the 300 ms
	 * above, so they get a delivery timeout that only a hang reaches. */
	config_init(&cfg, 10000, 64, 8, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	memset(o, 0, sizeof(o));
	done_count = 0;
	CHECK_INT(submit(d, "http://does-not-exist.invalid/x", "{}", NULL, &o[0]), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%d/ok", srv->port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[1]), 0);
	run_until(2, 12000);
	CHECK_INT(o[0].res.outcome, DELIVER_CONNECT);
	CHECK_INT(o[1].res.outcome, DELIVER_TLS);
	CHECK(o[1].res.error[0] != '\0');
	deliver_free(d);
}

static void test_address_policy(struct server *srv)
{
	struct config cfg;
	struct deliver *d;
	struct outcome o[2];
	char url[128];

	memset(o, 0, sizeof(o));
	config_init(&cfg, 2000, 64, 8, 0);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	srv->hits_total = 0;
	done_count = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", srv->port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[0]), 0);
	snprintf(url, sizeof(url), "http://localhost:%d/ok", srv->port);
	CHECK_INT(submit(d, url, "{}", NULL, &o[1]), 0);
	run_until(2, 5000);
	CHECK_INT(done_count, 2);
	CHECK_INT(o[0].res.outcome, DELIVER_REFUSED);
	CHECK(strncmp(o[0].res.error, "target address not allowed: 127.0.0.1",
		      strlen("target address not allowed: 127.0.0.1")) == 0);
	CHECK_INT(o[1].res.outcome, DELIVER_REFUSED);
	CHECK(strncmp(o[1].res.error, "target address not allowed: ",
		      strlen("target address not allowed: ")) == 0);
	run_for(50);
	CHECK_INT(srv->hits_total, 0);
	deliver_free(d);
}

/* n outcome slots and a deliverer for cfg, or NULL (both freed, the
 * failure checked). */
static struct deliver *new_run(const struct config *cfg, int n, struct outcome **o)
{
	struct deliver *d;

	*o = calloc((size_t)n, sizeof(**o));
	CHECK(*o != NULL);
	if (!*o)
		return NULL;
	d = new_deliver(cfg);
	CHECK(d != NULL);
	if (!d) {
		free(*o);
		*o = NULL;
	}
	return d;
}

/* How many of o[0..n) were reported once, delivered. */
static int count_ok(const struct outcome *o, int n)
{
	int i, ok = 0;

	for (i = 0; i < n; i++)
		ok += o[i].called == 1 && o[i].res.outcome == DELIVER_OK;
	return ok;
}

static void test_concurrency(struct server *srv)
{
	enum { N = 1000 };
	struct config cfg;
	struct deliver *d;
	struct outcome *o;
	char url[128];
	int i;

	config_init(&cfg, 10000, 64, 16, 1);
	d = new_run(&cfg, N, &o);
	if (!d)
		return;
	srv->max_current = 0;
	done_count = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", srv->port);
	for (i = 0; i < N; i++)
		CHECK_INT(submit(d, url, "{\"n\":1}", NULL, &o[i]), 0);
	CHECK_INT(deliver_pending(d), N);
	run_until(N, 60000);
	CHECK_INT(done_count, N);
	CHECK_INT(count_ok(o, N), N);
	/* The per-target cap held, and was used. */
	fprintf(stderr, "max concurrent at one target: %d (cap 16)\n", srv->max_current);
	CHECK(srv->max_current <= 16);
	CHECK(srv->max_current >= 8);
	CHECK_INT(deliver_pending(d), 0);
	deliver_free(d);
	free(o);
}

/* More distinct URLs at one target than the URL cache has slots, all
 * queued before any starts: slots are replaced while requests that hold
 * their parsed URL (CURLOPT_CURLU) still wait, and each must still reach
 * its own path and query (under ASan: no parse freed under a request). */
static void test_url_paths(struct server *srv)
{
	enum { N = 6000 };
	struct config cfg;
	struct deliver *d;
	struct outcome *o;
	char url[128], body[32];
	int i;

	config_init(&cfg, 10000, 64, 16, 1);
	d = new_run(&cfg, N, &o);
	if (!d)
		return;
	srv->hits_echo = 0;
	done_count = 0;
	for (i = 0; i < N; i++) {
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo/%d?n=%d", srv->port, i, i);
		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		CHECK_INT(submit(d, url, body, NULL, &o[i]), 0);
	}
	run_until(N, 60000);
	CHECK_INT(done_count, N);
	CHECK_INT(count_ok(o, N), N);
	CHECK_INT(srv->hits_echo, N);
	deliver_free(d);
	free(o);
}

static void test_fairness(struct server *srv)
{
	enum { NA = 20, NB = 20 };
	struct config cfg;
	struct deliver *d;
	struct outcome a[NA], b[NB];
	char url[128];
	int hang_port, hang_fd, i, a_done_before_b = 0, b_ok = 0, a_timeout = 0;
	int64_t b_last = 0;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	config_init(&cfg, 500, 8, 4, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	hang_fd = hang_listener(&hang_port);
	CHECK(hang_fd >= 0);
	done_count = 0;
	/* The hung target gets its work first; the other must not wait. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", hang_port);
	for (i = 0; i < NA; i++)
		CHECK_INT(submit(d, url, "{}", NULL, &a[i]), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", srv->port);
	for (i = 0; i < NB; i++)
		CHECK_INT(submit(d, url, "{}", NULL, &b[i]), 0);
	run_until(NA + NB, 20000);
	CHECK_INT(done_count, NA + NB);
	for (i = 0; i < NB; i++) {
		b_ok += b[i].res.outcome == DELIVER_OK;
		if (b[i].done_at_ms > b_last)
			b_last = b[i].done_at_ms;
	}
	for (i = 0; i < NA; i++) {
		a_timeout += a[i].res.outcome == DELIVER_TIMEOUT;
		a_done_before_b += a[i].done_at_ms < b_last;
		/* The queue wait is not part of the attempt. */
		CHECK(a[i].res.duration_ms < 1500);
	}
	CHECK_INT(b_ok, NB);
	CHECK_INT(a_timeout, NA);
	CHECK_INT(a_done_before_b, 0);
	deliver_free(d);
	close(hang_fd);
}

static int submit_capped(struct deliver *d, const char *url, size_t max_queued,
			 struct outcome *o)
{
	return submit_capped_body(d, url, "{}", NULL, max_queued, o);
}

/*
 * Saturated (max_queued): a long queue whose head has waited a second is
 * saturated only when the target itself is slow. A 20 ms target with its
 * queue behind a low limit drains fast (its queue at its own pace with its
 * cap in flight); a target that never answers does not.
 */
static void test_saturation(struct server *srv)
{
	enum { N = 1000, H = 40 };
	struct config cfg;
	struct deliver *d;
	struct outcome *o = calloc(N + 1, sizeof(*o)), h[H + 1];
	char url[128];
	int i, hang_port, hang_fd;

	CHECK(o != NULL);
	if (!o)
		return;
	memset(h, 0, sizeof(h));
	config_init(&cfg, 10000, 64, 16, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d) {
		free(o);
		return;
	}
	done_count = 0;
	/* 1,000 answers of 20 ms, 16 at a time: 1.25 s. After 1.1 s the
	 * queue is still over 32 and its head has waited over a second. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", srv->port);
	for (i = 0; i < N; i++)
		CHECK_INT(submit_capped(d, url, 32, &o[i]), 0);
	run_for(1100);
	fprintf(stderr, "20 ms target after 1.1 s: %zu pending\n", deliver_pending(d));
	CHECK(deliver_pending(d) >= 32 + 16);
	CHECK_INT(submit_capped(d, url, 32, &o[N]), 0);
	run_until(N + 1, 10000);
	CHECK_INT(done_count, N + 1);

	/* A target that never answers: 16 running, 24 waiting; a second
	 * later the next is refused. */
	hang_fd = hang_listener(&hang_port);
	CHECK(hang_fd >= 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", hang_port);
	for (i = 0; i < H; i++)
		CHECK_INT(submit_capped(d, url, 8, &h[i]), 0);
	run_for(1100);
	CHECK_INT(submit_capped(d, url, 8, &h[H]), DELIVER_SATURATED);
	deliver_free(d);
	if (hang_fd >= 0)
		close(hang_fd);
	free(o);
}

static void test_cancel(void)
{
	enum { N = 6 };
	struct config cfg;
	struct deliver *d;
	struct outcome o[N];
	char url[128];
	int hang_port, hang_fd, i, cancelled = 0;

	memset(o, 0, sizeof(o));
	config_init(&cfg, 10000, 64, 2, 1);
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	hang_fd = hang_listener(&hang_port);
	CHECK(hang_fd >= 0);
	done_count = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hang", hang_port);
	for (i = 0; i < N; i++)
		CHECK_INT(submit(d, url, "{}", NULL, &o[i]), 0);
	run_for(200); /* two running, four queued */
	CHECK_INT(done_count, 0);
	CHECK_INT(deliver_pending(d), N);
	deliver_cancel_all(d);
	CHECK_INT(done_count, N);
	for (i = 0; i < N; i++)
		cancelled += o[i].called == 1 && o[i].res.outcome == DELIVER_CANCELLED;
	CHECK_INT(cancelled, N);
	CHECK_INT(deliver_pending(d), 0);
	run_for(50);
	CHECK_INT(done_count, N);

	/* Usable after a cancel; free with work still queued reports it. */
	done_count = 0;
	memset(o, 0, sizeof(o));
	CHECK_INT(submit(d, url, "{}", NULL, &o[0]), 0);
	deliver_free(d);
	CHECK_INT(o[0].called, 1);
	CHECK_INT(o[0].res.outcome, DELIVER_CANCELLED);
	close(hang_fd);
}


/* Polls until d knows want targets, or timeout_ms passes. */
static int wait_targets(struct deliver *d, size_t want, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	while (deliver_targets(d) != want && mono_ms() < end)
		run_for(20);
	return deliver_targets(d) == want;
}

/* A target idle for PROMO_WEBHOOKS_TARGET_IDLE_MS is freed; a busy one is
 * kept; a later delivery to a freed target works (issue 14). */
static void test_idle_targets(struct server *srv)
{
	struct config cfg;
	struct deliver *d;
	struct outcome o, hang;
	char url[128], hang_url[128];
	int hang_port, hang_fd;

	config_init(&cfg, 3000, 64, 8, 1);
	cfg.target_idle_ms = 200;
	d = new_deliver(&cfg);
	CHECK(d != NULL);
	if (!d)
		return;
	hang_fd = hang_listener(&hang_port);
	CHECK(hang_fd >= 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", srv->port);
	snprintf(hang_url, sizeof(hang_url), "http://127.0.0.1:%d/hang", hang_port);

	memset(&o, 0, sizeof(o));
	memset(&hang, 0, sizeof(hang));
	done_count = 0;
	CHECK_INT(submit(d, url, "{\"n\":1}", SECRET, &o), 0);
	CHECK_INT(submit(d, hang_url, "{}", NULL, &hang), 0);
	run_until(1, 3000);
	CHECK_INT(o.called, 1);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(deliver_targets(d), 2);

	/* The idle one goes, the one with a running request stays. */
	CHECK(wait_targets(d, 1, 2000));
	CHECK_INT(hang.called, 0);
	CHECK_INT(deliver_pending(d), 1);

	/* Delivering to the freed target again works: a fresh target, the
	 * request's own headers (no signature left over from before). */
	memset(&o, 0, sizeof(o));
	CHECK_INT(submit(d, url, "{\"n\":2}", NULL, &o), 0);
	run_until(2, 3000);
	CHECK_INT(o.called, 1);
	CHECK_INT(o.res.outcome, DELIVER_OK);
	CHECK_INT(o.res.status, 200);
	CHECK_STR(srv->last.body, "{\"n\":2}");
	CHECK_INT(srv->last.has_signature, 0);
	CHECK_INT(deliver_targets(d), 2);

	/* Once the hung request times out, both are freed. */
	run_until(3, 5000);
	CHECK_INT(hang.called, 1);
	CHECK_INT(hang.res.outcome, DELIVER_TIMEOUT);
	CHECK(wait_targets(d, 0, 2000));
	deliver_free(d);
	close(hang_fd);
}

int main(void)
{
	struct server srv;

	/* The receiver here writes responses that the deliverer may cut off
	 * (/big): a write to the closed connection must fail with EPIPE, as
	 * in the service (main.c), not kill the test. */
	signal(SIGPIPE, SIG_IGN);
	base = event_base_new();
	CHECK(base != NULL);
	if (!base)
		return TEST_DONE();
	CHECK_INT(server_start(&srv), 0);

	test_ok_and_headers(&srv);
	test_error_outcomes(&srv);
	test_address_policy(&srv);
	test_concurrency(&srv);
	test_url_paths(&srv);
	test_fairness(&srv);
	test_saturation(&srv);
	test_cancel();
	test_idle_targets(&srv);

	evhttp_free(srv.http);
	event_base_free(base);
	return TEST_DONE();
}
