/*
 * registry: the in-memory webhook cache the pipeline matches events
 * against. See include/promo_webhooks/registry.h.
 *
 * Consistency: a snapshot is read together with {pw}:version in one script,
 * and every write bumps that version in the same step as the data and
 * publishes the change itself (store_hooks.h). So a cache at version V
 * holds every change up to V, and V plus the message of version V + 1 is
 * version V + 1: such a message is applied to the cache in place (one
 * webhook or one company's settings, in time that does not grow with the
 * number of webhooks). Anything else falls back to a full load: a message
 * beyond V + 1 (one was missed), one that does not carry its change (an
 * older replica's), one that cannot be applied (unreadable, out of
 * memory). The safety net stays: a poll that finds a version below V (a
 * Redis that was wiped and restarted) loads at once; one that finds a
 * version above V, or a write through this process that reached one, loads
 * unless the feed has brought the cache there within REGISTRY_LAG_MS.
 * Loads never overlap; messages heard during a load are kept (up to
 * REGISTRY_QUEUE_MAX) and applied after it from its version on.
 *
 * Pointers handed out stay valid until the caller returns to the event
 * loop: a replaced or removed webhook, and a replaced cache, are freed on
 * a later loop iteration (gc_ev).
 */
#include "promo_webhooks/registry.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#define REGISTRY_LAG_MS 250      /* the feed's time to bring a version a
				  * poll or a local write saw */
#define REGISTRY_QUEUE_MAX 65536 /* messages kept during a load; past it,
				  * the lag check loads again */

/* One webhook of the cache, allocated on its own so that one change
 * replaces one. wh first: a struct webhook * of the cache is one. */
struct hook_node {
	struct webhook wh;
	struct hook_node *next_retired;
};

struct company_node {
	struct store_company c;
	struct company_node *next_retired;
};

struct cache {
	struct cache *next_retired;      /* in registry.retired */
	int64_t version;                 /* {pw}:version it holds */
	struct webhook **by_id;          /* hook_nodes, sorted by id */
	size_t n_hooks, cap_hooks;
	struct company_node **companies; /* sorted by company id */
	size_t n_companies, cap_companies;
	struct match_index *mi;
};

/* A change heard while a load was in flight. */
struct queued_change {
	struct queued_change *next;
	enum store_change_kind kind;
	enum store_change_op op;
	int64_t version;
	char *id;
	char *doc;
	size_t doc_len;
};

struct registry {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct cache *cur;            /* never NULL */
	struct cache *retired;        /* replaced, freed by gc_ev */
	struct hook_node *retired_hooks;
	struct company_node *retired_companies;
	struct event *poll_ev;        /* every cfg->cache_refresh_ms */
	struct event *gc_ev;
	struct event *lag_ev;         /* REGISTRY_LAG_MS after a version ahead
				       * of the cache was seen */
	int loaded;                   /* the first load finished */
	int loading;                  /* a store_load_all is in flight */
	int polling;                  /* a store_version_get is in flight */
	int64_t poll_base;            /* the cache's version when it was sent:
				       * changes applied while it is in flight
				       * may take the cache past its answer */
	int need_reload;              /* the last load failed: retry on poll */
	int64_t lag_target;           /* the version lag_ev checks for */
	int64_t lag_next;             /* the highest seen while it is armed:
				       * checked by the next arming */
	struct queued_change *queue, **queue_tail; /* heard during the load */
	size_t queued;
	int queue_overflow;           /* some were not kept */
	uint64_t full_loads;          /* finished full loads */
	uint64_t changes_applied;     /* messages applied in place */
	registry_change_cb *change_cb;
	void *change_arg;
};

static const struct company_settings default_settings = { NULL, PAYLOAD_JSON };

static void hook_free(struct webhook *wh)
{
	webhook_release(wh);
	free((struct hook_node *)(void *)wh);
}

static void company_free(struct company_node *cn)
{
	free(cn->c.company_id);
	company_settings_release(&cn->c.settings);
	free(cn);
}

static void cache_free(struct cache *c)
{
	size_t i;

	if (!c)
		return;
	match_index_free(c->mi);
	for (i = 0; i < c->n_hooks; i++)
		hook_free(c->by_id[i]);
	free(c->by_id);
	for (i = 0; i < c->n_companies; i++)
		company_free(c->companies[i]);
	free(c->companies);
	free(c);
}

static int cmp_hook_id(const void *a, const void *b)
{
	const struct webhook *x = *(const struct webhook *const *)a;
	const struct webhook *y = *(const struct webhook *const *)b;

	return strcmp(x->id, y->id);
}

