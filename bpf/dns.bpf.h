/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* dns.bpf.h: the dns probe's kernel side, its classifier for the payload
 * capture layer (called from bpf/capture.bpf.c; docs/capture.md).
 *
 * Cheap and permissive: it only has to reject most traffic that is not DNS
 * so that it never reaches user space; the parser there (node-agent/dns_msg.c)
 * checks everything and counts what it rejects. A DNS header is 12 bytes:
 * id, flags (QR, opcode, AA, TC, RD | RA, Z, AD, CD, rcode), qdcount,
 * ancount, nscount, arcount. On TCP each message is preceded by a 2-byte
 * length (RFC 1035 4.2.2), so the header starts at byte 2.
 */
#ifndef IG_DNS_BPF_H
#define IG_DNS_BPF_H

/* The checks of ig_dns_header_ok on the first n (< 12) header bytes: what a
 * TCP flow's first segment holds when the client wrote the length and a
 * piece of the message separately. */
static __always_inline bool ig_dns_header_prefix_ok(const __u8 *h, __u32 n)
{
	if (n < 4)
		return false; /* not even the flags */
	__u8 opcode = (h[2] >> 3) & 0xf;
	if (opcode > 5 || opcode == 3 || (h[3] & 0x40))
		return false;
	if (n < 6)
		return true;
	__u16 qd = ((__u16)h[4] << 8) | h[5];
	if (qd > 4 || (!(h[2] & 0x80) && qd < 1))
		return false;
	if (n < 8)
		return true;
	__u16 an = ((__u16)h[6] << 8) | h[7];
	return an <= ((h[2] & 0x80) ? 1024 : 64);
}

static __always_inline bool ig_dns_header_ok(const __u8 *h)
{
	__u8 opcode = (h[2] >> 3) & 0xf;
	__u16 qd = ((__u16)h[4] << 8) | h[5];
	__u16 an = ((__u16)h[6] << 8) | h[7];
	__u16 ns = ((__u16)h[8] << 8) | h[9];
	__u16 ar = ((__u16)h[10] << 8) | h[11];

	/* QUERY, IQUERY, STATUS, NOTIFY, UPDATE; the Z bit is zero. */
	if (opcode > 5 || opcode == 3 || (h[3] & 0x40))
		return false;
	if (qd > 4 || an > 1024 || ns > 1024 || ar > 1024)
		return false;
	/* A query: a question (UPDATE: the zone); mDNS queries may carry
	 * known answers. */
	if (!(h[2] & 0x80))
		return qd >= 1 && an <= 64 && ns <= 64 && ar <= 16;
	return qd + an + ns > 0 || (h[3] & 0xf) != 0; /* an answer, or an error */
}

/* peek: the first n (<= IG_CAP_PEEK) payload bytes of the datagram, or of
 * the flow direction (TCP). */
static __always_inline bool ig_dns_classify(const __u8 *peek, __u32 n, __u8 proto, __u16 sport,
					    __u16 dport)
{
	(void)sport;
	(void)dport;
	if (proto == 17)
		return n >= 12 && ig_dns_header_ok(peek);
	if (n < 2)
		return false;
	__u16 len = ((__u16)peek[0] << 8) | peek[1];
	if (len < 12)
		return false;
	if (n == 2) /* the length alone came first: a candidate (user space decides) */
		return true;
	if (n < 14) /* the length and part of the header: check what is there */
		return ig_dns_header_prefix_ok(peek + 2, n - 2);
	return ig_dns_header_ok(peek + 2);
}

#endif
