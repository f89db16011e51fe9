/*
 * pw-bench-receiver: the HTTP receiver of the benchmark (tests/bench/run.sh).
 *
 * A minimal HTTP/1.1 keep-alive server on raw epoll, one thread, made to
 * cost as little CPU per request as possible so that the benchmark measures
 * the client (the service, or the minimal libcurl client that gives the
 * limit), not the receiver. pw-receiver (evhttp) is the functional test
 * receiver; this one only counts, times and optionally records ids.
 *
 * Usage:
 *   pw-bench-receiver --port-file FILE --listen SPEC [--listen SPEC]...
 *
 *   SPEC = NAME[,delay_ms=N][,hang][,latency][,ids=FILE]
 *     Each SPEC is one listening socket on 127.0.0.1 (a free port); the
 *     port file gets one line "NAME PORT" per listener once all listen.
 *     delay_ms=N  answer every request 200 after N ms (a timer, not a sleep)
 *     hang        never answer (until the client gives up and closes)
 *     latency     read "sentUs":<unix microseconds> from the body and keep
 *                 now - sentUs as an event-to-delivery latency sample
 *     ids=FILE    append the webhook-id header of every request to FILE,
 *                 one a line (buffered; flushed by /_stats and at exit)
 *
 * Every other request is answered "200 OK" with an empty body at once.
 *
 * Control paths, on any listener (never counted):
 *   GET  /_stats             JSON: per listener requests, body bytes, first
 *                            and last request time, requests waiting for
 *                            their answer now / at most / on average,
 *                            connections now / at most; latency percentiles.
 *   GET  /_marks?listener=L  text lines "COUNT UNIX_US": the time every
 *                            1000th request of L arrived (for steady rates).
 *   GET  /_count?listener=L  the request count of L (or of all listeners).
 *   GET  /_wait?listener=L&count=N&timeout_ms=T
 *                            answers when L has N requests or after T ms:
 *                            {"requests":n,"reached":true|false}.
 *   GET  /_sample?listener=L the first body L received since the reset.
 *   POST /_reset             zeroes every counter, mark and sample.
 *   POST /_control?listener=L[&hang=0|1][&delay_ms=N]
 *                            switches hang mode of L, sets its delay (the
 *                            delay only between runs: answers are kept in
 *                            arrival order).
 *
 * SIGTERM / SIGINT: flushes the id files and exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "lat_windows.h"

#define MAX_LISTENERS 64
#define MARK_EVERY 1000
#define MAX_HEADER 65536
#define MAX_BODY (16u << 20)
#define IDS_BUF (256u << 10)
#define MAX_LAT_SAMPLES (32u << 20)

struct listener {
	char name[64];
	int fd;
	int port;
	long delay_ms;
	int hang;
	int latency;
	int ids_fd;
	char *ids_buf;
	size_t ids_len;

	uint64_t requests;
	uint64_t body_bytes;
	int64_t first_us, last_us;
	int64_t *marks;
	size_t n_marks, cap_marks;
	long pending, pending_max;
	double pend_area;      /* integral of pending over time, us */
	int64_t pend_t;        /* time of the last pending change */
	double pend_area_last; /* the integral at the last request arrival */
	long conns, conns_max;
	char *sample;
	size_t sample_len;
	int has_sample;

	/* answers due later, in due order (the delay is constant) */
	struct due {
		int fd;
		unsigned gen;
		int64_t due_us;
	} *fifo;
	size_t fifo_head, fifo_len, fifo_cap;
};

struct conn {
	int open;
	unsigned gen;
	int li;
	int busy;      /* a request waits for its answer */
	int waiting;   /* ... from /_wait */
	char *rbuf;
	size_t rlen, rcap;
	char *wbuf;
	size_t wlen, woff, wcap;
	int want_out;
};

struct waiter {
	int fd;
	unsigned gen;
	int li;          /* -1: all listeners */
	uint64_t count;
	int64_t deadline_us;
};

static struct listener L[MAX_LISTENERS];
static int n_listeners;
static struct conn *conns;
static int max_fds;
static int ep;
static struct waiter *waiters;
static size_t n_waiters, cap_waiters;
static uint32_t *lat;
static int64_t *lat_sent; /* each sample's send time */
static size_t n_lat, cap_lat;

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
	fprintf(stderr, "pw-bench-receiver: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fprintf(stderr, "pw-bench-receiver: out of memory\n");
		exit(1);
	}
	return q;
}