static int cmp_company(const void *a, const void *b)
{
	const struct company_node *x = *(const struct company_node *const *)a;
	const struct company_node *y = *(const struct company_node *const *)b;

	return strcmp(x->c.company_id, y->c.company_id);
}

/* Where id is, or goes, in c->by_id. */
static size_t hook_pos(const struct cache *c, const char *id, int *found)
{
	size_t lo = 0, hi = c->n_hooks;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->by_id[mid]->id, id);

		if (r == 0) {
			*found = 1;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Where company_id is, or goes, in c->companies. */
static size_t company_pos(const struct cache *c, const char *company_id, int *found)
{
	size_t lo = 0, hi = c->n_companies;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->companies[mid]->c.company_id, company_id);

		if (r == 0) {
			*found = 1;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Room for one more webhook in c->by_id. */
static int reserve_hook(struct cache *c)
{
	struct webhook **grown;

	if (c->n_hooks < c->cap_hooks)
		return 0;
	grown = realloc(c->by_id, c->cap_hooks * 2 * sizeof(*grown));
	if (!grown)
		return -1;
	c->by_id = grown;
	c->cap_hooks *= 2;
	return 0;
}

/* Room for one more company in c->companies. */
static int reserve_company(struct cache *c)
{
	struct company_node **grown;

	if (c->n_companies < c->cap_companies)
		return 0;
	grown = realloc(c->companies, c->cap_companies * 2 * sizeof(*grown));
	if (!grown)
		return -1;
	c->companies = grown;
	c->cap_companies *= 2;
	return 0;
}

/* A cache around data (taken over and freed; NULL for an empty one). */
static struct cache *cache_build(struct store_snapshot *data)
{
	struct cache *c = calloc(1, sizeof(*c));
	size_t i, n = data ? data->n_hooks : 0, nc = data ? data->n_companies : 0;

	if (!c)
		goto fail;
	c->version = data ? data->version : 0;
	c->by_id = calloc(n ? n : 1, sizeof(*c->by_id));
	c->companies = calloc(nc ? nc : 1, sizeof(*c->companies));
	if (!c->by_id || !c->companies)
		goto fail;
	c->cap_hooks = n ? n : 1;
	c->cap_companies = nc ? nc : 1;
	/* Each moved out of data into a node of its own; data keeps (and
	 * frees) what was not moved. */
	for (i = n; i-- > 0;) {
		struct hook_node *hn = malloc(sizeof(*hn));

		if (!hn)
			goto fail;
		hn->wh = data->hooks[i];
		hn->next_retired = NULL;
		c->by_id[c->n_hooks++] = &hn->wh;
		data->n_hooks = i;
	}
	for (i = nc; i-- > 0;) {
		struct company_node *cn = malloc(sizeof(*cn));

		if (!cn)
			goto fail;
		cn->c = data->companies[i];
		cn->next_retired = NULL;
		c->companies[c->n_companies++] = cn;
		data->n_companies = i;
	}
	if (c->n_hooks > 1)
		qsort(c->by_id, c->n_hooks, sizeof(*c->by_id), cmp_hook_id);
	if (c->n_companies > 1)
		qsort(c->companies, c->n_companies, sizeof(*c->companies), cmp_company);
	c->mi = match_index_build((const struct webhook *const *)c->by_id, c->n_hooks);
	if (!c->mi)
		goto fail;
	store_snapshot_free(data);
	return c;
fail:
	store_snapshot_free(data);
	cache_free(c);
	return NULL;
}

static void gc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct cache *c;
	struct hook_node *hn;
	struct company_node *cn;

	while ((c = reg->retired) != NULL) {
		reg->retired = c->next_retired;
		cache_free(c);
	}
	while ((hn = reg->retired_hooks) != NULL) {
		reg->retired_hooks = hn->next_retired;
		hook_free(&hn->wh);
	}
	while ((cn = reg->retired_companies) != NULL) {
		reg->retired_companies = cn->next_retired;
		company_free(cn);
	}
}

static void retire_hook(struct registry *reg, struct webhook *wh)
{
	struct hook_node *hn = (struct hook_node *)(void *)wh;

	hn->next_retired = reg->retired_hooks;
	reg->retired_hooks = hn;
	event_active(reg->gc_ev, EV_TIMEOUT, 0);
}

static void retire_company(struct registry *reg, struct company_node *cn)
{
	cn->next_retired = reg->retired_companies;
	reg->retired_companies = cn;
	event_active(reg->gc_ev, EV_TIMEOUT, 0);
}

/* One webhook's change, in place. 0, or -1 when it cannot be applied (the
 * cache is then to be loaded again: a failure halfway may leave the match
 * index without the webhook). */
static int apply_webhook(struct registry *reg, const char *id, enum store_change_op op,
			 const char *doc, size_t doc_len)
{
	struct cache *c = reg->cur;
	struct hook_node *hn = NULL;
	struct webhook *old = NULL;
	size_t pos;
	int found;

	if (op == STORE_CHANGE_PUT) {
		hn = calloc(1, sizeof(*hn));
		if (!hn)
			return -1;
		webhook_init(&hn->wh);
		if (webhook_from_storage(&hn->wh, doc, doc_len) < 0 || strcmp(hn->wh.id, id) != 0) {
			log_warn("webhook change unreadable, loading every webhook", "webhook=%s", id);
			hook_free(&hn->wh);
			return -1;
		}
	}
	pos = hook_pos(c, id, &found);
	if (found)
		old = c->by_id[pos];
	if (hn && !found && reserve_hook(c) < 0)
		goto fail;
	if (old)
		match_index_remove(c->mi, old);
	if (hn && match_index_add(c->mi, &hn->wh) < 0)
		goto fail;
	if (hn && found) {
		c->by_id[pos] = &hn->wh;
	} else if (hn) {
		memmove(c->by_id + pos + 1, c->by_id + pos, (c->n_hooks - pos) * sizeof(*c->by_id));
		c->by_id[pos] = &hn->wh;
		c->n_hooks++;
	} else if (found) {
		memmove(c->by_id + pos, c->by_id + pos + 1, (c->n_hooks - pos - 1) * sizeof(*c->by_id));
		c->n_hooks--;
	}
	if (old)
		retire_hook(reg, old);
	return 0;
fail:
	if (hn)
		hook_free(&hn->wh);
	return -1;
}

/* One company's settings, in place: 0 or -1 as above. */
static int apply_settings(struct registry *reg, const char *company_id,
			  enum store_change_op op, const char *doc, size_t doc_len)
{
	struct cache *c = reg->cur;
	struct company_node *cn = NULL;
	size_t pos;
	int found;

	if (op == STORE_CHANGE_PUT) {
		cn = calloc(1, sizeof(*cn));
		if (!cn)
			return -1;
		company_settings_init(&cn->c.settings);
		cn->c.company_id = strdup(company_id);
		if (!cn->c.company_id ||
		    company_settings_from_json(&cn->c.settings, doc, doc_len) < 0) {
			log_warn("settings change unreadable, loading every webhook", "company=%s",
				 company_id);
			company_free(cn);
			return -1;
		}
	}
	pos = company_pos(c, company_id, &found);
	if (cn && !found && reserve_company(c) < 0) {
		company_free(cn);
		return -1;
	}
	if (found)
		retire_company(reg, c->companies[pos]);
	if (cn && found) {
		c->companies[pos] = cn;
	} else if (cn) {
		memmove(c->companies + pos + 1, c->companies + pos,
			(c->n_companies - pos) * sizeof(*c->companies));
		c->companies[pos] = cn;
		c->n_companies++;
	} else if (found) {
		memmove(c->companies + pos, c->companies + pos + 1,
			(c->n_companies - pos - 1) * sizeof(*c->companies));
		c->n_companies--;
	}
	return 0;
}

static void start_load(struct registry *reg);

static void notify(struct registry *reg)
{
	if (reg->change_cb)
		reg->change_cb(reg->change_arg);
}

/* The change of version `version`: applied in place when it is exactly the
 * next one and says what changed; else a full load. 1 applied, 0 already
 * held, -1 a load was started (or will be, on the next poll). */
static int take_change(struct registry *reg, enum store_change_kind kind,
		       enum store_change_op op, int64_t version, const char *id,
		       const char *doc, size_t doc_len)
{
	int rc;

	if (version <= reg->cur->version)
		return 0;
	if (version != reg->cur->version + 1 || op == STORE_CHANGE_UNKNOWN) {
		log_debug("change not applicable in place, loading every webhook",
			  "version=%lld change=%lld", (long long)reg->cur->version,
			  (long long)version);
		start_load(reg);
		return -1;
	}
	if (kind == STORE_CHANGE_WEBHOOK)
		rc = apply_webhook(reg, id, op, doc, doc_len);
	else
		rc = apply_settings(reg, id, op, doc, doc_len);
	if (rc < 0) {
		start_load(reg);
		return -1;
	}
	reg->cur->version = version;
	reg->changes_applied++;
	return 1;
}

static void queue_clear(struct registry *reg)
{
	struct queued_change *q;

	while ((q = reg->queue) != NULL) {
		reg->queue = q->next;
		free(q->id);
		free(q->doc);
		free(q);
	}
	reg->queue_tail = &reg->queue;
	reg->queued = 0;
	reg->queue_overflow = 0;
}

static void queue_change(struct registry *reg, const struct store_change *ch)
{
	struct queued_change *q;

	if (reg->queued >= REGISTRY_QUEUE_MAX) {
		reg->queue_overflow = 1;
		return;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !(q->id = strdup(ch->id)) ||
	    (ch->doc_len && !(q->doc = malloc(ch->doc_len)))) {
		if (q)
			free(q->id);
		free(q);
		reg->queue_overflow = 1;
		return;
	}
	q->kind = ch->kind;
	q->op = ch->op;
	q->version = ch->version;
	if (ch->doc_len)
		memcpy(q->doc, ch->doc, ch->doc_len);
	q->doc_len = ch->doc_len;
	*reg->queue_tail = q;
	reg->queue_tail = &q->next;
	reg->queued++;
}

/* After a load: the changes heard meanwhile, from its version on. A gap
 * among them (or some not kept) loads again: compared only with messages
 * heard during this load, so a version counter that went backwards (a
 * wiped Redis) cannot make the registry load forever. */
static void drain_queue(struct registry *reg)
{
	struct queued_change *q = reg->queue, *next;
	int overflow = reg->queue_overflow, again = 0;

	/* Taken off first: a load started below starts a queue of its own. */
	reg->queue = NULL;
	queue_clear(reg);
	for (; q; q = next) {
		next = q->next;
		if (!again &&
		    take_change(reg, q->kind, q->op, q->version, q->id, q->doc, q->doc_len) < 0)
			again = 1;
		free(q->id);
		free(q->doc);
		free(q);
	}
	if (!again && overflow)
		start_load(reg);
}

static void on_snapshot(void *arg, enum store_status status,
			struct store_snapshot *ss)
{
	struct registry *reg = arg;
	struct cache *c;

	reg->loading = 0;
	if (status != STORE_OK) {
		if (!reg->need_reload)
			log_warn("webhook cache reload failed, will retry",
				 "status=%s", store_status_name(status));
		reg->need_reload = 1;
		queue_clear(reg);
		return;
	}
	c = cache_build(ss);
	if (!c) {
		log_error("webhook cache reload failed: out of memory", "%s", "");
		reg->need_reload = 1;
		queue_clear(reg);
		return;
	}
	reg->need_reload = 0;
	reg->full_loads++;
	reg->cur->next_retired = reg->retired;
	reg->retired = reg->cur;
	reg->cur = c;
	event_active(reg->gc_ev, EV_TIMEOUT, 0);
	if (!reg->loaded)
		log_info("webhook cache loaded", "webhooks=%zu companies=%zu version=%lld",
			 c->n_hooks, c->n_companies, (long long)c->version);
	else
		log_debug("webhook cache reloaded", "webhooks=%zu version=%lld",
			  c->n_hooks, (long long)c->version);
	reg->loaded = 1;
	drain_queue(reg);
	notify(reg);
}

static void start_load(struct registry *reg)
{
	if (reg->loading)
		return;
	queue_clear(reg);
	/* Every version known before the load is read by it (or, a wiped
	 * Redis, is gone): only versions heard from now on are checked. */
	evtimer_del(reg->lag_ev);
	reg->lag_target = 0;
	reg->lag_next = 0;
	if (store_load_all(reg->store, on_snapshot, reg) < 0) {
		reg->need_reload = 1;
		return;
	}
	reg->loading = 1;
}

/* version is known to exist: the feed has REGISTRY_LAG_MS to bring the
 * cache there, else a full load. */
static void expect_version(struct registry *reg, int64_t version)
{
	struct timeval tv = { 0, REGISTRY_LAG_MS * 1000 };

	if (version <= reg->cur->version)
		return;
	if (evtimer_pending(reg->lag_ev, NULL)) {
		/* Each version gets its full REGISTRY_LAG_MS. */
		if (version > reg->lag_next)
			reg->lag_next = version;
		return;
	}
	reg->lag_target = version;
	evtimer_add(reg->lag_ev, &tv);
}

static void lag_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;

	int64_t next = reg->lag_next;

	reg->lag_next = 0;
	if (reg->cur->version < reg->lag_target && !reg->loading) {
		log_debug("change feed behind, loading every webhook", "version=%lld want=%lld",
			  (long long)reg->cur->version, (long long)reg->lag_target);
		start_load(reg);
	}
	reg->lag_target = 0;
	expect_version(reg, next);
}

