/* spool: see spool.h.
 *
 * On disk, one batch = one file "<created_ns:020>-<8 hex>.batch" (names sort
 * oldest first) holding a one-line header
 *   IGSPOOL1 <records> <created_ns> <key length>\n<key>\n
 * followed by the payload. Files are written as ".<name>.tmp" and renamed,
 * so a crash leaves either a whole batch or a temporary file (removed at the
 * next start). In memory the queue is a FIFO list; payloads of spooled
 * batches are read back from disk only when sent, so memory use does not
 * grow with the backlog.
 *
 * Journals ("<created_ns:020>-<8 hex>.journal", ig_wal.h frames: the key,
 * then the records of each sync) hold the open batch of the backend; see
 * spool.h for their life cycle.
 */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ig_log.h"
#include "ig_time.h"
#include "ig_wal.h"

#define SPOOL_MAGIC "IGSPOOL1"
#define SPOOL_HDR_MAX 4096

struct entry {
	struct entry *next;
	char *file; /* basename in dir; NULL when only in memory */
	char *journal; /* memory-held batch: the journal that keeps it durable */
	char *key;
	uint64_t records, created_ns;
	void *data; /* memory-only batches */
	size_t len;
	uint32_t attempts;
	uint64_t at_risk; /* its records that were acked but never journaled */
	uint64_t due_ns; /* monotonic */
	bool inflight;
};

struct ig_spool {
	struct ig_spool_conf conf;
	char *name, *dir;
	ig_deliver_fn fn;
	void *ctx;
	pthread_mutex_t mu;
	pthread_cond_t wake; /* worker: new work or stop */
	pthread_cond_t done; /* drainers: an attempt finished */
	pthread_t worker;
	bool have_worker, stop, locked;
	int lock_fd;
	struct entry *head, *tail;
	unsigned rng;
	struct ig_spool_stats st;
	/* the open batch's journal (aggregator thread; jfile read under mu) */
	int jfd;
	char *jfile, *jkey;
	bool jkeep; /* a memory-held batch depends on it */
	struct ig_ratelimit rl_journal;
	/* Acked records durable nowhere (their journal writes failed), in the
	 * open batch (j_unsynced) and in all (at_risk_total); mirrored in
	 * <dir>/.at-risk so that the next start counts what a crash lost. */
	uint64_t j_unsynced, at_risk_total;
	int risk_fd;
};

#define RISK_FILE ".at-risk"

/* Caller holds mu. The file is preallocated: rewriting it needs no new
 * block on a full disk. Only the instance holding the lock writes it. */
static void risk_persist(struct ig_spool *s)
{
	char buf[24];

	if (s->risk_fd < 0 || !s->locked)
		return;
	snprintf(buf, sizeof(buf), "%020" PRIu64 "\n", s->at_risk_total);
	if (pwrite(s->risk_fd, buf, 21, 0) != 21) {
		/* nothing better to do: the journal error is already logged */
	}
}

static void risk_release(struct ig_spool *s, uint64_t n)
{
	s->at_risk_total -= n < s->at_risk_total ? n : s->at_risk_total;
	if (n)
		risk_persist(s);
}

/* With the lock held, at start or adoption: what the previous instance
 * left in .at-risk was lost with it. */
static void risk_take_over(struct ig_spool *s)
{
	char buf[32] = "";

	if (s->risk_fd < 0)
		return;
	ssize_t n = pread(s->risk_fd, buf, sizeof(buf) - 1, 0);
	unsigned long long lost = n > 0 ? strtoull(buf, NULL, 10) : 0;
	pthread_mutex_lock(&s->mu);
	if (lost) {
		s->st.crash_lost_records += lost;
		ig_error(
			"spool: acknowledged records were lost by the previous run: they could not "
			"be journaled (disk full?) and the process ended before their batch was "
			"stored",
			"backend=%s records=%llu", s->name, lost);
	}
	risk_persist(s);
	pthread_mutex_unlock(&s->mu);
}

void ig_batch_clear(struct ig_batch *b)
{
	free(b->key);
	free(b->data);
	memset(b, 0, sizeof(*b));
}

static void entry_free(struct entry *e)
{
	if (!e)
		return;
	free(e->file);
	free(e->journal);
	free(e->key);
	free(e->data);
	free(e);
}

static char *path_of(const struct ig_spool *s, const char *file)
{
	char *p;

	if (asprintf(&p, "%s/%s", s->dir, file) < 0)
		return NULL;
	return p;
}