/* ---- output ------------------------------------------------------------ */

static void conn_close(int fd);

static void flush_out(int fd)
{
	struct conn *c = &conns[fd];

	while (c->woff < c->wlen) {
		ssize_t n = write(fd, c->wbuf + c->woff, c->wlen - c->woff);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				if (!c->want_out) {
					struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
								  .data.fd = fd };
					epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
					c->want_out = 1;
				}
				return;
			}
			conn_close(fd);
			return;
		}
		c->woff += (size_t)n;
	}
	c->wlen = c->woff = 0;
	if (c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

		epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
		c->want_out = 0;
	}
}

static void out_add(struct conn *c, const char *s, size_t n)
{
	if (c->wlen + n > c->wcap) {
		c->wcap = (c->wlen + n) * 2;
		c->wbuf = xrealloc(c->wbuf, c->wcap);
	}
	memcpy(c->wbuf + c->wlen, s, n);
	c->wlen += n;
}

static const char OK_200[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

static void send_ok(int fd)
{
	struct conn *c = &conns[fd];

	if (c->wlen == 0) {
		/* The common case: one write, nothing kept. */
		ssize_t n = write(fd, OK_200, sizeof(OK_200) - 1);

		if (n == (ssize_t)sizeof(OK_200) - 1)
			return;
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			conn_close(fd);
			return;
		}
		if (n < 0)
			n = 0;
		out_add(c, OK_200 + n, sizeof(OK_200) - 1 - (size_t)n);
	} else {
		out_add(c, OK_200, sizeof(OK_200) - 1);
	}
	flush_out(fd);
}

static void send_body(int fd, int status, const char *ctype, const char *body, size_t n)
{
	struct conn *c = &conns[fd];
	char head[256];
	int h = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
			 status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request",
			 ctype, n);

	out_add(c, head, (size_t)h);
	out_add(c, body, n);
	flush_out(fd);
}

/* ---- a growable text buffer for control answers --------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#include <stdarg.h>
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->n;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < room) {
			b->n += (size_t)n;
			return;
		}
		b->cap = b->cap ? b->cap * 2 + (size_t)n : 4096 + (size_t)n;
		b->p = xrealloc(b->p, b->cap);
	}
}

/* ---- listeners ---------------------------------------------------------- */

static void ids_flush(struct listener *l)
{
	size_t off = 0;

	while (l->ids_fd >= 0 && off < l->ids_len) {
		ssize_t n = write(l->ids_fd, l->ids_buf + off, l->ids_len - off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("pw-bench-receiver: ids write");
			break;
		}
		off += (size_t)n;
	}
	l->ids_len = 0;
}

static int find_listener(const char *name, size_t len)
{
	int i;

	for (i = 0; i < n_listeners; i++)
		if (strlen(L[i].name) == len && memcmp(L[i].name, name, len) == 0)
			return i;
	return -1;
}

static void pending_change(struct listener *l, long delta, int64_t now)
{
	if (l->pend_t)
		l->pend_area += (double)l->pending * (double)(now - l->pend_t);
	l->pend_t = now;
	l->pending += delta;
	if (l->pending > l->pending_max)
		l->pending_max = l->pending;
}

static void reset_all(void)
{
	int i;
	int64_t now = now_us();

	for (i = 0; i < n_listeners; i++) {
		struct listener *l = &L[i];

		ids_flush(l);
		l->requests = l->body_bytes = 0;
		l->first_us = l->last_us = 0;
		l->n_marks = 0;
		l->pending_max = l->pending;
		l->pend_area = l->pend_area_last = 0;
		l->pend_t = now;
		l->conns_max = l->conns;
		l->has_sample = 0;
	}
	n_lat = 0;
}

/* ---- waiters -------------------------------------------------------------- */

static uint64_t count_of(int li)
{
	uint64_t s = 0;
	int i;

	if (li >= 0)
		return L[li].requests;
	for (i = 0; i < n_listeners; i++)
		s += L[i].requests;
	return s;
}

