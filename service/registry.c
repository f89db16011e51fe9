/*
 * registry: the in-memory webhook cache the pipeline matches events
 * against. See include/promo_webhooks/registry.h.
 *
 * Consistency: a snapshot is read together with {pw}:version in one script,
 * and every write bumps that version in the same step as the data. So a
 * snapshot at version V holds every change up to V. The registry reloads
 * when it hears of a version above V (pub/sub, or a write in this process)
 * and when a poll finds a version different from V (missed messages, a
 * Redis that was wiped and restarted). Reloads never overlap: one heard of
 * during a load is done right after it.
 */
#include "promo_webhooks/registry.h"
#include "promo_webhooks/log.h"
#include "promo_webhooks/store_hooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

struct snapshot {
	struct snapshot *next_retired;   /* in registry.retired */
	struct store_snapshot *data;     /* owned: hooks sorted by id,
					  * companies sorted by company id */
	const struct webhook **by_id;    /* &data->hooks[i], for match and
					  * callers */
	struct match_index *mi;
};

struct registry {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct snapshot *cur;         /* never NULL */
	struct snapshot *retired;     /* replaced, freed by gc_ev */
	struct event *poll_ev;        /* every cfg->cache_refresh_ms */
	struct event *gc_ev;
	int loaded;                   /* the first load finished */
	int loading;                  /* a store_load_all is in flight */
	int polling;                  /* a store_version_get is in flight */
	int need_reload;              /* the last load failed: retry on poll */
	int64_t heard_while_loading;  /* highest version announced during the
				       * load in flight (0: none) */
	registry_change_cb *change_cb;
	void *change_arg;
};

static const struct company_settings default_settings = { NULL, PAYLOAD_JSON };

static void snapshot_free(struct snapshot *s)
{
	if (!s)
		return;
	match_index_free(s->mi);
	free(s->by_id);
	store_snapshot_free(s->data);
	free(s);
}

static int cmp_hook_id(const void *a, const void *b)
{
	const struct webhook *x = a, *y = b;

	return strcmp(x->id, y->id);
}

static int cmp_company(const void *a, const void *b)
{
	const struct store_company *x = a, *y = b;

	return strcmp(x->company_id, y->company_id);
}

/* bsearch comparators: the key is the id string itself. */
static int cmp_key_hook(const void *key, const void *elem)
{
	const struct webhook *wh = elem;

	return strcmp(key, wh->id);
}

static int cmp_key_company(const void *key, const void *elem)
{
	const struct store_company *c = elem;

	return strcmp(key, c->company_id);
}

/* Builds a snapshot around data (taken over; NULL for an empty one). */
static struct snapshot *snapshot_build(struct store_snapshot *data)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	size_t i, n;

	if (!s) {
		store_snapshot_free(data);
		return NULL;
	}
	s->data = data ? data : calloc(1, sizeof(*s->data));
	if (!s->data)
		goto fail;
	n = s->data->n_hooks;
	if (n > 1)
		qsort(s->data->hooks, n, sizeof(*s->data->hooks), cmp_hook_id);
	if (s->data->n_companies > 1)
		qsort(s->data->companies, s->data->n_companies,
		      sizeof(*s->data->companies), cmp_company);
	if (n) {
		s->by_id = calloc(n, sizeof(*s->by_id));
		if (!s->by_id)
			goto fail;
		for (i = 0; i < n; i++)
			s->by_id[i] = &s->data->hooks[i];
	}
	s->mi = match_index_build(s->by_id, n);
	if (!s->mi)
		goto fail;
	return s;
fail:
	snapshot_free(s);
	return NULL;
}

static void gc_cb(evutil_socket_t fd, short what, void *arg)
{
	struct registry *reg = arg;
	struct snapshot *s;

	while ((s = reg->retired) != NULL) {
		reg->retired = s->next_retired;
		snapshot_free(s);
	}
}

static void start_load(struct registry *reg);

static void on_snapshot(void *arg, enum store_status status,
			struct store_snapshot *ss)
{
	struct registry *reg = arg;
	struct snapshot *s;

