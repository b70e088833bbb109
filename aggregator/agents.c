/* agents: see agents.h. A chained hash table keyed by agent_id; one small
 * state file per agent. */
#include "agents.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ig_log.h"
#include "ig_time.h"
#include "ig_hash.h"

#define NBUCKETS 1024

struct ig_agents {
	char *dir; /* <state_dir>/agents, NULL = memory only */
	struct ig_agent_info *buckets[NBUCKETS];
	uint32_t count;
	uint64_t max_agents, max_seq_gap; /* 0 = unlimited */
};

static uint32_t hash_str(const char *s)
{
	return ig_fnv32_str(IG_FNV32_INIT, s);
}

/* Agent ids become file names: keep [A-Za-z0-9._-], escape the rest. */
static void state_path(const struct ig_agents *a, const char *agent_id, char *buf, size_t len)
{
	size_t pos = (size_t)snprintf(buf, len, "%s/", a->dir);
	for (const char *p = agent_id; *p && pos + 4 < len; p++) {
		unsigned char ch = (unsigned char)*p;
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' ||
		    (ch == '.' && p != agent_id))
			buf[pos++] = (char)ch;
		else
			pos += (size_t)snprintf(buf + pos, len - pos, "%%%02x", ch);
	}
	buf[pos] = '\0';
}

static void load_state(struct ig_agents *a, struct ig_agent_info *ai)
{
	char path[4096];
	FILE *f;

	if (!a->dir)
		return;
	state_path(a, ai->agent_id, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return;
	for (int i = 0; i < IG_AGENT_BOOTS; i++) {
		unsigned long long b, s;
		if (fscanf(f, "%llx %llu\n", &b, &s) != 2)
			break;
		ai->boots[i].boot_id = b;
		ai->boots[i].seq = s;
	}
	fclose(f);
}

static void save_state(struct ig_agents *a, const struct ig_agent_info *ai)
{
	char path[4096], buf[IG_AGENT_BOOTS * 48];
	size_t len = 0;

	if (!a->dir)
		return;
	for (int i = 0; i < IG_AGENT_BOOTS; i++) {
		if (!ai->boots[i].boot_id && !ai->boots[i].seq)
			continue;
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%016llx %llu\n",
					(unsigned long long)ai->boots[i].boot_id,
					(unsigned long long)ai->boots[i].seq);
	}
	state_path(a, ai->agent_id, path, sizeof(path));
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		static struct ig_ratelimit rl = IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
		if (ig_ratelimit_ok(&rl, NULL))
			ig_error(
				"cannot write dedup state; a restart may reprocess resent envelopes",
				"path=%s err=\"%s\"", path, strerror(errno));
		return;
	}
	/* Same-size or longer content each time; truncate for safety. */
	if (pwrite(fd, buf, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len) < 0) {
		static struct ig_ratelimit rl2 = IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
		if (ig_ratelimit_ok(&rl2, NULL))
			ig_error("short write of dedup state", "path=%s", path);
	}
	close(fd);
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int ig_agents_new(struct ig_agents **out, const char *state_dir, struct ig_err *err)
{
	struct ig_agents *a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	if (state_dir && *state_dir) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/agents", state_dir);
		int rv = mkdir_p(dir);
		if (rv < 0) {
			ig_err_add(
				err,
				"aggregator.state_dir: cannot create %s: %s (make it writable, or "
				"set state_dir: \"\" to keep dedup state in memory only)",
				dir, strerror(-rv));
			free(a);
			return rv;
		}
		a->dir = strdup(dir);
	}
	*out = a;
	return 0;
}

void ig_agents_free(struct ig_agents *a)
{
	if (!a)
		return;
	for (int b = 0; b < NBUCKETS; b++) {
		struct ig_agent_info *ai = a->buckets[b];
		while (ai) {
			struct ig_agent_info *n = ai->next;
			for (uint32_t i = 0; i < ai->nlost; i++)
				free((char *)ai->lost[i].cause);
			free(ai->agent_id);
			free(ai->node);
			free(ai);
			ai = n;
		}
	}
	free(a->dir);
	free(a);
}

static struct ig_agent_info *get(struct ig_agents *a, const char *agent_id, bool create)
{
	uint32_t b = hash_str(agent_id) % NBUCKETS;
	for (struct ig_agent_info *ai = a->buckets[b]; ai; ai = ai->next)
		if (!strcmp(ai->agent_id, agent_id))
			return ai;
	if (!create || (a->max_agents && a->count >= a->max_agents))
		return NULL;
	struct ig_agent_info *ai = calloc(1, sizeof(*ai));
	if (!ai)
		return NULL;
	ai->agent_id = strdup(agent_id);
	if (!ai->agent_id) {
		free(ai);
		return NULL;
	}
	load_state(a, ai);
	ai->next = a->buckets[b];
	a->buckets[b] = ai;
	a->count++;
	return ai;
}

