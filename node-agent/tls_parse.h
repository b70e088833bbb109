/* tls_parse: TLS ClientHello / ServerHello / HelloRetryRequest parsing and the
 * published fingerprints (JA3, JA3S, JA4, JA4_r), in user space.
 *
 * Why here: the bytes are untrusted (any process on the node can write them)
 * and the parser is only ever fed by the agent's tls probe, so it lives beside
 * it in node-agent/ and uses libcrypto (MD5, SHA-256), which the agent
 * already links. It has no other dependency and no global state, so the unit
 * tests and the libFuzzer target drive it directly.
 *
 * Two layers:
 *   - ig_tls_stream: one direction of one TCP connection, fed the TCP payload
 *     in order (the capture layer reassembles segments). It undoes the record
 *     layer (a handshake message may span several records, a record may hold
 *     several messages, a record header may be split across feeds), keeps at
 *     most `max_msg` bytes of one handshake message (4 KiB by default) and
 *     hands out each ClientHello / ServerHello it completes.
 *   - ig_tls_parse_hello: one complete handshake message (4-byte header +
 *     body) into a struct ig_tls_hello. Every length is checked against the
 *     bytes that enclose it; inconsistent input is -EBADMSG, never a partial
 *     result. The struct holds views into the message bytes (no copies): it
 *     is valid as long as those bytes are.
 *
 * Fingerprints follow their publications exactly (docs/probes.md, "tls"):
 * GREASE values (0x?a?a with both bytes equal) are left out where the spec
 * says so; where FoxIO's JA4 spec text and its reference code disagree (ALPN
 * of one character, non-ASCII ALPN) the reference implementation's vectors
 * win. JA4S and the rest of JA4+ (FoxIO License 1.1) are not implemented.
 */
#ifndef IG_TLS_PARSE_H
#define IG_TLS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG_TLS_MAX_MSG_DEFAULT 4096
#define IG_TLS_KEY_SHARES_MAX 16

/* Handshake message types this module parses. */
#define IG_TLS_CLIENT_HELLO 1
#define IG_TLS_SERVER_HELLO 2

/* Extension types it looks into. */
#define IG_TLS_EXT_SERVER_NAME 0x0000
#define IG_TLS_EXT_SUPPORTED_GROUPS 0x000a
#define IG_TLS_EXT_EC_POINT_FORMATS 0x000b
#define IG_TLS_EXT_SIGNATURE_ALGORITHMS 0x000d
#define IG_TLS_EXT_ALPN 0x0010
#define IG_TLS_EXT_SESSION_TICKET 0x0023
#define IG_TLS_EXT_PRE_SHARED_KEY 0x0029
#define IG_TLS_EXT_EARLY_DATA 0x002a
#define IG_TLS_EXT_SUPPORTED_VERSIONS 0x002b
#define IG_TLS_EXT_PSK_KEY_EXCHANGE_MODES 0x002d
#define IG_TLS_EXT_KEY_SHARE 0x0033

