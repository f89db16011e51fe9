/*
 * httpguard: connection limits, request deadlines and early refusals for
 * the admin API. See include/promo_webhooks/httpguard.h.
 *
 * Each connection's bufferevent is a filter over the socket bufferevent;
 * the input filter below passes bytes on to evhttp one whole request head
 * at a time, after reading only what it needs from it (the method, the
 * Content-Length and Transfer-Encoding headers), then exactly the body's
 * Content-Length bytes. It never rewrites a request evhttp parses: a
 * request it does not like is dropped whole and replaced by the stand-in
 * below, and nothing after it is passed on.
 */
#include "promo_webhooks/httpguard.h"
#include "promo_webhooks/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

/* What evhttp reads in place of a refused request. Only a connection the
 * guard has refused can produce it: nothing the client sends afterwards
 * reaches evhttp. It keeps the connection open after the answer: the guard
 * closes it once the refused body has been read and thrown away (a client
 * that writes its whole request before reading would otherwise lose the
 * answer to a reset), or request_ms after the refusal. */
#define GUARD_STANDIN_PATH "/.httpguard-refused"
static const char standin[] = "GET " GUARD_STANDIN_PATH " HTTP/1.1\r\n"
			      "Host: refused\r\n\r\n";
/* How often a refused connection is looked at until it can close. */
#define GUARD_LINGER_STEP_MS 50

enum conn_phase {
	PHASE_HEAD,    /* reading a request head (perhaps none of it yet) */
	PHASE_BODY,    /* passing body_left more bytes of the body */
	PHASE_REFUSED, /* stand-in passed; everything else is dropped */
};

struct guard_conn {
	struct guard_conn *prev, *next; /* in g's list, oldest wait first */
	struct httpguard *g;
	struct bufferevent *bev;        /* the filter evhttp owns */
	struct event *deadline;         /* request_ms for the next request */
	struct event *flush;            /* passes an answer on to the socket */
	struct event *writable;         /* the socket takes more, or NULL */
	enum conn_phase phase;
	size_t scanned;                 /* head bytes already searched */
	uint64_t body_left;
	unsigned pending;               /* requests passed, not answered */
	int closing;                    /* shut down, waiting to be freed */
	struct httpguard_refusal refusal; /* valid in PHASE_REFUSED */
	uint64_t discard_left;          /* refused body bytes still to come */
	struct timeval refused_at;      /* when, for the request_ms cap */
	char target[512];               /* the current request's path (cut) */
	int method;                     /* its evhttp command (method_command) */
};

struct httpguard {
	struct event_base *base;
	struct httpguard_limits lim;
	struct evconnlistener *listener; /* paused at the limit, or NULL */
	int paused;
	struct guard_conn *head, *tail;
	size_t nconns;
	unsigned long long timed_out, evicted, refused;
};

/* ---- the connection list: oldest wait at the head ---- */

static void list_remove(struct httpguard *g, struct guard_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		g->tail = c->prev;
	c->prev = c->next = NULL;
}

static void list_append(struct httpguard *g, struct guard_conn *c)
{
	c->prev = g->tail;
	c->next = NULL;
	if (g->tail)
		g->tail->next = c;
	else
		g->head = c;
	g->tail = c;
}

/* Closes c's socket for both directions; evhttp then sees the end of the
 * connection and frees it (and so the filter, and so c). */
static void conn_close(struct guard_conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	evutil_socket_t fd = under ? bufferevent_getfd(under) : -1;

	if (c->closing)
		return;
	c->closing = 1;
	evtimer_del(c->deadline);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
}

static void arm(struct guard_conn *c, int ms)
{
	struct timeval tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->deadline, &tv);
}

/* The connection is ready for a request: it must arrive whole within
 * request_ms, and the connection goes to the tail of the eviction order. */
static void conn_wait_request(struct guard_conn *c)
{
	arm(c, c->g->lim.request_ms);
	list_remove(c->g, c);
	list_append(c->g, c);
}

