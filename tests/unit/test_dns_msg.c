/* test_dns_msg: the DNS parser (node-agent/dns_msg.c) on hand-built
 * messages: every answer type it renders, compression, EDNS0's extended
 * rcode, flags, and each way a hostile message can be broken (loops,
 * pointers forward or past the end, truncation in every part, names longer
 * than 255 bytes, reserved label types). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dns_msg.h"

struct b {
	uint8_t d[4096];
	size_t n;
};

static void put(struct b *b, const void *p, size_t n)
{
	assert_true(b->n + n <= sizeof(b->d));
	memcpy(b->d + b->n, p, n);
	b->n += n;
}

static void u8(struct b *b, unsigned v)
{
	uint8_t c = (uint8_t)v;
	put(b, &c, 1);
}

static void u16(struct b *b, unsigned v)
{
	u8(b, v >> 8);
	u8(b, v & 0xff);
}

static void u32(struct b *b, uint32_t v)
{
	u16(b, v >> 16);
	u16(b, v & 0xffff);
}

static void name(struct b *b, const char *s)
{
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		u8(b, (unsigned)l);
		put(b, s, l);
		s += l + (dot ? 1 : 0);
	}
	u8(b, 0);
}

static void header(struct b *b, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns,
		   unsigned ar)
{
	b->n = 0;
	u16(b, id);
	u16(b, flags);
	u16(b, qd);
	u16(b, an);
	u16(b, ns);
	u16(b, ar);
}

static struct ig_dns_msg *msg;

static int parse(const struct b *b, const char **why)
{
	return ig_dns_parse(b->d, b->n, msg, why);
}

static void test_query_header_and_question(void **s)
{
	struct b b;
	const char *why;
	(void)s;

	header(&b, 0xbeef, 0x0120, 1, 0, 0, 0); /* RD, AD */
	name(&b, "www.Example.com");
	u16(&b, 28);
	u16(&b, 1);
	assert_int_equal(parse(&b, &why), 0);
	assert_int_equal(msg->id, 0xbeef);
	assert_false(msg->qr);
	assert_true(msg->rd);
	assert_true(msg->ad);
	assert_false(msg->tc);
	assert_true(msg->has_question);
	assert_string_equal(msg->qname, "www.Example.com");
	assert_int_equal(msg->qtype, 28);
	assert_int_equal(msg->qclass, 1);
}

static void test_answers_of_every_rendered_type(void **s)
{
	struct b b;
	const char *why = NULL;
	(void)s;

	header(&b, 7, 0x8580, 1, 9, 0, 0);
	name(&b, "a.test");
	u16(&b, 1);
	u16(&b, 1);
	/* A via a pointer to the question name (offset 12) */
	u16(&b, 0xc00c);
	u16(&b, 1);
	u16(&b, 1);
	u32(&b, 300);
	u16(&b, 4);
	put(&b, "\x0a\x01\x02\x03", 4);
	/* AAAA */
	u16(&b, 0xc00c);
	u16(&b, 28);
	u16(&b, 1);
	u32(&b, 60);
	u16(&b, 16);
	put(&b, "\xfd\x00\0\0\0\0\0\0\0\0\0\0\0\0\0\x05", 16);
	/* CNAME b.test */
	u16(&b, 0xc00c);
	u16(&b, 5);
	u16(&b, 1);
	u32(&b, 1);
	u16(&b, 8);
	name(&b, "b.test");
	/* MX 10 m.<pointer to "test"> (offset 14) */
	u16(&b, 0xc00c);
	u16(&b, 15);
	u16(&b, 1);
	u32(&b, 2);
	u16(&b, 2 + 4);
	u16(&b, 10);
	u8(&b, 1);
	u8(&b, 'm');
	u16(&b, 0xc00e);
	/* SRV 1 2 5060 s.test */
	u16(&b, 0xc00c);
	u16(&b, 33);
	u16(&b, 1);
	u32(&b, 3);
	u16(&b, 6 + 8);
	u16(&b, 1);
	u16(&b, 2);
	u16(&b, 5060);
	name(&b, "s.test");
	/* TXT "hi" "there" */
	u16(&b, 0xc00c);
	u16(&b, 16);
	u16(&b, 1);
	u32(&b, 4);
	u16(&b, 3 + 6);
	u8(&b, 2);
	put(&b, "hi", 2);
	u8(&b, 5);
	put(&b, "there", 5);
	/* SOA */
	u16(&b, 0xc00c);
	u16(&b, 6);
	u16(&b, 1);
	u32(&b, 5);
	u16(&b, 2 + 2 + 20);
	u16(&b, 0xc00c);
	u16(&b, 0xc00c);
	for (int i = 1; i <= 5; i++)
		u32(&b, (uint32_t)i);
	/* PTR, NS */
	u16(&b, 0xc00c);
	u16(&b, 12);
	u16(&b, 1);
	u32(&b, 6);
	u16(&b, 2);
	u16(&b, 0xc00c);
	u16(&b, 0xc00c);
	u16(&b, 2);
	u16(&b, 1);
	u32(&b, 7);
	u16(&b, 2);
	u16(&b, 0xc00c);
	assert_int_equal(parse(&b, &why), 0);
	assert_null(why);
	assert_true(msg->qr);
	assert_true(msg->aa);
	assert_true(msg->ra);
	assert_int_equal(msg->nanswers, 9);
	assert_string_equal(msg->an[0].data, "10.1.2.3");
	assert_int_equal(msg->an[0].ttl, 300);
	assert_string_equal(msg->an[0].name, "a.test");
	assert_string_equal(msg->an[1].data, "fd00::5");
	assert_string_equal(msg->an[2].data, "b.test");
	assert_string_equal(msg->an[3].data, "10 m.test");
	assert_string_equal(msg->an[4].data, "1 2 5060 s.test");
	assert_string_equal(msg->an[5].data, "len=7 \"hithere\"");
	assert_string_equal(msg->an[6].data, "a.test a.test 1 2 3 4 5");
	assert_string_equal(msg->an[7].data, "a.test");
	assert_string_equal(msg->an[8].data, "a.test");
}

