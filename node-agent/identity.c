/* identity: the cgroup -> container -> pod facade (see identity.h).
 *
 * Three threads meet here:
 *
 *   agent thread   ig_ident_fill (hot path, reads the cache) and
 *                  ig_ident_tick (applies the queue, owns every change)
 *   cgroup thread  inotify on every cgroup directory (IN_CREATE / IN_DELETE
 *                  of subdirectories), periodic rescans, lazy lookups of
 *                  unknown ids through kernfs file handles
 *   k8s thread     k8s_client.c: list + watch of this node's pods
 *
 * The two worker threads append messages to one mutex-protected queue; the
 * tick swaps the whole queue out under the lock (a pointer swap) and applies
 * it without the lock. Unknown ids found by ig_ident_fill go the other way:
 * the hot path parks a PENDING placeholder in the cache (so the id is
 * queued once) and the tick hands the batch to the cgroup thread, woken
 * through an eventfd.
 *
 * Pods are kept sorted by uid, and (container id -> pod, container) pairs
 * sorted by id, rebuilt when a tick applied pod changes; then every cache
 * entry's identity is recomputed. Replaced pods and entries are retired and
 * freed at the next tick, so strings handed to records stay valid that long.
 */
#include "identity.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup_cache.h"
#include "cgroup_path.h"
#include "ig_log.h"
#include "ig_time.h"

#define IG_PEND_MAX 4096 /* unknown ids queued per tick */
#define IG_MAX_WATCHES 16384 /* inotify watches; beyond, rescans catch up */
#define IG_VANISH_TTL_MIN_NS (60 * IG_NSEC_PER_SEC)
#define IG_WALK_DEPTH 64
#define IG_INO_MASK (IN_CREATE | IN_DELETE | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW)

enum msg_type { M_CG_ADD, M_CG_GONE, M_CG_SNAPSHOT, M_CG_RESOLVED, M_CG_UNRESOLVED, M_K8S };

struct snap {
	size_t n, cap;
	uint64_t *ids;
	char **paths;
};

struct msg {
	enum msg_type type;
	struct msg *next;
	uint64_t id;
	char *path;
	struct snap *snap;
	struct ig_k8s_ev *ev;
};

struct cid_ref {
	const char *cid;
	struct ig_pod *pod;
	const struct ig_pod_container *ct;
};

struct watch {
	int wd;
	uint64_t id;
	char *path;
};

struct ig_ident {
	/* --- agent thread --- */
	struct ig_cg_cache *cache;
	uint64_t now_ns;
	uint64_t hits, misses, vanished, lazy, lazy_ok, lazy_failed, cache_full;
	uint64_t pend[IG_PEND_MAX];
	size_t npend;
	struct ig_pod **pods; /* sorted by uid */
	size_t npods;
	struct cid_ref *cids; /* sorted by container id */
	size_t ncids;
	struct ig_pod **retired_pods;
	size_t nretired, retired_cap;
	bool pods_dirty;
	uint64_t gen;
	uint64_t vanish_ttl_ns;
	uint64_t last_expire_ns;
	uint64_t rescans;
	struct ig_ratelimit rl_full;

	/* --- configuration --- */
	char root[PATH_MAX];
	bool have_root;
	uint64_t rescan_ns;

	/* --- shared --- */
	pthread_mutex_t mu;
	struct msg *qhead, *qtail;
	uint64_t *req;
	size_t nreq, reqcap;
	int wake_fd;
	atomic_bool stop;
	atomic_uint_fast64_t nwatches_pub, rescans_pub;

	/* --- cgroup thread --- */
	pthread_t cg_thread;
	bool cg_started;
	int ino_fd;
	int root_fd;
	bool handles_ok;
	struct watch *watches;
	size_t nwatches, wcap;
	bool watch_cap_logged;

	struct ig_k8s_client *k8s;
};

/* ------------------------------------------------------------ the queue */

static void push(struct ig_ident *id, struct msg *m)
{
	m->next = NULL;
	pthread_mutex_lock(&id->mu);
	if (id->qtail)
		id->qtail->next = m;
	else
		id->qhead = m;
	id->qtail = m;
	pthread_mutex_unlock(&id->mu);
}

static void push_cg(struct ig_ident *id, enum msg_type type, uint64_t cgid, const char *path)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (!m)
		return;
	m->type = type;
	m->id = cgid;
	if (path) {
		m->path = strdup(path);
		if (!m->path) {
			free(m);
			return;
		}
	}
	push(id, m);
}

