/*
 * store_promos: promotions and their period occurrences in Redis. A domain
 * store on the store's Redis link; see include/promo_webhooks/store_promos.h
 * for the keys and the scan's contract.
 */
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/buf.h"
#include "promo_webhooks/log.h"

#include <stdlib.h>
#include <string.h>

#include "lua_scripts.h"

#define ARG_MAX ((size_t)4 << 20) /* the link's cap on one command */
/* Room in one command for the keys and the numbers besides the state. */
#define ARG_SLACK 1024
/* The state is measured in a buffer this large before it is sent. */
#define DOC_MEASURE_MAX ((size_t)64 << 20)
#define SCAN_CLAIM_MAX 1000       /* period occurrences claimed in one pass */

/* ms, or null when absent. */
static void add_ms_or_null(struct buf *out, int has, int64_t ms)
{
	if (has)
		buf_addf(out, "%lld", (long long)ms);
	else
		buf_adds(out, "null");
}

int store_promotion_apply(struct store *st, const struct store_promotion *pr,
			  store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;
	struct buf doc, member;

	if (!pr->company_id || !pr->promotion_id || (!pr->deleted && !pr->data))
		return -1;
	/* The state as store_promos.h lays it out; a tombstone keeps only
	 * the time that orders it against late events. Built without a cap
	 * first, so that a state too large for one command (permanent) is
	 * told apart from running out of memory (transient). */
	buf_init(&doc, DOC_MEASURE_MAX);
	buf_addf(&doc, "{\"time\":%lld,", (long long)pr->event_time_ms);
	if (pr->deleted) {
		buf_adds(&doc, "\"deleted\":true}");
	} else {
		buf_adds(&doc, "\"deleted\":false,\"data\":");
		buf_add_json_string(&doc, pr->data, pr->data_len);
		buf_adds(&doc, ",\"start\":");
		add_ms_or_null(&doc, pr->has_start, pr->start_ms);
		buf_adds(&doc, ",\"end\":");
		add_ms_or_null(&doc, pr->has_end, pr->end_ms);
		buf_addc(&doc, '}');
	}
	if (doc.failed) {
		/* Escaping at most sextuples the data: a failure below
		 * DOC_MEASURE_MAX / 6 is memory, above it the size. */
		buf_release(&doc);
		return pr->data_len > DOC_MEASURE_MAX / 6 ? STORE_PROMOTION_TOO_LARGE : -1;
	}
	if (doc.len + strlen(pr->company_id) + 2 * strlen(pr->promotion_id) + ARG_SLACK > ARG_MAX) {
		buf_release(&doc);
		return STORE_PROMOTION_TOO_LARGE;
	}
	cmd = rlink_cmd_new("promotion_apply", &lua_promotion_apply);
	if (!cmd) {
		buf_release(&doc);
		return -1;
	}
	buf_init(&member, ARG_MAX);
	buf_adds(&member, pr->company_id);
	buf_addc(&member, '\n');
	buf_adds(&member, pr->promotion_id);
	rlink_cmd_key(cmd, STORE_KEY("promo:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-start:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-end:"), pr->company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-fresh"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-gen"), NULL);
	rlink_cmd_args(cmd, pr->promotion_id);
	rlink_cmd_argnum(cmd, pr->event_time_ms);
	rlink_cmd_args(cmd, pr->deleted ? "1" : "0");
	store_arg_buf(cmd, &doc);
	if (!pr->deleted && pr->has_start)
		rlink_cmd_argnum(cmd, pr->start_ms);
	else
		rlink_cmd_args(cmd, "");
	if (!pr->deleted && pr->has_end)
		rlink_cmd_argnum(cmd, pr->end_ms);
	else
		rlink_cmd_args(cmd, "");
	store_arg_buf(cmd, &member);
	buf_release(&doc);
	buf_release(&member);
	return store_start_write(st, cmd, cb, arg);
}

