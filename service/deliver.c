/*
 * deliver: webhook POSTs through libcurl's multi_socket API on the libevent
 * loop (pipeline stage 5); the only file that includes libcurl.
 * See include/promo_webhooks/deliver.h.
 *
 * A request lives in exactly one place: the FIFO queue of its target
 * (scheme://host:port), the running list (handed to curl), or the finished
 * list (failed before an attempt, reported from the loop). Targets with
 * queued work and a free per-target slot (below the target's adaptive
 * limit, tlimit.h) sit in a ring that the start pass
 * serves round-robin, one request per target per turn, while the total cap
 * allows; so a slow target fills only its own slots and never starves the
 * others. The start pass runs once per loop pass from a deferred event,
 * never inside a completion or inside deliver_submit.
 *
 * The address policy is applied in CURLOPT_OPENSOCKETFUNCTION, on the
 * address curl is about to dial, so what the name resolved to at that
 * moment is what is checked.
 *
 * Size: the only libcurl user: the multi_socket loop integration, the
 * per-target queues and the request itself belong together.
 */
#include "promo_webhooks/deliver.h"
#include "promo_webhooks/clock.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "promo_webhooks/addrpolicy.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/sign.h"
#include "promo_webhooks/redact.h"
#include "promo_webhooks/tlimit.h"

/* How much of a response body is read before the transfer is cut off. */
#define DELIVER_MAX_RESPONSE ((size_t)1 << 20)
/* How much of a response body is kept (for the attempt log, later). */
#define DELIVER_KEEP_RESPONSE 1024
/* Idle easy handles kept for reuse beyond this are cleaned up. */
#define DELIVER_MAX_FREE_EASY 1024
/* Header lines of a request: Content-Type, User-Agent, webhook-id,
 * webhook-timestamp, webhook-signature, Expect. */
#define DREQ_HEADERS 6
/* Their text: about 230 bytes with the longest id and signature. */
#define DREQ_HEADER_TEXT 384
/* Idle targets are looked for at most this often. */
#define DELIVER_SWEEP_MAX_MS 60000

enum dreq_state {
	DREQ_QUEUED,   /* in its target's queue */
	DREQ_RUNNING,  /* handed to curl, in d->running */
	DREQ_FINISHED, /* failed before an attempt, in d->finished */
};

struct target;

/*
 * A URL parsed once by curl's URL API and handed to each transfer with
 * CURLOPT_CURLU: given only CURLOPT_URL, curl parses the URL for every
 * transfer (curl_url_set) and prints it back whole (curl_url_get, through
 * its byte-at-a-time printf), about 10,000 instructions of the 118,000 a
 * delivery took. Shared by the URL cache slot and every request to the
 * URL, and counted: a slot replaced while a request still waits to start
 * (curl copies the handle when the transfer connects) leaves the request
 * its parse.
 */
struct parsed_url {
	CURLU *u;
	unsigned refs;
};

struct dreq {
	struct deliver *d;
	struct target *t;          /* NULL when finished before queueing */
	struct dreq *prev, *next;  /* links of the list it is in */
	enum dreq_state state;

	char *url;
	struct parsed_url *pu;     /* url parsed, or NULL: curl parses it */
	char *body;                /* owned; curl reads it in place */
	size_t body_len;
	char *content_type;
	char *message_id;
	char *secret;              /* NULL when unsigned */
	deliver_done_fn *done;
	deliver_started_fn *started;
	void *arg;

	CURL *easy;                /* while running */
	/* The request's header list, built in place (no allocation): curl
	 * reads it while the transfer runs; HTTPHEADER is cleared before
	 * the request is freed. */
	struct curl_slist hdr[DREQ_HEADERS];
	char hdr_text[DREQ_HEADER_TEXT]; /* the lines hdr points into */
	char errbuf[CURL_ERROR_SIZE];
	char refused[160];         /* "" or why the address policy refused */
	size_t resp_total;         /* response body bytes seen */
	size_t resp_kept;          /* bytes in resp_head */
	char *resp_head;           /* NULL, or the start of the response body
				    * (DELIVER_KEEP_RESPONSE bytes, allocated
				    * when a body arrives: most have none) */
	int too_large;             /* the body passed DELIVER_MAX_RESPONSE */
	int64_t started_mono_ms;
	int64_t started_us;        /* monotonic, for the target's rounds */
	int64_t queued_mono_ms;    /* when it was queued */
	struct deliver_result res;
};

struct dlist {
	struct dreq *head, *tail;
	size_t n;
};

struct target {
	char *key;                 /* "scheme://host:port" */
	struct target *hnext;      /* hash chain */
	struct target *rprev, *rnext; /* ready ring */
	int in_ring;
	struct dlist queue;        /* waiting, FIFO */
	size_t running;
	struct tlimit lim;          /* its adaptive in-flight limit (tlimit.h) */
	int64_t idle_since_ms;     /* monotonic; when queue and running last
				    * became empty */
	int dead;                  /* being freed by the idle sweep */
};

/* One socket curl asked us to watch. */
struct sockctx {
	struct deliver *d;
	curl_socket_t fd;
	int what;                  /* CURL_POLL_* currently watched */
	struct event *ev;
	struct sockctx *prev, *next;
};

/* Webhook URLs repeat on every delivery: their target is looked up by the
 * URL string in a direct-mapped cache instead of parsing the URL again
 * (parsing was ~6% of the CPU per delivery). The idle sweep clears the
 * slots of the targets it frees, so the pointers stay valid. */
#define URL_CACHE_SIZE 4096