static void snap_free(struct snap *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		free(s->paths[i]);
	free(s->paths);
	free(s->ids);
	free(s);
}

static void msg_free(struct msg *m)
{
	free(m->path);
	snap_free(m->snap);
	ig_k8s_ev_free(m->ev);
	free(m);
}

static void on_k8s(void *arg, struct ig_k8s_ev *ev)
{
	struct ig_ident *id = arg;
	struct msg *m = calloc(1, sizeof(*m));

	if (!m) {
		ig_k8s_ev_free(ev);
		return;
	}
	m->type = M_K8S;
	m->ev = ev;
	push(id, m);
}

/* ------------------------------------------------------ the cgroup thread */

static int watch_cmp(const void *a, const void *b)
{
	const struct watch *x = a, *y = b;

	return (x->wd > y->wd) - (x->wd < y->wd);
}

static struct watch *watch_by_wd(struct ig_ident *id, int wd)
{
	struct watch key = { .wd = wd };

	if (!id->nwatches)
		return NULL;
	return bsearch(&key, id->watches, id->nwatches, sizeof(key), watch_cmp);
}

static void watch_remove_at(struct ig_ident *id, struct watch *w)
{
	size_t i = (size_t)(w - id->watches);

	free(w->path);
	memmove(w, w + 1, (id->nwatches - i - 1) * sizeof(*w));
	id->nwatches--;
	atomic_store(&id->nwatches_pub, id->nwatches);
}

static void watch_add(struct ig_ident *id, uint64_t cgid, const char *path)
{
	char full[PATH_MAX * 2];
	struct watch *w;
	int wd;

	if (id->ino_fd < 0)
		return;
	if (id->nwatches >= IG_MAX_WATCHES) {
		if (!id->watch_cap_logged)
			ig_warn("too many cgroups to watch with inotify: new ones are found by the "
				"periodic rescan and by lookups instead",
				"watches=%d", IG_MAX_WATCHES);
		id->watch_cap_logged = true;
		return;
	}
	snprintf(full, sizeof(full), "%s%s", id->root, strcmp(path, "/") ? path : "");
	wd = inotify_add_watch(id->ino_fd, full, IG_INO_MASK);
	if (wd < 0) {
		if (errno == ENOSPC && !id->watch_cap_logged)
			ig_warn("inotify watch limit reached: new cgroups are found by the periodic "
				"rescan and by lookups instead; raise fs.inotify.max_user_watches",
				"watches=%zu", id->nwatches);
		id->watch_cap_logged |= errno == ENOSPC;
		return;
	}
	w = watch_by_wd(id, wd);
	if (w) { /* already watched (same inode): refresh */
		if (strcmp(w->path, path)) {
			char *np = strdup(path);

			if (np) {
				free(w->path);
				w->path = np;
			}
		}
		w->id = cgid;
		return;
	}
	if (id->nwatches == id->wcap) {
		size_t ncap = id->wcap ? id->wcap * 2 : 256;
		struct watch *nw = realloc(id->watches, ncap * sizeof(*nw));

		if (!nw) {
			inotify_rm_watch(id->ino_fd, wd);
			return;
		}
		id->watches = nw;
		id->wcap = ncap;
	}
	w = &id->watches[id->nwatches];
	w->wd = wd;
	w->id = cgid;
	w->path = strdup(path);
	if (!w->path) {
		inotify_rm_watch(id->ino_fd, wd);
		return;
	}
	id->nwatches++;
	/* wds are handed out increasing, but keep the order whatever happens */
	if (id->nwatches > 1 && id->watches[id->nwatches - 2].wd > wd)
		qsort(id->watches, id->nwatches, sizeof(*w), watch_cmp);
	atomic_store(&id->nwatches_pub, id->nwatches);
}

struct walk_ctx {
	struct ig_ident *id;
	struct snap *snap; /* collect (rescan) */
	bool send_adds; /* push M_CG_ADD for each (new subtree) */
	const char *prefix; /* walk of a subtree: paths are prefix + path */
};