static void waiter_answer(size_t k, int reached)
{
	struct waiter w = waiters[k];
	char body[128];
	int n;

	waiters[k] = waiters[--n_waiters];
	if (!conns[w.fd].open || conns[w.fd].gen != w.gen)
		return;
	conns[w.fd].busy = 0;
	conns[w.fd].waiting = 0;
	n = snprintf(body, sizeof(body), "{\"requests\":%" PRIu64 ",\"reached\":%s}\n",
		     count_of(w.li), reached ? "true" : "false");
	send_body(w.fd, 200, "application/json", body, (size_t)n);
}

static void waiters_check(int64_t now)
{
	size_t k = 0;

	while (k < n_waiters) {
		struct waiter *w = &waiters[k];

		if (count_of(w->li) >= w->count)
			waiter_answer(k, 1);
		else if (now >= w->deadline_us)
			waiter_answer(k, 0);
		else
			k++;
	}
}

/* ---- control -------------------------------------------------------------- */

static const char *query_get(const char *q, const char *key, size_t *len)
{
	size_t kl = strlen(key);

	while (q && *q) {
		const char *amp = strchr(q, '&');
		size_t seg = amp ? (size_t)(amp - q) : strlen(q);

		if (seg > kl && strncmp(q, key, kl) == 0 && q[kl] == '=') {
			*len = seg - kl - 1;
			return q + kl + 1;
		}
		q = amp ? amp + 1 : NULL;
	}
	return NULL;
}

static int query_listener(const char *q)
{
	size_t len;
	const char *v = query_get(q, "listener", &len);

	if (!v)
		return -1;
	return find_listener(v, len);
}