/* A refused connection closes once its answer has gone out and the
 * refused body has been read (or request_ms after the refusal). */
static void linger_check(struct guard_conn *c)
{
	struct timeval now;
	long long spent_ms;

	event_base_gettimeofday_cached(c->g->base, &now);
	spent_ms = (long long)(now.tv_sec - c->refused_at.tv_sec) * 1000 +
		   (now.tv_usec - c->refused_at.tv_usec) / 1000;
	if (spent_ms >= c->g->lim.request_ms ||
	    (c->pending == 0 && c->discard_left == 0 &&
	     evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)) {
		conn_close(c);
		return;
	}
	arm(c, GUARD_LINGER_STEP_MS);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct guard_conn *c = arg;

	(void)fd;
	(void)what;
	if (c->closing)
		return;
	if (c->phase == PHASE_REFUSED) {
		linger_check(c);
		return;
	}
	if (c->pending)
		return;
	c->g->timed_out++;
	conn_close(c);
}

/* ---- reading the request head ---- */

/* The evhttp command of a method that takes no body (the guard routes
 * such a request without its body, see judge_head); evhttp's bit for a
 * method it does not know otherwise. */
static int method_command(const char *m, size_t n)
{
	static const struct {
		const char *name;
		int cmd;
	} methods[] = {
		{ "GET", EVHTTP_REQ_GET },         { "HEAD", EVHTTP_REQ_HEAD },
		{ "DELETE", EVHTTP_REQ_DELETE },   { "OPTIONS", EVHTTP_REQ_OPTIONS },
		{ "TRACE", EVHTTP_REQ_TRACE },     { "CONNECT", EVHTTP_REQ_CONNECT },
	};
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strlen(methods[i].name) == n && memcmp(methods[i].name, m, n) == 0)
			return methods[i].cmd;
	return HTTPGUARD_REQ_UNKNOWN;
}

static int is_method_with_body(const char *m, size_t n)
{
	return (n == 4 && memcmp(m, "POST", 4) == 0) ||
	       (n == 3 && memcmp(m, "PUT", 3) == 0) ||
	       (n == 5 && memcmp(m, "PATCH", 5) == 0);
}

static void refuse(struct guard_conn *c, int status, const char *code,
		   const char *message)
{
	c->refusal.status = status;
	c->refusal.code = code;
	c->refusal.message = message;
	c->refusal.target = NULL;
	c->phase = PHASE_REFUSED;
	c->discard_left = UINT64_MAX; /* unknown: until request_ms */
	event_base_gettimeofday_cached(c->g->base, &c->refused_at);
	c->g->refused++;
}

/* RFC 9110 token characters (header names, methods). */
static int is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static int is_target_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	       (ch >= '0' && ch <= '9') || (ch && strchr("-._~!$&'()*+,;=:@/?%", ch));
}

/*
 * What evhttp would answer with its own HTML page is refused here in the
 * contract's shape: a request line other than "METHOD /target HTTP/1.x"
 * and header lines that are not "name: value" (continuation lines
 * included). Any method passes: the router answers 405 with Allow for one
 * a path does not serve (evhttp lets methods it does not know through).
 */