static void on_version(void *arg, enum store_status status, int64_t version)
{
	struct registry *reg = arg;

	reg->polling = 0;
	if (status != STORE_OK)
		return;
	/* Below what the cache held when the poll was sent (Redis had
	 * published those versions before it ran the poll): a wiped Redis,
	 * starting over at 0. */
	if (version < reg->poll_base) {
		log_debug("version went back, loading every webhook", "version=%lld was=%lld",
			  (long long)version, (long long)reg->poll_base);
		start_load(reg);
	} else {
		expect_version(reg, version);
	}
}

static void poll_now(struct registry *reg)
{
	if (reg->loading || reg->polling)
		return;
	if (reg->need_reload || !reg->loaded) {
		start_load(reg);
		return;
	}
	reg->poll_base = reg->cur->version;
	if (store_version_get(reg->store, on_version, reg) == 0)
		reg->polling = 1;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	poll_now(arg);
}

void registry_note_version(struct registry *reg, int64_t version)
{
	expect_version(reg, version);
}

static void on_change(void *arg, const struct store_change *ch)
{
	struct registry *reg = arg;

	if (ch->kind == STORE_CHANGE_RESYNC) {
		poll_now(reg); /* messages may have been missed meanwhile */
		return;
	}
	if (reg->loading || !reg->loaded) {
		if (reg->loading)
			queue_change(reg, ch);
		return;
	}
	if (take_change(reg, ch->kind, ch->op, ch->version, ch->id, ch->doc, ch->doc_len) > 0)
		notify(reg);
}

