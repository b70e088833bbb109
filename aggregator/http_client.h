/* http_client: a small libcurl wrapper for the HTTP backends (S3, Datadog).
 *
 * One ig_http per sending thread: it keeps one curl easy handle, so the
 * connection (and TLS session) is reused between requests (keep-alive).
 * Every request is bounded by a connect timeout and a total timeout, never
 * raises SIGPIPE/SIGALRM (CURLOPT_NOSIGNAL), and sends no
 * "Expect: 100-continue" round trip. The response status, the first
 * IG_HTTP_MAX_BODY bytes of the body and the ETag header are returned; a
 * transport failure (refused, reset, timeout) returns a negative errno and a
 * readable reason, so callers can tell "retry later" from "the server said
 * no".
 */
#ifndef IG_HTTP_CLIENT_H
#define IG_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IG_HTTP_MAX_BODY (256 * 1024)

struct ig_http_conf {
	uint64_t connect_timeout_ns; /* 0 = 5 s */
	uint64_t timeout_ns; /* whole request; 0 = 30 s */
	const char *ca_file; /* PEM bundle to trust; NULL = system store */
	bool insecure; /* do not verify the server certificate (tests only) */
	const char *user_agent; /* NULL = "ingrain" */
};

struct ig_http_resp {
	long status; /* HTTP status; 0 when no response was received */
	char *body; /* NUL-terminated, at most IG_HTTP_MAX_BODY bytes kept */
	size_t body_len;
	char etag[128]; /* ETag response header, "" when absent */
	char error[256]; /* transport error text, "" on success */
};

struct ig_http;

/* NULL on allocation failure. */
struct ig_http *ig_http_new(const struct ig_http_conf *conf);
void ig_http_free(struct ig_http *h);
/* Sends one request. headers is NULL or a NULL-terminated list of
 * "Name: value" lines. Returns 0 when a response arrived (whatever its
 * status), -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET/-EIO (other transport
 * failures) or -ENOMEM; resp->error says why. resp must be freed with
 * ig_http_resp_free either way. */
int ig_http_request(struct ig_http *h, const char *method, const char *url,
		    const char *const *headers, const void *body, size_t len,
		    struct ig_http_resp *resp);
void ig_http_resp_free(struct ig_http_resp *resp);
/* A request in progress is abandoned (-ECANCELED) within about a second once
 * abort(ctx) returns true: shutdown must not wait for a server that does not
 * answer. */
void ig_http_set_abort(struct ig_http *h, bool (*abort)(void *ctx), void *ctx);
/* True for statuses worth retrying: 408, 425, 429 and 5xx. */
bool ig_http_status_retryable(long status);

#endif
