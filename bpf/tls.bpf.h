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

#endif