static int request_line_check(struct guard_conn *c, const char *p, size_t n)
{
	const char *end = p + n, *m = p, *t, *v;
	size_t ml, tl;

	while (p < end && is_tchar((unsigned char)*p))
		p++;
	ml = (size_t)(p - m);
	/* evhttp's request-line parser refuses some methods shorter than
	 * three characters with its HTML page (fuzz_api); no HTTP method is
	 * that short. */
	if (ml < 3 || p >= end || *p != ' ')
		goto bad;
	t = ++p;
	/* RFC 3986 characters of an origin-form target (path and query):
	 * what evhttp's URI parser takes. */
	while (p < end && is_target_char((unsigned char)*p)) {
		/* evhttp refuses a malformed percent-encoding with its own
		 * HTML page. */
		if (*p == '%' && (end - p < 3 || !isxdigit((unsigned char)p[1]) ||
				  !isxdigit((unsigned char)p[2])))
			goto bad;
		p++;
	}
	/* "//..." is a valid origin-form path, but evhttp's URI parser reads
	 * it as an authority and refuses a bad one with its HTML page; no
	 * path of the API starts with an empty segment. */
	if (p == t || *t != '/' || p >= end || *p != ' ' || (p - t >= 2 && t[1] == '/'))
		goto bad;
	v = p + 1;
	if (end - v != 8 || memcmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
	    v[6] != '.' || v[7] < '0' || v[7] > '9')
		goto bad;
	if (memcmp(v + 5, "1.0", 3) != 0 && memcmp(v + 5, "1.1", 3) != 0) {
		refuse(c, 505, "http_version_not_supported", "HTTP/1.1 or HTTP/1.0 only");
		return -1;
	}
	/* The path, for the Allow header of a 405 (judge_head). */
	tl = 0;
	while (t + tl < end && t[tl] != ' ' && t[tl] != '?' && t[tl] != '#' &&
	       tl < sizeof(c->target) - 1)
		tl++;
	memcpy(c->target, t, tl);
	c->target[tl] = '\0';
	c->method = method_command(m, ml);
	return 0;
bad:
	refuse(c, 400, "bad_request", "malformed request line");
	return -1;
}

static int header_line_check(struct guard_conn *c, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && is_tchar((unsigned char)p[i]))
		i++;
	if (i == 0 || i >= n || p[i] != ':')
		goto bad;
	for (i++; i < n; i++) {
		unsigned char ch = (unsigned char)p[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			goto bad;
	}
	return 0;
bad:
	refuse(c, 400, "bad_request", "malformed header line");
	return -1;
}

/* The value of a header line "Name: value" (n bytes, no line end) when
 * its name is name (case-insensitive), trimmed; else NULL. */
static const char *header_value(const char *line, size_t n, const char *name,
				size_t *vlen)
{
	size_t nl = strlen(name);
	const char *v, *end = line + n;

	if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
		return NULL;
	v = line + nl + 1;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*vlen = (size_t)(end - v);
	return v;
}

/*
 * Judges a complete head (n bytes, line ends included). Returns 0 and sets
 * *body to the body's length, or -1 after refuse(). Lines end in LF with an
 * optional CR before it, as evhttp reads them.
 */
static int judge_head(struct guard_conn *c, const char *h, size_t n,
		      uint64_t *body)
{
	const char *p = h, *end = h + n, *sp;
	int have_len = 0, first = 1, over = 0;
	uint64_t len = 0, x = 0;

	*body = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t ll;
		const char *v;
		size_t vlen;

		if (!nl)
			break;
		ll = (size_t)(nl - p);
		if (ll && p[ll - 1] == '\r')
			ll--;
		if (first) {
			first = 0;
			if (request_line_check(c, p, ll) < 0)
				return -1;
			sp = memchr(p, ' ', ll);
			if (!is_method_with_body(p, (size_t)(sp - p)))
				have_len = -1; /* a body would be refused */
			p = nl + 1;
			continue;
		}
		if (ll == 0)
			break; /* the empty line that ends the head */
		if (header_line_check(c, p, ll) < 0)
			return -1;
		v = header_value(p, ll, "Expect", &vlen);
		if (v && !(vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)) {
			refuse(c, 417, "expectation_failed",
			       "only \"Expect: 100-continue\" is understood");
			return -1;
		}
		if (header_value(p, ll, "Transfer-Encoding", &vlen)) {
			refuse(c, 411, "length_required",
			       "send the body with a Content-Length of at most 64 KiB; "
			       "chunked and other transfer codings are not accepted");
			return -1;
		}
		v = header_value(p, ll, "Content-Length", &vlen);
		if (v) {
			size_t i;

			x = 0;
			over = 0;
			if (vlen == 0)
				goto bad_length;
			for (i = 0; i < vlen; i++) {
				if (v[i] < '0' || v[i] > '9')
					goto bad_length;
				if (x > c->g->lim.body_max)
					over = 1; /* and no overflow either */
				else
					x = x * 10 + (uint64_t)(v[i] - '0');
			}
			if (over || x > c->g->lim.body_max)
				goto too_large;
			if (have_len == 1 && x != len)
				goto bad_length;
			if (x > 0 && have_len == -1) {
				/* evhttp would read no body for this method: it
				 * would be taken for the next request. The body
				 * is dropped and the request routed without it
				 * (HTTP gives such a body no meaning), so the
				 * path answers as it would, a 405 with Allow
				 * included; the connection then closes. */
				refuse(c, 400, "bad_request",
				       "this method takes no request body");
				c->refusal.target = c->target;
				c->refusal.method = c->method;
				c->discard_left = x;
				return -1;
			}
			if (have_len != -1)
				have_len = 1;
			len = x;
		}
		p = nl + 1;
	}
	*body = have_len == 1 ? len : 0;
	return 0;
