/* bench_sock_calls: the per-call cost of socket I/O, for bench_tcp.sh.
 *
 * One thread owns both ends of a loopback connection and alternates a send
 * of SIZE bytes with receiving them, N times; it prints the thread CPU time
 * per send+receive pair. Thread CPU time, not wall time: on a shared or
 * virtualised machine other work preempts the benchmark, which wall time
 * would charge to whatever configuration happened to be running. Loopback
 * delivery runs in the sender's context (softirq on the way out of the
 * send), so the receive path's cost is in the figure too.
 *
 *   bench_sock_calls udp|tcp SIZE N [v4|v6]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double thread_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int die(const char *what)
{
	fprintf(stderr, "bench_sock_calls: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_sock_calls udp|tcp SIZE N [v4|v6]\n");
		return 2;
	}
	int tcp = strcmp(argv[1], "tcp") == 0;
	size_t size = (size_t)atol(argv[2]);
	long n = atol(argv[3]);
	int v6 = argc > 4 && strcmp(argv[4], "v6") == 0;
	int fam = v6 ? AF_INET6 : AF_INET;
	int type = tcp ? SOCK_STREAM : SOCK_DGRAM;
	struct sockaddr_storage ss;
	socklen_t len;

	if (size == 0 || size > (1 << 20) || n <= 0) {
		fprintf(stderr, "bench_sock_calls: SIZE 1..1048576, N > 0\n");
		return 2;
	}
	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	int srv = socket(fam, type, 0);
	if (srv < 0 || bind(srv, (struct sockaddr *)&ss, len) != 0)
		return die("bind");
	if (getsockname(srv, (struct sockaddr *)&ss, &len) != 0)
		return die("getsockname");
	if (tcp && listen(srv, 1) != 0)
		return die("listen");
	int cli = socket(fam, type, 0);
	if (cli < 0 || connect(cli, (struct sockaddr *)&ss, len) != 0)
		return die("connect");
	int rcv = srv;
	if (tcp) {
		int one = 1;
		rcv = accept(srv, NULL, NULL);
		if (rcv < 0)
			return die("accept");
		setsockopt(cli, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	char *buf = calloc(1, size);
	if (!buf)
		return die("calloc");

	double t0 = thread_ns();
	for (long i = 0; i < n; i++) {
		if (send(cli, buf, size, 0) != (ssize_t)size)
			return die("send");
		size_t got = 0;
		while (got < size) {
			ssize_t r = recv(rcv, buf + got, size - got, 0);
			if (r <= 0)
				return die("recv");
			got += (size_t)r;
			if (!tcp)
				break;
		}
	}
	double t = thread_ns() - t0;
	printf("ns_per_op=%.1f\n", t / (double)n);
	free(buf);
	return 0;
}
