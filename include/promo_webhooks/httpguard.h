/*
 * httpguard: the admin API's guard between evhttp and its sockets.
 *
 * libevent 2.1's evhttp has no connection limit and no deadline for a
 * request to arrive (its timeout restarts with every byte, so a client
 * trickling bytes holds a connection forever), and it answers a body over
 * its limit with an HTML page. The guard wraps each accepted connection's
 * bufferevent in a filter (evhttp_set_bevcb) that reads the request bytes
 * before evhttp does:
 *
 *  - at most max_conns connections (+1 being let in); a new one beyond
 *    that closes the one that has waited longest for its request (never
 *    one whose request is being answered), and accepting pauses until a
 *    connection is gone;
 *  - a whole request (head and body) must arrive within request_ms of the
 *    connection being ready for it (accepted, or its previous answer sent),
 *    else the connection is closed: slow clients cannot hold slots;
 *  - a head over head_max bytes, a Content-Length over body_max, any
 *    Transfer-Encoding, an invalid Content-Length, a body on a method
 *    that takes none, a malformed request line or header line, an unknown
 *    method, Expect or HTTP version is refused before a byte of the body is buffered
 *    (so evhttp never answers with its own HTML page):
 *    evhttp gets a stand-in request instead, the API's handler asks
 *    httpguard_refusal() and answers in the contract's JSON shape, and the
 *    connection closes.
 */
#ifndef PROMO_WEBHOOKS_HTTPGUARD_H
#define PROMO_WEBHOOKS_HTTPGUARD_H

#include <stddef.h>

struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_request;
struct httpguard;

struct httpguard_limits {
	size_t max_conns;  /* connections at once */
	int request_ms;    /* for a whole request to arrive */
	size_t head_max;   /* request line and headers, bytes */
	size_t body_max;   /* Content-Length, bytes */
};

/* Why the guard refused a request: what the API answers. */
struct httpguard_refusal {
	int status;           /* 400, 411, 413, 417, 431 or 505 */
	const char *code;     /* the error code, e.g. "payload_too_large" */
	const char *message;
	/* Non-NULL for a method that takes no body sent with one: the body is
	 * dropped and the request is to be routed with this path and method
	 * (an evhttp command, or HTTPGUARD_REQ_UNKNOWN) instead of refused. */
	const char *target;
	int method;
};

/* libevent 2.1's http-internal.h: the command of a method evhttp does not
 * know (QUERY, PROPFIND, ...). */
#define HTTPGUARD_REQ_UNKNOWN (1 << 15)

/* Installs the guard on http (its bevcb). Returns NULL when out of memory.
 * base and http must outlive the guard. */
struct httpguard *httpguard_new(struct event_base *base, struct evhttp *http,
				const struct httpguard_limits *lim);
/* The bound socket whose accepting the guard pauses at the limit. */
void httpguard_listen(struct httpguard *g, struct evhttp_bound_socket *sock);
/* For a request evhttp hands to the API: the refusal when it is the
 * guard's stand-in, else NULL (a real request, to be served). */
const struct httpguard_refusal *httpguard_refusal(struct httpguard *g,
						  struct evhttp_request *req);
/* The API is about to send the answer to req: its connection may wait for
 * the next request (and is again subject to request_ms). */
void httpguard_answered(struct httpguard *g, struct evhttp_request *req);
/* Connections open now. */
size_t httpguard_connections(const struct httpguard *g);
/* Connections closed for missing request_ms, evicted at the limit, and
 * requests refused, since the start. */
void httpguard_counts(const struct httpguard *g, unsigned long long *timed_out,
		      unsigned long long *evicted, unsigned long long *refused);
/* Call after evhttp_free(): the connections are gone by then. */
void httpguard_free(struct httpguard *g);

#endif
