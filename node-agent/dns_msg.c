/* dns_msg: see dns_msg.h. */
#include "dns_msg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_HOPS 64

struct rd {
	const uint8_t *p;
	size_t n;
};

static bool get16(const struct rd *r, size_t off, uint16_t *v)
{
	if (off > r->n || r->n - off < 2)
		return false;
	*v = (uint16_t)((r->p[off] << 8) | r->p[off + 1]);
	return true;
}

static bool get32(const struct rd *r, size_t off, uint32_t *v)
{
	if (off > r->n || r->n - off < 4)
		return false;
	*v = ((uint32_t)r->p[off] << 24) | ((uint32_t)r->p[off + 1] << 16) |
	     ((uint32_t)r->p[off + 2] << 8) | r->p[off + 3];
	return true;
}

/* Appends c to out as Wireshark shows a label byte. */
static bool put_char(char *out, size_t cap, size_t *o, uint8_t c)
{
	if (*o + 5 >= cap)
		return false;
	if (c == '.' || c == '\\') {
		out[(*o)++] = '\\';
		out[(*o)++] = (char)c;
	} else if (c > 0x20 && c < 0x7f) {
		out[(*o)++] = (char)c;
	} else {
		*o += (size_t)snprintf(out + *o, cap - *o, "\\%03u", c);
	}
	out[*o] = 0;
	return true;
}

/* Decodes the name at *off into out; *off moves past it (past the first
 * pointer when compressed). */
static int read_name(const struct rd *r, size_t *off, char *out, size_t cap, const char **why)
{
	size_t pos = *off, o = 0, wire = 0, end = 0, seg = *off;
	bool jumped = false;
	int hops = 0;

	out[0] = 0;
	for (;;) {
		if (pos >= r->n) {
			*why = "name runs past the end";
			return -EBADMSG;
		}
		uint8_t len = r->p[pos];
		if ((len & 0xc0) == 0xc0) {
			if (pos + 1 >= r->n) {
				*why = "compression pointer runs past the end";
				return -EBADMSG;
			}
			size_t target = ((size_t)(len & 0x3f) << 8) | r->p[pos + 1];
			/* Strictly before the labels read since the last jump:
			 * every jump goes further back, so no loop. */
			if (target >= seg) {
				*why = "compression pointer does not point backward";
				return -EBADMSG;
			}
			if (++hops > MAX_HOPS) {
				*why = "too many compression pointers";
				return -EBADMSG;
			}
			if (!jumped)
				end = pos + 2;
			jumped = true;
			pos = seg = target;
			continue;
		}
		if (len & 0xc0) {
			*why = "reserved label type";
			return -EBADMSG;
		}
		if (len == 0) {
			if (!jumped)
				end = pos + 1;
			break;
		}
		wire += (size_t)len + 1;
		if (wire + 1 > 255) {
			*why = "name longer than 255 bytes";
			return -EBADMSG;
		}
		if (pos + 1 + len > r->n) {
			*why = "label runs past the end";
			return -EBADMSG;
		}
		if (o > 0) {
			if (o + 2 >= cap) {
				*why = "name too long";
				return -EBADMSG;
			}
			out[o++] = '.';
			out[o] = 0;
		}
		for (size_t i = 0; i < len; i++)
			if (!put_char(out, cap, &o, r->p[pos + 1 + i])) {
				*why = "name too long";
				return -EBADMSG;
			}
		pos += 1 + (size_t)len;
	}
	if (o == 0)
		snprintf(out, cap, "<Root>");
	*off = end;
	return 0;
}

