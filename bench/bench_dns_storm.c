/* bench_dns_storm: a DNS query storm for bench/bench_dns.sh.
 *
 *   bench_dns_storm ADDR PORT COUNT WINDOW
 *
 * Sends COUNT A queries (names q<i>.storm.test, ids 0..65535 in turn) over
 * one connected UDP socket, keeping WINDOW queries in flight: every answer
 * lets the next query go. A query unanswered for 1 s is given up. Prints
 * "sent=N answered=N seconds=S qps=Q".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t build(uint8_t *b, unsigned i)
{
	char label[16];
	size_t n = 0;
	int l = snprintf(label, sizeof(label), "q%u", i);

	b[n++] = (uint8_t)(i >> 8);
	b[n++] = (uint8_t)i;
	b[n++] = 0x01; /* RD */
	b[n++] = 0;
	b[n++] = 0;
	b[n++] = 1;
	memset(b + n, 0, 6);
	n += 6;
	b[n++] = (uint8_t)l;
	memcpy(b + n, label, (size_t)l);
	n += (size_t)l;
	memcpy(b + n, "\x05storm\x04test\x00\x00\x01\x00\x01", 16);
	return n + 16;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (argc != 5) {
		fprintf(stderr, "usage: %s ADDR PORT COUNT WINDOW\n", argv[0]);
		return 2;
	}
	unsigned count = (unsigned)atoi(argv[3]), window = (unsigned)atoi(argv[4]);
	int port = atoi(argv[2]);
	memset(&ss, 0, sizeof(ss));
	if (strchr(argv[1], ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		inet_pton(AF_INET6, argv[1], &s6->sin6_addr);
		len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		inet_pton(AF_INET, argv[1], &s4->sin_addr);
		len = sizeof(*s4);
	}
	int fd = socket(ss.ss_family, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0) {
		perror("socket/connect");
		return 1;
	}
	uint8_t q[128], r[4096];
	unsigned sent = 0, answered = 0, inflight = 0;
	double t0 = now_s();
	while (sent < count || inflight > 0) {
		while (sent < count && inflight < window) {
			size_t n = build(q, sent);
			if (send(fd, q, n, 0) == (ssize_t)n) {
				sent++;
				inflight++;
			} else if (errno != EAGAIN && errno != ENOBUFS) {
				perror("send");
				return 1;
			} else {
				break;
			}
		}
		struct pollfd p = { fd, POLLIN, 0 };
		int pr = poll(&p, 1, 1000);
		if (pr == 0) { /* given up: the window moves on */
			inflight = 0;
			continue;
		}
		while (recv(fd, r, sizeof(r), MSG_DONTWAIT) > 0) {
			answered++;
			if (inflight)
				inflight--;
		}
	}
	double dt = now_s() - t0;
	printf("sent=%u answered=%u seconds=%.3f qps=%.0f\n", sent, answered, dt,
	       (double)answered / dt);
	return 0;
}
