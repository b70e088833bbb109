/* fuzz_dns: the DNS message parser (node-agent/dns_msg.c) on arbitrary
 * bytes, as it meets them from any socket on the node.
 *
 * Beyond "no crash, no leak, no overread": an accepted message keeps at
 * most IG_DNS_MAX_ANSWERS answers and never more than it announced, every
 * rendered name and rdata is NUL-terminated inside its buffer, and the
 * rcode fits in 12 bits. Parsing the same bytes twice gives the same result.
 *
 * Seeds: tests/fuzz/corpus/fuzz_dns/ (queries and answers of each rendered
 * type captured from dnsmasq and unbound, EDNS, TC, the hostile messages of
 * test_dns_hostile.sh).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static struct ig_dns_msg a, b;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *why = NULL;
	int rv = ig_dns_parse(data, size, &a, &why);

	if (rv < 0) {
		check(why != NULL);
		return 0;
	}
	check(a.nanswers <= IG_DNS_MAX_ANSWERS && a.nanswers <= a.ancount);
	check(a.rcode < 4096);
	check(memchr(a.qname, 0, sizeof(a.qname)) != NULL);
	for (unsigned i = 0; i < a.nanswers; i++) {
		check(memchr(a.an[i].name, 0, sizeof(a.an[i].name)) != NULL);
		check(memchr(a.an[i].data, 0, sizeof(a.an[i].data)) != NULL);
	}
	check(ig_dns_parse(data, size, &b, &why) == 0);
	check(b.id == a.id && b.rcode == a.rcode && b.nanswers == a.nanswers &&
	      strcmp(a.qname, b.qname) == 0);
	return 0;
}
