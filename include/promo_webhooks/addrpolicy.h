/*
 * addrpolicy: which network addresses a webhook delivery may connect to
 * (contract section 4, "Address policy"). Pure: no I/O, no name lookups.
 *
 * The deliverer asks this for every address it is about to dial (after name
 * resolution, so a name that re-resolves to an internal address is still
 * refused). Unless private targets are allowed, only globally reachable
 * unicast addresses pass: loopback, private (RFC 1918, fc00::/7), shared
 * (100.64/10), link-local, multicast, broadcast, unspecified,
 * documentation, benchmarking and other special-purpose ranges are
 * refused, also when written as IPv4-mapped, IPv4-compatible, NAT64
 * (64:ff9b::/96) or 6to4 (2002::/16) IPv6 addresses.
 */
#ifndef PROMO_WEBHOOKS_ADDRPOLICY_H
#define PROMO_WEBHOOKS_ADDRPOLICY_H

#include <stddef.h>

struct sockaddr;

/*
 * Returns 1 when sa (AF_INET or AF_INET6) is a public unicast address.
 * Returns 0 otherwise and writes a short reason ("loopback", "private",
 * "link-local", "unsupported address family", ...) into why (may be NULL).
 */
int addrpolicy_allowed(const struct sockaddr *sa, char *why, size_t whylen);

/* Writes the numeric form of sa ("192.0.2.1", "2001:db8::1") into out;
 * "?" when it cannot be formatted. */
void addrpolicy_format(const struct sockaddr *sa, char *out, size_t outlen);

#endif