struct url_slot {
	char *url;
	struct target *t;
	struct parsed_url *pu;     /* NULL when curl would not parse it */
};

struct deliver {
	struct event_base *base;
	CURLM *multi;
	CURLSH *share;             /* TLS sessions shared by all handles */
	struct event *timer;       /* curl's timeout */
	struct event *kick;        /* deferred: report finished, start queued */
	struct event *sweep;       /* frees targets idle for target_idle_ms */

	long timeout_ms;
	int64_t target_idle_ms;
	size_t max_total;
	size_t max_per_target;
	int allow_private;

	struct url_slot *url_cache; /* URL -> target, so a URL is parsed once */
	struct target **buckets;   /* targets by key */
	size_t nbuckets;
	size_t ntargets;
	struct target *ring_head, *ring_tail; /* targets that may start one now */

	struct dlist running;
	struct dlist finished;
	size_t queued;

	CURL **free_easy;          /* configured handles for reuse (easy_new) */
	size_t n_free_easy;
	struct sockctx *socks;     /* every watched socket */
	struct sockctx *spare_socks; /* unwatched, kept for the next socket
				      * (linked by next; their events
				      * allocated) */
	size_t n_spare_socks;
};

static int curl_inits; /* curl_global_init calls not yet balanced */

/* ---- small helpers --------------------------------------------------- */

