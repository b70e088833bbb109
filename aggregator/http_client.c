/* http_client: see http_client.h. curl_global_init runs once (pthread_once);
 * the easy handle is reset between requests with the options re-applied, which
 * keeps its connection cache, so consecutive requests to one host reuse the
 * connection. */
#include "http_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct ig_http {
	CURL *curl;
	struct ig_http_conf conf;
	char *ca_file;
	char *user_agent;
	bool (*abort)(void *ctx);
	void *abort_ctx;
};

void ig_http_set_abort(struct ig_http *h, bool (*abort)(void *ctx), void *ctx)
{
	h->abort = abort;
	h->abort_ctx = ctx;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct ig_http *h = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	return h->abort && h->abort(h->abort_ctx) ? 1 : 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct ig_http *ig_http_new(const struct ig_http_conf *conf)
{
	struct ig_http *h = calloc(1, sizeof(*h));

	pthread_once(&curl_once, curl_init_once);
	if (!h)
		return NULL;
	h->conf = *conf;
	h->ca_file = conf->ca_file && *conf->ca_file ? strdup(conf->ca_file) : NULL;
	h->user_agent = strdup(conf->user_agent ? conf->user_agent : "ingrain");
	h->curl = curl_easy_init();
	if (!h->curl || !h->user_agent || (conf->ca_file && *conf->ca_file && !h->ca_file)) {
		ig_http_free(h);
		return NULL;
	}
	return h;
}

void ig_http_free(struct ig_http *h)
{
	if (!h)
		return;
	if (h->curl)
		curl_easy_cleanup(h->curl);
	free(h->ca_file);
	free(h->user_agent);
	free(h);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct ig_http_resp *r = ud;
	size_t len = size * n, room = IG_HTTP_MAX_BODY - r->body_len;
	size_t take = len < room ? len : room;

	if (take) {
		char *b = realloc(r->body, r->body_len + take + 1);
		if (!b)
			return 0; /* aborts the transfer: reported as an error */
		memcpy(b + r->body_len, p, take);
		r->body = b;
		r->body_len += take;
		r->body[r->body_len] = '\0';
	}
	return len; /* beyond the cap: read and discarded */
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct ig_http_resp *r = ud;
	size_t len = size * n;

	if (len > 5 && !strncasecmp(p, "etag:", 5)) {
		const char *v = p + 5;
		size_t vl = len - 5;
		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl >= sizeof(r->etag))
			vl = sizeof(r->etag) - 1;
		memcpy(r->etag, v, vl);
		r->etag[vl] = '\0';
	}
	return len;
}

static int errno_of(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	default:
		return -EIO;
	}
}

int ig_http_request(struct ig_http *h, const char *method, const char *url,
		    const char *const *headers, const void *body, size_t len,
		    struct ig_http_resp *resp)
{
	struct curl_slist *hl = NULL, *t;
	CURL *c = h->curl;
	uint64_t cto = h->conf.connect_timeout_ns ? h->conf.connect_timeout_ns : 5000000000ULL;
	uint64_t to = h->conf.timeout_ns ? h->conf.timeout_ns : 30000000000ULL;
	CURLcode rc;

	memset(resp, 0, sizeof(*resp));
	curl_easy_reset(c);
	for (size_t i = 0; headers && headers[i]; i++) {
		if (!(t = curl_slist_append(hl, headers[i])))
			goto nomem;
		hl = t;
	}
	/* No 100-continue round trip; no chunked uploads. */
	if (!(t = curl_slist_append(hl, "Expect:")))
		goto nomem;
	hl = t;

	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)(cto / 1000000));
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(to / 1000000));
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (h->abort) {
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	}
	if (h->ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	if (h->conf.insecure) {
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (!strcmp(method, "GET")) {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	} else if (!strcmp(method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else {
		/* POSTFIELDS carries the body for every other method; an empty
		 * body is sent with Content-Length: 0. */
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
		if (strcmp(method, "POST"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	}

	rc = curl_easy_perform(c);
	curl_slist_free_all(hl);
	if (rc != CURLE_OK) {
		snprintf(resp->error, sizeof(resp->error), "%s", curl_easy_strerror(rc));
		resp->status = 0;
		return errno_of(rc);
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
	return 0;
nomem:
	curl_slist_free_all(hl);
	snprintf(resp->error, sizeof(resp->error), "out of memory");
	return -ENOMEM;
}

void ig_http_resp_free(struct ig_http_resp *resp)
{
	free(resp->body);
	resp->body = NULL;
	resp->body_len = 0;
}

bool ig_http_status_retryable(long status)
{
	return status == 408 || status == 425 || status == 429 || status >= 500;
}
