/*
 * Unit tests for addrpolicy: a table of IPv4 and IPv6 addresses and
 * whether a delivery may connect to them.
 */
#include "promo_webhooks/addrpolicy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "testutil.h"

struct addr_case {
	const char *addr;
	int allowed;
	const char *why; /* expected reason when refused */
};

static const struct addr_case cases[] = {
	/* IPv4: public */
	{ "8.8.8.8", 1, NULL },
	{ "1.1.1.1", 1, NULL },
	{ "93.184.216.34", 1, NULL },
	{ "100.63.255.255", 1, NULL },
	{ "100.128.0.0", 1, NULL },
	{ "172.15.255.255", 1, NULL },
	{ "172.32.0.0", 1, NULL },
	{ "192.0.1.1", 1, NULL },
	{ "192.167.255.255", 1, NULL },
	{ "192.169.0.0", 1, NULL },
	{ "198.17.255.255", 1, NULL },
	{ "198.20.0.0", 1, NULL },
	{ "223.255.255.255", 1, NULL },
	{ "11.0.0.1", 1, NULL },
	{ "126.255.255.255", 1, NULL },
	{ "128.0.0.1", 1, NULL },
	/* IPv4: refused */
	{ "0.0.0.0", 0, "unspecified" },
	{ "0.1.2.3", 0, "unspecified" },
	{ "10.0.0.1", 0, "private" },
	{ "10.255.255.255", 0, "private" },
	{ "100.64.0.1", 0, "shared address space" },
	{ "100.127.255.255", 0, "shared address space" },
	{ "127.0.0.1", 0, "loopback" },
	{ "127.255.255.254", 0, "loopback" },
	{ "169.254.169.254", 0, "link-local" },
	{ "172.16.0.1", 0, "private" },
	{ "172.31.255.255", 0, "private" },
	{ "192.0.0.8", 0, "special-purpose" },
	{ "192.0.2.10", 0, "documentation" },
	{ "192.88.99.1", 0, "reserved" },
	{ "192.168.1.1", 0, "private" },
	{ "198.18.0.1", 0, "benchmarking" },
	{ "198.19.255.255", 0, "benchmarking" },
	{ "198.51.100.7", 0, "documentation" },
	{ "203.0.113.9", 0, "documentation" },
	{ "224.0.0.1", 0, "multicast" },
	{ "239.255.255.250", 0, "multicast" },
	{ "240.0.0.1", 0, "reserved" },
	{ "255.255.255.254", 0, "reserved" },
	{ "255.255.255.255", 0, "broadcast" },
	/* IPv6: public */
	{ "2606:4700:4700::1111", 1, NULL },
	{ "2a00:1450:4001:82a::200e", 1, NULL },
	{ "2001:4860:4860::8888", 1, NULL },
	{ "2001:200::1", 1, NULL },
	{ "2002:0808:0808::1", 1, NULL },      /* 6to4 of 8.8.8.8 */
	{ "::ffff:8.8.8.8", 1, NULL },         /* IPv4-mapped public */
	{ "64:ff9b::808:808", 1, NULL },       /* NAT64 of 8.8.8.8 */
	{ "3ffe::1", 1, NULL },
	/* IPv6: refused */
	{ "::", 0, "unspecified" },
	{ "::1", 0, "loopback" },
	{ "::ffff:127.0.0.1", 0, "loopback" },
	{ "::ffff:10.1.2.3", 0, "private" },
	{ "::ffff:169.254.169.254", 0, "link-local" },
	{ "::ffff:0.0.0.0", 0, "unspecified" },
	{ "::ffff:100.64.0.1", 0, "shared address space" },
	{ "64:ff9b::7f00:1", 0, "loopback" },
	{ "64:ff9b::c0a8:101", 0, "private" },
	{ "64:ff9b:1::1", 0, "special-purpose" },
	{ "2002:7f00:0001::1", 0, "loopback" }, /* 6to4 of 127.0.0.1 */
	{ "2002:c0a8:0101::1", 0, "private" },
	{ "::127.0.0.1", 0, "reserved" },      /* IPv4-compatible */
	{ "::ffff:0:7f00:1", 0, "reserved" },  /* IPv4-translated */
	{ "100::1", 0, "discard-only" },
	{ "2001:db8::1", 0, "documentation" },
	{ "2001::1", 0, "special-purpose" },   /* Teredo */
	{ "2001:2::1", 0, "special-purpose" }, /* benchmarking */
	{ "3fff::1", 0, "documentation" },
	{ "fc00::1", 0, "private" },
	{ "fd12:3456:789a::1", 0, "private" },
	{ "fe80::1", 0, "link-local" },
	{ "febf::1", 0, "link-local" },
	{ "fec0::1", 0, "site-local" },
	{ "ff02::1", 0, "multicast" },
	{ "ff0e::1", 0, "multicast" },
	{ "4000::1", 0, "reserved" },
	{ "1::1", 0, "reserved" },
};

static void check_case(const struct addr_case *c)
{
	struct sockaddr_storage ss;
	char why[64], shown[64];
	int got;

	memset(&ss, 0, sizeof(ss));
	if (strchr(c->addr, ':')) {
		struct sockaddr_in6 sin6;

		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		CHECK(inet_pton(AF_INET6, c->addr, &sin6.sin6_addr) == 1);
		memcpy(&ss, &sin6, sizeof(sin6));
	} else {
		struct sockaddr_in sin;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		CHECK(inet_pton(AF_INET, c->addr, &sin.sin_addr) == 1);
		memcpy(&ss, &sin, sizeof(sin));
	}
	why[0] = '\0';
	got = addrpolicy_allowed((const struct sockaddr *)&ss, why, sizeof(why));
	if (got != c->allowed)
		fprintf(stderr, "address %s: allowed=%d, want %d (%s)\n", c->addr,
			got, c->allowed, why);
	CHECK_INT(got, c->allowed);
	if (!c->allowed) {
		if (strcmp(why, c->why) != 0)
			fprintf(stderr, "address %s\n", c->addr);
		CHECK_STR(why, c->why);
	}
	addrpolicy_format((const struct sockaddr *)&ss, shown, sizeof(shown));
	CHECK(strcmp(shown, "?") != 0);
}

int main(void)
{
	struct sockaddr_storage ss;
	char why[64], shown[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_case(&cases[i]);

	/* Not an IP address family. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	CHECK_INT(addrpolicy_allowed((const struct sockaddr *)&ss, why, sizeof(why)), 0);
	CHECK_STR(why, "unsupported address family");
	CHECK_INT(addrpolicy_allowed(NULL, why, sizeof(why)), 0);
	/* why may be NULL. */
	CHECK_INT(addrpolicy_allowed((const struct sockaddr *)&ss, NULL, 0), 0);
	addrpolicy_format((const struct sockaddr *)&ss, shown, sizeof(shown));
	CHECK_STR(shown, "?");
	return TEST_DONE();
}