static char *dup_str(const char *s)
{
	size_t n;
	char *p;

	if (!s)
		return NULL;
	n = strlen(s) + 1;
	p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void dlist_push(struct dlist *l, struct dreq *r)
{
	r->next = NULL;
	r->prev = l->tail;
	if (l->tail)
		l->tail->next = r;
	else
		l->head = r;
	l->tail = r;
	l->n++;
}

static void dlist_unlink(struct dlist *l, struct dreq *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		l->head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	else
		l->tail = r->prev;
	r->prev = r->next = NULL;
	l->n--;
}

static void set_result(struct dreq *r, enum deliver_outcome o, const char *err)
{
	r->res.outcome = o;
	snprintf(r->res.error, sizeof(r->res.error), "%s", err ? err : "");
	/* The error goes to the attempt log, notices and logs: should curl
	 * ever quote the URL, a stored target's password stays out. */
	if (strchr(r->res.error, '@')) {
		struct buf shown;

		buf_init(&shown, sizeof(r->res.error) * 2);
		redact_userinfo(r->res.error, strlen(r->res.error), &shown);
		if (!shown.failed)
			snprintf(r->res.error, sizeof(r->res.error), "%s", buf_str(&shown));
		buf_release(&shown);
	}
}

/* The strings of a request live in the same allocation as the request
 * (dreq_new): one malloc per delivery instead of five. */
/* url parsed with the flags curl parses CURLOPT_URL with (url.c), so the
 * transfer sees what it would have parsed itself. NULL when out of memory
 * or when curl refuses the URL: the transfer then gets the URL as text and
 * fails on it the way it always did. */
static struct parsed_url *parsed_url_new(const char *url)
{
	struct parsed_url *pu = malloc(sizeof(*pu));

	if (!pu)
		return NULL;
	pu->refs = 1;
	pu->u = curl_url();
	if (!pu->u || curl_url_set(pu->u, CURLUPART_URL, url,
				   CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
		curl_url_cleanup(pu->u);
		free(pu);
		return NULL;
	}
	return pu;
}

static struct parsed_url *parsed_url_ref(struct parsed_url *pu)
{
	if (pu)
		pu->refs++;
	return pu;
}

static void parsed_url_release(struct parsed_url *pu)
{
	if (pu && --pu->refs == 0) {
		curl_url_cleanup(pu->u);
		free(pu);
	}
}

static void url_slot_clear(struct url_slot *slot)
{
	free(slot->url);
	parsed_url_release(slot->pu);
	slot->url = NULL;
	slot->t = NULL;
	slot->pu = NULL;
}

static void dreq_free(struct dreq *r)
{
	parsed_url_release(r->pu);
	free(r->body);
	free(r->resp_head);
	free(r);
}

/* Appends s (with its NUL) at *pos in the request's trailing storage and
 * returns where it went. */
static char *dreq_str(char **pos, const char *s)
{
	size_t n = strlen(s) + 1;
	char *dst = *pos;

	memcpy(dst, s, n);
	*pos += n;
	return dst;
}

static struct dreq *dreq_new(const struct deliver_request *req)
{
	const char *url = req->target ? req->target : "";
	const char *ctype = req->content_type ? req->content_type : "application/json";
	const char *msg_id = req->message_id ? req->message_id : "";
	size_t extra = strlen(url) + strlen(ctype) + strlen(msg_id) + 3 +
		       (req->secret ? strlen(req->secret) + 1 : 0);
	struct dreq *r = calloc(1, sizeof(*r) + extra);
	char *pos;

	if (!r)
		return NULL;
	pos = (char *)(r + 1);
	r->url = dreq_str(&pos, url);
	r->content_type = dreq_str(&pos, ctype);
	r->message_id = dreq_str(&pos, msg_id);
	r->secret = req->secret ? dreq_str(&pos, req->secret) : NULL;
	return r;
}

static void kick(struct deliver *d)
{
	event_active(d->kick, EV_TIMEOUT, 0);
}

/* ---- targets --------------------------------------------------------- */

static size_t hash_key(const char *s)
{
	size_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

static int targets_grow(struct deliver *d)
{
	size_t n = d->nbuckets ? d->nbuckets * 2 : 64, i;
	struct target **b = calloc(n, sizeof(*b));

	if (!b)
		return -1;
	for (i = 0; i < d->nbuckets; i++) {
		struct target *t = d->buckets[i], *next;

		for (; t; t = next) {
			size_t h = hash_key(t->key) & (n - 1);

			next = t->hnext;
			t->hnext = b[h];
			b[h] = t;
		}
	}
	free(d->buckets);
	d->buckets = b;
	d->nbuckets = n;
	return 0;
}

/* Microseconds since an arbitrary start (CLOCK_MONOTONIC): answers from a
 * fast target take well under a millisecond. */
static int64_t mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct target *target_get(struct deliver *d, const char *key)
{
	struct target *t;
	size_t h;

	if (d->nbuckets) {
		for (t = d->buckets[hash_key(key) & (d->nbuckets - 1)]; t; t = t->hnext)
			if (strcmp(t->key, key) == 0)
				return t;
	}
	if (d->ntargets >= d->nbuckets && targets_grow(d) < 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->key = dup_str(key);
	if (!t->key) {
		free(t);
		return NULL;
	}
	t->idle_since_ms = clock_mono_ms();
	tlimit_init(&t->lim, d->max_per_target, mono_us());
	h = hash_key(key) & (d->nbuckets - 1);
	t->hnext = d->buckets[h];
	d->buckets[h] = t;
	d->ntargets++;
	return t;
}

static void ring_remove(struct deliver *d, struct target *t)
{
	if (!t->in_ring)
		return;
	if (t->rprev)
		t->rprev->rnext = t->rnext;
	else
		d->ring_head = t->rnext;
	if (t->rnext)
		t->rnext->rprev = t->rprev;
	else
		d->ring_tail = t->rprev;
	t->rprev = t->rnext = NULL;
	t->in_ring = 0;
}

/* Keeps the invariant: t is in the ring iff it has queued requests and a
 * free slot. A target that joins goes to the tail (its turn comes after
 * everyone already waiting). */
static void ring_update(struct deliver *d, struct target *t)
{
	int eligible = t->queue.n > 0 && t->running < t->lim.limit;

	if (eligible && !t->in_ring) {
		t->rnext = NULL;
		t->rprev = d->ring_tail;
		if (d->ring_tail)
			d->ring_tail->rnext = t;
		else
			d->ring_head = t;
		d->ring_tail = t;
		t->in_ring = 1;
	} else if (!eligible && t->in_ring) {
		ring_remove(d, t);
	}
}

/* How long t's queue would take to drain at the target's own pace with
 * its cap in flight: cap answers per base answer time (Little's law). The
 * base is measured at the floor, so it is the target's own answer time,
 * not the time answers waited for a busy loop, and the cap is used rather
 * than the limit of the moment (it drops to the floor for a round every
 * 10 s, and starts there): a queue that is long only because the limit is
 * low, or the loop busy, drains fast. Before the first round the pace is
 * unknown: as if forever. */
static int64_t drain_ms(const struct target *t)
{
	if (!t->lim.base_us)
		return INT64_MAX;
	return (int64_t)t->queue.n * t->lim.base_us / (int64_t)t->lim.max / 1000;
}

/* An answer (or timeout) to r counts toward its target's limit. */
static void target_adapt(struct target *t, const struct dreq *r)
{
	size_t was = t->lim.limit;

	if (tlimit_answer(&t->lim, r->started_us, mono_us(), r->res.outcome == DELIVER_TIMEOUT,
			  t->queue.n > 0))
		log_debug("target limit changed",
			  "target=\"%s\" limit=%zu was=%zu base_us=%" PRId64 " queued=%zu",
			  t->key, t->lim.limit, was, t->lim.base_us, t->queue.n);
}

/* A target with nothing queued or running leaves the ready ring. It is kept
 * while deliveries to it keep coming; the idle sweep (sweep_cb) frees it
 * once it has been idle for target_idle_ms. */
static void target_release_if_idle(struct deliver *d, struct target *t)
{
	if (t->queue.n || t->running)
		return;
	ring_remove(d, t);
	t->idle_since_ms = clock_mono_ms();
}

static void target_free(struct target *t)
{
	free(t->key);
	free(t);
}

/* Frees every target idle for target_idle_ms and the URL cache slots that
 * point at them: one small struct per scheme://host:port ever seen would
 * otherwise stay forever. A later delivery creates the target again (its
 * URL parsed once more); curl's connection cache ages idle connections out
 * on its own. */
static void sweep_cb(evutil_socket_t fd, short events, void *arg)
{
	struct deliver *d = arg;
	struct target *dead = NULL, *t, **link;
	int64_t now = clock_mono_ms();
	size_t i, n = 0;

	(void)fd;
	(void)events;
	for (i = 0; i < d->nbuckets; i++) {
		link = &d->buckets[i];
		while ((t = *link) != NULL) {
			if (t->queue.n || t->running || now - t->idle_since_ms < d->target_idle_ms) {
				link = &t->hnext;
				continue;
			}
			*link = t->hnext;
			t->dead = 1;
			t->hnext = dead;
			dead = t;
			d->ntargets--;
			n++;
		}
	}
	if (!dead)
		return;
	for (i = 0; i < URL_CACHE_SIZE; i++) {
		struct url_slot *slot = &d->url_cache[i];

		if (slot->t && slot->t->dead)
			url_slot_clear(slot);
	}
	while ((t = dead) != NULL) {
		dead = t->hnext;
		target_free(t);
	}
	log_debug("idle delivery targets freed", "count=%zu left=%zu", n, d->ntargets);
}

/*
 * "scheme://host:port" of an absolute http(s) URL, lower case, by curl's URL
 * API: the one URL grammar of the service (the admin API checks targets
 * with it too, deliver_target_check). Returns NULL, or why the URL cannot
 * be delivered to.
 */
static const char *target_key(const char *url, char *key, size_t keylen)
{
	char *scheme = NULL, *host = NULL, *port = NULL;
	const char *why = NULL;
	CURLU *u = curl_url();
	size_t i;

	if (!u)
		return "cannot be parsed: out of memory";
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
		why = "is not a valid URL";
		goto out;
	}
	if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
		why = "must be an absolute http or https URL";
		goto out;
	}
	if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0] ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
		why = "must name a host";
		goto out;
	}
	if (strcmp(port, "0") == 0) {
		why = "has an invalid port";
		goto out;
	}
	if ((size_t)snprintf(key, keylen, "%s://%s:%s", scheme, host, port) >= keylen) {
		why = "has a host name too long";
		goto out;
	}
	for (i = 0; key[i]; i++)
		key[i] = (char)tolower((unsigned char)key[i]);
out:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return why;
}