int store_occurrence_check(struct store *st, const char *company_id,
			   const char *promotion_id, const char *date,
			   int64_t at_ms, const char *retry_id,
			   store_write_cb *cb, void *arg)
{
	struct rlink_cmd *cmd;

	if (!company_id || !promotion_id || !date || !retry_id)
		return -1;
	cmd = rlink_cmd_new("occurrence_check", &lua_occurrence_check);
	if (!cmd)
		return -1;
	rlink_cmd_key(cmd, STORE_KEY("promo:"), company_id, NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_args(cmd, promotion_id);
	rlink_cmd_args(cmd, date);
	rlink_cmd_argnum(cmd, at_ms);
	rlink_cmd_args(cmd, retry_id);
	return store_start_write(st, cmd, cb, arg);
}

struct scan_ctx {
	store_scan_cb *cb;
	void *arg;
};

/* A period scan's answer: {"ok", claimed} or {"skipped"}. */
static void on_scan(void *arg, enum rlink_status rs, const struct rlink_reply *r)
{
	struct scan_ctx *c = arg;
	enum store_status status = STORE_UNAVAILABLE;
	const struct rlink_reply *s;
	int64_t claimed = 0;
	int skipped = 0;

	if (rs == RLINK_OK) {
		status = STORE_ERROR;
		s = rlink_reply_at(r, 0);
		if (s && rlink_reply_is(s, "skipped")) {
			status = STORE_OK;
			skipped = 1;
		} else if (s && rlink_reply_is(s, "ok") && rlink_reply_count(r) == 2 &&
			   rlink_reply_int64(rlink_reply_at(r, 1), &claimed) == 0 &&
			   claimed >= 0) {
			status = STORE_OK;
		} else {
			log_warn("redis script answered unexpectedly", "op=%s",
				 "period_scan");
			claimed = 0;
		}
	}
	if (rs != RLINK_CANCELLED)
		c->cb(c->arg, status, (size_t)claimed, skipped);
	free(c);
}

/* "start" or "end" for a period event type, else NULL. */
static const char *period_which(enum event_type type)
{
	if (type == EVENT_PROMOTION_STARTING_IN_PERIOD)
		return "start";
	if (type == EVENT_PROMOTION_ENDING_IN_PERIOD)
		return "end";
	return NULL;
}

int store_period_scan(struct store *st, int64_t now_ms, const char *now_text,
		      int64_t lock_ms, const struct store_period_hook *hooks,
		      size_t n, store_scan_cb *cb, void *arg)
{
	struct rlink_cmd *cmd = rlink_cmd_new("period_scan", &lua_period_scan);
	struct scan_ctx *c = malloc(sizeof(*c));
	struct buf list;
	size_t i, k = 0;

	if (!cmd || !c) {
		rlink_cmd_free(cmd);
		free(c);
		return -1;
	}
	c->cb = cb;
	c->arg = arg;
	rlink_cmd_key(cmd, STORE_KEY("scheduler:lock"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("seq"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retries"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("retry-jobs"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-fresh"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("sched:pass"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("promo-gen"), NULL);
	rlink_cmd_key(cmd, STORE_KEY("occurrences"), NULL);
	buf_init(&list, ARG_MAX);
	buf_addc(&list, '[');
	for (i = 0; i < n; i++) {
		const struct store_period_hook *h = &hooks[i];
		const char *event = event_type_name(h->type);
		const char *period = period_unit_name(h->period);
		const char *which = period_which(h->type);

		if (!which || !period || !h->webhook_id || !h->company_id ||
		    h->period_ms <= 0 || h->period_value <= 0) {
			log_debug("period hook skipped", "webhook=%s",
				  h->webhook_id ? h->webhook_id : "-");
			continue;
		}
		if (k++ > 0)
			buf_addc(&list, ',');
		buf_addc(&list, '[');
		buf_add_json_string(&list, h->webhook_id, strlen(h->webhook_id));
		buf_addc(&list, ',');
		buf_add_json_string(&list, h->company_id, strlen(h->company_id));
		buf_addf(&list, ",\"%s\",\"%s\",\"%s\",%lld,%lld]", which, event,
			 period, (long long)h->period_value,
			 (long long)h->period_ms);
		/* The hook's keys, in the order of the list (period_scan.lua). */
		rlink_cmd_key(cmd, STORE_KEY("sched:"), h->webhook_id, ":", which, NULL);
		rlink_cmd_key(cmd, STORE_KEY("promo:"), h->company_id, NULL);
		rlink_cmd_key(cmd, STORE_KEY("promo-"), which, ":", h->company_id, NULL);
	}
	buf_addc(&list, ']');
	rlink_cmd_argnum(cmd, now_ms);
	rlink_cmd_args(cmd, now_text);
	rlink_cmd_argnum(cmd, lock_ms > 0 ? lock_ms : 1);
	store_arg_buf(cmd, &list);
	rlink_cmd_argnum(cmd, SCAN_CLAIM_MAX);
	buf_release(&list);
	if (store_start(st, cmd, on_scan, c, arg) < 0) {
		free(c);
		return -1;
	}
	return 0;
}