const char *ig_dns_type_name(uint16_t t, char *buf, size_t cap)
{
	static const struct {
		uint16_t t;
		const char *n;
	} names[] = { { 1, "A" },      { 2, "NS" },	{ 5, "CNAME" },	 { 6, "SOA" },
		      { 12, "PTR" },   { 13, "HINFO" }, { 15, "MX" },	 { 16, "TXT" },
		      { 28, "AAAA" },  { 33, "SRV" },	{ 35, "NAPTR" }, { 41, "OPT" },
		      { 43, "DS" },    { 46, "RRSIG" }, { 47, "NSEC" },	 { 48, "DNSKEY" },
		      { 64, "SVCB" },  { 65, "HTTPS" }, { 99, "SPF" },	 { 251, "IXFR" },
		      { 252, "AXFR" }, { 255, "ANY" },	{ 257, "CAA" } };

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].t == t)
			return names[i].n;
	snprintf(buf, cap, "TYPE%u", t);
	return buf;
}

const char *ig_dns_rcode_name(uint16_t rc, char *buf, size_t cap)
{
	static const char *const names[] = { "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
					     "NOTIMP",	"REFUSED", "YXDOMAIN", "YXRRSET",
					     "NXRRSET", "NOTAUTH", "NOTZONE" };

	if (rc < sizeof(names) / sizeof(names[0]))
		return names[rc];
	if (rc == 16)
		return "BADVERS";
	snprintf(buf, cap, "RCODE%u", rc);
	return buf;
}

/* Renders rdata [off, off+len) of type t into out. */
static int rdata_text(const struct rd *r, size_t off, uint16_t len, uint16_t t, char *out,
		      size_t cap, const char **why)
{
	struct rd sub = { r->p, off + len }; /* names may point anywhere before */
	char name[IG_DNS_NAME_MAX];
	size_t o = off;
	uint16_t a, b, c;
	uint32_t s[5];

	out[0] = 0;
	switch (t) {
	case IG_DNS_T_A:
		if (len != 4)
			break;
		inet_ntop(AF_INET, r->p + off, out, (socklen_t)cap);
		return 0;
	case IG_DNS_T_AAAA:
		if (len != 16)
			break;
		inet_ntop(AF_INET6, r->p + off, out, (socklen_t)cap);
		return 0;
	case IG_DNS_T_CNAME:
	case IG_DNS_T_PTR:
	case IG_DNS_T_NS:
		if (read_name(&sub, &o, name, sizeof(name), why) < 0)
			return -EBADMSG;
		snprintf(out, cap, "%s", name);
		return 0;
	case IG_DNS_T_MX:
		if (!get16(&sub, o, &a))
			break;
		o += 2;
		if (read_name(&sub, &o, name, sizeof(name), why) < 0)
			return -EBADMSG;
		snprintf(out, cap, "%u %s", a, name);
		return 0;
	case IG_DNS_T_SRV:
		if (!get16(&sub, o, &a) || !get16(&sub, o + 2, &b) || !get16(&sub, o + 4, &c))
			break;
		o += 6;
		if (read_name(&sub, &o, name, sizeof(name), why) < 0)
			return -EBADMSG;
		snprintf(out, cap, "%u %u %u %s", a, b, c, name);
		return 0;
	case IG_DNS_T_SOA: {
		char rname[IG_DNS_NAME_MAX];
		if (read_name(&sub, &o, name, sizeof(name), why) < 0 ||
		    read_name(&sub, &o, rname, sizeof(rname), why) < 0)
			return -EBADMSG;
		for (int i = 0; i < 5; i++)
			if (!get32(&sub, o + 4 * (size_t)i, &s[i])) {
				*why = "SOA record too short";
				return -EBADMSG;
			}
		snprintf(out, cap, "%.100s %.100s %u %u %u %u %u", name, rname, s[0], s[1], s[2],
			 s[3], s[4]);
		return 0;
	}
	case IG_DNS_T_TXT: {
		size_t w = 0, total = 0;
		char txt[IG_DNS_TXT_PREFIX * 4 + 8];
		txt[0] = 0;
		while (o < off + len) {
			uint8_t l = r->p[o];
			if (o + 1 + l > off + len) {
				*why = "TXT string runs past its record";
				return -EBADMSG;
			}
			for (size_t i = 0; i < l; i++, total++)
				if (total < IG_DNS_TXT_PREFIX)
					put_char(txt, sizeof(txt), &w, r->p[o + 1 + i]);
			o += 1 + (size_t)l;
		}
		snprintf(out, cap, "len=%zu \"%s%s\"", total, txt,
			 total > IG_DNS_TXT_PREFIX ? "..." : "");
		return 0;
	}
	default:
		snprintf(out, cap, "len=%u", len);
		return 0;
	}
	*why = "record data has the wrong length for its type";
	return -EBADMSG;
}