	reg->loading = 0;
	if (status != STORE_OK) {
		if (!reg->need_reload)
			log_warn("webhook cache reload failed, will retry",
				 "status=%s", store_status_name(status));
		reg->need_reload = 1;
		return;
	}
	s = snapshot_build(ss);
	if (!s) {
		log_error("webhook cache reload failed: out of memory", "%s", "");
		reg->need_reload = 1;
		return;
	}
	reg->need_reload = 0;
	reg->cur->next_retired = reg->retired;
	reg->retired = reg->cur;
	reg->cur = s;
	event_active(reg->gc_ev, EV_TIMEOUT, 0);
	if (!reg->loaded)
		log_info("webhook cache loaded", "webhooks=%zu companies=%zu version=%lld",
			 s->data->n_hooks, s->data->n_companies,
			 (long long)s->data->version);
	else
		log_debug("webhook cache reloaded", "webhooks=%zu version=%lld",
			  s->data->n_hooks, (long long)s->data->version);
	reg->loaded = 1;
	/* A change announced while loading that the load may not hold.
	 * Compared only against announcements made during this load, so a
	 * version counter that went backwards (a wiped Redis) cannot make
	 * the registry reload forever. */
	if (reg->heard_while_loading > s->data->version)
		start_load(reg);
	if (reg->change_cb)
		reg->change_cb(reg->change_arg);
}

static void start_load(struct registry *reg)
{
	if (reg->loading)
		return;
	reg->heard_while_loading = 0;
	if (store_load_all(reg->store, on_snapshot, reg) < 0) {
		reg->need_reload = 1;
		return;
	}
	reg->loading = 1;
}

static void on_version(void *arg, enum store_status status, int64_t version)
{
	struct registry *reg = arg;

	reg->polling = 0;
	/* Different, not just greater: a wiped Redis starts over at 0. */
	if (status == STORE_OK && version != reg->cur->data->version)
		start_load(reg);
}

static void poll_now(struct registry *reg)
{
	if (reg->loading || reg->polling)
		return;
	if (reg->need_reload || !reg->loaded) {
		start_load(reg);
		return;
	}
	if (store_version_get(reg->store, on_version, reg) == 0)
		reg->polling = 1;
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
	poll_now(arg);
}

void registry_note_version(struct registry *reg, int64_t version)
{
	if (version <= reg->cur->data->version)
		return;
	if (reg->loading) {
		if (version > reg->heard_while_loading)
			reg->heard_while_loading = version;
		return;
	}
	start_load(reg);
}

static void on_change(void *arg, const struct store_change *ch)
{
	struct registry *reg = arg;

	if (ch->kind == STORE_CHANGE_RESYNC)
		poll_now(reg); /* messages may have been missed meanwhile */
	else
		registry_note_version(reg, ch->version);
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
	reg->cur = snapshot_build(NULL);
	reg->poll_ev = event_new(base, -1, EV_PERSIST, poll_cb, reg);
	reg->gc_ev = event_new(base, -1, 0, gc_cb, reg);
	if (!reg->cur || !reg->poll_ev || !reg->gc_ev ||
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
	gc_cb(-1, 0, reg);
	snapshot_free(reg->cur);
	free(reg);
}

int registry_is_loaded(const struct registry *reg)
{
	return reg->loaded;
}

int64_t registry_version(const struct registry *reg)
{
	return reg->cur->data->version;
}

size_t registry_count(const struct registry *reg)
{
	return reg->cur->data->n_hooks;
}

const struct match_index *registry_index(const struct registry *reg)
{
	return reg->cur->mi;
}

size_t registry_webhooks(const struct registry *reg,
			 const struct webhook *const **out)
{
	*out = reg->cur->by_id;
	return reg->cur->data->n_hooks;
}

const struct webhook *registry_webhook(const struct registry *reg,
				       const char *id)
{
	const struct store_snapshot *d = reg->cur->data;

	if (!d->n_hooks)
		return NULL;
	return bsearch(id, d->hooks, d->n_hooks, sizeof(*d->hooks), cmp_key_hook);
}

const struct company_settings *registry_settings(const struct registry *reg,
						 const char *company_id)
{
	const struct store_snapshot *d = reg->cur->data;
	const struct store_company *c = NULL;

	if (d->n_companies)
		c = bsearch(company_id, d->companies, d->n_companies,
			    sizeof(*d->companies), cmp_key_company);
	return c ? &c->settings : &default_settings;
}

void registry_set_change_cb(struct registry *reg, registry_change_cb *cb,
			    void *arg)
{
	reg->change_cb = cb;
	reg->change_arg = arg;
}