static int snap_add(struct snap *s, uint64_t cgid, const char *path)
{
	if (s->n == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 256;
		uint64_t *ni = realloc(s->ids, ncap * sizeof(*ni));
		char **np;

		if (!ni)
			return -ENOMEM;
		s->ids = ni;
		np = realloc(s->paths, ncap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		s->paths = np;
		s->cap = ncap;
	}
	s->paths[s->n] = strdup(path);
	if (!s->paths[s->n])
		return -ENOMEM;
	s->ids[s->n++] = cgid;
	return 0;
}

static int walk_cb(void *arg, uint64_t cgid, const char *path)
{
	struct walk_ctx *w = arg;
	char full[PATH_MAX];

	if (w->prefix) {
		snprintf(full, sizeof(full), "%s%s", w->prefix, strcmp(path, "/") ? path : "");
		path = full;
	}
	watch_add(w->id, cgid, path);
	if (w->send_adds)
		push_cg(w->id, M_CG_ADD, cgid, path);
	if (w->snap && snap_add(w->snap, cgid, path))
		return -ENOMEM;
	return 0;
}

/* Walks the whole hierarchy, (re)adding watches, and queues a snapshot. */
static struct snap *rescan(struct ig_ident *id)
{
	struct walk_ctx w = { .id = id };
	struct msg *m;

	w.snap = calloc(1, sizeof(*w.snap));
	if (!w.snap)
		return NULL;
	if (ig_cgroup_walk(id->root, IG_WALK_DEPTH, walk_cb, &w) != 0) {
		snap_free(w.snap);
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		snap_free(w.snap);
		return NULL;
	}
	m->type = M_CG_SNAPSHOT;
	m->snap = w.snap;
	push(id, m);
	atomic_fetch_add(&id->rescans_pub, 1);
	return w.snap;
}

/* A directory appeared: its id, its subtree (created before the watch). */
static void on_created(struct ig_ident *id, const char *path)
{
	char full[PATH_MAX * 2];
	struct walk_ctx w = { .id = id, .send_adds = true, .prefix = path };

	snprintf(full, sizeof(full), "%s%s", id->root, path);
	if (ig_cgroup_walk(full, IG_WALK_DEPTH, walk_cb, &w) != 0)
		return; /* gone already: a lookup or the rescan will tell */
}

static void on_deleted(struct ig_ident *id, const char *path)
{
	for (size_t i = 0; i < id->nwatches; i++) {
		if (strcmp(id->watches[i].path, path) == 0) {
			push_cg(id, M_CG_GONE, id->watches[i].id, NULL);
			inotify_rm_watch(id->ino_fd, id->watches[i].wd);
			watch_remove_at(id, &id->watches[i]);
			return;
		}
	}
}

static bool drain_inotify(struct ig_ident *id)
{
	char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool overflow = false;
	ssize_t n;

	while ((n = read(id->ino_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			struct watch *w;
			char path[PATH_MAX];

			p += sizeof(*ev) + ev->len;
			if (ev->mask & IN_Q_OVERFLOW) {
				overflow = true;
				continue;
			}
			w = watch_by_wd(id, ev->wd);
			if (!w)
				continue;
			/* The directory itself went away. Some file systems say so
			 * before the parent's IN_DELETE, kernfs only in the parent. */
			if (ev->mask & (IN_IGNORED | IN_DELETE_SELF)) {
				push_cg(id, M_CG_GONE, w->id, NULL);
				if (ev->mask & IN_IGNORED)
					watch_remove_at(id, w);
				continue;
			}
			if (!(ev->mask & IN_ISDIR) || !ev->len)
				continue;
			if (snprintf(path, sizeof(path), "%s/%s",
				     strcmp(w->path, "/") ? w->path : "",
				     ev->name) >= (int)sizeof(path))
				continue;
			if (ev->mask & IN_CREATE)
				on_created(id, path);
			else if (ev->mask & IN_DELETE)
				on_deleted(id, path);
		}
	}
	return overflow;
}

static int find_in_snap(const struct snap *s, uint64_t cgid)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->ids[i] == cgid)
			return (int)i;
	return -1;
}

