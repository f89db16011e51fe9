/*
 * scheduler: the tick that turns promotions' dates into the derived period
 * events. See include/promo_webhooks/scheduler.h.
 *
 * Two jobs per tick:
 *   - sync: when the registry's snapshot changed, the enabled period
 *     webhooks are grouped by company and date kind, and each group whose
 *     digest differs from what Redis holds (this replica's copy of
 *     {pw}:period-hooks-sync, read at start and every five minutes) is
 *     written with store_period_hooks_sync, stamped with the registry
 *     version (a replica whose cache lags cannot undo a newer write). A
 *     group that went away is written empty. Only changed groups travel.
 *   - pass: store_period_tick takes what is due from the due queue and
 *     claims it (and prunes expired promotion states); while a round finds
 *     more than it may take, further rounds follow within the tick's lock.
 * Nothing is delivered from here: claims become retry jobs, which the
 * pipeline's retry path delivers, so a replica that dies after a claim
 * loses nothing. Passes never overlap within a replica, and across
 * replicas a lock held for three quarters of a tick lets one of them pass
 * per tick.
 */
#include "promo_webhooks/scheduler.h"
#include "promo_webhooks/rfc3339.h"
#include "promo_webhooks/prom.h"
#include "promo_webhooks/fault.h"
#include "promo_webhooks/clock.h"
#include "promo_webhooks/event.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/registry.h"
#include "promo_webhooks/store.h"
#include "promo_webhooks/store_promos.h"
#include "promo_webhooks/webhook.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

/* A round holds Redis for about 20 ms at most (a claim costs tens of
 * microseconds); rounds follow one another within half a tick. */
#define PASS_LIMIT 500           /* due dates and expired states per round */
#define PASS_BUDGET 250          /* claims per round */
#define MEMO_REFRESH_MS 300000   /* read {pw}:period-hooks-sync again */

/* What this replica knows Redis holds for a group "<c>\n<start|end>". */
struct memo {
	char *key;
	char digest[STORE_DIGEST_LEN];
};

struct scheduler {
	struct event_base *base;
	const struct config *cfg;
	struct store *store;
	struct registry *reg;
	struct event *tick_ev;           /* every cfg->scheduler_tick_ms */
	char token[64];                  /* this replica's lock token */

	/* sync */
	struct store_period_hook *hooks; /* grouped (pointers into the
					  * registry snapshot: this tick only) */
	size_t hooks_cap;
	struct memo *memo;               /* sorted by key */
	size_t n_memo;
	int memo_state;                  /* 0 to read, 1 reading, 2 read */
	int64_t memo_read_ms;            /* monotonic */
	int64_t synced_version;          /* every group written at it; -1 none */
	size_t sync_pending;             /* writes in flight */
	int sync_failed;                 /* a write failed: read and write again */
	size_t last_hooks;               /* enabled period webhooks */

	/* pass */
	int passing;                     /* a round is in flight */
	int failing;                     /* the last round failed (log once) */
	int64_t pass_started_ms;         /* monotonic, of the pass in flight */
	size_t pass_claimed;
	uint64_t claimed_total;          /* occurrences this replica claimed */
	uint64_t pruned_total;           /* promotion states pruned */
	uint64_t scans_total;            /* passes this replica made */
	uint64_t skipped_total;          /* ticks another replica passed */
	uint64_t errors_total;           /* rounds that failed */
	double last_scan_seconds;        /* duration of the last pass made */
};

/* Dates and "now" are wall-clock time (clock_wall_ms), the same on every
 * replica; durations are monotonic. */

static void memo_clear(struct scheduler *s)
{
	size_t i;

	for (i = 0; i < s->n_memo; i++)
		free(s->memo[i].key);
	free(s->memo);
	s->memo = NULL;
	s->n_memo = 0;
}

static int cmp_memo(const void *a, const void *b)
{
	return strcmp(((const struct memo *)a)->key, ((const struct memo *)b)->key);
}

static int cmp_key_memo(const void *key, const void *m)
{
	return strcmp(key, ((const struct memo *)m)->key);
}

