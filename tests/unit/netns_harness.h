/* netns_harness.h: two network namespaces joined by a veth pair, for the
 * probe tests that need real traffic between two hosts. Addresses exist only
 * inside the namespaces the test makes:
 *   A = 10.200.<net>.1/24 fd00:2<net>::1/64,  B = 10.200.<net>.2/24 fd00:2<net>::2/64
 * Each test program passes its own tag and <net> so programs running at the
 * same time never collide. Header-only: include it from one test file. */
#ifndef IG_NETNS_HARNESS_H
#define IG_NETNS_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static bool have_netns;
static void require_root(void); /* the including test defines it */
static char ns_a[64], ns_b[64];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static void netns_teardown(void)
{
	if (ns_a[0])
		sh("ip netns del %s 2>/dev/null", ns_a);
	if (ns_b[0])
		sh("ip netns del %s 2>/dev/null", ns_b);
	have_netns = false;
}

/* tag: a short name ("tcp"), net: the third octet (and IPv6 subnet) to use. */
static void netns_setup_tagged(const char *tag, int net)
{
	int pid = (int)getpid();
	char v[16];

	snprintf(ns_a, sizeof(ns_a), "ig%s%d-a", tag, pid);
	snprintf(ns_b, sizeof(ns_b), "ig%s%d-b", tag, pid);
	snprintf(v, sizeof(v), "v%c%d", tag[0], pid);
	have_netns =
		sh("ip netns add %s", ns_a) == 0 && sh("ip netns add %s", ns_b) == 0 &&
		sh("ip -n %s link add %sa type veth peer name %sb netns %s", ns_a, v, v, ns_b) ==
			0 &&
		sh("ip -n %s addr add 10.200.%d.1/24 dev %sa", ns_a, net, v) == 0 &&
		sh("ip -n %s addr add 10.200.%d.2/24 dev %sb", ns_b, net, v) == 0 &&
		sh("ip -n %s addr add fd00:2%02d::1/64 dev %sa nodad", ns_a, net - 1, v) == 0 &&
		sh("ip -n %s addr add fd00:2%02d::2/64 dev %sb nodad", ns_b, net - 1, v) == 0 &&
		sh("ip -n %s link set %sa up && ip -n %s link set lo up", ns_a, v, ns_a) == 0 &&
		sh("ip -n %s link set %sb up && ip -n %s link set lo up", ns_b, v, ns_b) == 0;
	if (!have_netns) {
		fprintf(stderr, "network namespace setup failed\n");
		netns_teardown();
	}
}

/* Test helpers for processes and sockets inside those namespaces. */
static void require_netns(void)
{
	require_root();
	if (!have_netns)
		fail_msg("could not create the test's network namespaces and veth pair "
			 "(iproute2 'ip' missing? scripts/install-deps.sh --test installs it)");
}

static void enter_netns(const char *name)
{
	char path[128];

	if (!name)
		return;
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET) != 0)
		_exit(90);
	close(fd);
}

static int sockaddr_of(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(addr, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1 ? AF_INET6 : -1;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	*len = sizeof(*s4);
	return inet_pton(AF_INET, addr, &s4->sin_addr) == 1 ? AF_INET : -1;
}

static int local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return -1;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port :
						((struct sockaddr_in *)&ss)->sin_port);
}

#endif
