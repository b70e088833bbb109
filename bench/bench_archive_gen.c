/* bench_archive_gen: writes a synthetic archive for bench_archive.sh, as the
 * S3 backend would lay it out: gzip JSON-lines objects (record_json.h's
 * schema) under <prefix>/cluster=<c>/date=/hour=/, each with its index
 * object beside it (built by the backend's own index builder).
 *
 *   bench_archive_gen OUTDIR HOURS OBJECTS_PER_HOUR OBJECT_MIB NEEDLE_OBJECTS
 *
 * Records: file.open events of ~2,000 pods in 40 namespaces, 60 process
 * names and ~50,000 paths, ordered in time within each hour. The path
 * /etc/needle-secret appears once in each of NEEDLE_OBJECTS objects spread
 * over the hours. Prints the object count, the uncompressed and compressed
 * bytes and the window covering the archive. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zlib.h>

#include "archive_index.h"
#include "ig_time.h"

static uint64_t rng = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

static int write_file(const char *dir, const char *key, const void *d, size_t n)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (mkdirs(path))
		return -1;
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(d, 1, n, f) != n) {
		if (f)
			fclose(f);
		return -1;
	}
	return fclose(f);
}

int main(int argc, char **argv)
{
	static const char *const procs[] = { "nginx", "python3", "java", "node", "sh",
					     "bash",  "cat",	 "curl", "sshd", "envoy" };
	static const char *const dirs[] = { "/usr/lib/x86_64-linux-gnu",
					    "/app/static",
					    "/var/lib/app/cache",
					    "/proc/self",
					    "/etc/ssl/certs",
					    "/usr/share/zoneinfo",
					    "/tmp",
					    "/srv/data/shard" };
	if (argc != 6) {
		fprintf(stderr,
			"usage: %s OUTDIR HOURS OBJECTS_PER_HOUR OBJECT_MIB NEEDLE_OBJECTS\n",
			argv[0]);
		return 2;
	}
	const char *out = argv[1];
	int hours = atoi(argv[2]), per_hour = atoi(argv[3]), needles = atoi(argv[5]);
	size_t obj_bytes = (size_t)atoi(argv[4]) << 20;
	const char *keys[] = { "path", "process", "pod", "namespace", "container", "node", "uid" };
	struct ig_aindex_builder *ib = ig_aindex_builder_new(keys, 7);
	int64_t start_hour = (int64_t)time(NULL) / 3600 - hours - 1;
	size_t cap = obj_bytes + 65536, zcap = compressBound(cap) + 1024;
	char *raw = malloc(cap), line[2048];
	unsigned char *z = malloc(zcap);
	uint64_t total_raw = 0, total_z = 0, nobj = 0;
	int nobjs = hours * per_hour, needle_every = needles ? nobjs / needles : 0;

	if (!ib || !raw || !z)
		return 1;
	for (int h = 0; h < hours; h++) {
		int64_t hour = start_hour + h;
		time_t t = (time_t)(hour * 3600);
		struct tm tm;
		gmtime_r(&t, &tm);
		for (int o = 0; o < per_hour; o++) {
			int idx = h * per_hour + o;
			bool needle = needle_every && idx % needle_every == needle_every / 2 &&
				      idx / needle_every < needles;
			size_t len = 0;
			uint64_t n = 0;
			/* This object's share of the hour, in ns. */
			uint64_t t0 = (uint64_t)hour * 3600000000000ULL +
				      (uint64_t)o * (3600000000000ULL / (uint64_t)per_hour);
			while (len < obj_bytes) {
				uint64_t r = rnd(), ts = t0 + n * 1000003;
				unsigned pod = (unsigned)(r % 2000), ns = pod % 40;
				unsigned pid = 1000 + (unsigned)(r >> 20) % 60000;
				char path[256];
				if (needle && n == 1000)
					snprintf(path, sizeof(path), "/etc/needle-secret");
				else
					snprintf(path, sizeof(path), "%s/f%u.dat",
						 dirs[(r >> 40) % 8], (unsigned)((r >> 8) % 6000));
				char tsb[40];
				ig_fmt_rfc3339(ts, tsb, sizeof(tsb));
				int l = snprintf(
					line, sizeof(line),
					"{\"ts\":\"%s\",\"name\":\"file.open\",\"kind\":\"counter\","
					"\"value\":1,\"probe\":\"files\",\"tags\":{\"node\":\"node-%u\","
					"\"scope\":\"pod\",\"namespace\":\"ns-%u\",\"pod\":\"web-%u-7d9f\","
					"\"container\":\"app\",\"container_id\":\"%016llx%016llx\","
					"\"runtime\":\"containerd\",\"image\":\"registry/ns-%u/app:1.%u\","
					"\"owner_kind\":\"Deployment\",\"owner_name\":\"web-%u\","
					"\"pod_uid\":\"%08x-0f6c-4b1e-9d2a-%012llx\",\"process\":\"%s\","
					"\"pid\":%u,\"tid\":%u,\"ppid\":%u,\"uid\":%u,\"gid\":%u,"
					"\"cgroup_id\":%u,\"path\":\"%s\",\"flags\":%u,\"ret\":%u,"
					"\"syscall\":\"openat\"}}",
					tsb, pod % 50, ns, pod,
					(unsigned long long)pod * 2654435761ULL,
					(unsigned long long)pod, ns, pod % 7, pod, pod,
					(unsigned long long)pod * 40503ULL, procs[(r >> 32) % 10],
					pid, pid, 1 + pid % 977, (unsigned)(r >> 48) % 3 ? 0 : 1000,
					(unsigned)(r >> 48) % 3 ? 0 : 1000, 5000 + pod, path,
					524288, 3 + (unsigned)(r >> 56) % 20);
				ig_aindex_add(ib, line, (size_t)l);
				memcpy(raw + len, line, (size_t)l);
				raw[len + (size_t)l] = '\n';
				len += (size_t)l + 1;
				n++;
			}
			/* gzip, as the backend writes it (deflate level 6). */
			z_stream zs = { 0 };
			deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
			zs.next_in = (Bytef *)raw;
			zs.avail_in = (uInt)len;
			zs.next_out = z;
			zs.avail_out = (uInt)zcap;
			if (deflate(&zs, Z_FINISH) != Z_STREAM_END)
				return 1;
			size_t zl = zcap - zs.avail_out;
			deflateEnd(&zs);
			char key[512], *doc, *ikey;
			size_t dl;
			snprintf(
				key, sizeof(key),
				"bench/cluster=bench/date=%04d-%02d-%02d/hour=%02d/gen-%04d.jsonl.gz",
				tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, idx);
			if (ig_aindex_finish(ib, key, z, zl, UINT64_MAX, 0, &doc, &dl) ||
			    !(ikey = ig_aindex_key(key)))
				return 1;
			if (write_file(out, key, z, zl) || write_file(out, ikey, doc, dl)) {
				fprintf(stderr, "cannot write under %s\n", out);
				return 1;
			}
			free(doc);
			free(ikey);
			total_raw += len;
			total_z += zl;
			nobj++;
		}
	}
	char from[40], to[40];
	ig_fmt_rfc3339((uint64_t)start_hour * 3600000000000ULL, from, sizeof(from));
	ig_fmt_rfc3339((uint64_t)(start_hour + hours) * 3600000000000ULL, to, sizeof(to));
	printf("objects=%llu raw_bytes=%llu gzip_bytes=%llu from=%.19sZ to=%.19sZ\n",
	       (unsigned long long)nobj, (unsigned long long)total_raw, (unsigned long long)total_z,
	       from, to);
	ig_aindex_builder_free(ib);
	free(raw);
	free(z);
	return 0;
}
