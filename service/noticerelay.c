/*
 * noticerelay: the notice outbox's relay to the email topic. See
 * include/promo_webhooks/noticerelay.h.
 */
#include "promo_webhooks/noticerelay.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/notice.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/store_outcomes.h"

#include <stdlib.h>
#include <string.h>

/* A claimed notice stays leased longer than librdkafka may keep a message
 * queued (message.timeout.ms, 300 s by default), so it is never produced
 * twice while this replica still holds it. */
#define NOTICE_LEASE_MS 330000
#define NOTICE_BATCH 64
#define NOTICE_MAX ((size_t)4 << 20)

/* A notice this replica is producing, so it is not produced twice. */
struct notice_in_flight {
	struct noticerelay *nr;
	struct notice_in_flight *next;
	char *id;
};

struct noticerelay {
	const struct config *cfg;
	struct store *store;
	struct kafka *kafka;
	struct notice_in_flight *notices; /* being produced */
	int claiming;                     /* a claim is in flight */
	struct buf scratch;               /* the rendered notice */
	uint64_t published;
	uint64_t redis_errors;
	uint64_t kafka_errors;
};

static struct notice_in_flight **notice_find(struct noticerelay *nr, const char *id)
{
	struct notice_in_flight **pp;

	for (pp = &nr->notices; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->id, id) == 0)
			return pp;
	return NULL;
}

static void notice_forget(struct notice_in_flight *nf)
{
	struct notice_in_flight **pp = notice_find(nf->nr, nf->id);

	if (pp)
		*pp = nf->next;
	free(nf->id);
	free(nf);
}

static void notice_acked(void *arg, enum store_status status, int64_t version)
{
	struct notice_in_flight *nf = arg;

	(void)version;
	if (status != STORE_OK) {
		/* Published but still in the outbox: it is published again
		 * when its lease ends. At least once, never lost. */
		nf->nr->redis_errors++;
		log_warn("published notice not removed from the outbox", "notice=%s reason=%s",
			 nf->id, store_status_name(status));
	}
	notice_forget(nf);
}

static void notice_produced(void *arg, int ok, const char *err)
{
	struct notice_in_flight *nf = arg;
	struct noticerelay *nr = nf->nr;

	if (!ok) {
		nr->kafka_errors++;
		log_warn("notice not published; it stays in the outbox", "notice=%s reason=\"%s\"",
			 nf->id, err ? err : "");
		notice_forget(nf);
		return;
	}
	nr->published++;
	log_info("webhook disabled notice published", "notice=%s topic=%s", nf->id,
		 nr->cfg->email_topic);
	if (store_outbox_ack(nr->store, nf->id, notice_acked, nf) < 0)
		notice_forget(nf);
}

static void notices_claimed(void *arg, enum store_status status,
			    const struct store_claimed *items, size_t n)
{
	struct noticerelay *nr = arg;
	size_t i;

	nr->claiming = 0;
	if (status != STORE_OK) {
		nr->redis_errors++;
		return;
	}
	for (i = 0; i < n; i++) {
		struct notice_in_flight *nf;
		char err[256];

		if (notice_find(nr, items[i].id))
			continue;
		nf = calloc(1, sizeof(*nf));
		if (!nf || !(nf->id = strdup(items[i].id))) {
			free(nf);
			break;
		}
		nf->nr = nr;
		nf->next = nr->notices;
		nr->notices = nf;
		/* The outbox keeps the notice's fields; its message, prose
		 * included, is rendered here (notice.c). */
		buf_reset(&nr->scratch);
		if (notice_render(items[i].payload, items[i].payload_len, &nr->scratch,
				  err, sizeof(err)) < 0) {
			log_error("unreadable notice left in the outbox", "notice=%s reason=\"%s\"",
				  nf->id, err);
			notice_forget(nf);
			continue;
		}
		if (kafka_produce(nr->kafka, nr->cfg->email_topic, items[i].key,
				  items[i].key ? strlen(items[i].key) : 0, buf_str(&nr->scratch),
				  nr->scratch.len, NULL, 0, notice_produced, nf, err,
				  sizeof(err)) < 0) {
			nr->kafka_errors++;
			log_warn("cannot queue notice", "notice=%s reason=\"%s\"", nf->id, err);
			notice_forget(nf);
		}
	}
}

struct noticerelay *noticerelay_new(const struct config *cfg,
				    struct store *store, struct kafka *kafka)
{
	struct noticerelay *nr = calloc(1, sizeof(*nr));

	if (!nr)
		return NULL;
	nr->cfg = cfg;
	nr->store = store;
	nr->kafka = kafka;
	buf_init(&nr->scratch, NOTICE_MAX);
	return nr;
}

void noticerelay_free(struct noticerelay *nr)
{
	if (!nr)
		return;
	store_cancel(nr->store, nr);
	while (nr->notices) {
		/* acks in flight hold nf as their arg: no callback comes now */
		store_cancel(nr->store, nr->notices);
		notice_forget(nr->notices);
	}
	buf_release(&nr->scratch);
	free(nr);
}

void noticerelay_claim(struct noticerelay *nr, int64_t now_ms)
{
	if (!nr->claiming &&
	    store_outbox_claim(nr->store, now_ms, NOTICE_LEASE_MS, NOTICE_BATCH,
			       notices_claimed, nr) == 0)
		nr->claiming = 1;
}

void noticerelay_errors(const struct noticerelay *nr, uint64_t *redis,
			uint64_t *kafka)
{
	*redis = nr->redis_errors;
	*kafka = nr->kafka_errors;
}

void noticerelay_metrics(const struct noticerelay *nr, struct buf *out)
{
	prom_counter(out, "promo_webhooks_notices_published_total",
		     "Webhook disabled notices published.", nr->published);
}