/* Resolves the ids the agent thread could not find. */
static void resolve_requests(struct ig_ident *id)
{
	uint64_t *req;
	size_t n;
	struct snap *walked = NULL;

	pthread_mutex_lock(&id->mu);
	req = id->req;
	n = id->nreq;
	id->req = NULL;
	id->nreq = id->reqcap = 0;
	pthread_mutex_unlock(&id->mu);

	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		int ret = -EOPNOTSUPP, at;

		if (id->handles_ok && id->root_fd >= 0)
			ret = ig_cgroup_path_by_id(id->root_fd, req[i], path, sizeof(path));
		if (ret == 0) {
			push_cg(id, M_CG_RESOLVED, req[i], path);
			continue;
		}
		if (ret == -ESTALE) {
			push_cg(id, M_CG_UNRESOLVED, req[i], NULL);
			continue;
		}
		if (id->handles_ok) {
			id->handles_ok = false;
			ig_info("cgroup lookups by file handle unavailable: unknown cgroups are "
				"found by walking the hierarchy",
				"root=%s error=%s", id->root, strerror(-ret));
		}
		/* no handles (not kernfs, or no CAP_DAC_READ_SEARCH): one walk serves all */
		if (!walked)
			walked = rescan(id);
		at = find_in_snap(walked, req[i]);
		if (at >= 0)
			push_cg(id, M_CG_RESOLVED, req[i], walked->paths[at]);
		else
			push_cg(id, M_CG_UNRESOLVED, req[i], NULL);
	}
	free(req);
}

static void *cg_main(void *arg)
{
	struct ig_ident *id = arg;
	uint64_t next_rescan;

	/* Watches first, then a full walk: nothing created meanwhile is missed. */
	rescan(id);
	next_rescan = ig_mono_ns() + id->rescan_ns;
	while (!atomic_load(&id->stop)) {
		struct pollfd pfd[2] = { { .fd = id->wake_fd, .events = POLLIN },
					 { .fd = id->ino_fd, .events = POLLIN } };
		uint64_t now = ig_mono_ns();
		int timeout =
			now >= next_rescan ? 0 : (int)((next_rescan - now) / IG_NSEC_PER_MSEC) + 1;
		bool need_rescan = false;

		if (poll(pfd, id->ino_fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			break;
		if (atomic_load(&id->stop))
			break;
		if (pfd[0].revents & POLLIN) {
			uint64_t v;

			if (read(id->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
		}
		if (id->ino_fd >= 0 && (pfd[1].revents & POLLIN))
			need_rescan = drain_inotify(id);
		resolve_requests(id);
		if (need_rescan || ig_mono_ns() >= next_rescan) {
			rescan(id);
			next_rescan = ig_mono_ns() + id->rescan_ns;
		}
	}
	return NULL;
}

/* --------------------------------------------------------- pods and entries */

static int pod_cmp(const void *a, const void *b)
{
	return strcmp((*(struct ig_pod *const *)a)->uid, (*(struct ig_pod *const *)b)->uid);
}

static int pod_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, (*(struct ig_pod *const *)elem)->uid);
}

static int cid_cmp(const void *a, const void *b)
{
	return strcmp(((const struct cid_ref *)a)->cid, ((const struct cid_ref *)b)->cid);
}

static int cid_key_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct cid_ref *)elem)->cid);
}

static struct ig_pod *find_pod(struct ig_ident *id, const char *uid)
{
	struct ig_pod **p;

	if (!id->npods)
		return NULL;
	p = bsearch(uid, id->pods, id->npods, sizeof(*p), pod_key_cmp);
	return p ? *p : NULL;
}

static const struct cid_ref *find_cid(struct ig_ident *id, const char *cid)
{
	if (!id->ncids)
		return NULL;
	return bsearch(cid, id->cids, id->ncids, sizeof(struct cid_ref), cid_key_cmp);
}

static void enrich(struct ig_ident *id, struct ig_cg_entry *e)
{
	struct ig_pod *pod = NULL;
	const struct ig_pod_container *ct = NULL;
	const struct cid_ref *ref = NULL;

	ig_cg_entry_reset_ident(e);
	if (e->state != IG_CGE_READY)
		return;
	if (e->info.pod_uid[0])
		pod = find_pod(id, e->info.pod_uid);
	if (e->info.container_id[0])
		ref = find_cid(id, e->info.container_id);
	/* A path without a pod slice (rootless kubelet) still names the container. */
	if (!pod && ref && !e->info.pod_uid[0])
		pod = ref->pod;
	if (ref && ref->pod == pod)
		ct = ref->ct;
	if (pod) {
		e->ident.scope = "pod";
		e->ident.pod_uid = pod->uid;
		e->ident.pod_name = pod->name;
		e->ident.namespace_ = pod->namespace_;
		e->ident.owner_kind = pod->owner_kind;
		e->ident.owner_name = pod->owner_name;
		e->ident.nlabels = pod->nlabels;
		e->ident.labels = pod->labels;
	}
	if (ct) {
		e->ident.container_name = ct->name;
		e->ident.image = ct->image;
		if (!e->ident.runtime)
			e->ident.runtime = ct->runtime;
	}
	e->pod = pod;
}