const char *deliver_target_check(const char *url)
{
	char key[1024];

	return target_key(url, key, sizeof(key));
}

/* ---- curl callbacks -------------------------------------------------- */

static curl_socket_t open_socket_cb(void *clientp, curlsocktype purpose,
				    struct curl_sockaddr *a)
{
	struct dreq *r = clientp;
	curl_socket_t s;

	if (purpose == CURLSOCKTYPE_IPCXN && !r->d->allow_private) {
		char why[64], shown[64];

		if (!addrpolicy_allowed(&a->addr, why, sizeof(why))) {
			addrpolicy_format(&a->addr, shown, sizeof(shown));
			if (!r->refused[0])
				snprintf(r->refused, sizeof(r->refused),
					 "target address not allowed: %s (%s)", shown,
					 why);
			return CURL_SOCKET_BAD;
		}
	}
	s = socket(a->family, a->socktype, a->protocol);
	if (s >= 0 && fcntl(s, F_SETFD, FD_CLOEXEC) < 0) {
		close(s);
		return CURL_SOCKET_BAD;
	}
	return s;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct dreq *r = userdata;
	size_t n = size * nmemb;

	if (!r->resp_head && n > 0)
		r->resp_head = malloc(DELIVER_KEEP_RESPONSE); /* NULL: not kept */
	if (r->resp_head && r->resp_kept < DELIVER_KEEP_RESPONSE) {
		size_t keep = DELIVER_KEEP_RESPONSE - r->resp_kept;

		if (keep > n)
			keep = n;
		memcpy(r->resp_head + r->resp_kept, ptr, keep);
		r->resp_kept += keep;
	}
	r->resp_total += n;
	if (r->resp_total > DELIVER_MAX_RESPONSE) {
		r->too_large = 1;
#ifdef CURL_WRITEFUNC_ERROR
		return CURL_WRITEFUNC_ERROR;
#else
		return 0;
#endif
	}
	return n;
}

static void process_completions(struct deliver *d);

static void sock_event_cb(evutil_socket_t fd, short events, void *arg)
{
	struct sockctx *sc = arg;
	struct deliver *d = sc->d; /* sc may be freed by socket_action */
	int action = 0, running;
	CURLMcode mc;

	if (events & EV_READ)
		action |= CURL_CSELECT_IN;
	if (events & EV_WRITE)
		action |= CURL_CSELECT_OUT;
	mc = curl_multi_socket_action(d->multi, fd, action, &running);
	if (mc != CURLM_OK)
		log_error("curl_multi_socket_action failed", "error=\"%s\"",
			  curl_multi_strerror(mc));
	process_completions(d);
}

/* Stops watching sc's socket. A keep-alive connection leaves curl's watch
 * after every transfer and comes back for the next one, so sc and its
 * event are kept for reuse instead of freed and allocated again (four
 * malloc/free per delivery); at most max_total are kept. */
static void sock_free(struct deliver *d, struct sockctx *sc)
{
	event_del(sc->ev);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		d->socks = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	if (d->n_spare_socks < d->max_total) {
		sc->prev = NULL;
		sc->next = d->spare_socks;
		d->spare_socks = sc;
		d->n_spare_socks++;
		return;
	}
	event_free(sc->ev);
	free(sc);
}

static struct sockctx *sock_new(struct deliver *d, curl_socket_t s)
{
	struct sockctx *sc = d->spare_socks;

	if (sc) {
		struct event *ev = sc->ev; /* not pending: sock_free deleted it */

		d->spare_socks = sc->next;
		d->n_spare_socks--;
		memset(sc, 0, sizeof(*sc));
		sc->ev = ev;
		return sc;
	}
	sc = calloc(1, sizeof(*sc));
	if (sc)
		sc->ev = event_new(d->base, s, 0, sock_event_cb, sc);
	if (sc && !sc->ev) {
		free(sc);
		return NULL;
	}
	return sc;
}