static const struct memo *memo_find(const struct memo *memo, size_t n,
				    const char *key)
{
	return n ? bsearch(key, memo, n, sizeof(*memo), cmp_key_memo) : NULL;
}

static void on_synced(void *arg, enum store_status status, size_t n,
		      const char *const *fields, const char *const *digests)
{
	struct scheduler *s = arg;
	size_t i, k = 0;

	s->memo_state = 0;
	if (status != STORE_OK)
		return; /* read again at the next tick */
	memo_clear(s);
	s->memo = calloc(n + 1, sizeof(*s->memo));
	if (!s->memo)
		return;
	for (i = 0; i < n; i++) {
		s->memo[k].key = strdup(fields[i]);
		if (!s->memo[k].key)
			continue;
		snprintf(s->memo[k].digest, STORE_DIGEST_LEN, "%s", digests[i]);
		k++;
	}
	s->n_memo = k;
	if (k > 1) /* qsort's array may be NULL when empty */
		qsort(s->memo, k, sizeof(*s->memo), cmp_memo);
	s->memo_state = 2;
	s->memo_read_ms = clock_mono_ms();
	s->synced_version = -1; /* compare every group with what was read */
}

static void on_sync_written(void *arg, enum store_status status, int64_t written)
{
	struct scheduler *s = arg;

	(void)written; /* 0: a newer version is stored, ours follows */
	s->sync_pending--;
	if (status != STORE_OK && !s->sync_failed) {
		log_warn("period webhooks not written, trying again", "reason=%s",
			 store_status_name(status));
		s->sync_failed = 1;
	}
}

static int cmp_hooks(const void *a, const void *b)
{
	const struct store_period_hook *x = a, *y = b;
	int c = strcmp(x->company_id, y->company_id);

	if (c == 0)
		c = strcmp(store_period_which(x->type), store_period_which(y->type));
	if (c == 0)
		c = strcmp(x->webhook_id, y->webhook_id);
	return c;
}

/* Collects the enabled period webhooks of the current snapshot into
 * s->hooks, sorted by company, kind and id (so by group key). Returns how
 * many, or -1 when out of memory. */
static long collect_hooks(struct scheduler *s)
{
	const struct webhook *const *all;
	size_t n = registry_webhooks(s->reg, &all), i, k = 0;

	for (i = 0; i < n; i++) {
		const struct webhook *wh = all[i];
		struct store_period_hook *h;
		int64_t minutes = period_unit_minutes(wh->period);

		if (!wh->enabled || !store_period_which(wh->event) ||
		    minutes <= 0 || wh->period_value <= 0)
			continue;
		if (k == s->hooks_cap) {
			size_t cap = s->hooks_cap ? s->hooks_cap * 2 : 64;
			struct store_period_hook *grown =
				realloc(s->hooks, cap * sizeof(*grown));

			if (!grown)
				return -1;
			s->hooks = grown;
			s->hooks_cap = cap;
		}
		h = &s->hooks[k++];
		h->webhook_id = wh->id;
		h->company_id = wh->company_id;
		h->type = wh->event;
		h->period = wh->period;
		h->period_value = wh->period_value;
		h->period_ms = wh->period_value * minutes * 60000;
	}
	if (k > 1) /* qsort's array may be NULL when empty */
		qsort(s->hooks, k, sizeof(*s->hooks), cmp_hooks);
	return (long)k;
}

/* Writes group hooks[0..n) (or an empty group of `key` when n is 0)
 * if its digest differs from the memo; the new memo entry goes to out. */
static int sync_group(struct scheduler *s, const char *key,
		      const char *company, enum event_type type,
		      const struct store_period_hook *hooks, size_t n,
		      int64_t version, int64_t now, struct memo *out)
{
	const struct memo *m = memo_find(s->memo, s->n_memo, key);

	store_period_hooks_digest(hooks, n, out->digest);
	out->key = strdup(key);
	if (!out->key)
		return -1;
	if (m ? strcmp(m->digest, out->digest) == 0 : n == 0)
		return 0;
	if (store_period_hooks_sync(s->store, company, type, version, out->digest,
				    hooks, n, now, on_sync_written, s) < 0) {
		s->sync_failed = 1;
		return 0;
	}
	s->sync_pending++;
	return 0;
}

