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
 * queued (cfg->notice_lease_ms: message.timeout.ms plus a margin, derived
 * in config.c), so it is never produced twice while this replica still
 * holds it. */
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
	uint64_t refused;                 /* permanent produce failures */
	size_t acking;                    /* acknowledgements in flight */
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
	nf->nr->acking--;
	if (status != STORE_OK) {
		/* Published but still in the outbox: it is published again
		 * when its lease ends. At least once, never lost. */
		nf->nr->redis_errors++;
		log_warn("published notice not removed from the outbox", "notice=%s reason=%s",
			 nf->id, store_status_name(status));
	}
	notice_forget(nf);
}

/* A produce that failed: the notice stays in the outbox and is tried
 * again when its lease ends. A permanent failure (the email topic missing
 * or refusing writes, a notice too large) is an error an operator must
 * fix: logged at error level and counted; /readyz names the topic. */
static void notice_failed(struct notice_in_flight *nf, enum kafka_produce_result result,
			  const char *err)
{
	struct noticerelay *nr = nf->nr;

	nr->kafka_errors++;
	if (result == KAFKA_PRODUCE_FAILED) {
		log_warn("notice not published; it stays in the outbox", "notice=%s reason=\"%s\"",
			 nf->id, err ? err : "");
	} else {
		nr->refused++;
		log_error("notice refused by the email topic; it stays in the outbox",
			  "notice=%s topic=%s kind=\"%s\" reason=\"%s\"", nf->id,
			  nr->cfg->email_topic, kafka_produce_result_name(result), err ? err : "");
	}
	notice_forget(nf);
}

static void notice_produced(void *arg, enum kafka_produce_result result, const char *err)
{
	struct notice_in_flight *nf = arg;
	struct noticerelay *nr = nf->nr;

	if (result != KAFKA_PRODUCED) {
		notice_failed(nf, result, err);
		return;
	}
	nr->published++;
	log_info("webhook disabled notice published", "notice=%s topic=%s", nf->id,
		 nr->cfg->email_topic);
	if (store_outbox_ack(nr->store, nf->id, notice_acked, nf) < 0)
		notice_forget(nf);
	else
		nr->acking++;
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
		enum kafka_produce_result r;
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
		log_info("publishing webhook disabled notice", "notice=%s topic=%s", nf->id,
			 nr->cfg->email_topic);
		r = kafka_produce(nr->kafka, nr->cfg->email_topic, items[i].key,
				  items[i].key ? strlen(items[i].key) : 0, buf_str(&nr->scratch),
				  nr->scratch.len, NULL, 0, notice_produced, nf, err, sizeof(err));
		if (r != KAFKA_PRODUCED)
			notice_failed(nf, r, err);
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
	    store_outbox_claim(nr->store, now_ms, nr->cfg->notice_lease_ms, NOTICE_BATCH,
			       notices_claimed, nr) == 0)
		nr->claiming = 1;
}

void noticerelay_errors(const struct noticerelay *nr, uint64_t *redis,
			uint64_t *kafka)
{
	*redis = nr->redis_errors;
	*kafka = nr->kafka_errors;
}

size_t noticerelay_acks_pending(const struct noticerelay *nr)
{
	return nr->acking;
}

uint64_t noticerelay_refused(const struct noticerelay *nr)
{
	return nr->refused;
}

void noticerelay_metrics(const struct noticerelay *nr, struct buf *out)
{
	prom_counter(out, "promo_webhooks_notices_published_total",
		     "Webhook disabled notices published.", nr->published);
}