struct registry *registry_new(struct event_base *base,
			      const struct config *cfg, struct store *store,
			      char *err, size_t errlen)
{
	struct registry *reg = calloc(1, sizeof(*reg));
	long ms = cfg->cache_refresh_ms > 0 ? cfg->cache_refresh_ms : 500;
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	if (!reg) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	reg->base = base;
	reg->store = store;
	reg->cfg = cfg;
	reg->queue_tail = &reg->queue;
	reg->cur = cache_build(NULL);
	reg->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, reg);
	reg->gc_ev = event_new(base, -1, 0, gc_cb, reg);
	reg->lag_ev = evtimer_new(base, lag_cb, reg);
	if (!reg->cur || !reg->poll_ev || !reg->gc_ev || !reg->lag_ev ||
	    event_add(reg->poll_ev, &tv) < 0) {
		snprintf(err, errlen, "cannot set up the webhook cache: out of memory");
		registry_free(reg);
		return NULL;
	}
	store_subscribe(store, on_change, reg);
	start_load(reg);
	return reg;
}

void registry_free(struct registry *reg)
{
	if (!reg)
		return;
	store_subscribe(reg->store, NULL, NULL);
	store_cancel(reg->store, reg);
	if (reg->poll_ev)
		event_free(reg->poll_ev);
	if (reg->gc_ev)
		event_free(reg->gc_ev);
	if (reg->lag_ev)
		event_free(reg->lag_ev);
	gc_cb(-1, 0, reg);
	queue_clear(reg);
	cache_free(reg->cur);
	free(reg);
}