static void retire_pod(struct ig_ident *id, struct ig_pod *p)
{
	if (id->nretired == id->retired_cap) {
		size_t ncap = id->retired_cap ? id->retired_cap * 2 : 64;
		struct ig_pod **nr = realloc(id->retired_pods, ncap * sizeof(*nr));

		if (!nr)
			return; /* leak rather than free under a record's feet */
		id->retired_pods = nr;
		id->retired_cap = ncap;
	}
	id->retired_pods[id->nretired++] = p;
}

static void reclaim_pods(struct ig_ident *id)
{
	for (size_t i = 0; i < id->nretired; i++)
		ig_pod_free(id->retired_pods[i]);
	id->nretired = 0;
}

static void rebuild_cids(struct ig_ident *id)
{
	size_t n = 0;

	for (size_t i = 0; i < id->npods; i++)
		n += id->pods[i]->ncontainers;
	free(id->cids);
	id->cids = calloc(n ? n : 1, sizeof(*id->cids));
	id->ncids = 0;
	if (!id->cids)
		return;
	for (size_t i = 0; i < id->npods; i++) {
		struct ig_pod *p = id->pods[i];

		for (uint32_t k = 0; k < p->ncontainers; k++) {
			if (!p->containers[k].id)
				continue;
			id->cids[id->ncids].cid = p->containers[k].id;
			id->cids[id->ncids].pod = p;
			id->cids[id->ncids].ct = &p->containers[k];
			id->ncids++;
		}
	}
	qsort(id->cids, id->ncids, sizeof(*id->cids), cid_cmp);
}

static int pods_reserve(struct ig_ident *id, size_t n)
{
	struct ig_pod **np = realloc(id->pods, (n ? n : 1) * sizeof(*np));

	if (!np)
		return -ENOMEM;
	id->pods = np;
	return 0;
}

static void apply_k8s(struct ig_ident *id, struct ig_k8s_ev *ev)
{
	id->pods_dirty = true;
	if (ev->type == IG_K8S_REPLACE) {
		for (size_t i = 0; i < id->npods; i++)
			retire_pod(id, id->pods[i]);
		free(id->pods);
		id->pods = ev->pods; /* take the array */
		id->npods = ev->npods;
		ev->pods = NULL;
		ev->npods = 0;
		qsort(id->pods, id->npods, sizeof(*id->pods), pod_cmp);
		/* a PodList never holds one uid twice; keep the last if it did */
		for (size_t i = 1; i < id->npods;) {
			if (strcmp(id->pods[i - 1]->uid, id->pods[i]->uid) == 0) {
				retire_pod(id, id->pods[i - 1]);
				memmove(&id->pods[i - 1], &id->pods[i],
					(id->npods - i) * sizeof(*id->pods));
				id->npods--;
			} else {
				i++;
			}
		}
		return;
	}
	for (size_t k = 0; k < ev->npods; k++) {
		struct ig_pod *p = ev->pods[k];
		struct ig_pod **at =
			id->npods ? bsearch(p->uid, id->pods, id->npods, sizeof(*at), pod_key_cmp) :
				    NULL;

		if (ev->type == IG_K8S_DELETE) {
			if (at) {
				size_t i = (size_t)(at - id->pods);

				retire_pod(id, *at);
				memmove(at, at + 1, (id->npods - i - 1) * sizeof(*at));
				id->npods--;
			}
			retire_pod(id, p);
		} else if (at) {
			retire_pod(id, *at);
			*at = p;
		} else {
			size_t i = 0;

			if (pods_reserve(id, id->npods + 1)) {
				retire_pod(id, p);
				continue;
			}
			while (i < id->npods && strcmp(id->pods[i]->uid, p->uid) < 0)
				i++;
			memmove(&id->pods[i + 1], &id->pods[i],
				(id->npods - i) * sizeof(*id->pods));
			id->pods[i] = p;
			id->npods++;
		}
		ev->pods[k] = NULL;
	}
	ev->npods = 0;
}