static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct deliver *d = userp;
	struct sockctx *sc = socketp;
	short kind;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			curl_multi_assign(d->multi, s, NULL);
			sock_free(d, sc);
		}
		return 0;
	}
	if (!sc) {
		sc = sock_new(d, s);
		if (!sc) {
			log_error("cannot watch a delivery socket", "error=\"%s\"",
				  "out of memory");
			return -1;
		}
		sc->d = d;
		sc->fd = s;
		sc->next = d->socks;
		if (d->socks)
			d->socks->prev = sc;
		d->socks = sc;
		curl_multi_assign(d->multi, s, sc);
	} else {
		if (sc->what == what)
			return 0;
		event_del(sc->ev);
	}
	sc->what = what;
	kind = EV_PERSIST;
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (event_assign(sc->ev, d->base, s, kind, sock_event_cb, sc) < 0 ||
	    event_add(sc->ev, NULL) < 0) {
		log_error("cannot watch a delivery socket", "fd=%d", (int)s);
		return -1;
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct deliver *d = userp;
	struct timeval tv;

	(void)multi;
	if (timeout_ms < 0) {
		event_del(d->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	if (event_add(d->timer, &tv) < 0) {
		log_error("cannot arm the delivery timer", "%s", "");
		return -1;
	}
	return 0;
}

/* Lets curl run every transfer whose timer is due (new ones are due at
 * once), then reports what finished. */
static void run_due(struct deliver *d)
{
	int running;
	CURLMcode mc = curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);

	if (mc != CURLM_OK)
		log_error("curl_multi_socket_action failed", "error=\"%s\"",
			  curl_multi_strerror(mc));
	process_completions(d);
}

static void timer_event_cb(evutil_socket_t fd, short events, void *arg)
{
	(void)fd;
	(void)events;
	run_due(arg);
}

/* ---- attempts -------------------------------------------------------- */

#define SETOPT(opt, val)                                                       \
	do {                                                                   \
		if (rc == CURLE_OK)                                            \
			rc = curl_easy_setopt(easy, opt, val);                 \
	} while (0)

/*
 * A handle with the options every delivery shares, set once: handles go
 * back to the pool without curl_easy_reset, so a transfer sets only what
 * differs per request (attempt_start). Resetting and setting every option
 * again (the string ones are copied and parsed) was ~5% of the CPU per
 * delivery.
 */
static CURL *easy_new(struct deliver *d)
{
	CURL *easy = curl_easy_init();
	CURLcode rc = CURLE_OK;

	if (!easy)
		return NULL;
	SETOPT(CURLOPT_NOSIGNAL, 1L);
	SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
	SETOPT(CURLOPT_PROXY, "");
	/* No proxy for any host: without it curl reads no_proxy and NO_PROXY
	 * from the environment on every transfer. */
	SETOPT(CURLOPT_NOPROXY, "*");
	SETOPT(CURLOPT_TIMEOUT_MS, d->timeout_ms);
	SETOPT(CURLOPT_WRITEFUNCTION, write_cb);
	SETOPT(CURLOPT_OPENSOCKETFUNCTION, open_socket_cb);
	SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
	SETOPT(CURLOPT_SHARE, d->share);
	if (rc != CURLE_OK) {
		log_error("cannot configure a curl handle", "error=\"%s\"",
			  curl_easy_strerror(rc));
		curl_easy_cleanup(easy);
		return NULL;
	}
	return easy;
}

static CURL *easy_get(struct deliver *d)
{
	if (d->n_free_easy)
		return d->free_easy[--d->n_free_easy];
	return easy_new(d);
}

/* Takes a handle back; its per-request pointers are cleared so that
 * nothing in it points at a freed request. */
static void easy_put(struct deliver *d, CURL *easy)
{
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(easy, CURLOPT_CURLU, NULL);
	curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(easy, CURLOPT_OPENSOCKETDATA, NULL);
	if (d->n_free_easy < d->max_total && d->n_free_easy < DELIVER_MAX_FREE_EASY)
		d->free_easy[d->n_free_easy++] = easy;
	else
		curl_easy_cleanup(easy);
}

static enum deliver_outcome outcome_of(CURLcode code)
{
	switch (code) {
	case CURLE_OPERATION_TIMEDOUT:
		return DELIVER_TIMEOUT;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return DELIVER_CONNECT;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return DELIVER_TLS;
	default:
		return DELIVER_OTHER;
	}
}

/* Fills r->res from curl's verdict on a finished transfer. */
static void classify(struct dreq *r, CURLcode code)
{
	long status = 0;

	if (curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
		status = 0;
	r->res.status = status;
	/* A cut-off oversized body still has the status the receiver gave:
	 * the contract judges an attempt by its status alone. */
	if (code == CURLE_OK || (code == CURLE_WRITE_ERROR && r->too_large && status > 0)) {
		if (status >= 200 && status <= 299) {
			set_result(r, DELIVER_OK, "");
		} else {
			char e[32];

			snprintf(e, sizeof(e), "HTTP %ld", status);
			set_result(r, DELIVER_HTTP_STATUS, e);
		}
		return;
	}
	if (r->refused[0] && code == CURLE_COULDNT_CONNECT) {
		set_result(r, DELIVER_REFUSED, r->refused);
		return;
	}
	if (r->too_large) {
		set_result(r, DELIVER_OTHER, "response too large");
		return;
	}
	set_result(r, outcome_of(code), r->errbuf[0] ? r->errbuf : curl_easy_strerror(code));
}

/*
 * Reports r and frees it. A running request gives its slot back first, so
 * that done may submit again. Called only from loop callbacks.
 */
static void complete(struct deliver *d, struct dreq *r)
{
	struct target *t = r->t;
	deliver_done_fn *done = r->done;
	void *arg = r->arg;

	if (r->state == DREQ_RUNNING) {
		dlist_unlink(&d->running, r);
		t->running--;
		if (r->easy) {
			easy_put(d, r->easy);
			r->easy = NULL;
		}
		r->res.duration_ms = clock_mono_ms() - r->started_mono_ms;
		target_adapt(t, r);
	} else if (r->state == DREQ_FINISHED) {
		dlist_unlink(&d->finished, r);
	}
	if (t) {
		ring_update(d, t);
		target_release_if_idle(d, t);
		r->t = NULL;
	}
	if (d->ring_head)
		kick(d);
	if (r->res.outcome != DELIVER_OK)
		log_debug("delivery attempt failed", "outcome=%d status=%ld error=\"%s\"",
			  (int)r->res.outcome, r->res.status, r->res.error);
	r->res.response = r->resp_head;
	r->res.response_len = r->resp_kept;
	done(arg, &r->res);
	dreq_free(r);
}

static void process_completions(struct deliver *d)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(d->multi, &left)) != NULL) {
		CURLcode code = msg->data.result;
		CURL *easy = msg->easy_handle;
		char *priv = NULL;
		struct dreq *r;

		if (msg->msg != CURLMSG_DONE)
			continue;
		if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv) != CURLE_OK || !priv) {
			log_error("finished transfer without a request", "%s", "");
			curl_multi_remove_handle(d->multi, easy);
			curl_easy_cleanup(easy);
			continue;
		}
		r = (struct dreq *)priv;
		classify(r, code);
		curl_multi_remove_handle(d->multi, easy);
		complete(d, r);
	}
}