/* Caller holds mu. Unlinks the entry's file (and the journal of a
 * memory-held batch). */
static void unlink_entry(struct ig_spool *s, struct entry *e)
{
	if (e->journal) {
		char *p = path_of(s, e->journal);
		if (p)
			unlink(p);
		free(p);
	}
	if (e->file) {
		char *p = path_of(s, e->file);
		if (p && unlink(p) && errno != ENOENT)
			ig_warn("spool: cannot remove delivered batch file",
				"backend=%s file=%s errno=%d", s->name, p, errno);
		free(p);
	}
}

/* Caller holds mu. Removes e (not necessarily the head) from the list. */
static void list_remove(struct ig_spool *s, struct entry *e)
{
	struct entry **pp = &s->head, *prev = NULL;

	while (*pp && *pp != e) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = e->next;
	if (s->tail == e)
		s->tail = prev;
	s->st.queued_batches--;
	s->st.queued_bytes -= e->len;
	s->st.queued_records -= e->records;
	if (!e->file) {
		s->st.memory_batches--;
		s->st.memory_records -= e->records;
	}
}

static void list_append(struct ig_spool *s, struct entry *e)
{
	e->next = NULL;
	if (s->tail)
		s->tail->next = e;
	else
		s->head = e;
	s->tail = e;
	s->st.queued_batches++;
	s->st.queued_bytes += e->len;
	s->st.queued_records += e->records;
	if (!e->file) {
		s->st.memory_batches++;
		s->st.memory_records += e->records;
	}
}

/* Caller holds mu. Drops oldest non-inflight batches until the queue fits
 * max_bytes, never dropping `keep` unless it alone is over the bound. */