bad_length:
	refuse(c, 400, "bad_request", "invalid Content-Length");
	return -1;
too_large:
	refuse(c, 413, "payload_too_large", "request body over 64 KiB");
	if (!over)
		c->discard_left = x;
	return -1;
}

/* Where the head in src ends (the byte after its empty line), searching
 * from c->scanned; 0 when it has not ended yet. */
static size_t head_end(struct guard_conn *c, struct evbuffer *src)
{
	size_t len = evbuffer_get_length(src);
	struct evbuffer_ptr at;

	while (c->scanned < len) {
		size_t eol_len = 0;
		struct evbuffer_ptr start;

		if (evbuffer_ptr_set(src, &start, c->scanned, EVBUFFER_PTR_SET) < 0)
			return 0;
		at = evbuffer_search_eol(src, &start, &eol_len, EVBUFFER_EOL_CRLF);
		if (at.pos < 0)
			return 0;
		/* An empty line (not the very first: evhttp skips nothing
		 * before the request line either) ends the head. */
		if ((size_t)at.pos == c->scanned && c->scanned > 0)
			return (size_t)at.pos + eol_len;
		c->scanned = (size_t)at.pos + eol_len;
	}
	return 0;
}

static enum bufferevent_filter_result filter_in(struct evbuffer *src,
						struct evbuffer *dst,
						ev_ssize_t limit,
						enum bufferevent_flush_mode mode,
						void *arg)
{
	struct guard_conn *c = arg;
	size_t n = 0;
	uint64_t body;

	(void)limit;
	(void)mode;
	while (evbuffer_get_length(src) > 0) {

		switch (c->phase) {
		case PHASE_REFUSED:
			n = evbuffer_get_length(src);
			if (c->discard_left != UINT64_MAX)
				c->discard_left -= n < c->discard_left ? n : c->discard_left;
			evbuffer_drain(src, n);
			return BEV_OK;
		case PHASE_BODY:
			n = evbuffer_get_length(src);
			if (n > c->body_left)
				n = (size_t)c->body_left;
			if (evbuffer_remove_buffer(src, dst, n) != (int)n)
				return BEV_ERROR;
			c->body_left -= n;
			if (c->body_left == 0) {
				c->phase = PHASE_HEAD;
				c->pending++;
				evtimer_del(c->deadline);
			}
			break;
		case PHASE_HEAD:
			n = head_end(c, src);
			if (n == 0) {
				if (evbuffer_get_length(src) > c->g->lim.head_max) {
					refuse(c, 431, "headers_too_large",
					       "request line and headers over 16 KiB");
					goto refused;
				}
				return BEV_NEED_MORE;
			}
			if (n > c->g->lim.head_max) {
				refuse(c, 431, "headers_too_large",
				       "request line and headers over 16 KiB");
				goto refused;
			}
			if (judge_head(c, (const char *)evbuffer_pullup(src, (ev_ssize_t)n),
				       n, &body) < 0)
				goto refused;
			if (evbuffer_remove_buffer(src, dst, n) != (int)n)
				return BEV_ERROR;
			c->scanned = 0;
			if (body > 0) {
				c->phase = PHASE_BODY;
				c->body_left = body;
			} else {
				c->pending++;
				evtimer_del(c->deadline);
			}
			break;
		}
	}
	return BEV_OK;
refused:
	/* What follows the head is the refused body (or more requests). */
	if (n && n <= evbuffer_get_length(src)) {
		evbuffer_drain(src, n);
		n = evbuffer_get_length(src);
		if (c->discard_left != UINT64_MAX)
			c->discard_left -= n < c->discard_left ? n : c->discard_left;
	}
	evbuffer_drain(src, evbuffer_get_length(src));
	evbuffer_add(dst, standin, sizeof(standin) - 1);
	c->pending++;
	arm(c, GUARD_LINGER_STEP_MS);
	return BEV_OK;
}