static void test_edns_extends_the_rcode(void **s)
{
	struct b b;
	(void)s;

	header(&b, 1, 0x8000 | 0x0000, 1, 0, 0, 1);
	name(&b, "x.test");
	u16(&b, 1);
	u16(&b, 1);
	u8(&b, 0); /* root */
	u16(&b, 41);
	u16(&b, 1232); /* UDP size */
	u32(&b, 0x01000000); /* extended rcode 1 -> 16 (BADVERS) */
	u16(&b, 0);
	assert_int_equal(parse(&b, NULL), 0);
	assert_true(msg->edns);
	assert_int_equal(msg->edns_udp_size, 1232);
	assert_int_equal(msg->rcode, 16);
	char buf[16];
	assert_string_equal(ig_dns_rcode_name(msg->rcode, buf, sizeof(buf)), "BADVERS");
	assert_string_equal(ig_dns_rcode_name(3, buf, sizeof(buf)), "NXDOMAIN");
	assert_string_equal(ig_dns_rcode_name(4000, buf, sizeof(buf)), "RCODE4000");
	assert_string_equal(ig_dns_type_name(65, buf, sizeof(buf)), "HTTPS");
	assert_string_equal(ig_dns_type_name(9999, buf, sizeof(buf)), "TYPE9999");
}

static void test_root_and_escaped_names(void **s)
{
	struct b b;
	(void)s;

	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 0);
	u16(&b, 2);
	u16(&b, 1);
	assert_int_equal(parse(&b, NULL), 0);
	assert_string_equal(msg->qname, "<Root>");

	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 4);
	put(&b, "a.b\x01", 4);
	u8(&b, 0);
	u16(&b, 1);
	u16(&b, 1);
	assert_int_equal(parse(&b, NULL), 0);
	assert_string_equal(msg->qname, "a\\.b\\001");
}

static void expect_bad(const struct b *b, const char *reason)
{
	const char *why = NULL;

	assert_int_equal(parse(b, &why), -EBADMSG);
	assert_non_null(why);
	if (reason && strcmp(why, reason) != 0)
		fail_msg("reason '%s', expected '%s'", why, reason);
}