static void put_entry(struct ig_ident *id, uint64_t cgid, const char *path, bool resolved)
{
	struct ig_cg_entry *e = ig_cg_cache_get(id->cache, cgid), *ne;

	if (e && e->state == IG_CGE_READY && e->path && strcmp(e->path, path) == 0) {
		e->gen = id->gen;
		if (e->vanished_ns && !resolved)
			e->vanished_ns = 0; /* seen again: it was not gone */
		return;
	}
	ne = ig_cg_entry_new(cgid, path, id->now_ns);
	if (!ne)
		return;
	ne->gen = id->gen;
	enrich(id, ne);
	if (ig_cg_cache_put(id->cache, ne) == -ENOSPC) {
		uint64_t sup;

		ig_cg_entry_free(ne);
		id->cache_full++;
		if (ig_ratelimit_ok(&id->rl_full, &sup))
			ig_warn("identity cache full: events of new cgroups stay anonymous; raise "
				"kubernetes.cache_max_entries",
				"entries=%zu suppressed=%llu", ig_cg_cache_max(id->cache),
				(unsigned long long)sup);
	}
}

struct sweep_ctx {
	struct ig_ident *id;
	uint64_t snap_gen;
	uint64_t now;
};

static int mark_unseen(void *arg, struct ig_cg_entry *e)
{
	struct sweep_ctx *s = arg;

	if (e->state == IG_CGE_READY && e->gen != s->snap_gen && !e->vanished_ns)
		e->vanished_ns = s->now;
	return 0;
}

static int reenrich(void *arg, struct ig_cg_entry *e)
{
	enrich(((struct sweep_ctx *)arg)->id, e);
	return 0;
}

static int expired(void *arg, struct ig_cg_entry *e)
{
	struct sweep_ctx *s = arg;
	uint64_t ttl = s->id->vanish_ttl_ns;

	if (e->state == IG_CGE_READY)
		return e->vanished_ns && s->now - e->vanished_ns > ttl;
	if (e->state == IG_CGE_NEGATIVE)
		return s->now - e->added_ns > ttl;
	return 0; /* PENDING: an answer is on its way */
}

static void apply(struct ig_ident *id, struct msg *m)
{
	struct ig_cg_entry *e;

	switch (m->type) {
	case M_CG_ADD:
		put_entry(id, m->id, m->path, false);
		break;
	case M_CG_RESOLVED:
		id->lazy_ok++;
		put_entry(id, m->id, m->path, true);
		break;
	case M_CG_UNRESOLVED:
		id->lazy_failed++;
		e = ig_cg_cache_get(id->cache, m->id);
		if (e && e->state == IG_CGE_PENDING) {
			e = ig_cg_entry_new_unresolved(m->id, IG_CGE_NEGATIVE, id->now_ns);
			if (e && ig_cg_cache_put(id->cache, e))
				ig_cg_entry_free(e);
		}
		break;
	case M_CG_GONE:
		e = ig_cg_cache_get(id->cache, m->id);
		if (e && e->state == IG_CGE_READY && !e->vanished_ns)
			e->vanished_ns = id->now_ns ? id->now_ns : 1;
		break;
	case M_CG_SNAPSHOT: {
		struct sweep_ctx s = { .id = id, .now = id->now_ns ? id->now_ns : 1 };

		s.snap_gen = ++id->gen;
		for (size_t i = 0; i < m->snap->n; i++)
			put_entry(id, m->snap->ids[i], m->snap->paths[i], false);
		ig_cg_cache_sweep(id->cache, mark_unseen, &s);
		id->rescans++;
		break;
	}
	case M_K8S:
		apply_k8s(id, m->ev);
		break;
	}
}

/* ------------------------------------------------------------- the facade */

void ig_ident_fill(struct ig_ident *id, struct ig_record *r)
{
	struct ig_cg_entry *e = id ? ig_cg_cache_get(id->cache, r->cgroup_id) : NULL;
	struct ig_identity *d = &r->id;

	if (__builtin_expect(e && e->state == IG_CGE_READY, 1)) {
		ig_cg_ident_copy(d, &e->ident);
		id->hits++;
		if (e->vanished_ns)
			id->vanished++;
		return;
	}
	d->scope = d->runtime = d->container_id = d->pod_uid = d->pod_name = NULL;
	d->namespace_ = d->container_name = d->image = d->owner_kind = NULL;
	d->owner_name = d->cgroup_path = NULL;
	d->nlabels = 0;
	if (!id)
		return; /* identity enrichment not running */
	id->misses++;
	if (e || !r->cgroup_id || !id->have_root || id->npend >= IG_PEND_MAX)
		return;
	/* Queue it once: a PENDING placeholder answers the next events. */
	e = ig_cg_entry_new_unresolved(r->cgroup_id, IG_CGE_PENDING, id->now_ns);
	if (!e)
		return;
	if (ig_cg_cache_put(id->cache, e)) {
		ig_cg_entry_free(e);
		id->cache_full++;
		return;
	}
	id->pend[id->npend++] = r->cgroup_id;
	id->lazy++;
}

