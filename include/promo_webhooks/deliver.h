/*
 * deliver: HTTP POSTs to webhook targets through libcurl's multi_socket API
 * on the event loop (pipeline stage 5); the only module that includes
 * libcurl. Thousands of transfers in flight, connections reused, a bounded
 * number per target so one slow target cannot take every slot; requests
 * beyond the bounds wait in the module's own per-target queues (curl is
 * only handed what may start now, so the timeout measures the attempt, not
 * the wait).
 */
#ifndef PROMO_WEBHOOKS_DELIVER_H
#define PROMO_WEBHOOKS_DELIVER_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/config.h"

struct event_base;
struct deliver;

/* What became of one attempt. Everything but DELIVER_OK is a failure. */
enum deliver_outcome {
	DELIVER_OK = 0,      /* a 2xx status */
	DELIVER_HTTP_STATUS, /* any other status, redirects included */
	DELIVER_TIMEOUT,     /* no complete answer within the timeout */
	DELIVER_CONNECT,     /* name resolution, connect, reset, send/recv */
	DELIVER_TLS,         /* handshake or certificate verification */
	DELIVER_REFUSED,     /* the address policy refused the target */
	DELIVER_CANCELLED,   /* given up at shutdown: not an attempt */
	DELIVER_OTHER,       /* anything else (bad URL, out of memory) */
};

struct deliver_result {
	enum deliver_outcome outcome;
	long status;          /* the HTTP status, 0 when none was received */
	char error[256];      /* one line for the attempt log, "" on success */
	int64_t duration_ms;  /* from the start of the attempt */
	int64_t started_ms;   /* Unix ms when the attempt started */
	const char *response; /* the first bytes (at most 1 KiB) of the response
			       * body, for the attempt log; valid only during
			       * the done callback; may be NULL */
	size_t response_len;
};

/* The attempt really starts (it leaves the target's queue for curl);
 * called with the done callback's arg, before done. */
typedef void deliver_started_fn(void *arg);

struct deliver_request {
	const char *target;       /* absolute http(s) URL */
	char *body;               /* malloc'd; ownership passes to deliver */
	size_t body_len;
	const char *content_type; /* "application/json" or "application/xml" */
	const char *message_id;   /* webhook-id header */
	const char *secret;       /* NULL, or "whsec_..." to sign with */
	deliver_started_fn *started; /* NULL, or told when the attempt starts */
	size_t max_queued;        /* 0, or: when this many requests already
				   * wait for the target, the oldest has
				   * waited DELIVER_SATURATED_WAIT_MS and at
				   * the target's pace the queue takes at
				   * least as long to drain, queue nothing
				   * and return DELIVER_SATURATED */
};

/* deliver_submit's answer when the target is saturated (see max_queued). */
#define DELIVER_SATURATED 1
#define DELIVER_SATURATED_WAIT_MS 1000

typedef void deliver_done_fn(void *arg, const struct deliver_result *res);


struct deliver *deliver_new(struct event_base *base, const struct config *cfg,
			    char *err, size_t errlen);
void deliver_free(struct deliver *d);

/*
 * Queues one POST. Takes ownership of req->body (also on failure) and copies
 * every other string. done is called exactly once, from the loop, never
 * inside this call. Returns 0 when queued, DELIVER_SATURATED when the
 * target is saturated (see max_queued; nothing queued, done not called),
 * -1 when out of memory (done not called).
 */
int deliver_submit(struct deliver *d, const struct deliver_request *req,
		   deliver_done_fn *done, void *arg);

/* Requests submitted and not yet completed (queued or running). */
size_t deliver_pending(const struct deliver *d);

/* Delivery targets (scheme://host:port) currently known. A target idle
 * (nothing queued or running) for PROMO_WEBHOOKS_TARGET_IDLE_MS is freed;
 * a later delivery to it creates it again. */
size_t deliver_targets(const struct deliver *d);

/*
 * Whether url is a target this module can deliver to, by the parser every
 * delivery uses (curl's URL API): an absolute http or https URL with a host
 * and a port from 1 to 65535. Returns NULL, or why not (a static phrase
 * such as "must name a host"). Pure: the admin API validates targets with
 * it, so the two never disagree.
 */
const char *deliver_target_check(const char *url);
/* Completes every queued and running request with DELIVER_CANCELLED. */
void deliver_cancel_all(struct deliver *d);

#endif