/* Compares every group of the snapshot (and every group the memo has but
 * the snapshot not) with the memo, writes the ones that differ, and makes
 * the result the memo. */
static void sync_hooks(struct scheduler *s)
{
	int64_t version = registry_version(s->reg), now = clock_wall_ms();
	struct memo *next;
	size_t i, j, k = 0, n_next;
	long n = collect_hooks(s);
	char key[512];

	if (n < 0) {
		log_error("period webhooks not written: out of memory", "tick_ms=%ld",
			  s->cfg->scheduler_tick_ms);
		return;
	}
	s->last_hooks = (size_t)n;
	next = calloc((size_t)n + s->n_memo + 1, sizeof(*next));
	if (!next)
		return;
	for (i = 0; i < (size_t)n; i = j) {
		const struct store_period_hook *h = &s->hooks[i];

		for (j = i + 1; j < (size_t)n && strcmp(s->hooks[j].company_id, h->company_id) == 0 &&
		     s->hooks[j].type == h->type; j++)
			;
		snprintf(key, sizeof(key), "%s\n%s", h->company_id, store_period_which(h->type));
		if (sync_group(s, key, h->company_id, h->type, h, j - i, version, now,
			       &next[k]) == 0)
			k++;
	}
	n_next = k;
	if (n_next > 1) /* qsort's array may be NULL when empty */
		qsort(next, n_next, sizeof(*next), cmp_memo);
	/* groups that went away */
	for (i = 0; i < s->n_memo; i++) {
		const char *nl = strchr(s->memo[i].key, '\n');
		enum event_type type;

		if (!nl || strcmp(s->memo[i].digest, "-") == 0 ||
		    memo_find(next, n_next, s->memo[i].key))
			continue;
		type = strcmp(nl + 1, "start") == 0 ? EVENT_PROMOTION_STARTING_IN_PERIOD
						    : EVENT_PROMOTION_ENDING_IN_PERIOD;
		snprintf(key, sizeof(key), "%.*s", (int)(nl - s->memo[i].key), s->memo[i].key);
		if (sync_group(s, s->memo[i].key, key, type, NULL, 0, version, now, &next[k]) == 0)
			k++;
	}
	memo_clear(s);
	s->memo = next;
	s->n_memo = k;
	if (k > 1) /* qsort's array may be NULL when empty */
		qsort(s->memo, k, sizeof(*s->memo), cmp_memo);
	s->synced_version = version;
}

static void sync_tick(struct scheduler *s)
{
	if (s->memo_state == 1 || s->sync_pending > 0)
		return;
	if (s->sync_failed ||
	    (s->memo_state == 2 && clock_mono_ms() - s->memo_read_ms > MEMO_REFRESH_MS))
		s->memo_state = 0;
	s->sync_failed = 0;
	if (s->memo_state == 0) {
		if (store_period_synced(s->store, on_synced, s) == 0)
			s->memo_state = 1;
		return;
	}
	if (registry_version(s->reg) != s->synced_version)
		sync_hooks(s);
}

static int start_round(struct scheduler *s);

static void round_done(void *arg, enum store_status status,
		       const struct store_tick_result *r)
{
	struct scheduler *s = arg;
	int64_t took = clock_mono_ms() - s->pass_started_ms;

	s->passing = 0;
	if (status != STORE_OK) {
		s->errors_total++;
		if (!s->failing)
			log_warn("period pass failed", "reason=%s",
				 store_status_name(status));
		s->failing = 1;
		return;
	}
	if (s->failing)
		log_info("period pass working again", "took_ms=%" PRId64, took);
	s->failing = 0;
	if (r->skipped) {
		s->skipped_total++;
		return;
	}
	s->claimed_total += r->claimed;
	s->pruned_total += r->pruned;
	s->pass_claimed += r->claimed;
	if (r->claimed > 0)
		fault_point(s->cfg, CONFIG_FAULT_EXIT_AFTER_CLAIM,
			    "test fault: exiting right after a claim");
	/* More is due than a round takes: go on while the lock is ours. */
	if (r->more && took < s->cfg->scheduler_tick_ms / 2 && start_round(s) == 0)
		return;
	s->scans_total++;
	s->last_scan_seconds = (double)took / 1000.0;
	if (s->pass_claimed > 0)
		log_info("period occurrences claimed", "count=%zu took_ms=%" PRId64,
			 s->pass_claimed, took);
}

