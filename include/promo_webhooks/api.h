/*
 * api: the admin HTTP API (contract section 7) on libevent's evhttp:
 * health, readiness and metrics without auth; webhooks, company settings,
 * event types, sample payloads and each webhook's delivery attempt log
 * under /v1 with a bearer token. Webhooks and settings are read from and
 * written to the store directly (so a write is visible to the next request
 * on any replica); after a write the local registry is told to reload at
 * once.
 */
#ifndef PROMO_WEBHOOKS_API_H
#define PROMO_WEBHOOKS_API_H

#include <stddef.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/config.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"

struct event_base;
struct api;

/* What the rest of the service contributes; any member may be NULL. */
struct api_hooks {
	/* 1 when the service may take traffic (the consumer is in its
	 * group); /readyz is 200 when this and store_is_ready() hold. */
	int (*ready)(void *arg);
	/* Outputs the service cannot write to (a missing dead-letter or email
	 * topic, one refusing writes): appends each to out as a JSON object
	 * {"topic": ..., "reason": ...}, comma-separated, and returns how
	 * many; /readyz is 503 while there is one. */
	size_t (*unwritable)(void *arg, struct buf *out);
	/* Appends Prometheus text exposition lines to out for /metrics. */
	void (*metrics)(void *arg, struct buf *out);
	void *arg;
};

/*
 * Binds cfg->http_host:cfg->http_port (port 0 picks a free port, see
 * api_port) and starts serving on base. cfg, store, reg and the hooks'
 * arg must outlive the api; hooks is copied. Returns NULL with err set
 * ("cannot listen on 0.0.0.0:8080: Address already in use").
 */
struct api *api_new(struct event_base *base, const struct config *cfg,
		    struct store *store, struct registry *reg,
		    const struct api_hooks *hooks, char *err, size_t errlen);
/* Stops listening; requests still waiting for Redis get a 503. */
void api_free(struct api *api);
/* The port actually bound. */
int api_port(const struct api *api);

#endif