static long query_long(const char *q, const char *key, long dflt)
{
	size_t len;
	const char *v = query_get(q, key, &len);

	return v ? strtol(v, NULL, 10) : dflt;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static void stats(struct sbuf *b)
{
	int i;
	uint64_t total = 0;

	for (i = 0; i < n_listeners; i++) {
		ids_flush(&L[i]);
		total += L[i].requests;
	}
	sb_printf(b, "{\"requests\":%" PRIu64 ",\"listeners\":{", total);
	for (i = 0; i < n_listeners; i++) {
		struct listener *l = &L[i];
		double span = (double)(l->last_us - l->first_us);

		sb_printf(b,
			  "%s\"%s\":{\"port\":%d,\"requests\":%" PRIu64 ",\"body_bytes\":%" PRIu64
			  ",\"first_us\":%" PRId64 ",\"last_us\":%" PRId64
			  ",\"pending\":%ld,\"pending_max\":%ld,\"pending_avg\":%.1f"
			  ",\"conns\":%ld,\"conns_max\":%ld,\"hang\":%d,\"delay_ms\":%ld}",
			  i ? "," : "", l->name, l->port, l->requests, l->body_bytes, l->first_us,
			  l->last_us, l->pending, l->pending_max,
			  span > 0 ? l->pend_area_last / span : 0.0, l->conns, l->conns_max, l->hang,
			  l->delay_ms);
	}
	sb_printf(b, "},\"latency\":{\"samples\":%zu", n_lat);
	if (n_lat) {
		uint32_t *s = malloc(n_lat * sizeof(*s)), *w;
		double sum = 0;
		int64_t first;
		size_t k, nw;

		w = lat_windows(lat_sent, lat, n_lat, &first, &nw);
		if (w) {
			sb_printf(b, ",\"windows\":{\"first\":%" PRId64 ",\"width_us\":%d,\"max_us\":[",
				  first, LAT_WINDOW_US);
			for (k = 0; k < nw; k++)
				sb_printf(b, "%s%u", k ? "," : "", w[k]);
			sb_printf(b, "]}");
			free(w);
		}

		if (s) {
			memcpy(s, lat, n_lat * sizeof(*s));
			qsort(s, n_lat, sizeof(*s), cmp_u32);
			for (k = 0; k < n_lat; k++)
				sum += s[k];
			sb_printf(b,
				  ",\"min_us\":%u,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u"
				  ",\"p999_us\":%u,\"max_us\":%u,\"mean_us\":%.0f",
				  s[0], s[n_lat / 2], s[(size_t)((double)n_lat * 0.90)],
				  s[(size_t)((double)n_lat * 0.99)], s[(size_t)((double)n_lat * 0.999)],
				  s[n_lat - 1], sum / (double)n_lat);
			free(s);
		}
	}
	sb_printf(b, "}}\n");
}

static void control(int fd, const char *method, const char *path, const char *query)
{
	struct sbuf b = { 0 };
	int li = query_listener(query);

	if (strcmp(path, "/_stats") == 0) {
		stats(&b);
		send_body(fd, 200, "application/json", b.p, b.n);
	} else if (strcmp(path, "/_marks") == 0 && li >= 0) {
		size_t k;

		sb_printf(&b, "%s", "");
		for (k = 0; k < L[li].n_marks; k++)
			sb_printf(&b, "%zu %" PRId64 "\n", (k + 1) * (size_t)MARK_EVERY,
				  L[li].marks[k]);
		send_body(fd, 200, "text/plain", b.p, b.n);
	} else if (strcmp(path, "/_count") == 0) {
		sb_printf(&b, "%" PRIu64 "\n", count_of(li));
		send_body(fd, 200, "text/plain", b.p, b.n);
	} else if (strcmp(path, "/_sample") == 0 && li >= 0) {
		if (L[li].has_sample)
			send_body(fd, 200, "application/octet-stream", L[li].sample,
				  L[li].sample_len);
		else
			send_body(fd, 404, "text/plain", "no sample\n", 10);
	} else if (strcmp(path, "/_reset") == 0 && strcmp(method, "POST") == 0) {
		reset_all();
		send_body(fd, 200, "text/plain", "reset\n", 6);
	} else if (strcmp(path, "/_control") == 0 && li >= 0) {
		L[li].hang = (int)query_long(query, "hang", L[li].hang);
		/* Only between runs: the due queue assumes one delay. */
		L[li].delay_ms = query_long(query, "delay_ms", L[li].delay_ms);
		send_body(fd, 200, "text/plain", "ok\n", 3);
	} else if (strcmp(path, "/_wait") == 0) {
		struct waiter w;

		w.fd = fd;
		w.gen = conns[fd].gen;
		w.li = li;
		w.count = (uint64_t)query_long(query, "count", 0);
		w.deadline_us = now_us() + query_long(query, "timeout_ms", 60000) * 1000;
		if (n_waiters == cap_waiters) {
			cap_waiters = cap_waiters ? cap_waiters * 2 : 8;
			waiters = xrealloc(waiters, cap_waiters * sizeof(*waiters));
		}
		waiters[n_waiters++] = w;
		conns[fd].busy = 1;
		conns[fd].waiting = 1;
		waiters_check(now_us());
	} else {
		send_body(fd, 404, "text/plain", "unknown control path\n", 21);
	}
	free(b.p);
}

/* ---- requests ------------------------------------------------------------- */

static void on_delivery(int fd, const char *hdrs, size_t hlen, const char *body, size_t blen)
{
	struct conn *c = &conns[fd];
	struct listener *l = &L[c->li];
	int64_t now = now_us();

	l->requests++;
	l->body_bytes += blen;
	if (!l->first_us) {
		l->first_us = now;
		l->pend_area = 0;
		l->pend_t = now;
	}
	l->last_us = now;
	if (l->requests % MARK_EVERY == 0) {
		if (l->n_marks == l->cap_marks) {
			l->cap_marks = l->cap_marks ? l->cap_marks * 2 : 1024;
			l->marks = xrealloc(l->marks, l->cap_marks * sizeof(*l->marks));
		}
		l->marks[l->n_marks++] = now;
	}
	if (!l->has_sample) {
		l->sample = xrealloc(l->sample, blen);
		memcpy(l->sample, body, blen);
		l->sample_len = blen;
		l->has_sample = 1;
	}
	if (l->latency) {
		static const char key[] = "\"sentUs\":";
		const char *p = memmem(body, blen, key, sizeof(key) - 1);

		if (p) {
			int64_t sent = strtoll(p + sizeof(key) - 1, NULL, 10);
			int64_t d = now - sent;

			if (d < 0)
				d = 0;
			if (d > UINT32_MAX)
				d = UINT32_MAX;
			if (n_lat == cap_lat && cap_lat < MAX_LAT_SAMPLES) {
				cap_lat = cap_lat ? cap_lat * 2 : 65536;
				lat = xrealloc(lat, cap_lat * sizeof(*lat));
				lat_sent = xrealloc(lat_sent, cap_lat * sizeof(*lat_sent));
			}
			if (n_lat < cap_lat) {
				lat_sent[n_lat] = sent;
				lat[n_lat++] = (uint32_t)d;
			}
		}
	}
	if (l->ids_fd >= 0) {
		static const char key[] = "\nwebhook-id:";
		const char *p = memmem(hdrs, hlen, key, sizeof(key) - 1);

		if (!p) {
			/* header names are case-insensitive: slow path */
			const char *q = hdrs;

			while ((q = memchr(q, '\n', (size_t)(hdrs + hlen - q))) != NULL) {
				if ((size_t)(hdrs + hlen - q) > sizeof(key) - 1 &&
				    strncasecmp(q, key, sizeof(key) - 1) == 0) {
					p = q;
					break;
				}
				q++;
			}
		}
		if (p) {
			const char *v = p + sizeof(key) - 1, *e;

			while (v < hdrs + hlen && (*v == ' ' || *v == '\t'))
				v++;
			e = v;
			while (e < hdrs + hlen && *e != '\r' && *e != '\n')
				e++;
			if (l->ids_len + (size_t)(e - v) + 1 > IDS_BUF)
				ids_flush(l);
			memcpy(l->ids_buf + l->ids_len, v, (size_t)(e - v));
			l->ids_len += (size_t)(e - v);
			l->ids_buf[l->ids_len++] = '\n';
		}
	}
	if (n_waiters)
		waiters_check(now);
	if (l->hang) {
		c->busy = 1;
		pending_change(l, 1, now);
	} else if (l->delay_ms > 0) {
		if (l->fifo_len == l->fifo_cap) {
			size_t ncap = l->fifo_cap ? l->fifo_cap * 2 : 1024, k;
			struct due *nf = xrealloc(NULL, ncap * sizeof(*nf));

			for (k = 0; k < l->fifo_len; k++)
				nf[k] = l->fifo[(l->fifo_head + k) % l->fifo_cap];
			free(l->fifo);
			l->fifo = nf;
			l->fifo_head = 0;
			l->fifo_cap = ncap;
		}
		l->fifo[(l->fifo_head + l->fifo_len++) % l->fifo_cap] =
			(struct due){ fd, c->gen, now + l->delay_ms * 1000 };
		c->busy = 1;
		pending_change(l, 1, now);
	} else {
		send_ok(fd);
	}
	l->pend_area_last = l->pend_area + (double)l->pending * (double)(now - l->pend_t);
}

static size_t content_length(const char *h, size_t hlen, int *bad)
{
	const char *q = h;
	static const char key[] = "\ncontent-length:";

	*bad = 0;
	while ((q = memchr(q, '\n', (size_t)(h + hlen - q))) != NULL) {
		if ((size_t)(h + hlen - q) > sizeof(key) - 1 &&
		    strncasecmp(q, key, sizeof(key) - 1) == 0) {
			char *end;
			unsigned long v = strtoul(q + sizeof(key) - 1, &end, 10);

			if (v > MAX_BODY)
				*bad = 1;
			return v;
		}
		q++;
	}
	return 0;
}

/* Handles the complete requests in c's buffer, one at a time: a request
 * whose answer is delayed holds back the next (HTTP/1.1 order). */
static void process(int fd)
{
	struct conn *c = &conns[fd];
	size_t off = 0;

	while (c->open && !c->busy && c->rlen - off >= 4) {
		char *start = c->rbuf + off;
		char *end = memmem(start, c->rlen - off, "\r\n\r\n", 4);
		size_t hlen, blen, total;
		int bad;

		if (!end) {
			if (c->rlen - off > MAX_HEADER) {
				conn_close(fd);
				return;
			}
			break;
		}
		hlen = (size_t)(end - start) + 2; /* keep the last CRLF */
		blen = content_length(start, hlen, &bad);
		if (bad) {
			conn_close(fd);
			return;
		}
		total = hlen + 2 + blen;
		if (c->rlen - off < total)
			break;
		{
			char *sp1 = memchr(start, ' ', hlen), *sp2;
			char method[16], path[512], *query;
			size_t ml, pl;

			if (!sp1) {
				conn_close(fd);
				return;
			}
			sp2 = memchr(sp1 + 1, ' ', (size_t)(start + hlen - sp1 - 1));
			if (!sp2) {
				conn_close(fd);
				return;
			}
			ml = (size_t)(sp1 - start);
			pl = (size_t)(sp2 - sp1 - 1);
			if (ml >= sizeof(method) || pl >= sizeof(path)) {
				conn_close(fd);
				return;
			}
			if (pl >= 2 && sp1[1] == '/' && sp1[2] == '_') {
				memcpy(method, start, ml);
				method[ml] = 0;
				memcpy(path, sp1 + 1, pl);
				path[pl] = 0;
				query = strchr(path, '?');
				if (query)
					*query++ = 0;
				off += total;
				control(fd, method, path, query ? query : "");
				continue;
			}
			off += total;
			on_delivery(fd, start, hlen, start + hlen + 2, blen);
		}
	}
	if (!c->open)
		return;
	if (off) {
		memmove(c->rbuf, c->rbuf + off, c->rlen - off);
		c->rlen -= off;
	}
}

/* ---- connections -------------------------------------------------------- */

static void conn_close(int fd)
{
	struct conn *c = &conns[fd];
	struct listener *l;

	if (!c->open)
		return;
	l = &L[c->li];
	if (c->busy && !c->waiting)
		pending_change(l, -1, now_us());
	c->open = 0;
	c->busy = c->waiting = 0;
	c->gen++;
	c->rlen = c->wlen = c->woff = 0;
	c->want_out = 0;
	l->conns--;
	close(fd); /* also leaves the epoll set */
}

static void on_readable(int fd)
{
	struct conn *c = &conns[fd];

	for (;;) {
		ssize_t n;

		if (c->rcap - c->rlen < 16384) {
			c->rcap = c->rcap ? c->rcap * 2 : 32768;
			c->rbuf = xrealloc(c->rbuf, c->rcap);
		}
		n = read(fd, c->rbuf + c->rlen, c->rcap - c->rlen);
		if (n > 0) {
			c->rlen += (size_t)n;
			if (c->rlen < c->rcap)
				break; /* most likely drained */
			continue;
		}
		if (n == 0) {
			conn_close(fd);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		conn_close(fd);
		return;
	}
	process(fd);
}

static void on_accept(int li)
{
	for (;;) {
		int fd = accept4(L[li].fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		int one = 1;
		struct epoll_event ev = { .events = EPOLLIN };

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				perror("pw-bench-receiver: accept");
			return;
		}
		if (fd >= max_fds) {
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[fd].open = 1;
		conns[fd].li = li;
		conns[fd].busy = conns[fd].waiting = 0;
		conns[fd].rlen = conns[fd].wlen = conns[fd].woff = 0;
		conns[fd].want_out = 0;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			conns[fd].open = 0;
			continue;
		}
		if (++L[li].conns > L[li].conns_max)
			L[li].conns_max = L[li].conns;
	}
}

/* Sends the delayed answers that are due; returns the next due time. */
static int64_t fire_due(int64_t now)
{
	int64_t next = INT64_MAX;
	int i;

	for (i = 0; i < n_listeners; i++) {
		struct listener *l = &L[i];

		while (l->fifo_len) {
			struct due *d = &l->fifo[l->fifo_head];
			struct conn *c;

			if (d->due_us > now) {
				if (d->due_us < next)
					next = d->due_us;
				break;
			}
			int dfd = d->fd;
			unsigned dgen = d->gen;

			c = &conns[dfd];
			l->fifo_head = (l->fifo_head + 1) % l->fifo_cap;
			l->fifo_len--;
			if (!c->open || c->gen != dgen)
				continue;
			c->busy = 0;
			pending_change(l, -1, now);
			send_ok(dfd);
			if (c->open && c->rlen)
				process(dfd); /* may append to this fifo */
		}
	}
	for (size_t k = 0; k < n_waiters; k++)
		if (waiters[k].deadline_us < next)
			next = waiters[k].deadline_us;
	return next;
}

/* ---- setup ---------------------------------------------------------------- */

static void parse_spec(const char *spec)
{
	struct listener *l;
	char *copy, *tok, *save = NULL;

	if (n_listeners == MAX_LISTENERS) {
		fprintf(stderr, "pw-bench-receiver: too many listeners\n");
		exit(2);
	}
	l = &L[n_listeners++];
	memset(l, 0, sizeof(*l));
	l->ids_fd = -1;
	copy = strdup(spec);
	tok = strtok_r(copy, ",", &save);
	if (!tok || strlen(tok) >= sizeof(l->name)) {
		fprintf(stderr, "pw-bench-receiver: bad --listen %s\n", spec);
		exit(2);
	}
	snprintf(l->name, sizeof(l->name), "%s", tok);
	while ((tok = strtok_r(NULL, ",", &save)) != NULL) {
		if (strncmp(tok, "delay_ms=", 9) == 0) {
			l->delay_ms = strtol(tok + 9, NULL, 10);
		} else if (strcmp(tok, "hang") == 0) {
			l->hang = 1;
		} else if (strcmp(tok, "latency") == 0) {
			l->latency = 1;
		} else if (strncmp(tok, "ids=", 4) == 0) {
			l->ids_fd = open(tok + 4, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (l->ids_fd < 0)
				die(tok + 4);
			l->ids_buf = xrealloc(NULL, IDS_BUF);
		} else {
			fprintf(stderr, "pw-bench-receiver: bad option %s\n", tok);
			exit(2);
		}
	}
	free(copy);
}

static void open_listener(struct listener *l)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	int one = 1;
	struct epoll_event ev = { .events = EPOLLIN };

	l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0)
		die("socket");
	setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		die("bind");
	if (listen(l->fd, 8192) < 0)
		die("listen");
	if (getsockname(l->fd, (struct sockaddr *)&a, &alen) < 0)
		die("getsockname");
	l->port = ntohs(a.sin_port);
	ev.data.fd = -(int)(l - L) - 1; /* listeners: negative ids */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, l->fd, &ev) < 0)
		die("epoll_ctl");
}

