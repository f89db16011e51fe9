/*
 * event: the Promo domain event and its decoding from a Kafka message
 * (pipeline stage 2, pure: no I/O).
 *
 * A message is a CloudEvents 1.0 event in either Kafka content mode
 * (contract section 3): structured (the value is the whole event as JSON)
 * or binary (ce_* headers, the value is the data object). Decoding either
 * yields a struct event, or a one-line reason that becomes the
 * x-dead-letter-reason header.
 */
#ifndef PROMO_WEBHOOKS_EVENT_H
#define PROMO_WEBHOOKS_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* The ten event types of contract section 2, in the contract's order. */
enum event_type {
	EVENT_ATTRIBUTE_VALUES_IMPORT_COMPLETED = 0,
	EVENT_COUPON_CODES_GENERATE_COMPLETED,
	EVENT_COUPON_CODES_IMPORT_COMPLETED,
	EVENT_COUPON_CODES_RESERVED_ACTIVATED,
	EVENT_PRODUCT_IMPORT_COMPLETED,
	EVENT_PROMOTION_CREATED,
	EVENT_PROMOTION_DELETED,
	EVENT_PROMOTION_UPDATED,
	EVENT_PROMOTION_STARTING_IN_PERIOD, /* derived, never consumed */
	EVENT_PROMOTION_ENDING_IN_PERIOD,   /* derived, never consumed */
	EVENT_TYPE_COUNT
};

/* "Promotion.Created" etc.; NULL for an out-of-range value. */
const char *event_type_name(enum event_type t);
const char *event_type_description(enum event_type t);
/* 1 for the two derived types, which require a notification period. */
int event_type_is_derived(enum event_type t);
/* 0 and *out set when name (len bytes, not NUL-terminated) is one of the
 * ten names, compared exactly; -1 otherwise. */
int event_type_parse(const char *name, size_t len, enum event_type *out);

/* A Kafka header as handed over by the consumer: value is not
 * NUL-terminated and may be NULL (a null header). */
struct event_header {
	const char *name;  /* NUL-terminated */
	const void *value; /* value_len bytes, or NULL */
	size_t value_len;
};

/*
 * A decoded, valid event. Every string is owned, NUL-terminated and
 * non-empty; type is never derived; data is a JSON object.
 */
struct event {
	char *id;               /* CloudEvents id */
	char *source;           /* CloudEvents source */
	enum event_type type;
	char *time;             /* the event time as given (RFC 3339) */
	int64_t time_ms;        /* the event time, Unix milliseconds */
	char *company_id;       /* the Promo company (tenant) */
	char *data;             /* the data object, compact JSON, untouched values */
	size_t data_len;
	/* From data, for Promotion.* events only (NULL / 0 otherwise): */
	char *promotion_id;     /* data.promotionId */
	int has_start;          /* data.startDate was a valid date */
	int64_t start_ms;
	int has_end;            /* data.endDate was a valid date */
	int64_t end_ms;
};

/*
 * Decodes one Kafka message. value may be NULL (a tombstone). On success
 * returns 0 and fills *ev (release with event_release). On a message that is
 * not a valid event returns -1, leaves *ev empty and writes a short reason
 * (e.g. "missing attribute: companyid") into err.
 */
int event_decode(const void *value, size_t value_len,
		 const struct event_header *headers, size_t nheaders,
		 struct event *ev, char *err, size_t errlen);
void event_release(struct event *ev);

#endif
