/* dns_msg: a DNS message parser for untrusted bytes (RFC 1035, 2782, 6891).
 *
 * Parses the header, the first question and the answer section (and reads
 * past authority and additional records to find the EDNS0 OPT record, whose
 * extended rcode makes the rcode 12 bits). Names are decoded with
 * compression pointers that must point strictly backward (before the
 * label that holds them), at most 64 hops, at most 255 bytes on the wire;
 * every offset is checked against the message length. Answer data of A,
 * AAAA, CNAME, PTR, NS, MX, SOA, SRV and TXT (length and a bounded prefix)
 * is rendered as text; other types by their length. Fuzzed by
 * tests/fuzz/fuzz_dns.c.
 */
#ifndef IG_DNS_MSG_H
#define IG_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG_DNS_NAME_MAX 1024 /* text form: 255 wire bytes, escapes can quadruple */
#define IG_DNS_MAX_ANSWERS 128 /* answers kept (the count says how many there were) */
#define IG_DNS_RDATA_TEXT 300
#define IG_DNS_TXT_PREFIX 64 /* TXT: bytes of text kept */

enum {
	IG_DNS_T_A = 1,
	IG_DNS_T_NS = 2,
	IG_DNS_T_CNAME = 5,
	IG_DNS_T_SOA = 6,
	IG_DNS_T_PTR = 12,
	IG_DNS_T_MX = 15,
	IG_DNS_T_TXT = 16,
	IG_DNS_T_AAAA = 28,
	IG_DNS_T_SRV = 33,
	IG_DNS_T_OPT = 41,
};

struct ig_dns_rr {
	uint16_t type, class_;
	uint32_t ttl;
	char name[IG_DNS_NAME_MAX];
	char data[IG_DNS_RDATA_TEXT]; /* text form of the rdata */
};

struct ig_dns_msg {
	uint16_t id;
	bool qr, aa, tc, rd, ra, ad, cd;
	uint8_t opcode;
	uint16_t rcode; /* 12 bits when an OPT record extends it */
	uint16_t qdcount, ancount, nscount, arcount;
	bool has_question;
	char qname[IG_DNS_NAME_MAX]; /* as Wireshark prints it; "<Root>" for the root */
	uint16_t qtype, qclass;
	unsigned nanswers; /* kept in an[] (<= IG_DNS_MAX_ANSWERS) */
	struct ig_dns_rr an[IG_DNS_MAX_ANSWERS];
	bool edns;
	uint16_t edns_udp_size;
};

/* 0, or -EBADMSG with a static reason in *why. A message whose records
 * after the question cannot be parsed is rejected whole. */
int ig_dns_parse(const uint8_t *p, size_t n, struct ig_dns_msg *m, const char **why);

/* "A", "AAAA", ..., or "TYPE<n>" in buf (>= 16 bytes). */
const char *ig_dns_type_name(uint16_t t, char *buf, size_t cap);
/* "NOERROR", "NXDOMAIN", ..., or "RCODE<n>" in buf (>= 16 bytes). */
const char *ig_dns_rcode_name(uint16_t rc, char *buf, size_t cap);

#endif