static void enforce_bound(struct ig_spool *s, struct entry *keep)
{
	while (s->st.queued_bytes > s->conf.max_bytes) {
		struct entry *victim = NULL;
		for (struct entry *e = s->head; e; e = e->next) {
			if (!e->inflight && e != keep) {
				victim = e;
				break;
			}
		}
		if (!victim) {
			if (keep && !keep->inflight && s->st.queued_bytes - keep->len == 0 &&
			    keep->len > s->conf.max_bytes)
				victim = keep;
			else
				break;
		}
		list_remove(s, victim);
		unlink_entry(s, victim);
		risk_release(s, victim->at_risk);
		s->st.dropped_batches++;
		s->st.dropped_records += victim->records;
		ig_warn("spool full: oldest batch dropped",
			"backend=%s key=%s records=%" PRIu64 " max_bytes=%" PRIu64
			" hint=\"raise spool_max_bytes or fix delivery\"",
			s->name, victim->key, victim->records, s->conf.max_bytes);
		entry_free(victim);
		if (victim == keep)
			break;
	}
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Writes the batch to disk; sets e->file. */
static int store(struct ig_spool *s, struct entry *e, const void *data)
{
	char name[64], tmp[80];
	char *path = NULL, *tpath = NULL, hdr[128];
	int fd = -1, rc;

	pthread_mutex_lock(&s->mu);
	unsigned r = (unsigned)rand_r(&s->rng);
	pthread_mutex_unlock(&s->mu);
	snprintf(name, sizeof(name), "%020" PRIu64 "-%08x.batch", e->created_ns, r);
	snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
	path = path_of(s, name);
	tpath = path_of(s, tmp);
	if (!path || !tpath) {
		rc = -ENOMEM;
		goto out;
	}
	int hl = snprintf(hdr, sizeof(hdr), SPOOL_MAGIC " %" PRIu64 " %" PRIu64 " %zu\n",
			  e->records, e->created_ns, strlen(e->key));
	fd = open(tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if ((rc = write_all(fd, hdr, (size_t)hl)) || (rc = write_all(fd, e->key, strlen(e->key))) ||
	    (rc = write_all(fd, "\n", 1)) || (rc = write_all(fd, data, e->len)))
		goto out;
	if (s->conf.fsync && fdatasync(fd)) {
		rc = -errno;
		goto out;
	}
	if (close(fd)) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (rename(tpath, path)) {
		rc = -errno;
		goto out;
	}
	e->file = strdup(name);
	rc = e->file ? 0 : -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	if (rc && tpath)
		unlink(tpath);
	free(path);
	free(tpath);
	return rc;
}

/* Reads a spooled file: header into e (when non-NULL) and payload into
 * *data (when non-NULL). */
static int load(struct ig_spool *s, const char *file, struct entry *e, void **data, size_t *len)
{
	char *path = path_of(s, file);
	FILE *f = path ? fopen(path, "rbe") : NULL;
	char hdr[128];
	uint64_t records, created;
	size_t klen;
	struct stat stt;
	int rc = -EINVAL;

	free(path);
	if (!f)
		return -errno;
	if (!fgets(hdr, sizeof(hdr), f) ||
	    sscanf(hdr, SPOOL_MAGIC " %" SCNu64 " %" SCNu64 " %zu", &records, &created, &klen) !=
		    3 ||
	    klen == 0 || klen > SPOOL_HDR_MAX || fstat(fileno(f), &stt))
		goto out;
	char *key = malloc(klen + 1);
	if (!key) {
		rc = -ENOMEM;
		goto out;
	}
	if (fread(key, 1, klen, f) != klen || fgetc(f) != '\n' || memchr(key, '\n', klen)) {
		free(key);
		goto out;
	}
	key[klen] = '\0';
	long off = ftell(f);
	if (off < 0 || (uint64_t)stt.st_size < (uint64_t)off) {
		free(key);
		goto out;
	}
	size_t plen = (size_t)stt.st_size - (size_t)off;
	if (data) {
		void *d = malloc(plen ? plen : 1);
		if (!d || fread(d, 1, plen, f) != plen) {
			free(d);
			free(key);
			rc = d ? -EIO : -ENOMEM;
			goto out;
		}
		*data = d;
	}
	if (len)
		*len = plen;
	if (e) {
		e->records = records;
		e->created_ns = created;
		e->len = plen;
		e->key = key;
	} else {
		free(key);
	}
	rc = 0;
out:
	fclose(f);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Queues the batches earlier runs left in the directory, oldest first, ahead
 * of anything pushed by this instance. */
static void recover(struct ig_spool *s)
{
	DIR *d = opendir(s->dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		ig_error("spool: cannot read the spool directory", "backend=%s dir=%s errno=%d",
			 s->name, s->dir, errno);
		return;
	}
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' && l > 4 && !strcmp(de->d_name + l - 4, ".tmp")) {
			/* A write interrupted by a crash: never acknowledged as stored. */
			char *p = path_of(s, de->d_name);
			if (p)
				unlink(p);
			free(p);
			continue;
		}
		if (l < 7 || strcmp(de->d_name + l - 6, ".batch") || de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 32;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);

	pthread_mutex_lock(&s->mu);
	struct entry *old_head = s->head, *old_tail = s->tail;
	uint64_t ob = s->st.queued_batches, oby = s->st.queued_bytes, orec = s->st.queued_records;
	s->head = s->tail = NULL;
	s->st.queued_batches = s->st.queued_bytes = s->st.queued_records = 0;
	for (size_t i = 0; i < n; i++) {
		bool mine = false;
		for (struct entry *e = old_head; e; e = e->next)
			mine |= e->file && !strcmp(e->file, names[i]);
		if (mine) {
			free(names[i]);
			continue;
		}
		struct entry *e = calloc(1, sizeof(*e));
		int rc = e ? load(s, names[i], e, NULL, NULL) : -ENOMEM;
		if (rc) {
			char *p = path_of(s, names[i]);
			ig_error("spool: unreadable batch file removed", "backend=%s file=%s rc=%d",
				 s->name, p ? p : names[i], rc);
			if (p)
				unlink(p);
			free(p);
			free(names[i]);
			free(e);
			s->st.dropped_batches++;
			continue;
		}
		e->file = names[i];
		list_append(s, e);
		s->st.recovered_batches++;
	}
	free(names);
	/* Re-attach this instance's own batches after the recovered ones. */
	if (old_head) {
		if (s->tail)
			s->tail->next = old_head;
		else
			s->head = old_head;
		s->tail = old_tail;
		s->st.queued_batches += ob;
		s->st.queued_bytes += oby;
		s->st.queued_records += orec;
	}
	if (s->st.recovered_batches)
		ig_info("spool: batches from an earlier run queued for delivery",
			"backend=%s batches=%" PRIu64 " bytes=%" PRIu64, s->name,
			s->st.recovered_batches, s->st.queued_bytes);
	enforce_bound(s, NULL);
	pthread_mutex_unlock(&s->mu);
}

/* --- journals ------------------------------------------------------------ */

struct jread {
	char *key;
	char *data;
	size_t len, cap;
	uint64_t records;
};

static int jread_frame(void *ctx, const void *p, size_t len, uint32_t aux)
{
	struct jread *j = ctx;

	if (!j->key) {
		if (!len || len > SPOOL_HDR_MAX || memchr(p, '\n', len) || memchr(p, '\0', len))
			return -EINVAL;
		j->key = strndup(p, len);
		return j->key ? 0 : -ENOMEM;
	}
	if (j->len + len > j->cap) {
		size_t cap = j->cap ? j->cap : 64 * 1024;
		while (cap < j->len + len)
			cap *= 2;
		char *nd = realloc(j->data, cap);
		if (!nd)
			return -ENOMEM;
		j->data = nd;
		j->cap = cap;
	}
	memcpy(j->data + j->len, p, len);
	j->len += len;
	j->records += aux;
	return 0;
}

static bool journal_in_use(struct ig_spool *s, const char *name)
{
	if (s->jfile && !strcmp(s->jfile, name))
		return true;
	for (struct entry *e = s->head; e; e = e->next)
		if (e->journal && !strcmp(e->journal, name))
			return true;
	return false;
}

static bool key_queued(struct ig_spool *s, const char *key)
{
	for (struct entry *e = s->head; e; e = e->next)
		if (!strcmp(e->key, key))
			return true;
	return false;
}

/* One journal an earlier instance left: back to a closed batch. */
static void recover_journal(struct ig_spool *s, const char *name)
{
	char *path = path_of(s, name);
	struct jread j = { 0 };
	struct ig_wal_scan sc;
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;

	if (fd < 0) {
		free(path);
		return;
	}
	int rc = ig_wal_read(fd, 0, jread_frame, &j, &sc);
	close(fd);
	pthread_mutex_lock(&s->mu);
	if (sc.bad_bytes && j.key) {
		s->st.journal_lost_records += sc.bad_aux;
		ig_warn("spool: journal ends in a torn or corrupt frame (a crash during its write; "
			"those records had not been acknowledged), skipped",
			"backend=%s file=%s bad_bytes=%" PRIu64 " records=%" PRIu64, s->name, path,
			sc.bad_bytes, sc.bad_aux);
	}
	bool dup = j.key && key_queued(s, j.key);
	pthread_mutex_unlock(&s->mu);
	if (rc && rc != -EINVAL) {
		ig_error("spool: cannot read journal; kept for the next start",
			 "backend=%s file=%s err=\"%s\"", s->name, path, strerror(-rc));
		goto out;
	}
	if (!j.key || !j.records || dup) {
		if (dup)
			ig_info("spool: journal of a batch already spooled removed",
				"backend=%s key=%s", s->name, j.key);
		unlink(path);
		goto out;
	}
	struct ig_batch b = { 0 };
	if ((rc = s->conf.journal_to_batch(s->ctx, j.key, j.data, j.len, j.records, &b))) {
		ig_error("spool: cannot rebuild a batch from its journal; kept for the next start",
			 "backend=%s file=%s err=\"%s\"", s->name, path, strerror(-rc));
		goto out;
	}
	struct entry *e = calloc(1, sizeof(*e));
	if (!e) {
		ig_batch_clear(&b);
		goto out;
	}
	e->key = j.key;
	j.key = NULL;
	e->records = b.records;
	e->created_ns = ig_wall_ns();
	e->len = b.len;
	if (store(s, e, b.data) == 0) {
		free(b.data);
		unlink(path);
	} else {
		e->data = b.data; /* still durable as its journal */
		e->journal = strdup(name);
	}
	free(b.key);
	ig_info("spool: open batch of an earlier run recovered from its journal",
		"backend=%s key=%s records=%" PRIu64, s->name, e->key, e->records);
	pthread_mutex_lock(&s->mu);
	s->st.recovered_journals++;
	s->st.recovered_journal_records += e->records;
	list_append(s, e);
	enforce_bound(s, NULL);
	pthread_mutex_unlock(&s->mu);
out:
	free(j.key);
	free(j.data);
	free(path);
}

static void recover_journals(struct ig_spool *s)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0, cap = 0;

	if (!s->conf.journal_to_batch || !(d = opendir(s->dir)))
		return;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (de->d_name[0] == '.' || l < 9 || strcmp(de->d_name + l - 8, ".journal"))
			continue;
		pthread_mutex_lock(&s->mu);
		bool mine = journal_in_use(s, de->d_name);
		pthread_mutex_unlock(&s->mu);
		if (mine)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			char **nn = realloc(names, cap * sizeof(*names));
			if (!nn)
				break;
			names = nn;
		}
		if (!(names[n] = strdup(de->d_name)))
			break;
		n++;
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		recover_journal(s, names[i]);
		free(names[i]);
	}
	free(names);
}

