/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* tls.bpf.h: the tls probe's classifier for the payload capture layer
 * (called from bpf/capture.bpf.c; docs/capture.md). A TCP flow direction is
 * a candidate when it starts with a TLS handshake record (content type 22,
 * major version 3, minor 0..4, a length) holding a ClientHello (1) or a
 * ServerHello (2) (RFC 8446 5.1, 4). The user-space parser checks the rest.
 */
#ifndef IG_TLS_BPF_H
#define IG_TLS_BPF_H

static __always_inline bool ig_tls_classify(const __u8 *peek, __u32 n, __u8 proto, __u16 sport,
					    __u16 dport)
{
	(void)sport;
	(void)dport;
	if (proto != 6 || n < 6)
		return false;
	if (peek[0] != 22 || peek[1] != 3 || peek[2] > 4)
		return false;
	__u16 rlen = ((__u16)peek[3] << 8) | peek[4];
	if (rlen < 4 || rlen > 16384 + 2048)
		return false;
	return peek[5] == 1 || peek[5] == 2;
}

#define IG_TLS_SPAN_OPEN 0xffffffffu /* a hello, but not bounded by its first record */

/* A segment that starts with a hello record: the bytes from its start to the
 * end of that record when the record holds the whole hello message, else
 * IG_TLS_SPAN_OPEN (the capture budget bounds it); 0 when it is no hello.
 * At the hello's end the kernel parks the direction (bpf/capture.bpf.c): an
 * established connection's records are never sent to user space. */
static __always_inline __u32 ig_tls_hello_span(const __u8 *peek, __u32 n)
{
	if (n < 9 || peek[0] != 22 || peek[1] != 3 || peek[2] > 4)
		return 0;
	if (peek[5] != 1 && peek[5] != 2)
		return 0;
	__u32 rlen = ((__u32)peek[3] << 8) | peek[4];
	__u32 hlen = ((__u32)peek[6] << 16) | ((__u32)peek[7] << 8) | peek[8];
	if (rlen < 4 || rlen > 16384 + 2048)
		return 0;
	return hlen + 4 <= rlen ? 5 + rlen : IG_TLS_SPAN_OPEN;
}

/* RFC 8446 D.4: change_cipher_spec, the one-byte record of middlebox
 * compatibility mode, sent around HelloRetryRequest and the second hello. */
static __always_inline bool ig_tls_is_ccs(const __u8 *p)
{
	return p[0] == 20 && p[1] == 3 && p[3] == 0 && p[4] == 1 && p[5] == 1;
}

/* A parked direction's next segment (peek: its first n bytes, plen: its
 * payload length): what to capture from its start. A hello (the second
 * ClientHello after a HelloRetryRequest, or the real ServerHello) or a CCS
 * record then a hello: its span; a lone CCS record: 6, the direction stays
 * parked, so the stream has no gap; anything else: 0, the direction is
 * done (application data, the rest of a TLS 1.2 flight). */
static __always_inline __u32 ig_tls_next_span(const __u8 *peek, __u32 n, __u32 plen)
{
	if (n >= 6 && ig_tls_is_ccs(peek)) {
		if (plen == 6)
			return 6;
		if (n < 15 || peek[6] != 22 || peek[7] != 3 || peek[8] > 4)
			return 0;
		if (peek[11] != 1 && peek[11] != 2)
			return 0;
		__u32 rlen = ((__u32)peek[9] << 8) | peek[10];
		__u32 hlen = ((__u32)peek[12] << 16) | ((__u32)peek[13] << 8) | peek[14];
		if (rlen < 4 || rlen > 16384 + 2048)
			return 0;
		return hlen + 4 <= rlen ? 6 + 5 + rlen : IG_TLS_SPAN_OPEN;
	}
	return ig_tls_hello_span(peek, n);
}

#endif