/* Appends "name: value" (or "name:" when value is NULL) to r's header
 * list, in r's own storage. -1 when it does not fit or value holds a line
 * break. */
static int header_add(struct dreq *r, size_t *n, size_t *used, const char *name,
		      const char *value)
{
	char *line = r->hdr_text + *used;
	size_t room = sizeof(r->hdr_text) - *used;
	size_t nlen = strlen(name), vlen = value ? strlen(value) : 0, i;

	for (i = 0; i < vlen; i++)
		if (value[i] == '\r' || value[i] == '\n')
			return -1;
	/* "name:" [" " value] NUL, without a printf per header. */
	if (*n == DREQ_HEADERS || nlen + 1 + (value ? 1 + vlen : 0) + 1 > room)
		return -1;
	memcpy(line, name, nlen);
	line[nlen] = ':';
	i = nlen + 1;
	if (value) {
		line[i++] = ' ';
		memcpy(line + i, value, vlen);
		i += vlen;
	}
	line[i] = '\0';
	*used += i + 1;
	r->hdr[*n].data = line;
	r->hdr[*n].next = NULL;
	if (*n > 0)
		r->hdr[*n - 1].next = &r->hdr[*n];
	(*n)++;
	return 0;
}

/*
 * Hands r to curl. On failure returns -1 with r->res set; r is then not
 * in the running list and owns no easy handle.
 */
static int attempt_start(struct deliver *d, struct dreq *r)
{
	char ts[24], sig[SIGN_SIGNATURE_LEN];
	size_t nh = 0, used = 0;
	CURLcode rc = CURLE_OK;
	CURLMcode mc;
	int64_t now;
	CURL *easy;

	r->res.started_ms = now = clock_wall_ms();
	r->started_mono_ms = clock_mono_ms();
	r->started_us = mono_us();
	snprintf(ts, sizeof(ts), "%" PRId64, now / 1000);

	if (r->secret && sign_signature(r->secret, r->message_id, now / 1000, r->body,
					r->body_len, sig) < 0) {
		set_result(r, DELIVER_OTHER, "malformed webhook secret");
		return -1;
	}
	if (header_add(r, &nh, &used, "Content-Type", r->content_type) < 0 ||
	    header_add(r, &nh, &used, "User-Agent", "promo-webhooks/" PW_VERSION) < 0 ||
	    header_add(r, &nh, &used, "webhook-id", r->message_id) < 0 ||
	    header_add(r, &nh, &used, "webhook-timestamp", ts) < 0 ||
	    (r->secret && header_add(r, &nh, &used, "webhook-signature", sig) < 0) ||
	    header_add(r, &nh, &used, "Expect", NULL) < 0) {
		set_result(r, DELIVER_OTHER, "cannot build request headers");
		return -1;
	}
	easy = easy_get(d);
	if (!easy) {
		set_result(r, DELIVER_OTHER, "out of memory");
		return -1;
	}
	/* Only what differs per request; the rest was set by easy_new. */
	r->errbuf[0] = '\0';
	/* The URL as text too: it is what curl reports as the effective URL. */
	SETOPT(CURLOPT_URL, r->url);
	SETOPT(CURLOPT_CURLU, r->pu ? r->pu->u : NULL);
	SETOPT(CURLOPT_PRIVATE, (char *)r);
	SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
	SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
	SETOPT(CURLOPT_POSTFIELDS, r->body ? r->body : "");
	SETOPT(CURLOPT_HTTPHEADER, &r->hdr[0]);
	SETOPT(CURLOPT_WRITEDATA, r);
	SETOPT(CURLOPT_OPENSOCKETDATA, r);
	if (rc != CURLE_OK) {
		easy_put(d, easy);
		set_result(r, DELIVER_OTHER, curl_easy_strerror(rc));
		return -1;
	}
	mc = curl_multi_add_handle(d->multi, easy);
	if (mc != CURLM_OK) {
		easy_put(d, easy);
		set_result(r, DELIVER_OTHER, curl_multi_strerror(mc));
		return -1;
	}
	r->easy = easy;
	r->state = DREQ_RUNNING;
	dlist_push(&d->running, r);
	if (r->started)
		r->started(r->arg);
	return 0;
}

