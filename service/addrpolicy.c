/*
 * addrpolicy: the address policy for webhook targets (pipeline stage 5,
 * consulted by the deliverer for every address it dials). Pure.
 * See include/promo_webhooks/addrpolicy.h.
 *
 * The ranges are IANA's IPv4 and IPv6 special-purpose address registries
 * (RFC 6890 and successors): everything there that is not globally
 * reachable is refused. IPv6 outside 2000::/3 (global unicast) is refused
 * as a whole; addresses that embed an IPv4 address are judged by it.
 */
#include "promo_webhooks/addrpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct v4_range {
	uint32_t net;        /* host byte order */
	unsigned int prefix; /* bits */
	const char *why;
};

/* First match wins: the broadcast address before 240/4. */
static const struct v4_range v4_refused[] = {
	{ 0x00000000u, 8, "unspecified" },      /* 0.0.0.0/8 "this network" */
	{ 0x0a000000u, 8, "private" },          /* 10.0.0.0/8 */
	{ 0x64400000u, 10, "shared address space" }, /* 100.64.0.0/10 CGNAT */
	{ 0x7f000000u, 8, "loopback" },         /* 127.0.0.0/8 */
	{ 0xa9fe0000u, 16, "link-local" },      /* 169.254.0.0/16 */
	{ 0xac100000u, 12, "private" },         /* 172.16.0.0/12 */
	{ 0xc0000000u, 24, "special-purpose" }, /* 192.0.0.0/24 */
	{ 0xc0000200u, 24, "documentation" },   /* 192.0.2.0/24 */
	{ 0xc0586300u, 24, "reserved" },        /* 192.88.99.0/24 6to4 relay */
	{ 0xc0a80000u, 16, "private" },         /* 192.168.0.0/16 */
	{ 0xc6120000u, 15, "benchmarking" },    /* 198.18.0.0/15 */
	{ 0xc6336400u, 24, "documentation" },   /* 198.51.100.0/24 */
	{ 0xcb007100u, 24, "documentation" },   /* 203.0.113.0/24 */
	{ 0xe0000000u, 4, "multicast" },        /* 224.0.0.0/4 */
	{ 0xffffffffu, 32, "broadcast" },       /* 255.255.255.255 */
	{ 0xf0000000u, 4, "reserved" },         /* 240.0.0.0/4 */
};

struct v6_range {
	uint8_t net[16];
	unsigned int prefix; /* bits */
	const char *why;
};

/* Refused ranges inside 2000::/3 and the named ones outside it (for a
 * useful reason); anything else outside 2000::/3 is "reserved". */
static const struct v6_range v6_refused[] = {
	{ { 0 }, 128, "unspecified" },                            /* ::/128 */
	{ { [15] = 1 }, 128, "loopback" },                        /* ::1/128 */
	{ { 0x01, 0x00 }, 64, "discard-only" },                   /* 100::/64 */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48, "special-purpose" }, /* 64:ff9b:1::/48 */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation" },      /* 2001:db8::/32 */
	{ { 0x20, 0x01, 0x00, 0x00 }, 23, "special-purpose" },    /* 2001::/23 (Teredo, ...) */
	{ { 0x3f, 0xff }, 20, "documentation" },                  /* 3fff::/20 */
	{ { 0xfc }, 7, "private" },                               /* fc00::/7 unique local */
	{ { 0xfe, 0x80 }, 10, "link-local" },                     /* fe80::/10 */
	{ { 0xfe, 0xc0 }, 10, "site-local" },                     /* fec0::/10 */
	{ { 0xff }, 8, "multicast" },                             /* ff00::/8 */
};

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
static const uint8_t nat64_prefix[12] = { 0x00, 0x64, 0xff, 0x9b };

static void set_why(char *why, size_t whylen, const char *text)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", text);
}

/* 1 when the first prefix bits of a and b are equal. */
static int prefix_match(const uint8_t *a, const uint8_t *b, unsigned int prefix)
{
	unsigned int full = prefix / 8, rest = prefix % 8;
	uint8_t mask;

	if (full && memcmp(a, b, full) != 0)
		return 0;
	if (!rest)
		return 1;
	mask = (uint8_t)(0xffu << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

/* a: IPv4 address in host byte order. */
static int v4_allowed(uint32_t a, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < sizeof(v4_refused) / sizeof(v4_refused[0]); i++) {
		const struct v4_range *r = &v4_refused[i];
		uint32_t mask = r->prefix ? 0xffffffffu << (32 - r->prefix) : 0;

		if ((a & mask) == r->net) {
			set_why(why, whylen, r->why);
			return 0;
		}
	}
	return 1;
}

static uint32_t v4_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	       (uint32_t)p[3];
}

static int v6_allowed(const uint8_t *a, char *why, size_t whylen)
{
	size_t i;

	/* Forms that carry an IPv4 address are judged by that address. */
	if (memcmp(a, v4_mapped_prefix, 12) == 0 || memcmp(a, nat64_prefix, 12) == 0)
		return v4_allowed(v4_at(a + 12), why, whylen);
	if (a[0] == 0x20 && a[1] == 0x02) /* 2002::/16 6to4 */
		return v4_allowed(v4_at(a + 2), why, whylen);

	for (i = 0; i < sizeof(v6_refused) / sizeof(v6_refused[0]); i++) {
		if (prefix_match(a, v6_refused[i].net, v6_refused[i].prefix)) {
			set_why(why, whylen, v6_refused[i].why);
			return 0;
		}
	}
	if ((a[0] & 0xe0) != 0x20) { /* outside 2000::/3 */
		set_why(why, whylen, "reserved");
		return 0;
	}
	return 1;
}

int addrpolicy_allowed(const struct sockaddr *sa, char *why, size_t whylen)
{
	if (!sa) {
		set_why(why, whylen, "no address");
		return 0;
	}
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		return v4_allowed(ntohl(sin.sin_addr.s_addr), why, whylen);
	}
	if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		return v6_allowed(sin6.sin6_addr.s6_addr, why, whylen);
	}
	set_why(why, whylen, "unsupported address family");
	return 0;
}

void addrpolicy_format(const struct sockaddr *sa, char *out, size_t outlen)
{
	const char *r = NULL;

	if (!outlen)
		return;
	if (sa && sa->sa_family == AF_INET) {
		struct sockaddr_in sin;

		memcpy(&sin, sa, sizeof(sin));
		r = inet_ntop(AF_INET, &sin.sin_addr, out, (socklen_t)outlen);
	} else if (sa && sa->sa_family == AF_INET6) {
		struct sockaddr_in6 sin6;

		memcpy(&sin6, sa, sizeof(sin6));
		r = inet_ntop(AF_INET6, &sin6.sin6_addr, out, (socklen_t)outlen);
	}
	if (!r)
		snprintf(out, outlen, "?");
}