/* ---- writing answers ---- */
/*
 * Answers go from the filter straight to the socket, not through the
 * socket bufferevent: libevent 2.1's filter tells evhttp an answer is sent
 * as soon as it has moved it to the bufferevent below, and evhttp then
 * closes a "Connection: close" connection (every refusal) with the answer
 * still unwritten. Writing here, evhttp hears "sent" only once the kernel
 * has every byte. When the socket is full, the rest waits for it to take
 * more (c->writable).
 *
 * The filter also passes output on only when data is added while writing
 * is enabled; evhttp adds an answer first and enables writing after, so
 * every addition schedules a flush (c->flush) for once evhttp is done.
 */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct guard_conn *c = arg;

	(void)fd;
	(void)what;
	bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
}

static void on_output_added(struct evbuffer *buf, const struct evbuffer_cb_info *info,
			    void *arg)
{
	struct guard_conn *c = arg;

	(void)buf;
	if (info->n_added > 0)
		event_active(c->flush, EV_WRITE, 0);
}

static enum bufferevent_filter_result filter_out(struct evbuffer *src,
						 struct evbuffer *dst,
						 ev_ssize_t limit,
						 enum bufferevent_flush_mode mode,
						 void *arg)
{
	struct guard_conn *c = arg;
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	evutil_socket_t fd = under ? bufferevent_getfd(under) : -1;

	(void)dst;
	(void)limit;
	(void)mode;
	if (fd < 0)
		return BEV_ERROR;
	while (evbuffer_get_length(src) > 0) {
		int n = evbuffer_write(src, fd);

		if (n > 0)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
			return BEV_ERROR;
		/* The socket is full: wait until it takes more. */
		if (!c->writable) {
			c->writable = event_new(c->g->base, fd, EV_WRITE, on_flush, c);
			if (!c->writable)
				return BEV_ERROR;
		}
		event_add(c->writable, NULL);
		return BEV_NEED_MORE;
	}
	return BEV_OK;
}

/* ---- connections come and go ---- */

static void conn_freed(void *arg)
{
	struct guard_conn *c = arg;
	struct httpguard *g = c->g;

	/* g is NULL when the guard went first: libevent finalises a
	 * bufferevent freed by evhttp_free() as late as event_base_free(). */
	if (g) {
		list_remove(g, c);
		g->nconns--;
	}
	event_free(c->deadline);
	event_free(c->flush);
	if (c->writable)
		event_free(c->writable);
	free(c);
	if (g && g->paused && g->nconns <= g->lim.max_conns && g->listener) {
		if (evconnlistener_enable(g->listener) == 0)
			g->paused = 0;
	}
}

/*
 * Before a new connection is taken on: at the limit (connections being
 * closed count until they are gone), closes the one that has waited
 * longest for its request, never one being answered, and stops accepting
 * until a connection is gone, so that there are never more than
 * max_conns + 1 and a burst of clients cannot evict everyone at once.
 */