static void test_hostile_messages_are_rejected(void **s)
{
	struct b b;
	(void)s;

	/* shorter than a header */
	b.n = 11;
	memset(b.d, 0, 11);
	expect_bad(&b, "shorter than a DNS header");
	/* a pointer to itself */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u16(&b, 0xc00c);
	u16(&b, 1);
	u16(&b, 1);
	expect_bad(&b, "compression pointer does not point backward");
	/* a forward pointer */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u16(&b, 0xc010);
	u16(&b, 1);
	u16(&b, 1);
	expect_bad(&b, "compression pointer does not point backward");
	/* two labels pointing at each other: a -> (b -> a) */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 1);
	u8(&b, 'a');
	u16(&b, 0xc010); /* forward to the next label */
	u8(&b, 1);
	u8(&b, 'b');
	u16(&b, 0xc00c);
	u16(&b, 1);
	u16(&b, 1);
	expect_bad(&b, "compression pointer does not point backward");
	/* a pointer that jumps back into the labels it came from (a loop in 2 hops) */
	header(&b, 1, 0x8100, 1, 1, 0, 0);
	name(&b, "x.test");
	u16(&b, 1);
	u16(&b, 1);
	/* answer name: label "q" then pointer back to itself's label start */
	size_t here = b.n;
	u8(&b, 1);
	u8(&b, 'q');
	u16(&b, 0xc000 | (unsigned)here);
	expect_bad(&b, "compression pointer does not point backward");
	/* a pointer split by the end */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 0xc0);
	expect_bad(&b, "compression pointer runs past the end");
	/* a label past the end */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 63);
	put(&b, "abc", 3);
	expect_bad(&b, "label runs past the end");
	/* reserved label type 0x40 */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	u8(&b, 0x41);
	u8(&b, 'a');
	u8(&b, 0);
	expect_bad(&b, "reserved label type");
	/* a name longer than 255 bytes */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		u8(&b, 63);
		for (int j = 0; j < 63; j++)
			u8(&b, 'x');
	}
	u8(&b, 0);
	u16(&b, 1);
	u16(&b, 1);
	expect_bad(&b, "name longer than 255 bytes");
	/* the question's type cut off */
	header(&b, 1, 0x0100, 1, 0, 0, 0);
	name(&b, "a.test");
	u8(&b, 0);
	expect_bad(&b, "question runs past the end");
	/* an answer whose rdata runs past the end */
	header(&b, 1, 0x8100, 1, 1, 0, 0);
	name(&b, "a.test");
	u16(&b, 1);
	u16(&b, 1);
	u16(&b, 0xc00c);
	u16(&b, 1);
	u16(&b, 1);
	u32(&b, 1);
	u16(&b, 400);
	put(&b, "\x01\x02\x03\x04", 4);
	expect_bad(&b, "record data runs past the end");
	/* an A record of the wrong length */
	header(&b, 1, 0x8100, 1, 1, 0, 0);
	name(&b, "a.test");
	u16(&b, 1);
	u16(&b, 1);
	u16(&b, 0xc00c);
	u16(&b, 1);
	u16(&b, 1);
	u32(&b, 1);
	u16(&b, 3);
	put(&b, "\x01\x02\x03", 3);
	expect_bad(&b, "record data has the wrong length for its type");
	/* more answers announced than present */
	header(&b, 1, 0x8100, 1, 2, 0, 0);
	name(&b, "a.test");
	u16(&b, 1);
	u16(&b, 1);
	expect_bad(&b, NULL);
}

static void test_truncated_answer_may_end_early(void **s)
{
	struct b b;
	(void)s;

	header(&b, 1, 0x8300, 1, 50, 0, 0); /* TC */
	name(&b, "big.test");
	u16(&b, 1);
	u16(&b, 1);
	for (int i = 0; i < 3; i++) {
		u16(&b, 0xc00c);
		u16(&b, 1);
		u16(&b, 1);
		u32(&b, 1);
		u16(&b, 4);
		put(&b, "\x0a\0\0\x01", 4);
	}
	assert_int_equal(parse(&b, NULL), 0);
	assert_true(msg->tc);
	assert_int_equal(msg->ancount, 50);
	assert_int_equal(msg->nanswers, 3);
}

int main(void)
{
	msg = malloc(sizeof(*msg));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_header_and_question),
		cmocka_unit_test(test_answers_of_every_rendered_type),
		cmocka_unit_test(test_edns_extends_the_rcode),
		cmocka_unit_test(test_root_and_escaped_names),
		cmocka_unit_test(test_hostile_messages_are_rejected),
		cmocka_unit_test(test_truncated_answer_may_end_early),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	free(msg);
	return rc;
}