static void journal_failed(struct ig_spool *s, int rc, uint64_t records)
{
	uint64_t sup = 0;

	pthread_mutex_lock(&s->mu);
	s->st.journal_errors++;
	s->st.journal_unsynced_records += records;
	s->j_unsynced += records;
	s->at_risk_total += records;
	risk_persist(s);
	uint64_t at_risk = s->at_risk_total;
	pthread_mutex_unlock(&s->mu);
	if (ig_ratelimit_ok(&s->rl_journal, &sup))
		ig_error("spool: cannot journal the open batch; acknowledged records are in memory "
			 "only until the batch closes and a crash now would lose them",
			 "backend=%s dir=%s err=\"%s\" records_at_risk=%" PRIu64
			 " suppressed=%" PRIu64 " hint=\"check free space and permissions\"",
			 s->name, s->dir, strerror(-rc), at_risk, sup);
}

int ig_spool_journal_append(struct ig_spool *s, const char *key, const void *data, size_t len,
			    uint64_t records)
{
	int rc;

	if (!s->dir || !s->conf.journal_to_batch || !records)
		return 0;
	if (s->jkey && strcmp(s->jkey, key))
		ig_spool_journal_end(s);
	if (s->jfd < 0) {
		char name[64];
		pthread_mutex_lock(&s->mu);
		unsigned r = (unsigned)rand_r(&s->rng);
		pthread_mutex_unlock(&s->mu);
		snprintf(name, sizeof(name), "%020" PRIu64 "-%08x.journal", ig_wall_ns(), r);
		char *path = path_of(s, name);
		int fd = path ? open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC,
				     0600) :
				-1;
		rc = fd < 0 ? -errno : ig_wal_append(fd, key, strlen(key), 0);
		if (!rc && s->conf.fsync) {
			/* The file's name must survive a power loss too. */
			int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (fdatasync(fd) || (dfd >= 0 && fsync(dfd)))
				rc = -errno;
			if (dfd >= 0)
				close(dfd);
		}
		if (rc) {
			if (fd >= 0) {
				close(fd);
				unlink(path);
			}
			free(path);
			journal_failed(s, rc, records);
			return rc;
		}
		free(path);
		char *jf = strdup(name), *jk = strdup(key);
		if (!jf || !jk) {
			free(jf);
			free(jk);
			close(fd);
			journal_failed(s, -ENOMEM, records);
			return -ENOMEM;
		}
		pthread_mutex_lock(&s->mu);
		s->jfile = jf;
		pthread_mutex_unlock(&s->mu);
		s->jkey = jk;
		s->jfd = fd;
		s->jkeep = false;
	}
	off_t end = lseek(s->jfd, 0, SEEK_END);
	rc = ig_wal_append(s->jfd, data, len, (uint32_t)records);
	if (!rc && s->conf.fsync && fdatasync(s->jfd))
		rc = -errno;
	if (rc) {
		/* No torn frame may stay in front of the next ones. */
		if (end >= 0 && ftruncate(s->jfd, end)) {
			/* the scan at the next start stops there: counted then */
		}
		journal_failed(s, rc, records);
		return rc;
	}
	pthread_mutex_lock(&s->mu);
	s->st.journal_records += records;
	pthread_mutex_unlock(&s->mu);
	return 0;
}

