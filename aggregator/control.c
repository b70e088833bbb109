/* control: see control.h. */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/transport/ipc/ipc.h>

#include "ig_log.h"

#define MAX_REQUEST (1u << 20)

struct ig_control {
	nng_socket sock;
	int fd;
	ig_control_handler fn;
	void *ctx;
};

/* For ipc:// URLs, create the directory of the socket path. */
static void make_ipc_dir(const char *url)
{
	if (strncmp(url, "ipc://", 6))
		return;
	char path[4096];
	snprintf(path, sizeof(path), "%s", url + 6);
	char *slash = strrchr(path, '/');
	if (!slash || slash == path)
		return;
	*slash = '\0';
	for (char *p = path + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(path, 0755);
			*p = '/';
		}
	}
	mkdir(path, 0755);
}

int ig_control_new(struct ig_control **out, const char *url, ig_control_handler fn, void *ctx,
		   struct ig_err *err)
{
	struct ig_control *c = calloc(1, sizeof(*c));
	nng_listener l;
	int rv;

	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->ctx = ctx;
	if ((rv = nng_rep0_open(&c->sock)) != 0)
		goto fail;
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, MAX_REQUEST);
	nng_socket_set_ms(c->sock, NNG_OPT_SENDTIMEO, 1000);
	make_ipc_dir(url);
	if ((rv = nng_listener_create(&l, c->sock, url)) != 0)
		goto fail;
	if (!strncmp(url, "ipc://", 6))
		nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, 0600);
	if ((rv = nng_listener_start(l, 0)) != 0)
		goto fail;
	if ((rv = nng_socket_get_int(c->sock, NNG_OPT_RECVFD, &c->fd)) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	ig_err_add(err,
		   "aggregator.control: cannot listen on %s: %s (is another aggregator running? "
		   "set control to another path, e.g. ipc:///tmp/ingrain.sock)",
		   url, nng_strerror(rv));
	nng_close(c->sock);
	free(c);
	return -EINVAL;
}

int ig_control_fd(const struct ig_control *c)
{
	return c->fd;
}

static void send_json(nng_socket s, struct json_object *o)
{
	size_t len;
	const char *txt = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	nng_msg *m;
	if (nng_msg_alloc(&m, len) != 0)
		return;
	memcpy(nng_msg_body(m), txt, len);
	if (nng_sendmsg(s, m, 0) != 0) /* bounded by NNG_OPT_SENDTIMEO */
		nng_msg_free(m);
}

void ig_control_serve(struct ig_control *c)
{
	for (;;) {
		nng_msg *m;
		if (nng_recvmsg(c->sock, &m, NNG_FLAG_NONBLOCK) != 0)
			return;
		struct json_tokener *tok = json_tokener_new();
		struct json_object *req =
			json_tokener_parse_ex(tok, nng_msg_body(m), (int)nng_msg_len(m));
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		json_tokener_free(tok);
		nng_msg_free(m);
		struct json_object *rep;
		if (!req || jerr != json_tokener_success ||
		    !json_object_is_type(req, json_type_object)) {
			rep = json_object_new_object();
			json_object_object_add(rep, "ok", json_object_new_boolean(0));
			json_object_object_add(
				rep, "error",
				json_object_new_string("request is not a JSON object"));
		} else {
			rep = c->fn(c->ctx, req);
		}
		json_object_put(req);
		send_json(c->sock, rep);
		json_object_put(rep);
	}
}

void ig_control_free(struct ig_control *c)
{
	if (!c)
		return;
	nng_close(c->sock);
	free(c);
}

struct json_object *ig_control_call(const char *url, struct json_object *req, int timeout_ms,
				    struct ig_err *err)
{
	nng_socket s;
	nng_msg *m = NULL;
	int rv;

	if ((rv = nng_req0_open(&s)) != 0) {
		ig_err_add(err, "cannot open socket: %s", nng_strerror(rv));
		return NULL;
	}
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 16u << 20);
	if ((rv = nng_dial(s, url, NULL, 0)) != 0) {
		ig_err_add(
			err,
			"cannot reach the aggregator at %s: %s (is it running? is the socket path "
			"right (--socket)? are you root?)",
			url, nng_strerror(rv));
		nng_close(s);
		return NULL;
	}
	size_t len;
	const char *txt = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &len);
	if (nng_msg_alloc(&m, len) != 0 || (memcpy(nng_msg_body(m), txt, len), 0) ||
	    (rv = nng_sendmsg(s, m, 0)) != 0 || (rv = nng_recvmsg(s, &m, 0)) != 0) {
		ig_err_add(err, "no answer from the aggregator at %s: %s", url, nng_strerror(rv));
		nng_close(s);
		return NULL;
	}
	struct json_tokener *tok = json_tokener_new();
	struct json_object *rep = json_tokener_parse_ex(tok, nng_msg_body(m), (int)nng_msg_len(m));
	json_tokener_free(tok);
	nng_msg_free(m);
	nng_close(s);
	if (!rep)
		ig_err_add(err, "the aggregator's answer is not JSON");
	return rep;
}