static void flush_requests(struct ig_ident *id)
{
	uint64_t one = 1;
	bool wake = false;

	if (!id->npend)
		return;
	pthread_mutex_lock(&id->mu);
	if (id->nreq + id->npend > id->reqcap) {
		size_t ncap = id->nreq + id->npend + 64;
		uint64_t *nr = realloc(id->req, ncap * sizeof(*nr));

		if (nr) {
			id->req = nr;
			id->reqcap = ncap;
		}
	}
	if (id->nreq + id->npend <= id->reqcap) {
		memcpy(id->req + id->nreq, id->pend, id->npend * sizeof(*id->pend));
		id->nreq += id->npend;
		wake = true;
	}
	pthread_mutex_unlock(&id->mu);
	if (wake) {
		id->npend = 0;
		if (write(id->wake_fd, &one, sizeof(one)) < 0)
			(void)0; /* the counter saturates only after 2^64 wakeups */
	}
}

void ig_ident_tick(struct ig_ident *id, uint64_t now_ns)
{
	struct msg *m, *next;

	id->now_ns = now_ns ? now_ns : 1;
	ig_cg_cache_reclaim(id->cache);
	reclaim_pods(id);
	flush_requests(id);

	pthread_mutex_lock(&id->mu);
	m = id->qhead;
	id->qhead = id->qtail = NULL;
	pthread_mutex_unlock(&id->mu);
	/* Pod changes first would be nicer, but order matters (a REPLACE after
	 * an UPSERT); the queue is applied as it came. */
	for (; m; m = next) {
		next = m->next;
		apply(id, m);
		msg_free(m);
	}
	if (id->pods_dirty) {
		struct sweep_ctx s = { .id = id };

		rebuild_cids(id);
		ig_cg_cache_sweep(id->cache, reenrich, &s);
		id->pods_dirty = false;
	}
	if (now_ns - id->last_expire_ns >= IG_NSEC_PER_SEC) {
		struct sweep_ctx s = { .id = id, .now = id->now_ns };

		ig_cg_cache_sweep(id->cache, expired, &s);
		id->last_expire_ns = now_ns;
	}
}

void ig_ident_stats(struct ig_ident *id, struct ig_ident_stats *st)
{
	struct ig_k8s_stats ks;

	memset(st, 0, sizeof(*st));
	st->hits = id->hits;
	st->misses = id->misses;
	st->vanished = id->vanished;
	st->lazy_lookups = id->lazy;
	st->lazy_resolved = id->lazy_ok;
	st->lazy_failed = id->lazy_failed;
	st->cache_full = id->cache_full;
	st->cgroups_known = ig_cg_cache_count(id->cache);
	st->inotify_watches = atomic_load(&id->nwatches_pub);
	st->rescans = id->rescans;
	st->pods_known = id->npods;
	if (id->k8s) {
		ig_k8s_client_stats(id->k8s, &ks);
		st->api_state = ks.state;
		st->watch_restarts = ks.watch_restarts;
		st->relists_410 = ks.relists_410;
		st->api_errors = ks.errors;
	} else {
		st->api_state = IG_API_DISABLED;
	}
}

static int initial_cb(void *arg, uint64_t cgid, const char *path)
{
	put_entry(arg, cgid, path, false);
	return 0;
}

void ig_ident_free(struct ig_ident *id)
{
	struct msg *m, *next;

	if (!id)
		return;
	ig_k8s_client_free(id->k8s);
	if (id->cg_started) {
		uint64_t one = 1;

		atomic_store(&id->stop, true);
		if (write(id->wake_fd, &one, sizeof(one)) < 0)
			(void)0;
		pthread_join(id->cg_thread, NULL);
	}
	for (m = id->qhead; m; m = next) {
		next = m->next;
		msg_free(m);
	}
	for (size_t i = 0; i < id->nwatches; i++)
		free(id->watches[i].path);
	free(id->watches);
	if (id->ino_fd >= 0)
		close(id->ino_fd);
	if (id->root_fd >= 0)
		close(id->root_fd);
	if (id->wake_fd >= 0)
		close(id->wake_fd);
	ig_cg_cache_free(id->cache);
	for (size_t i = 0; i < id->npods; i++)
		ig_pod_free(id->pods[i]);
	free(id->pods);
	reclaim_pods(id);
	free(id->retired_pods);
	free(id->cids);
	free(id->req);
	pthread_mutex_destroy(&id->mu);
	free(id);
}

