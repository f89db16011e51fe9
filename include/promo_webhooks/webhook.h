/*
 * webhook: the webhook and company-settings value types, their JSON forms
 * (API view and stored form) and the admin API's validation rules
 * (contract section 7). Pure: no I/O.
 */
#ifndef PROMO_WEBHOOKS_WEBHOOK_H
#define PROMO_WEBHOOKS_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "promo_webhooks/buf.h"
#include "promo_webhooks/event.h"

enum period_unit {
	PERIOD_NONE = 0, /* null: the event needs no period */
	PERIOD_MINUTES,
	PERIOD_HOURS,
	PERIOD_DAYS,
};

enum payload_type {
	PAYLOAD_DEFAULT = 0, /* null: use the company setting */
	PAYLOAD_JSON,
	PAYLOAD_XML,
};

/* A webhook id: 32 lowercase hex characters. */
#define WEBHOOK_ID_LEN 32
/* The longest target URL accepted, in bytes. */
#define WEBHOOK_TARGET_MAX 2048

/*
 * Invariants of a stored webhook: id, company_id and target are owned,
 * non-empty strings; period is PERIOD_NONE and period_value 0 exactly when
 * the event is not derived; secret is NULL or "whsec_..." ; disabled_at_ms
 * is 0 while enabled. Times are Unix milliseconds.
 */
struct webhook {
	char *id;                /* server-assigned, 32 hex characters */
	char *company_id;
	enum event_type event;
	char *target;            /* absolute http(s) URL, <= 2048 bytes */
	int enabled;
	enum period_unit period;
	int64_t period_value;
	enum payload_type payload_type;
	char *secret;            /* write-only in the API; NULL when none */
	int64_t created_at_ms;
	int64_t updated_at_ms;
	int64_t disabled_at_ms;  /* 0 = null */
	char *disabled_reason;   /* NULL = null */
	int64_t revision;        /* stored form only: bumped by every write of
				  * the webhook (API or Lua), compared by the
				  * store's compare-and-set */
};

struct company_settings {
	char *notification_email;       /* NULL = null */
	enum payload_type payload_type; /* PAYLOAD_JSON or PAYLOAD_XML */
};

/* How a request body is applied to a webhook. */
enum webhook_write {
	WEBHOOK_CREATE, /* POST: all required fields, defaults for the rest */
	WEBHOOK_REPLACE, /* PUT: all writable fields; omitted optional ones reset */
	WEBHOOK_PATCH,  /* PATCH: only the fields given */
};

/* Why a request was refused: the contract's error shape. */
struct webhook_error {
	char code[32];     /* e.g. "validation_failed", "malformed_json" */
	char field[64];    /* the field at fault, or "" */
	char message[256];
};

const char *period_unit_name(enum period_unit p);     /* NULL for NONE */
const char *payload_type_name(enum payload_type p);   /* NULL for DEFAULT */
/* The inverses of the two above ("Minutes", "Json", ...): 0 or -1. */
int period_unit_parse(const char *s, enum period_unit *out);
int payload_type_parse(const char *s, enum payload_type *out);
/* Minutes in one unit (1, 60, 1440); 0 for PERIOD_NONE. */
int64_t period_unit_minutes(enum period_unit p);

/* 1 when s is a well-formed webhook id (WEBHOOK_ID_LEN lowercase hex). */
int webhook_id_valid(const char *s);
/* 1 when s (len bytes) may be a company id: 1-128 visible ASCII
 * characters, no '/'. */
int webhook_company_id_valid(const char *s, size_t len);

void webhook_init(struct webhook *wh);
void webhook_release(struct webhook *wh);
/* Deep copy; returns 0 or -1 (out of memory). */
int webhook_copy(struct webhook *dst, const struct webhook *src);

/*
 * Applies a JSON request body to wh (which for CREATE is freshly
 * initialised, perhaps with id and company_id set, which are kept; for
 * REPLACE/PATCH the current webhook) and validates the result. On success
 * returns 0; when `enabled` went from false to true, *reenabled is set to 1
 * (reenabled may be NULL). On failure returns -1, fills *err and leaves wh
 * unchanged. now_ms stamps updatedAt (and createdAt on CREATE).
 *
 * Rules beyond contract section 7: members of the API view that are not
 * writable (id, companyId, hasSecret, createdAt, ...) are refused like
 * unknown ones, naming the field; a member given twice is refused; on
 * REPLACE an omitted secret is kept (it is write-only, so GET-edit-PUT
 * must not lose it) and only "secret": null removes it; disabling records
 * disabledAt = now with a reason, enabling clears both. Codes:
 * "malformed_json" (no field), "validation_failed" (field when one is at
 * fault), "internal" (out of memory).
 */
int webhook_apply_json(struct webhook *wh, enum webhook_write mode,
		       const char *body, size_t len, int64_t now_ms,
		       int *reenabled, struct webhook_error *err);

/* The API view: every field but the secret, plus hasSecret; the target's
 * user info redacted. */
int webhook_to_json(const struct webhook *wh, struct buf *out);
/*
 * Disables wh: enabled false, disabledAt = at_ms, disabledReason = reason,
 * updatedAt moved up to at_ms if it is earlier. The one place a disable is
 * written, whether the admin API or the failure rule asks for it. Returns
 * 0, or -1 when out of memory (wh unchanged).
 */
int webhook_disable(struct webhook *wh, int64_t at_ms, const char *reason);
/* The failure rule's reason, "3 failed deliveries within 3600 s" (or
 * "... within 1500 ms" for a window that is not whole seconds). */
void webhook_failure_reason(long count, int64_t window_ms, char *out,
			    size_t outlen);
/* A window as the failure rule writes it: "3600 s" or "1500 ms". */
void webhook_format_window(int64_t window_ms, char *out, size_t outlen);

/* The stored form (includes the secret); webhook_from_storage parses it. */
int webhook_to_storage(const struct webhook *wh, struct buf *out);
int webhook_from_storage(struct webhook *wh, const char *json, size_t len);

void company_settings_init(struct company_settings *s);
void company_settings_release(struct company_settings *s);
/* Deep copy into an uninitialised dst; returns 0 or -1 (out of memory). */
int company_settings_copy(struct company_settings *dst,
			  const struct company_settings *src);
/* Applies a PUT body (omitted fields take their defaults). Returns 0, or -1
 * with *err filled and s unchanged. */
int company_settings_apply_json(struct company_settings *s, const char *body,
				size_t len, struct webhook_error *err);
/* The API view and stored form are the same document. */
int company_settings_to_json(const struct company_settings *s, struct buf *out);
int company_settings_from_json(struct company_settings *s, const char *json,
			       size_t len);

#endif
