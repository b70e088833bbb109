/* http_stub: a minimal HTTP/1.1 server on 127.0.0.1 for backend unit tests
 * (header-only; included by test_backend_s3.c and test_backend_datadog.c).
 *
 * One thread accepts one connection at a time and serves keep-alive
 * requests (Content-Length bodies only, as libcurl sends them). Every
 * request is recorded; the test's respond() callback decides the answer, or
 * asks the stub to cut the connection halfway through the body, the way a
 * server killed mid-upload would. */
#ifndef IG_TEST_HTTP_STUB_H
#define IG_TEST_HTTP_STUB_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define STUB_MAX_REQ 512

struct stub_req {
	char method[16];
	char path[4096]; /* without the query */
	char query[4096];
	char headers[8192]; /* "name: value\r\n"... as received */
	unsigned char *body;
	size_t len;
	bool complete; /* respond() is asked twice: before the body (return
			* status 0 to cut the upload) and with the whole body */
};

struct stub_answer {
	int status; /* 0 = cut the connection halfway through the body */
	char body[4096];
	char headers[512]; /* extra "Name: value\r\n" lines */
};

struct stub {
	int lfd, port;
	pthread_t th;
	pthread_mutex_t mu;
	bool stop;
	struct stub_req reqs[STUB_MAX_REQ];
	int nreq;
	void (*respond)(struct stub *s, const struct stub_req *r, int idx, struct stub_answer *a);
	void *ctx;
};

/* Value of a request header (case-insensitive name) into out; false if absent. */
static inline bool stub_header(const struct stub_req *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = r->headers; *p;) {
		const char *e = strstr(p, "\r\n");
		if (!e)
			break;
		if ((size_t)(e - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
			const char *v = p + nl + 1;
			while (*v == ' ')
				v++;
			snprintf(out, cap, "%.*s", (int)(e - v), v);
			return true;
		}
		p = e + 2;
	}
	return false;
}

static int stub_read_request(struct stub *s, int fd, struct stub_req *r, char *buf, size_t *have,
			     size_t cap)
{
	char *end;

	for (;;) {
		buf[*have] = '\0';
		if ((end = strstr(buf, "\r\n\r\n")))
			break;
		if (*have >= cap - 1)
			return -1;
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 100) == 0) {
			if (__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST))
				return -1;
			continue;
		}
		ssize_t n = read(fd, buf + *have, cap - 1 - *have);
		if (n <= 0)
			return -1;
		*have += (size_t)n;
	}
	memset(r, 0, sizeof(*r));
	char target[4096] = "";
	sscanf(buf, "%15s %4095s", r->method, target);
	char *q = strchr(target, '?');
	if (q) {
		*q = '\0';
		snprintf(r->query, sizeof(r->query), "%s", q + 1);
	}
	snprintf(r->path, sizeof(r->path), "%s", target);
	char *h = strstr(buf, "\r\n") + 2;
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)(end + 2 - h), h);
	char cl[32] = "0";
	stub_header(r, "content-length", cl, sizeof(cl));
	r->len = strtoull(cl, NULL, 10);
	size_t hdr_len = (size_t)(end + 4 - buf);
	r->body = malloc(r->len + 1);
	size_t got = *have - hdr_len < r->len ? *have - hdr_len : r->len;
	memcpy(r->body, buf + hdr_len, got);
	size_t rest = *have - hdr_len - got;
	memmove(buf, buf + hdr_len + got, rest);
	*have = rest;
	return (int)got;
}

static int stub_read_body(int fd, struct stub_req *r, size_t got, size_t upto)
{
	while (got < upto) {
		ssize_t n = read(fd, r->body + got, upto - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static void stub_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void *stub_main(void *arg)
{
	struct stub *s = arg;
	static char buf[1 << 16];

	while (!__atomic_load_n(&s->stop, __ATOMIC_SEQ_CST)) {
		struct pollfd p = { s->lfd, POLLIN, 0 };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(s->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		size_t have = 0;
		for (;;) {
			struct stub_req r;
			int got = stub_read_request(s, fd, &r, buf, &have, sizeof(buf));
			if (got < 0)
				break;
			struct stub_answer a = { .status = 200 };
			pthread_mutex_lock(&s->mu);
			int idx = s->nreq;
			pthread_mutex_unlock(&s->mu);
			/* The answer may depend on the body: read it whole first,
			 * except when the script cuts the upload. */
			r.complete = false;
			s->respond(s, &r, idx, &a);
			if (a.status == 0) {
				stub_read_body(fd, &r, (size_t)got, r.len / 2);
				free(r.body);
				r.body = NULL; /* recorded without its body */
				r.len = 0;
				pthread_mutex_lock(&s->mu);
				if (s->nreq < STUB_MAX_REQ)
					s->reqs[s->nreq] = r;
				s->nreq++;
				pthread_mutex_unlock(&s->mu);
				break;
			}
			if (stub_read_body(fd, &r, (size_t)got, r.len)) {
				free(r.body);
				break;
			}
			r.body[r.len] = '\0';
			/* Re-ask now that the body is complete. */
			memset(&a, 0, sizeof(a));
			a.status = 200;
			r.complete = true;
			s->respond(s, &r, idx, &a);
			pthread_mutex_lock(&s->mu);
			if (s->nreq < STUB_MAX_REQ)
				s->reqs[s->nreq] = r;
			else
				free(r.body);
			s->nreq++;
			pthread_mutex_unlock(&s->mu);
			char head[1024];
			int hl = snprintf(head, sizeof(head),
					  "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n",
					  a.status, strlen(a.body), a.headers);
			stub_write_all(fd, head, (size_t)hl);
			stub_write_all(fd, a.body, strlen(a.body));
		}
		close(fd);
	}
	return NULL;
}

static void stub_start(struct stub *s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int one = 1;

	pthread_mutex_init(&s->mu, NULL);
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 16) ||
	    getsockname(s->lfd, (struct sockaddr *)&sa, &sl)) {
		perror("stub");
		abort();
	}
	s->port = ntohs(sa.sin_port);
	pthread_create(&s->th, NULL, stub_main, s);
}

static inline int stub_count(struct stub *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nreq;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Waits up to ms for at least n requests. */
static inline bool stub_wait(struct stub *s, int n, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		if (stub_count(s) >= n)
			return true;
		usleep(5000);
	}
	return stub_count(s) >= n;
}

static void stub_stop(struct stub *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_SEQ_CST);
	pthread_join(s->th, NULL);
	close(s->lfd);
	for (int i = 0; i < s->nreq && i < STUB_MAX_REQ; i++)
		free(s->reqs[i].body);
	pthread_mutex_destroy(&s->mu);
}

#endif