void ig_spool_journal_end(struct ig_spool *s)
{
	if (s->jfd >= 0) {
		close(s->jfd);
		s->jfd = -1;
		if (!s->jkeep) {
			char *p = path_of(s, s->jfile);
			if (p)
				unlink(p);
			free(p);
		}
	}
	pthread_mutex_lock(&s->mu);
	free(s->jfile);
	s->jfile = NULL;
	s->st.journal_records = 0;
	/* A batch discarded without a push: its records were counted dropped. */
	risk_release(s, s->j_unsynced);
	s->j_unsynced = 0;
	pthread_mutex_unlock(&s->mu);
	free(s->jkey);
	s->jkey = NULL;
	s->jkeep = false;
}

static uint64_t backoff(struct ig_spool *s, uint32_t attempts)
{
	uint64_t min = s->conf.backoff_min_ns, max = s->conf.backoff_max_ns, d = min;

	for (uint32_t i = 1; i < attempts && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	/* "Equal jitter": half fixed, half random, so retries of several
	 * aggregators spread out but never come back immediately. */
	uint64_t half = d / 2;
	return half + (half ? (uint64_t)rand_r(&s->rng) % (half + 1) : 0);
}

/* One delivery attempt of the head if due. Caller holds mu; it is released
 * around the callback. Returns 1 when attempted. */
static int attempt(struct ig_spool *s, uint64_t now_ns)
{
	struct entry *e = s->head;
	struct ig_batch b = { 0 };
	enum ig_deliver res;
	char why[512] = "";
	int rc = 0;

	if (!e || e->inflight || s->st.halted || e->due_ns > now_ns)
		return 0;
	e->inflight = true;
	b.key = e->key;
	b.records = e->records;
	b.created_ns = e->created_ns;
	pthread_mutex_unlock(&s->mu);

	if (e->file) {
		rc = load(s, e->file, NULL, &b.data, &b.len);
	} else {
		b.data = e->data;
		b.len = e->len;
	}
	if (rc) {
		snprintf(why, sizeof(why), "spooled file unreadable (%s)", strerror(-rc));
		res = IG_DELIVER_DROP;
	} else {
		res = s->fn(s->ctx, &b, why, sizeof(why));
	}
	if (e->file)
		free(b.data);

	pthread_mutex_lock(&s->mu);
	e->inflight = false;
	e->attempts++;
	switch (res) {
	case IG_DELIVER_OK:
		list_remove(s, e);
		unlink_entry(s, e);
		risk_release(s, e->at_risk);
		s->st.delivered_batches++;
		s->st.delivered_records += e->records;
		if (e->attempts > 1)
			ig_info("batch delivered after retries", "backend=%s key=%s attempts=%u",
				s->name, e->key, e->attempts);
		entry_free(e);
		break;
	case IG_DELIVER_RETRY: {
		uint64_t d = backoff(s, e->attempts);
		e->due_ns = ig_mono_ns() + d;
		if (s->conf.manual)
			e->due_ns = now_ns + d;
		s->st.failed_attempts++;
		ig_warn("batch delivery failed, will retry",
			"backend=%s key=%s attempt=%u retry_in_ms=%" PRIu64 " reason=\"%s\"",
			s->name, e->key, e->attempts, d / 1000000, why);
		break;
	}
	case IG_DELIVER_HALT:
		s->st.failed_attempts++;
		s->st.halted = true;
		ig_error("delivery stopped: the destination refused the request; batches are kept "
			 "in the spool and sent after the configuration is fixed and the backend "
			 "restarts (reload or restart)",
			 "backend=%s key=%s reason=\"%s\" queued_batches=%" PRIu64, s->name, e->key,
			 why, s->st.queued_batches);
		break;
	case IG_DELIVER_DROP:
		list_remove(s, e);
		unlink_entry(s, e);
		risk_release(s, e->at_risk);
		s->st.dropped_batches++;
		s->st.dropped_records += e->records;
		ig_error("batch rejected by the destination and dropped",
			 "backend=%s key=%s records=%" PRIu64 " reason=\"%s\"", s->name, e->key,
			 e->records, why);
		entry_free(e);
		break;
	}
	pthread_cond_broadcast(&s->done);
	return 1;
}

static void *worker_main(void *arg)
{
	struct ig_spool *s = arg;

	/* Wait for any earlier instance on this directory to let go, then adopt
	 * what it left. */
	if (s->dir && !s->locked) {
		while (flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
			pthread_mutex_lock(&s->mu);
			bool stop = s->stop;
			pthread_mutex_unlock(&s->mu);
			if (stop)
				return NULL;
			usleep(20000);
		}
		pthread_mutex_lock(&s->mu);
		s->locked = true;
		pthread_mutex_unlock(&s->mu);
		recover(s);
		recover_journals(s);
		risk_take_over(s);
	}
	pthread_mutex_lock(&s->mu);
	while (!s->stop) {
		uint64_t now = ig_mono_ns();
		if (attempt(s, now))
			continue;
		if (!s->head || s->st.halted || s->head->inflight) {
			pthread_cond_wait(&s->wake, &s->mu);
		} else {
			uint64_t due = s->head->due_ns;
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = due > now ? due - now : 0;
			uint64_t abs =
				(uint64_t)ts.tv_sec * IG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec + wait;
			ts.tv_sec = (time_t)(abs / IG_NSEC_PER_SEC);
			ts.tv_nsec = (long)(abs % IG_NSEC_PER_SEC);
			pthread_cond_timedwait(&s->wake, &s->mu, &ts);
		}
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

static int mkdir_p(const char *dir)
{
	char *p = strdup(dir);
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (char *c = p + 1; *c; c++) {
		if (*c != '/')
			continue;
		*c = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			rc = -errno;
			break;
		}
		*c = '/';
	}
	if (!rc && mkdir(p, 0700) && errno != EEXIST)
		rc = -errno;
	free(p);
	return rc;
}

int ig_spool_new(const struct ig_spool_conf *conf, ig_deliver_fn fn, void *ctx,
		 struct ig_spool **out, struct ig_err *err)
{
	struct ig_spool *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->conf = *conf;
	s->lock_fd = -1;
	s->jfd = -1;
	s->risk_fd = -1;
	s->rl_journal = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->fn = fn;
	s->ctx = ctx;
	s->name = strdup(conf->name ? conf->name : "spool");
	s->dir = conf->dir && *conf->dir ? strdup(conf->dir) : NULL;
	if (!s->conf.backoff_min_ns)
		s->conf.backoff_min_ns = IG_NSEC_PER_SEC;
	if (!s->conf.backoff_max_ns)
		s->conf.backoff_max_ns = 300 * IG_NSEC_PER_SEC;
	if (s->conf.backoff_max_ns < s->conf.backoff_min_ns)
		s->conf.backoff_max_ns = s->conf.backoff_min_ns;
	s->rng = conf->seed ? conf->seed : (unsigned)ig_mono_ns() ^ (unsigned)getpid();
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_cond_init(&s->done, &ca);
	pthread_condattr_destroy(&ca);
	if (!s->name || (conf->dir && *conf->dir && !s->dir)) {
		ig_spool_free(s);
		return -ENOMEM;
	}
	if (s->dir) {
		char *lock = path_of(s, ".lock");
		if ((rc = mkdir_p(s->dir)) || !lock ||
		    (s->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
			rc = rc ? rc : lock ? -errno : -ENOMEM;
			ig_err_add(
				err,
				"backends.%s: spool directory '%s' cannot be used: %s (create it, "
				"make it writable by the aggregator, or set spool_dir to another "
				"path)",
				s->name, s->dir, strerror(-rc));
			free(lock);
			ig_spool_free(s);
			return rc;
		}
		free(lock);
		/* Usually the directory is free: adopt its batches now, so
		 * they count as queued from the start. Otherwise (a reload
		 * whose previous instance is still flushing) the worker
		 * waits for it. */
		char *risk = path_of(s, RISK_FILE);
		if (risk && (s->risk_fd = open(risk, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) >= 0)
			posix_fallocate(s->risk_fd, 0, 64);
		free(risk);
		if (!flock(s->lock_fd, LOCK_EX | LOCK_NB)) {
			s->locked = true;
			recover(s);
			recover_journals(s);
			risk_take_over(s);
		} else if (conf->manual) {
			ig_err_add(
				err,
				"backends.%s: spool directory '%s' is in use by another instance "
				"(give each backend its own spool_dir)",
				s->name, s->dir);
			ig_spool_free(s);
			return -EBUSY;
		}
	}
	if (!conf->manual) {
		if ((rc = pthread_create(&s->worker, NULL, worker_main, s))) {
			ig_spool_free(s);
			return -rc;
		}
		s->have_worker = true;
	}
	*out = s;
	return 0;
}

int ig_spool_push(struct ig_spool *s, struct ig_batch *b)
{
	struct entry *e = calloc(1, sizeof(*e));
	int rc = 0;

	if (!e) {
		pthread_mutex_lock(&s->mu);
		s->st.dropped_batches++;
		s->st.dropped_records += b->records;
		pthread_mutex_unlock(&s->mu);
		ig_batch_clear(b);
		return -ENOMEM;
	}
	e->key = b->key;
	e->records = b->records;
	e->created_ns = b->created_ns ? b->created_ns : ig_wall_ns();
	e->len = b->len;
	b->key = NULL;
	if (s->dir) {
		rc = store(s, e, b->data);
		if (rc)
			ig_error("spool: cannot write batch to disk, keeping it in memory",
				 "backend=%s dir=%s error=\"%s\" hint=\"check free space and "
				 "permissions\"",
				 s->name, s->dir, strerror(-rc));
	}
	if (!e->file) {
		e->data = b->data;
		b->data = NULL;
		e->at_risk = s->j_unsynced; /* still at risk until delivered */
		/* Its journal keeps it durable until it is delivered. */
		if (s->jkey && !strcmp(s->jkey, e->key) && s->jfile &&
		    (e->journal = strdup(s->jfile)))
			s->jkeep = true;
	}
	ig_batch_clear(b);

	pthread_mutex_lock(&s->mu);
	/* The open batch's unjournaled records are this batch's: durable now if
	 * it was stored, else they follow it. */
	if (e->file)
		risk_release(s, s->j_unsynced);
	s->j_unsynced = 0;
	list_append(s, e);
	enforce_bound(s, e);
	pthread_cond_signal(&s->wake);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int ig_spool_step(struct ig_spool *s, uint64_t now_ns)
{
	pthread_mutex_lock(&s->mu);
	int rc = attempt(s, now_ns);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

uint64_t ig_spool_next_due(struct ig_spool *s)
{
	pthread_mutex_lock(&s->mu);
	uint64_t due = s->head && !s->st.halted ? s->head->due_ns : UINT64_MAX;
	pthread_mutex_unlock(&s->mu);
	return due;
}

static uint64_t flush_started_ns; /* atomic; 0 = not flushing */

void ig_spool_flush_begin(void)
{
	__atomic_store_n(&flush_started_ns, ig_mono_ns(), __ATOMIC_RELAXED);
}

void ig_spool_flush_end(void)
{
	__atomic_store_n(&flush_started_ns, 0, __ATOMIC_RELAXED);
}

void ig_spool_stop(struct ig_spool *s)
{
	pthread_mutex_lock(&s->mu);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->mu);
}

bool ig_spool_stopping(void *spool)
{
	struct ig_spool *s = spool;
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

int ig_spool_drain(struct ig_spool *s, uint64_t timeout_ns)
{
	uint64_t start = __atomic_load_n(&flush_started_ns, __ATOMIC_RELAXED);
	uint64_t deadline = (start ? start : ig_mono_ns()) + timeout_ns;
	int rc;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		if (!s->head) {
			rc = 0;
			break;
		}
		if (s->st.halted || !s->have_worker) {
			rc = -EAGAIN;
			break;
		}
		uint64_t now = ig_mono_ns();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t abs = (uint64_t)ts.tv_sec * IG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec +
			       (deadline - now);
		ts.tv_sec = (time_t)(abs / IG_NSEC_PER_SEC);
		ts.tv_nsec = (long)(abs % IG_NSEC_PER_SEC);
		pthread_cond_timedwait(&s->done, &s->mu, &ts);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void ig_spool_stats(struct ig_spool *s, struct ig_spool_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	pthread_mutex_unlock(&s->mu);
}

void ig_spool_free(struct ig_spool *s)
{
	if (!s)
		return;
	if (s->have_worker) {
		pthread_mutex_lock(&s->mu);
		__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
		pthread_cond_broadcast(&s->wake);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->worker, NULL);
	}
	if (s->jfd >= 0)
		close(s->jfd); /* an open batch that was not flushed: recovered at the next start */
	free(s->jfile);
	free(s->jkey);
	uint64_t lost_b = 0, lost_r = 0;
	for (struct entry *e = s->head, *n; e; e = n) {
		n = e->next;
		if (!e->file && !e->journal) {
			lost_b++;
			lost_r += e->records;
		}
		entry_free(e);
	}
	if (lost_b)
		ig_error("undelivered batches lost at shutdown (no spool directory)",
			 "backend=%s batches=%" PRIu64 " records=%" PRIu64
			 " hint=\"set spool_dir to keep them across restarts\"",
			 s->name, lost_b, lost_r);
	if (s->risk_fd >= 0)
		close(s->risk_fd); /* what is still at risk stays counted in it */
	if (s->lock_fd >= 0)
		close(s->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->wake);
	pthread_cond_destroy(&s->done);
	free(s->name);
	free(s->dir);
	free(s);
}
