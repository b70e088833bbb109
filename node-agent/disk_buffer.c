/* disk_buffer: see disk_buffer.h. Not thread-safe: the sender calls it under
 * its queue lock. */
#include "disk_buffer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ig_log.h"
#include "ig_time.h"
#include "ig_wal.h"

struct seg {
	struct seg *next;
	char *name;
	uint64_t n, done, bytes;
};

struct ig_dbuf {
	char *dir;
	bool fsync;
	uint64_t segment_bytes;
	int lock_fd;
	struct seg *head, *tail; /* FIFO of segments holding envelopes not done */
	int wfd; /* the tail segment, open for appends; -1 = none */
	uint64_t envelopes, bytes;
};

static char *path_of(const struct ig_dbuf *d, const char *name)
{
	char *p;
	return asprintf(&p, "%s/%s", d->dir, name) < 0 ? NULL : p;
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ig_dbuf_open(struct ig_dbuf **out, const struct ig_dbuf_opts *o, struct ig_err *err)
{
	struct ig_dbuf *d = calloc(1, sizeof(*d));
	int rc;

	*out = NULL;
	if (!d || !(d->dir = strdup(o->dir))) {
		free(d);
		return -ENOMEM;
	}
	d->fsync = o->fsync;
	d->segment_bytes = o->segment_bytes ? o->segment_bytes : 8u << 20;
	d->wfd = d->lock_fd = -1;
	char *lock = NULL;
	if ((rc = mkdir_p(d->dir)) || !(lock = path_of(d, ".lock")) ||
	    (d->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		rc = rc ? rc : lock ? -errno : -ENOMEM;
		ig_err_add(
			err,
			"agent.buffer_dir: cannot use '%s': %s (create it and make it writable, "
			"or set buffer_dir: \"\" to keep the unacknowledged queue in memory only)",
			d->dir, strerror(-rc));
		goto fail;
	}
	if (flock(d->lock_fd, LOCK_EX | LOCK_NB)) {
		rc = -EBUSY;
		ig_err_add(err,
			   "agent.buffer_dir: '%s' is in use by another ingrain-agent (each agent "
			   "needs its own buffer directory)",
			   d->dir);
		goto fail;
	}
	free(lock);
	*out = d;
	return 0;
fail:
	free(lock);
	ig_dbuf_close(d);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct replay_ctx {
	void (*fn)(void *ctx, uint64_t seq, void *buf, size_t len, uint32_t nrecords);
	void *ctx;
	uint64_t n;
};

static int replay_frame(void *vctx, const void *p, size_t len, uint32_t aux)
{
	struct replay_ctx *r = vctx;
	uint64_t seq;

	if (len < sizeof(seq))
		return 0;
	memcpy(&seq, p, sizeof(seq));
	void *buf = malloc(len - sizeof(seq) ? len - sizeof(seq) : 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, (const char *)p + sizeof(seq), len - sizeof(seq));
	r->fn(r->ctx, seq, buf, len - sizeof(seq), aux);
	r->n++;
	return 0;
}

static void seg_append(struct ig_dbuf *d, struct seg *s)
{
	s->next = NULL;
	if (d->tail)
		d->tail->next = s;
	else
		d->head = s;
	d->tail = s;
}

void ig_dbuf_replay(struct ig_dbuf *d,
		    void (*fn)(void *ctx, uint64_t seq, void *buf, size_t len, uint32_t nrecords),
		    void *ctx, uint64_t *corrupt_records)
{
	DIR *dir = opendir(d->dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	*corrupt_records = 0;
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 5 || strcmp(de->d_name + l - 4, ".seg"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	uint64_t envs = 0, recs_bad = 0;
	for (size_t i = 0; i < n; i++) {
		char *p = path_of(d, names[i]);
		int fd = p ? open(p, O_RDONLY | O_CLOEXEC) : -1;
		struct replay_ctx r = { fn, ctx, 0 };
		struct ig_wal_scan sc = { 0 };
		if (fd >= 0) {
			ig_wal_read(fd, 0, replay_frame, &r, &sc);
			close(fd);
		}
		if (sc.bad_bytes) {
			recs_bad += sc.bad_aux;
			ig_warn("agent buffer: segment ends in a torn or corrupt frame (a crash during "
				"its write); the rest of the segment is skipped and counted",
				"file=%s bad_bytes=%" PRIu64 " records_lost=%" PRIu64,
				p ? p : names[i], sc.bad_bytes, sc.bad_aux);
		}
		if (!r.n) {
			if (p)
				unlink(p);
			free(names[i]);
			free(p);
			continue;
		}
		struct seg *s = calloc(1, sizeof(*s));
		if (!s) {
			free(names[i]);
			free(p);
			continue;
		}
		s->name = names[i];
		s->n = r.n;
		s->bytes = (uint64_t)sc.valid_end;
		seg_append(d, s);
		d->envelopes += r.n;
		d->bytes += s->bytes;
		envs += r.n;
		free(p);
	}
	free(names);
	*corrupt_records = recs_bad;
	if (envs)
		ig_info("agent buffer: unacknowledged envelopes of an earlier run queued for "
			"delivery",
			"dir=%s envelopes=%" PRIu64 " bytes=%" PRIu64, d->dir, envs, d->bytes);
}

static int open_segment(struct ig_dbuf *d)
{
	char name[40];
	struct seg *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	snprintf(name, sizeof(name), "%020" PRIu64 ".seg", ig_wall_ns());
	char *p = path_of(d, name);
	int fd = p ? open(p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600) : -1;
	int rc = fd < 0 ? (p ? -errno : -ENOMEM) : 0;
	free(p);
	if (!rc && d->fsync) {
		int dfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	if (rc || !(s->name = strdup(name))) {
		if (fd >= 0)
			close(fd);
		free(s);
		return rc ? rc : -ENOMEM;
	}
	seg_append(d, s);
	d->wfd = fd;
	return 0;
}

int ig_dbuf_append(struct ig_dbuf *d, uint64_t seq, const void *buf, size_t len, uint32_t nrecords)
{
	int rc;

	if (d->wfd >= 0 && d->tail->bytes >= d->segment_bytes) {
		close(d->wfd);
		d->wfd = -1;
	}
	if (d->wfd < 0 && (rc = open_segment(d)))
		return rc;
	char *frame = malloc(sizeof(seq) + len);
	if (!frame)
		return -ENOMEM;
	memcpy(frame, &seq, sizeof(seq));
	memcpy(frame + sizeof(seq), buf, len);
	off_t end = lseek(d->wfd, 0, SEEK_END);
	rc = ig_wal_append(d->wfd, frame, sizeof(seq) + len, nrecords);
	free(frame);
	if (!rc && d->fsync && fdatasync(d->wfd))
		rc = -errno;
	if (rc) {
		if (end >= 0 && ftruncate(d->wfd, end)) {
			/* a torn frame stays: the next start counts it */
		}
		return rc;
	}
	d->tail->n++;
	d->tail->bytes += IG_WAL_HDR + sizeof(seq) + len;
	d->envelopes++;
	d->bytes += IG_WAL_HDR + sizeof(seq) + len;
	return 0;
}

void ig_dbuf_pop(struct ig_dbuf *d)
{
	struct seg *s = d->head;

	if (!s)
		return;
	s->done++;
	if (d->envelopes)
		d->envelopes--;
	if (s->done < s->n)
		return;
	/* Every envelope of the oldest segment is done. The open one is
	 * emptied and reused (no new file per envelope when acks keep up). */
	if (s == d->tail && d->wfd >= 0 && s->bytes < d->segment_bytes &&
	    ftruncate(d->wfd, 0) == 0) {
		d->bytes -= s->bytes < d->bytes ? s->bytes : d->bytes;
		s->n = s->done = s->bytes = 0;
		return;
	}
	if (s == d->tail && d->wfd >= 0) {
		close(d->wfd);
		d->wfd = -1;
	}
	char *p = path_of(d, s->name);
	if (p && unlink(p) && errno != ENOENT)
		ig_warn("agent buffer: cannot remove a finished segment", "file=%s err=\"%s\"", p,
			strerror(errno));
	free(p);
	d->bytes -= s->bytes < d->bytes ? s->bytes : d->bytes;
	d->head = s->next;
	if (!d->head)
		d->tail = NULL;
	free(s->name);
	free(s);
}

void ig_dbuf_usage(const struct ig_dbuf *d, uint64_t *envelopes, uint64_t *bytes)
{
	*envelopes = d->envelopes;
	*bytes = d->bytes;
}

void ig_dbuf_close(struct ig_dbuf *d)
{
	if (!d)
		return;
	if (d->wfd >= 0)
		close(d->wfd);
	while (d->head) {
		struct seg *s = d->head;
		d->head = s->next;
		free(s->name);
		free(s);
	}
	if (d->lock_fd >= 0)
		close(d->lock_fd);
	free(d->dir);
	free(d);
}