#undef SETOPT

/* The deferred pass: reports requests that failed before an attempt, then
 * starts queued requests round-robin across targets while slots allow. */
static void kick_cb(evutil_socket_t fd, short events, void *arg)
{
	struct deliver *d = arg;
	size_t n, started = 0;

	(void)fd;
	(void)events;
	/* Only those present now: a done callback may add more. */
	for (n = d->finished.n; n > 0 && d->finished.head; n--)
		complete(d, d->finished.head);

	while (d->ring_head && d->running.n < d->max_total) {
		struct target *t = d->ring_head;
		struct dreq *r = t->queue.head;

		dlist_unlink(&t->queue, r);
		d->queued--;
		ring_remove(d, t);
		if (attempt_start(d, r) == 0) {
			t->running++;
			started++;
			ring_update(d, t);
			continue;
		}
		/* Failed before reaching curl: report it as finished. */
		r->state = DREQ_FINISHED;
		dlist_push(&d->finished, r);
		ring_update(d, t);
		complete(d, r);
	}
	/* Start what was added now, in this loop pass, rather than from the
	 * 0 ms timer curl set for it in the next one: a keep-alive connection
	 * that an answer just gave back is taken again before the loop
	 * applies its watch changes, so its socket never leaves epoll (two
	 * epoll_ctl calls and a loop pass less per delivery). */
	if (started)
		run_due(d);
}

/* ---- public API ------------------------------------------------------ */

struct deliver *deliver_new(struct event_base *base, const struct config *cfg,
			    char *err, size_t errlen)
{
	struct deliver *d;
	CURLMcode mc = CURLM_OK;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(err, errlen, "curl_global_init failed");
		return NULL;
	}
	curl_inits++;
	d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		curl_global_cleanup();
		curl_inits--;
		return NULL;
	}
	d->base = base;
	d->timeout_ms = cfg->delivery_timeout_ms > 0 ? cfg->delivery_timeout_ms : 10000;
	d->max_total = cfg->max_in_flight > 0 ? (size_t)cfg->max_in_flight : 4096;
	d->max_per_target = cfg->max_in_flight_per_target > 0
				    ? (size_t)cfg->max_in_flight_per_target
				    : 256;
	d->allow_private = cfg->allow_private_targets;
	d->target_idle_ms = cfg->target_idle_ms > 0 ? cfg->target_idle_ms : 300000;
	d->free_easy = calloc(d->max_total < DELIVER_MAX_FREE_EASY ? d->max_total
								    : DELIVER_MAX_FREE_EASY,
			      sizeof(*d->free_easy));
	d->url_cache = calloc(URL_CACHE_SIZE, sizeof(*d->url_cache));
	d->multi = curl_multi_init();
	d->share = curl_share_init();
	d->timer = evtimer_new(base, timer_event_cb, d);
	d->kick = event_new(base, -1, 0, kick_cb, d);
	d->sweep = event_new(base, -1, EV_PERSIST, sweep_cb, d);
	if (!d->free_easy || !d->url_cache || !d->multi || !d->share || !d->timer ||
	    !d->kick || !d->sweep) {
		snprintf(err, errlen, "out of memory");
		deliver_free(d);
		return NULL;
	}
	mc = curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
	/* Keep a warm connection for every slot that may be busy. */
	if (mc == CURLM_OK)
		mc = curl_multi_setopt(d->multi, CURLMOPT_MAXCONNECTS, (long)d->max_total);
	if (mc != CURLM_OK) {
		snprintf(err, errlen, "curl_multi_setopt: %s", curl_multi_strerror(mc));
		deliver_free(d);
		return NULL;
	}
	/* One thread: no lock callbacks needed. The multi handle already
	 * shares its DNS cache and connections. */
	if (curl_share_setopt(d->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
	    CURLSHE_OK) {
		snprintf(err, errlen, "curl_share_setopt failed");
		deliver_free(d);
		return NULL;
	}
	{
		int64_t every = d->target_idle_ms < DELIVER_SWEEP_MAX_MS ? d->target_idle_ms
									: DELIVER_SWEEP_MAX_MS;
		struct timeval tv = { (time_t)(every / 1000), (suseconds_t)(every % 1000) * 1000 };

		if (event_add(d->sweep, &tv) < 0) {
			snprintf(err, errlen, "cannot arm the idle target sweep");
			deliver_free(d);
			return NULL;
		}
	}
	return d;
}

void deliver_free(struct deliver *d)
{
	size_t i;

	if (!d)
		return;
	deliver_cancel_all(d);
	if (d->multi)
		curl_multi_cleanup(d->multi);
	while (d->socks)
		sock_free(d, d->socks);
	while (d->spare_socks) {
		struct sockctx *sc = d->spare_socks;

		d->spare_socks = sc->next;
		event_free(sc->ev);
		free(sc);
	}
	for (i = 0; i < d->n_free_easy; i++)
		curl_easy_cleanup(d->free_easy[i]);
	free(d->free_easy);
	if (d->share && curl_share_cleanup(d->share) != CURLSHE_OK)
		log_warn("curl share handle still in use at shutdown", "%s", "");
	for (i = 0; i < d->nbuckets; i++) {
		struct target *t, *next;

		for (t = d->buckets[i]; t; t = next) {
			next = t->hnext;
			target_free(t);
		}
	}
	free(d->buckets);
	if (d->url_cache) {
		for (i = 0; i < URL_CACHE_SIZE; i++)
			url_slot_clear(&d->url_cache[i]);
		free(d->url_cache);
	}
	if (d->timer)
		event_free(d->timer);
	if (d->kick)
		event_free(d->kick);
	if (d->sweep)
		event_free(d->sweep);
	free(d);
	if (curl_inits > 0) {
		curl_inits--;
		curl_global_cleanup();
	}
}