int main(int argc, char **argv)
{
	const char *port_file = NULL;
	struct rlimit rl;
	struct epoll_event evs[512];
	sigset_t mask;
	int sfd, i;
	int64_t next_due = INT64_MAX;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			parse_spec(argv[++i]);
		else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else {
			fprintf(stderr,
				"usage: pw-bench-receiver --port-file FILE --listen "
				"NAME[,delay_ms=N][,hang][,latency][,ids=FILE]...\n");
			return 2;
		}
	}
	if (!n_listeners || !port_file) {
		fprintf(stderr, "pw-bench-receiver: need --listen and --port-file\n");
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	getrlimit(RLIMIT_NOFILE, &rl);
	max_fds = rl.rlim_cur > 1000000 ? 1000000 : (int)rl.rlim_cur;
	conns = calloc((size_t)max_fds, sizeof(*conns));
	if (!conns)
		die("calloc");
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || ep < 0)
		die("signalfd/epoll");
	{
		struct epoll_event ev = { .events = EPOLLIN, .data.fd = sfd };

		epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	}
	for (i = 0; i < n_listeners; i++)
		open_listener(&L[i]);
	{
		char tmp[4096];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
		f = fopen(tmp, "w");
		if (!f)
			die(tmp);
		for (i = 0; i < n_listeners; i++)
			fprintf(f, "%s %d\n", L[i].name, L[i].port);
		if (fclose(f) != 0 || rename(tmp, port_file) != 0)
			die(port_file);
	}
	reset_all();

	for (;;) {
		int n, k, timeout = -1;
		int64_t now;

		if (next_due != INT64_MAX) {
			int64_t d = next_due - now_us();

			timeout = d <= 0 ? 0 : (int)((d + 999) / 1000);
		}
		n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (k = 0; k < n; k++) {
			int fd = evs[k].data.fd;

			if (fd == sfd) {
				for (i = 0; i < n_listeners; i++)
					ids_flush(&L[i]);
				return 0;
			}
			if (fd < 0) {
				on_accept(-fd - 1);
				continue;
			}
			if (!conns[fd].open)
				continue;
			if (evs[k].events & EPOLLOUT)
				flush_out(fd);
			if (conns[fd].open && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				on_readable(fd);
		}
		now = now_us();
		if (n_waiters)
			waiters_check(now);
		next_due = fire_due(now);
	}
}