static int setup_cgroups(struct ig_ident *id, const char *cgroup_root, struct ig_err *err)
{
	bool cg2 = false;
	int ret = ig_cgroup_root_detect(cgroup_root, id->root, sizeof(id->root), &cg2);
	bool autod = !cgroup_root || !*cgroup_root || strcmp(cgroup_root, "auto") == 0;

	if (ret == -ENOENT && autod) {
		ig_warn("no cgroup v2 hierarchy found: events carry no container or pod identity",
			"hint=\"mount cgroup2 (e.g. at /sys/fs/cgroup/unified) or set "
			"agent.cgroup_root\"");
		return 0;
	}
	if (ret) {
		ig_err_add(err,
			   "agent.cgroup_root: '%s' is not usable (%s): set it to the cgroup v2 "
			   "mount or to \"auto\"",
			   cgroup_root, strerror(-ret));
		return -EINVAL;
	}
	if (!cg2)
		ig_warn("agent.cgroup_root is not a cgroup2 mount: its directory inodes will not "
			"match the kernel's cgroup ids",
			"root=%s", id->root);
	id->have_root = true;
	id->handles_ok = cg2;
	id->root_fd = open(id->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	id->ino_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (id->ino_fd < 0)
		ig_warn("inotify unavailable: new cgroups are found by the periodic rescan and by "
			"lookups only",
			"error=%s", strerror(errno));
	ig_cgroup_walk(id->root, IG_WALK_DEPTH, initial_cb, id);
	return 0;
}

int ig_ident_new(struct ig_ident **out, const struct ig_kube_conf *kc, const char *node_name,
		 const char *cgroup_root, struct ig_err *err)
{
	struct ig_ident *id;
	int ret;

	*out = NULL;
	id = calloc(1, sizeof(*id));
	if (!id)
		return -ENOMEM;
	pthread_mutex_init(&id->mu, NULL);
	id->ino_fd = id->root_fd = -1;
	id->rl_full.interval_ns = 60 * IG_NSEC_PER_SEC;
	id->rescan_ns = kc && kc->cgroup_rescan_ns ? kc->cgroup_rescan_ns : 30 * IG_NSEC_PER_SEC;
	id->vanish_ttl_ns = 2 * id->rescan_ns;
	if (id->vanish_ttl_ns < IG_VANISH_TTL_MIN_NS)
		id->vanish_ttl_ns = IG_VANISH_TTL_MIN_NS;
	id->now_ns = ig_mono_ns();
	id->last_expire_ns = id->now_ns;
	id->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ret = ig_cg_cache_new(&id->cache, kc ? kc->cache_max_entries : 0);
	if (ret || id->wake_fd < 0) {
		ret = ret ? ret : -errno;
		goto fail;
	}
	ret = setup_cgroups(id, cgroup_root, err);
	if (ret)
		goto fail;
	if (id->have_root) {
		ret = -pthread_create(&id->cg_thread, NULL, cg_main, id);
		if (ret)
			goto fail;
		id->cg_started = true;
	}
	if (!kc || kc->enabled != 2) {
		ret = ig_k8s_client_new(&id->k8s, kc, node_name, on_k8s, id, err);
		if (ret == -ENODEV) {
			ig_info("kubernetes metadata off: no API server configured or found",
				"hint=\"in a pod the agent uses KUBERNETES_SERVICE_HOST; elsewhere set "
				"kubernetes.api_server or kubernetes.kubeconfig\"");
			id->k8s = NULL;
		} else if (ret) {
			goto fail;
		}
	}
	ig_info("identity enrichment started", "cgroup_root=%s cgroups=%zu kubernetes=%s",
		id->have_root ? id->root : "none", ig_cg_cache_count(id->cache),
		id->k8s ? "on" : "off");
	*out = id;
	return 0;
fail:
	ig_ident_free(id);
	return ret;
}