void ig_agents_set_limits(struct ig_agents *a, uint64_t max_agents, uint64_t max_seq_gap)
{
	a->max_agents = max_agents;
	a->max_seq_gap = max_seq_gap;
}

enum ig_agent_verdict ig_agents_check(struct ig_agents *a, const struct ig_envelope_hdr *h)
{
	struct ig_agent_info *ai = get(a, h->agent_id, true);

	if (!ai)
		return IG_AGENT_LIMIT;
	for (int i = 0; i < IG_AGENT_BOOTS; i++)
		if (ai->boots[i].boot_id == h->boot_id &&
		    (ai->boots[i].seq || ai->boots[i].boot_id)) {
			if (h->seq <= ai->boots[i].seq)
				return IG_AGENT_DUPLICATE;
			if (a->max_seq_gap && h->seq - ai->boots[i].seq > a->max_seq_gap)
				return IG_AGENT_SEQ_GAP;
			return IG_AGENT_NEW;
		}
	/* A boot this aggregator has no state for: a new agent process (seq 1),
	 * or one that ran before this aggregator lost its state_dir (any seq).
	 * There is no reference to measure a gap from; refusing a large seq
	 * here would refuse every envelope of a long-running agent forever. */
	return IG_AGENT_NEW;
}

bool ig_agents_is_duplicate(struct ig_agents *a, const struct ig_envelope_hdr *h)
{
	struct ig_agent_info *ai = get(a, h->agent_id, true);
	if (!ai)
		return false;
	for (int i = 0; i < IG_AGENT_BOOTS; i++)
		if (ai->boots[i].boot_id == h->boot_id &&
		    (ai->boots[i].seq || ai->boots[i].boot_id))
			return h->seq <= ai->boots[i].seq;
	return false;
}

void ig_agents_note_duplicate(struct ig_agents *a, const struct ig_envelope_hdr *h)
{
	struct ig_agent_info *ai = get(a, h->agent_id, true);
	if (ai)
		ai->duplicates++;
}

uint64_t ig_agents_accept(struct ig_agents *a, const struct ig_envelope_hdr *h)
{
	struct ig_agent_info *ai = get(a, h->agent_id, true);
	uint64_t newly_lost = 0;
	int slot = -1;

	if (!ai)
		return 0;
	for (int i = 0; i < IG_AGENT_BOOTS; i++)
		if (ai->boots[i].boot_id == h->boot_id) {
			slot = i;
			break;
		}
	if (slot < 0) {
		/* A new agent process: most recent first, forget the oldest. */
		memmove(&ai->boots[1], &ai->boots[0], sizeof(ai->boots[0]) * (IG_AGENT_BOOTS - 1));
		ai->boots[0].boot_id = h->boot_id;
		slot = 0;
		/* Loss counters restart with the process. */
		for (uint32_t i = 0; i < ai->nlost; i++)
			ai->lost[i].count = 0;
	}
	ai->boots[slot].seq = h->seq;
	save_state(a, ai);
	ai->envelopes++;
	ai->records += h->nrecords;
	ai->last_seen_ns = ig_wall_ns();
	if (!ai->node || strcmp(ai->node, h->node)) {
		free(ai->node);
		ai->node = strdup(h->node);
	}
	for (uint32_t i = 0; i < h->nlost; i++) {
		uint32_t j;
		for (j = 0; j < ai->nlost; j++)
			if (!strcmp(ai->lost[j].cause, h->lost[i].cause))
				break;
		if (j == ai->nlost) {
			if (ai->nlost == IG_WIRE_MAX_LOST)
				continue;
			ai->lost[j].cause = strdup(h->lost[i].cause);
			ai->lost[j].count = 0;
			if (!ai->lost[j].cause)
				continue;
			ai->nlost++;
		}
		if (h->lost[i].count > ai->lost[j].count) {
			newly_lost += h->lost[i].count - ai->lost[j].count;
			ai->lost[j].count = h->lost[i].count;
		}
	}
	return newly_lost;
}

void ig_agents_foreach(const struct ig_agents *a,
		       void (*fn)(void *ctx, const struct ig_agent_info *ai), void *ctx)
{
	for (int b = 0; b < NBUCKETS; b++)
		for (const struct ig_agent_info *ai = a->buckets[b]; ai; ai = ai->next)
			fn(ctx, ai);
}

uint32_t ig_agents_count(const struct ig_agents *a)
{
	return a->count;
}