static inline bool ig_tls_is_grease(uint16_t v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* A list of 1- or 2-byte big-endian values inside the message (a view). */
struct ig_tls_list {
	const uint8_t *p;
	uint16_t n; /* number of values */
	uint8_t width; /* 1 or 2 */
};

static inline uint16_t ig_tls_list_at(const struct ig_tls_list *l, uint32_t i)
{
	return l->width == 1 ? l->p[i] : (uint16_t)(l->p[2 * i] << 8 | l->p[2 * i + 1]);
}

struct ig_tls_hello {
	uint8_t type; /* IG_TLS_CLIENT_HELLO or IG_TLS_SERVER_HELLO */
	bool hrr; /* a ServerHello whose random is the HelloRetryRequest value */
	uint16_t record_version; /* of the record the message started in (0: not known) */
	uint16_t legacy_version; /* the hello's own version field */
	/* Client: the highest non-GREASE supported_versions value, else
	 * legacy_version. Server: the selected supported_versions value, else
	 * legacy_version (the negotiated version). */
	uint16_t version;
	uint8_t session_id_len;
	struct ig_tls_list ciphers; /* client: offered; server: the chosen one */
	struct ig_tls_list compressions; /* client: offered; server: the chosen one */
	/* Extensions, raw (iterate with ig_tls_ext_iter). n_ext counts all. */
	const uint8_t *ext;
	uint16_t ext_len;
	uint16_t n_ext;
	bool has_ext_block; /* the extensions length field was present */
	/* Decoded extensions (n == 0 when absent). */
	struct ig_tls_list versions; /* supported_versions: client list; server 1 value */
	struct ig_tls_list groups; /* supported_groups */
	struct ig_tls_list point_formats; /* ec_point_formats (width 1) */
	struct ig_tls_list sigalgs; /* signature_algorithms (extension 13 only) */
	struct ig_tls_list psk_modes; /* psk_key_exchange_modes (width 1) */
	/* key_share groups: client offers, server's choice (HRR: the requested
	 * group). At most IG_TLS_KEY_SHARES_MAX kept; n_key_share counts all. */
	uint16_t key_share[IG_TLS_KEY_SHARES_MAX];
	uint16_t n_key_share;
	/* server_name: the first host_name entry (not NUL-terminated). */
	bool has_sni;
	const uint8_t *sni;
	uint16_t sni_len;
	/* ALPN protocol_name_list (client: offered; server: the chosen one),
	 * each entry a length byte + name. Iterate with ig_tls_alpn_next. */
	bool has_alpn;
	const uint8_t *alpn;
	uint16_t alpn_len;
	/* Resumption. */
	bool psk; /* pre_shared_key present (client: offered; server: accepted) */
	bool ticket; /* session_ticket with a ticket (client) or present (server) */
	bool has_ticket_ext; /* session_ticket present at all */
	bool early_data; /* early_data present */
};

struct ig_tls_ext_iter {
	const uint8_t *p, *end;
};

static inline void ig_tls_ext_begin(const struct ig_tls_hello *h, struct ig_tls_ext_iter *it)
{
	it->p = h->ext;
	it->end = h->ext ? h->ext + h->ext_len : NULL; /* no extensions block: empty */
}

/* Next extension of a parsed hello (already validated); false at the end. */
bool ig_tls_ext_next(struct ig_tls_ext_iter *it, uint16_t *type, const uint8_t **data,
		     uint16_t *len);

/* Next ALPN name from *pos (start at 0); false at the end. */
bool ig_tls_alpn_next(const struct ig_tls_hello *h, uint16_t *pos, const uint8_t **name,
		      uint8_t *len);

/* Parses one handshake message (type, 24-bit length, body; exactly len bytes).
 * Returns 0, -EBADMSG (malformed: some length disagrees with its enclosure),
 * or -ENOMSG (a well-framed handshake message that is not a hello). */
int ig_tls_parse_hello(const uint8_t *msg, size_t len, struct ig_tls_hello *h);

/* Fingerprints. Each writes the full text into text[textsz] (NUL-terminated,
 * truncated if it does not fit; text may be NULL) and the exact hash of the
 * full text into hash; returns the full text's length, or -EINVAL when the
 * hello is of the wrong side, -ENOMEM when libcrypto fails. */
int ig_tls_ja3(const struct ig_tls_hello *h, char *text, size_t textsz, char hash[33]);
int ig_tls_ja3s(const struct ig_tls_hello *h, char *text, size_t textsz, char hash[33]);
/* JA4 (36 characters + NUL) of a ClientHello; 0 or negative errno. */
#define IG_TLS_JA4_LEN 37
int ig_tls_ja4(const struct ig_tls_hello *h, char out[IG_TLS_JA4_LEN]);
/* JA4_r (the raw, sorted lists); the full length, as above. */
int ig_tls_ja4_r(const struct ig_tls_hello *h, char *text, size_t textsz);

/* JA4's two-character version code ("13", "12", ..., "s3", "00"). */
const char *ig_tls_ja4_version(uint16_t v);
/* "TLS 1.3", "TLS 1.2", ..., "SSL 3.0", or NULL when unknown. */
const char *ig_tls_version_name(uint16_t v);

/* One direction of one connection. */
struct ig_tls_stream;

/* max_msg: bound on one handshake message, header included (0: default).
 * NULL when out of memory. */
struct ig_tls_stream *ig_tls_stream_new(size_t max_msg);
void ig_tls_stream_free(struct ig_tls_stream *s);
void ig_tls_stream_reset(struct ig_tls_stream *s);

/* Results of ig_tls_stream_feed besides negative errno. */
#define IG_TLS_MORE 0 /* all bytes used, nothing complete */
#define IG_TLS_HELLO 1 /* a hello is complete: ig_tls_stream_hello() */

/* Feeds the next len in-order bytes; *used gets the bytes consumed. Returns
 * IG_TLS_HELLO as soon as a hello is complete (feed the rest, data + *used,
 * afterwards; the hello stays valid until then), IG_TLS_MORE, or a sticky
 * error: -EPROTO (not a TLS handshake stream: a bad record header, or a first
 * handshake message that is not a hello), -EBADMSG (a malformed hello),
 * -EMSGSIZE (a hello longer than max_msg). After a change_cipher_spec record
 * the stream ignores handshake records (encrypted in TLS 1.2) unless it
 * expects a second hello (ig_tls_stream_expect_hello, or its own last hello
 * was a HelloRetryRequest). */
int ig_tls_stream_feed(struct ig_tls_stream *s, const uint8_t *data, size_t len, size_t *used);
const struct ig_tls_hello *ig_tls_stream_hello(const struct ig_tls_stream *s);
/* The raw handshake message of that hello (header included), for a copy
 * that outlives the next feed; NULL when none is pending. */
const uint8_t *ig_tls_stream_msg(const struct ig_tls_stream *s, size_t *len);
/* The peer sent a HelloRetryRequest: a second ClientHello follows. */
void ig_tls_stream_expect_hello(struct ig_tls_stream *s);
/* Whether the stream stopped inside its first hello: bytes of a record
 * header or of a hello message were read, no hello completed, no error. */
bool ig_tls_stream_inside_hello(const struct ig_tls_stream *s);
/* Number of records whose header was read. */
uint64_t ig_tls_stream_records(const struct ig_tls_stream *s);

#endif
