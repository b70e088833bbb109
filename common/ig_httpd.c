/* ig_httpd: see ig_httpd.h. */
#include "ig_httpd.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "ig_time.h"

#define STUCK_NS (10 * IG_NSEC_PER_SEC)

struct ig_httpd {
	nng_http_server *srv;
	nng_url *url;
	pthread_mutex_t mu;
	char *metrics;
	size_t metrics_len;
	uint64_t heartbeat_ns;
	bool ready;
};

static void respond(nng_aio *aio, uint16_t status, const char *ctype, const void *body, size_t len)
{
	nng_http_res *res = NULL;
	if (nng_http_res_alloc(&res) != 0) {
		nng_aio_finish(aio, NNG_ENOMEM);
		return;
	}
	nng_http_res_set_status(res, status);
	nng_http_res_set_header(res, "Content-Type", ctype);
	nng_http_res_copy_data(res, body, len);
	nng_aio_set_output(aio, 0, res);
	nng_aio_finish(aio, 0);
}

static struct ig_httpd *handler_owner(nng_aio *aio)
{
	nng_http_handler *h = nng_aio_get_input(aio, 1);
	return nng_http_handler_get_data(h);
}

static void on_metrics(nng_aio *aio)
{
	struct ig_httpd *d = handler_owner(aio);
	pthread_mutex_lock(&d->mu);
	respond(aio, 200, "text/plain; version=0.0.4; charset=utf-8", d->metrics ? d->metrics : "",
		d->metrics_len);
	pthread_mutex_unlock(&d->mu);
}

static void on_healthz(nng_aio *aio)
{
	struct ig_httpd *d = handler_owner(aio);
	pthread_mutex_lock(&d->mu);
	bool ok = ig_mono_ns() - d->heartbeat_ns < STUCK_NS;
	pthread_mutex_unlock(&d->mu);
	if (ok)
		respond(aio, 200, "text/plain", "ok\n", 3);
	else
		respond(aio, 503, "text/plain", "event loop stuck\n", 17);
}

static void on_readyz(nng_aio *aio)
{
	struct ig_httpd *d = handler_owner(aio);
	pthread_mutex_lock(&d->mu);
	bool ok = d->ready;
	pthread_mutex_unlock(&d->mu);
	if (ok)
		respond(aio, 200, "text/plain", "ready\n", 6);
	else
		respond(aio, 503, "text/plain", "not ready\n", 10);
}

static int add(struct ig_httpd *d, const char *path, void (*cb)(nng_aio *))
{
	nng_http_handler *h;
	int rv = nng_http_handler_alloc(&h, path, cb);
	if (rv)
		return rv;
	nng_http_handler_set_method(h, "GET");
	nng_http_handler_set_data(h, d, NULL);
	return nng_http_server_add_handler(d->srv, h);
}

int ig_httpd_new(struct ig_httpd **out, const char *listen, struct ig_err *err)
{
	struct ig_httpd *d = calloc(1, sizeof(*d));
	char url[512];
	int rv;

	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->mu, NULL);
	d->heartbeat_ns = ig_mono_ns();
	snprintf(url, sizeof(url), "%s%s", strncmp(listen, "http://", 7) ? "http://" : "", listen);
	if ((rv = nng_url_parse(&d->url, url)) != 0) {
		ig_err_add(err, "metrics_listen: '%s' is not host:port (%s)", listen,
			   nng_strerror(rv));
		goto fail;
	}
	if ((rv = nng_http_server_hold(&d->srv, d->url)) != 0 ||
	    (rv = add(d, "/metrics", on_metrics)) || (rv = add(d, "/healthz", on_healthz)) ||
	    (rv = add(d, "/readyz", on_readyz)) || (rv = nng_http_server_start(d->srv)) != 0) {
		ig_err_add(err, "metrics_listen: cannot serve HTTP on %s: %s", listen,
			   nng_strerror(rv));
		goto fail;
	}
	*out = d;
	return 0;
fail:
	if (d->srv)
		nng_http_server_release(d->srv);
	if (d->url)
		nng_url_free(d->url);
	pthread_mutex_destroy(&d->mu);
	free(d);
	return -EINVAL;
}

void ig_httpd_publish(struct ig_httpd *d, const char *metrics, size_t len)
{
	char *copy;
	if (!d)
		return;
	copy = malloc(len + 1);
	if (copy) {
		memcpy(copy, metrics, len);
		copy[len] = '\0';
	}
	pthread_mutex_lock(&d->mu);
	d->heartbeat_ns = ig_mono_ns();
	if (copy) {
		free(d->metrics);
		d->metrics = copy;
		d->metrics_len = len;
	}
	pthread_mutex_unlock(&d->mu);
}

void ig_httpd_set_ready(struct ig_httpd *d, bool ready)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->mu);
	d->ready = ready;
	pthread_mutex_unlock(&d->mu);
}

void ig_httpd_free(struct ig_httpd *d)
{
	if (!d)
		return;
	nng_http_server_stop(d->srv);
	nng_http_server_release(d->srv);
	nng_url_free(d->url);
	pthread_mutex_destroy(&d->mu);
	free(d->metrics);
	free(d);
}