int ig_dns_parse(const uint8_t *p, size_t n, struct ig_dns_msg *m, const char **why)
{
	struct rd r = { p, n };
	uint16_t flags;
	size_t off = 12;
	const char *dummy;

	if (!why)
		why = &dummy;
	*why = NULL;
	memset(m, 0, offsetof(struct ig_dns_msg, an));
	if (n < 12) {
		*why = "shorter than a DNS header";
		return -EBADMSG;
	}
	get16(&r, 0, &m->id);
	get16(&r, 2, &flags);
	get16(&r, 4, &m->qdcount);
	get16(&r, 6, &m->ancount);
	get16(&r, 8, &m->nscount);
	get16(&r, 10, &m->arcount);
	m->qr = flags & 0x8000;
	m->opcode = (flags >> 11) & 0xf;
	m->aa = flags & 0x0400;
	m->tc = flags & 0x0200;
	m->rd = flags & 0x0100;
	m->ra = flags & 0x0080;
	m->ad = flags & 0x0020;
	m->cd = flags & 0x0010;
	m->rcode = flags & 0xf;

	for (unsigned q = 0; q < m->qdcount; q++) {
		char tmp[IG_DNS_NAME_MAX];
		char *dst = q == 0 ? m->qname : tmp;
		uint16_t t, c;
		if (read_name(&r, &off, dst, IG_DNS_NAME_MAX, why) < 0)
			return -EBADMSG;
		if (!get16(&r, off, &t) || !get16(&r, off + 2, &c)) {
			*why = "question runs past the end";
			return -EBADMSG;
		}
		off += 4;
		if (q == 0) {
			m->has_question = true;
			m->qtype = t;
			m->qclass = c;
		}
	}
	/* A truncated (TC) answer may end anywhere after the question. */
	unsigned total = (unsigned)m->ancount + m->nscount + m->arcount;
	for (unsigned i = 0; i < total; i++) {
		char name[IG_DNS_NAME_MAX];
		uint16_t t, c, len;
		uint32_t ttl;
		if (m->tc && off >= n)
			break;
		if (read_name(&r, &off, name, sizeof(name), why) < 0)
			return -EBADMSG;
		if (!get16(&r, off, &t) || !get16(&r, off + 2, &c) || !get32(&r, off + 4, &ttl) ||
		    !get16(&r, off + 8, &len)) {
			*why = "resource record runs past the end";
			return -EBADMSG;
		}
		off += 10;
		if (len > n - off) {
			*why = "record data runs past the end";
			return -EBADMSG;
		}
		if (t == IG_DNS_T_OPT && i >= (unsigned)m->ancount + m->nscount) {
			m->edns = true;
			m->edns_udp_size = c;
			m->rcode = (uint16_t)(((ttl >> 24) & 0xff) << 4) | (m->rcode & 0xf);
		} else if (i < m->ancount && m->nanswers < IG_DNS_MAX_ANSWERS) {
			struct ig_dns_rr *rr = &m->an[m->nanswers];
			rr->type = t;
			rr->class_ = c;
			rr->ttl = ttl;
			snprintf(rr->name, sizeof(rr->name), "%s", name);
			if (rdata_text(&r, off, len, t, rr->data, sizeof(rr->data), why) < 0)
				return -EBADMSG;
			m->nanswers++;
		}
		off += len;
	}
	return 0;
}