static int start_round(struct scheduler *s)
{
	int64_t now = clock_wall_ms(), lock_ms;
	char now_text[40];

	rfc3339_format(now, now_text, sizeof(now_text));
	lock_ms = (int64_t)s->cfg->scheduler_tick_ms * 3 / 4;
	if (lock_ms < 1)
		lock_ms = 1;
	if (store_period_tick(s->store, now, now_text, lock_ms, s->token, PASS_LIMIT,
			      PASS_BUDGET, (int64_t)s->cfg->promotion_retention_s * 1000,
			      round_done, s) < 0) {
		s->errors_total++;
		log_error("period pass not started", "tick_ms=%ld",
			  s->cfg->scheduler_tick_ms);
		return -1;
	}
	s->passing = 1;
	return 0;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct scheduler *s = arg;

	(void)fd;
	(void)what;
	if (!registry_is_loaded(s->reg) || !store_is_ready(s->store))
		return;
	sync_tick(s);
	if (s->passing)
		return;
	s->pass_started_ms = clock_mono_ms();
	s->pass_claimed = 0;
	start_round(s);
}

struct scheduler *scheduler_new(struct event_base *base,
				const struct config *cfg, struct store *store,
				struct registry *reg, char *err, size_t errlen)
{
	struct scheduler *s = calloc(1, sizeof(*s));
	struct timeval tv;
	long tick = cfg->scheduler_tick_ms > 0 ? cfg->scheduler_tick_ms : 1000;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->cfg = cfg;
	s->store = store;
	s->reg = reg;
	s->synced_version = -1;
	snprintf(s->token, sizeof(s->token), "%ld:%lld:%p", (long)getpid(),
		 (long long)clock_wall_ms(), (void *)s);
	tv.tv_sec = tick / 1000;
	tv.tv_usec = (tick % 1000) * 1000;
	s->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, s);
	if (!s->tick_ev || event_add(s->tick_ev, &tv) < 0) {
		snprintf(err, errlen, "cannot arm the scheduler tick");
		scheduler_free(s);
		return NULL;
	}
	return s;
}

void scheduler_free(struct scheduler *s)
{
	if (!s)
		return;
	store_cancel(s->store, s);
	if (s->tick_ev)
		event_free(s->tick_ev);
	memo_clear(s);
	free(s->hooks);
	free(s);
}

void scheduler_metrics(const struct scheduler *s, struct buf *out)
{
	prom_counter(out, "promo_webhooks_period_occurrences_claimed_total",
		     "Period event occurrences this replica claimed and queued for delivery.",
		     s->claimed_total);
	prom_counter(out, "promo_webhooks_promotion_states_pruned_total",
		     "Promotion states this replica pruned (last date passed, or retention over).",
		     s->pruned_total);
	prom_counter(out, "promo_webhooks_scheduler_scans_total",
		     "Scheduler passes this replica made.",
		     s->scans_total);
	prom_counter(out, "promo_webhooks_scheduler_scans_skipped_total",
		     "Ticks left to another replica's pass.",
		     s->skipped_total);
	prom_counter(out, "promo_webhooks_scheduler_scan_errors_total",
		     "Scheduler passes that failed (Redis unavailable).",
		     s->errors_total);
	prom_gauge_seconds(out, "promo_webhooks_scheduler_scan_seconds",
			   "Duration of this replica's last scheduler pass.",
			   s->last_scan_seconds);
	prom_gauge(out, "promo_webhooks_scheduler_period_webhooks",
		   "Enabled period webhooks in this replica's registry snapshot.",
		   (int64_t)s->last_hooks);
}