/*
 * The target of url, from the cache or parsed once, and *pu the URL parsed
 * for curl (NULL when it could not be: the request then passes it as
 * text). NULL with *bad = 1 and why set when the URL cannot be used; NULL
 * with *bad = 0 when out of memory.
 */
static struct target *target_for_url(struct deliver *d, const char *url, char *why,
				     size_t whylen, int *bad, struct parsed_url **pu)
{
	struct url_slot *slot = &d->url_cache[hash_key(url) & (URL_CACHE_SIZE - 1)];
	struct target *t;
	const char *reason;
	char key[1024];
	char *copy;

	*bad = 0;
	*pu = NULL;
	if (slot->url && strcmp(slot->url, url) == 0) {
		*pu = slot->pu;
		return slot->t;
	}
	reason = target_key(url, key, sizeof(key));
	if (reason) {
		snprintf(why, whylen, "target URL %s", reason);
		*bad = 1;
		return NULL;
	}
	t = target_get(d, key);
	copy = t ? dup_str(url) : NULL;
	if (copy) {
		url_slot_clear(slot);
		slot->url = copy;
		slot->t = t;
		slot->pu = *pu = parsed_url_new(url);
	}
	return t;
}

int deliver_submit(struct deliver *d, const struct deliver_request *req,
		   deliver_done_fn *done, void *arg)
{
	char why[128];
	struct parsed_url *pu;
	struct target *t;
	struct dreq *r;
	int bad;

	r = dreq_new(req);
	if (!r) {
		free(req->body);
		return -1;
	}
	r->d = d;
	r->body = req->body;
	r->body_len = req->body_len;
	r->done = done;
	r->started = req->started;
	r->arg = arg;
	t = target_for_url(d, r->url, why, sizeof(why), &bad, &pu);
	if (!t && bad) {
		/* Not an attempt that could start: reported from the loop. */
		set_result(r, DELIVER_OTHER, why);
		r->res.started_ms = clock_wall_ms();
		r->state = DREQ_FINISHED;
		dlist_push(&d->finished, r);
		kick(d);
		return 0;
	}
	if (!t) {
		dreq_free(r);
		return -1;
	}
	r->pu = parsed_url_ref(pu);
	r->queued_mono_ms = clock_mono_ms();
	/* Saturated: the queue is long AND does not drain (its head has
	 * waited a while, and at the target's own pace the queue takes as
	 * long again). A fast target with a burst queued is not; nor is a
	 * 50 ms one whose answers wait for a busy loop. */
	if (req->max_queued && t->queue.n >= req->max_queued &&
	    r->queued_mono_ms - t->queue.head->queued_mono_ms >= DELIVER_SATURATED_WAIT_MS &&
	    drain_ms(t) >= DELIVER_SATURATED_WAIT_MS) {
		dreq_free(r);
		return DELIVER_SATURATED;
	}
	r->t = t;
	r->state = DREQ_QUEUED;
	dlist_push(&t->queue, r);
	d->queued++;
	ring_update(d, t);
	if (t->in_ring)
		kick(d);
	return 0;
}

size_t deliver_pending(const struct deliver *d)
{
	return d->queued + d->running.n + d->finished.n;
}

size_t deliver_targets(const struct deliver *d)
{
	return d->ntargets;
}

void deliver_cancel_all(struct deliver *d)
{
	struct dlist all = { NULL, NULL, 0 };
	struct dreq *r;
	size_t i;

	/* Detach everything first: done callbacks may submit again. */
	while ((r = d->running.head) != NULL) {
		dlist_unlink(&d->running, r);
		curl_multi_remove_handle(d->multi, r->easy);
		easy_put(d, r->easy);
		r->easy = NULL;
		r->t->running--;
		r->res.duration_ms = clock_mono_ms() - r->started_mono_ms;
		set_result(r, DELIVER_CANCELLED, "cancelled at shutdown");
		dlist_push(&all, r);
	}
	for (i = 0; i < d->nbuckets; i++) {
		struct target *t;

		for (t = d->buckets[i]; t; t = t->hnext) {
			while ((r = t->queue.head) != NULL) {
				dlist_unlink(&t->queue, r);
				d->queued--;
				set_result(r, DELIVER_CANCELLED, "cancelled at shutdown");
				dlist_push(&all, r);
			}
		}
	}
	while ((r = d->finished.head) != NULL) {
		dlist_unlink(&d->finished, r);
		dlist_push(&all, r);
	}
	/* Every target is idle now: forget them all. */
	for (r = all.head; r; r = r->next)
		r->t = NULL;
	for (i = 0; i < d->nbuckets; i++) {
		struct target *t, *next;

		for (t = d->buckets[i]; t; t = next) {
			next = t->hnext;
			target_free(t);
		}
		d->buckets[i] = NULL;
	}
	d->ntargets = 0;
	d->ring_head = d->ring_tail = NULL;
	for (i = 0; d->url_cache && i < URL_CACHE_SIZE; i++)
		url_slot_clear(&d->url_cache[i]);
	while ((r = all.head) != NULL) {
		dlist_unlink(&all, r);
		r->state = DREQ_FINISHED;
		r->done(r->arg, &r->res);
		dreq_free(r);
	}
}
