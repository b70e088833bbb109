/* sigv4: AWS Signature Version 4 (HMAC-SHA256) with OpenSSL.
 *
 * The S3 backend signs every request it sends; this module only computes,
 * it never talks to the network. The caller builds the request it will send
 * (method, path already URI-encoded the way it goes on the wire, query
 * string, the headers to sign, the payload hash) and gets back the value of
 * the Authorization header. Canonicalisation follows the published rules:
 * header names lower-cased, values trimmed with inner runs of spaces
 * collapsed, repeated headers joined with ',' in order, headers sorted;
 * query parameters decoded then re-encoded strictly (RFC 3986 unreserved
 * set) and sorted by key, then value. The path is used as given: S3 does not
 * normalise or double-encode it (ig_sigv4_uri_encode encodes a key).
 *
 * tests/unit/test_sigv4.c runs the signer against AWS's published SigV4
 * test suite (canonical request, string to sign and signature of each case).
 */
#ifndef IG_SIGV4_H
#define IG_SIGV4_H

#include <stdbool.h>
#include <stddef.h>

#define IG_SHA256_HEX_LEN 64
#define IG_SIGV4_DATE_LEN 16 /* "20150830T123600Z" */

struct ig_sigv4_header {
	const char *name;
	const char *value;
};

struct ig_sigv4_req {
	const char *method;
	const char *path; /* canonical URI, e.g. "/bucket/a%3Db/c.gz" */
	const char *query; /* without '?', NULL or "" when none */
	const struct ig_sigv4_header *headers; /* every header to sign, incl. host, x-amz-date */
	size_t nheaders;
	const char *payload_hash; /* lower-case hex SHA-256 of the body, or "UNSIGNED-PAYLOAD" */
};

struct ig_sigv4_cred {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL when none (sent as x-amz-security-token) */
};

/* Optional outputs for tests and debugging (malloc'd, caller frees). */
struct ig_sigv4_debug {
	char *canonical_request;
	char *string_to_sign;
};

/* Computes the Authorization header value into *auth (malloc'd). amz_date is
 * the request's x-amz-date ("YYYYMMDDTHHMMSSZ"). Returns 0, -EINVAL on a
 * malformed request (no headers, bad date), -ENOMEM. */
int ig_sigv4_sign(const struct ig_sigv4_req *req, const struct ig_sigv4_cred *cred,
		  const char *region, const char *service, const char *amz_date, char **auth,
		  struct ig_sigv4_debug *dbg);
void ig_sigv4_debug_free(struct ig_sigv4_debug *dbg);

/* Lower-case hex SHA-256 of data into out[65]. */
void ig_sha256_hex(const void *data, size_t len, char out[IG_SHA256_HEX_LEN + 1]);
/* Base64 MD5 of data into out[25] (the Content-MD5 header). */
void ig_md5_base64(const void *data, size_t len, char out[25]);
/* Base64 SHA-256 of data into out[45] (x-amz-checksum-sha256). */
void ig_sha256_base64(const void *data, size_t len, char out[45]);
/* Percent-encodes s (RFC 3986 unreserved kept; '/' kept when keep_slash).
 * Returns a malloc'd string or NULL. */
char *ig_sigv4_uri_encode(const char *s, size_t len, bool keep_slash);
/* Formats wall-clock seconds as "YYYYMMDDTHHMMSSZ" into out[17]. */
void ig_sigv4_amz_date(long long epoch_s, char out[IG_SIGV4_DATE_LEN + 1]);

#endif