static void make_room(struct httpguard *g)
{
	struct guard_conn *c;

	if (g->nconns < g->lim.max_conns)
		return;
	for (c = g->head; c; c = c->next) {
		if (!c->closing && c->pending == 0) {
			g->evicted++;
			conn_close(c);
			break;
		}
	}
	if (g->listener && !g->paused && evconnlistener_disable(g->listener) == 0)
		g->paused = 1;
}

static struct bufferevent *new_conn(struct event_base *base, void *arg)
{
	struct httpguard *g = arg;
	struct bufferevent *under, *bev;
	struct guard_conn *c;

	make_room(g);
	c = calloc(1, sizeof(*c));
	under = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !under)
		goto fail;
	c->g = g;
	c->deadline = evtimer_new(base, on_deadline, c);
	c->flush = event_new(base, -1, 0, on_flush, c);
	if (!c->deadline || !c->flush)
		goto fail;
	bev = bufferevent_filter_new(under, filter_in, filter_out, BEV_OPT_CLOSE_ON_FREE,
				     conn_freed, c);
	if (!bev)
		goto fail;
	c->bev = bev;
	g->nconns++;
	list_append(g, c);
	if (!evbuffer_add_cb(bufferevent_get_output(bev), on_output_added, c)) {
		bufferevent_free(bev); /* frees c through conn_freed */
		log_warn("admin connection not guarded", "reason=%s", "out of memory");
		return NULL;
	}
	conn_wait_request(c);
	return bev;
fail:
	/* evhttp makes a plain socket bufferevent of its own; that
	 * connection is unguarded, which only happens out of memory. */
	log_warn("admin connection not guarded", "reason=%s", "out of memory");
	if (c && c->deadline)
		event_free(c->deadline);
	if (c && c->flush)
		event_free(c->flush);
	free(c);
	if (under)
		bufferevent_free(under);
	return NULL;
}

static struct guard_conn *conn_of(struct httpguard *g, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
	struct guard_conn *c;

	if (!bev)
		return NULL;
	for (c = g->head; c; c = c->next)
		if (c->bev == bev)
			return c;
	return NULL;
}

/* ---- the API's side ---- */

struct httpguard *httpguard_new(struct event_base *base, struct evhttp *http,
				const struct httpguard_limits *lim)
{
	struct httpguard *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->base = base;
	g->lim = *lim;
	if (g->lim.max_conns == 0)
		g->lim.max_conns = 1;
	evhttp_set_bevcb(http, new_conn, g);
	return g;
}

void httpguard_listen(struct httpguard *g, struct evhttp_bound_socket *sock)
{
	g->listener = evhttp_bound_socket_get_listener(sock);
}

const struct httpguard_refusal *httpguard_refusal(struct httpguard *g,
						  struct evhttp_request *req)
{
	struct guard_conn *c = conn_of(g, req);
	const char *uri = evhttp_request_get_uri(req);

	if (!c || c->phase != PHASE_REFUSED || !uri || strcmp(uri, GUARD_STANDIN_PATH) != 0)
		return NULL;
	return &c->refusal;
}

void httpguard_answered(struct httpguard *g, struct evhttp_request *req)
{
	struct guard_conn *c = conn_of(g, req);

	if (!c || c->pending == 0)
		return;
	c->pending--;
	if (c->pending == 0 && !c->closing && c->phase != PHASE_REFUSED)
		conn_wait_request(c);
}

size_t httpguard_connections(const struct httpguard *g)
{
	return g->nconns;
}

void httpguard_counts(const struct httpguard *g, unsigned long long *timed_out,
		      unsigned long long *evicted, unsigned long long *refused)
{
	*timed_out = g->timed_out;
	*evicted = g->evicted;
	*refused = g->refused;
}

void httpguard_free(struct httpguard *g)
{
	struct guard_conn *c, *next;

	if (!g)
		return;
	for (c = g->head; c; c = next) {
		next = c->next;
		evtimer_del(c->deadline);
		event_del(c->flush);
		if (c->writable)
			event_del(c->writable);
		c->g = NULL;
	}
	free(g);
}
