/* aggr_pick: see aggr_pick.h. */
#include "aggr_pick.h"
#include "ig_hash.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_ADDRS 256

/* FNV-1a 64 over key, a separator and addr, then a 64-bit finaliser
 * (splitmix64) so that close inputs spread over the whole range. */
unsigned long long ig_aggr_pick_score(const char *key, const char *addr)
{
	uint64_t h = ig_fnv64_str(IG_FNV64_INIT, key);

	h = (h ^ 0xff) * IG_FNV64_PRIME;
	return ig_mix64(ig_fnv64_str(h, addr));
}

static int copy_out(char *out, size_t outlen, const char *s)
{
	if (snprintf(out, outlen, "%s", s) >= (int)outlen)
		return -ENAMETOOLONG;
	return 0;
}

int ig_aggr_pick(const char *url, const char *key, char *out, size_t outlen)
{
	char host[256], port[16], scheme[32];
	const char *sep = strstr(url, "://");
	int rv;

	if ((rv = copy_out(out, outlen, url)) < 0)
		return rv;
	if (!sep || (size_t)(sep - url) >= sizeof(scheme))
		return -EINVAL;
	memcpy(scheme, url, sep - url);
	scheme[sep - url] = '\0';
	/* ipc://, inproc:// name one endpoint; tls+tcp:// is dialed by name so
	 * that the server certificate is checked against it. */
	if (strcmp(scheme, "tcp") != 0 && strcmp(scheme, "tcp4") != 0 &&
	    strcmp(scheme, "tcp6") != 0)
		return 1;
	const char *h = sep + 3, *colon = strrchr(h, ':');
	if (!colon || *h == '[' || (size_t)(colon - h) >= sizeof(host) ||
	    strlen(colon + 1) >= sizeof(port) || !colon[1])
		return *h == '[' ? 1 : -EINVAL; /* an IPv6 literal is one address */
	memcpy(host, h, colon - h);
	host[colon - h] = '\0';
	strcpy(port, colon + 1);

	unsigned char probe[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, host, probe) == 1 || inet_pton(AF_INET6, host, probe) == 1)
		return 1;

	struct addrinfo hints = { .ai_family = strcmp(scheme, "tcp4") == 0 ? AF_INET :
					       strcmp(scheme, "tcp6") == 0 ? AF_INET6 :
									     AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return 0;
	char best[INET6_ADDRSTRLEN] = "";
	unsigned long long best_score = 0;
	char seen[MAX_ADDRS][INET6_ADDRSTRLEN];
	int n = 0, best_v6 = 0;
	for (struct addrinfo *ai = res; ai && n < MAX_ADDRS; ai = ai->ai_next) {
		char a[INET6_ADDRSTRLEN];
		const void *p =
			ai->ai_family == AF_INET ?
				(const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
				(const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
		if (!inet_ntop(ai->ai_family, p, a, sizeof(a)))
			continue;
		int dup = 0;
		for (int i = 0; i < n && !dup; i++)
			dup = strcmp(seen[i], a) == 0;
		if (dup)
			continue;
		strcpy(seen[n++], a);
		unsigned long long sc = ig_aggr_pick_score(key ? key : "", a);
		/* Ties (vanishingly rare) go to the smaller address: still stable. */
		if (!best[0] || sc > best_score || (sc == best_score && strcmp(a, best) < 0)) {
			best_score = sc;
			strcpy(best, a);
			best_v6 = ai->ai_family == AF_INET6;
		}
	}
	freeaddrinfo(res);
	if (n <= 1)
		return n;
	char buf[512];
	snprintf(buf, sizeof(buf), "%s://%s%s%s:%s", scheme, best_v6 ? "[" : "", best,
		 best_v6 ? "]" : "", port);
	if ((rv = copy_out(out, outlen, buf)) < 0)
		return rv;
	return n;
}