int registry_is_loaded(const struct registry *reg)
{
	return reg->loaded;
}

int64_t registry_version(const struct registry *reg)
{
	return reg->cur->version;
}

size_t registry_count(const struct registry *reg)
{
	return reg->cur->n_hooks;
}

uint64_t registry_full_loads(const struct registry *reg)
{
	return reg->full_loads;
}

uint64_t registry_changes_applied(const struct registry *reg)
{
	return reg->changes_applied;
}

const struct match_index *registry_index(const struct registry *reg)
{
	return reg->cur->mi;
}

size_t registry_webhooks(const struct registry *reg,
			 const struct webhook *const **out)
{
	*out = (const struct webhook *const *)reg->cur->by_id;
	return reg->cur->n_hooks;
}

const struct webhook *registry_webhook(const struct registry *reg,
				       const char *id)
{
	size_t pos;
	int found;

	pos = hook_pos(reg->cur, id, &found);
	return found ? reg->cur->by_id[pos] : NULL;
}

const struct company_settings *registry_settings(const struct registry *reg,
						 const char *company_id)
{
	size_t pos;
	int found;

	pos = company_pos(reg->cur, company_id, &found);
	return found ? &reg->cur->companies[pos]->c.settings : &default_settings;
}

void registry_set_change_cb(struct registry *reg, registry_change_cb *cb,
			    void *arg)
{
	reg->change_cb = cb;
	reg->change_arg = arg;
}
