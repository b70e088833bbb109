/* sender: see sender.h for the delivery design. */
#include "sender.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#include "aggr_pick.h"
#include "disk_buffer.h"
#include "ig_log.h"
#include "ig_time.h"
#include "ig_tls.h"
#include "ig_wire.h"

struct batch {
	struct batch *next;
	uint64_t seq;
	void *buf;
	size_t len;
	uint32_t nrecords;
	uint32_t attempts;
	bool on_disk;
};

struct ig_sender {
	struct ig_sender_opts o;
	char *base_url; /* agent.aggregator as configured */
	char *pick_key;
	char url[512]; /* what is dialed: base_url or one replica's address (under mu) */
	uint64_t next_resolve_ns;
	nng_socket sock;
	nng_dialer dialer;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* queue became non-empty, or stop */
	pthread_cond_t drained; /* queue became empty */
	struct batch *head, *tail;
	uint64_t nbatches, nbytes, nrecords;
	bool stop;
	struct ig_sender_stats st;
	int connected;
	struct ig_ratelimit rl_timeout, rl_reject;
	bool tls;
	char *tls_dir, *tls_server_name;
	struct ig_tls_watch tls_watch;
	struct ig_ratelimit rl_tls;
	struct ig_ratelimit rl_buffer;
	struct ig_dbuf *dbuf; /* NULL = memory only */
};

/* Called with the lock held: the batch leaves the queue. */
static void batch_done(struct ig_sender *s, struct batch *b)
{
	if (b->on_disk) {
		ig_dbuf_pop(s->dbuf);
		s->st.buffered_records -= b->nrecords;
	}
}

static void batch_free(struct batch *b)
{
	free(b->buf);
	free(b);
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct ig_sender *s = arg;
	(void)p;
	char url[sizeof(s->url)];
	pthread_mutex_lock(&s->mu);
	memcpy(url, s->url, sizeof(url));
	pthread_mutex_unlock(&s->mu);
	if (ev == NNG_PIPE_EV_ADD_POST) {
		__atomic_add_fetch(&s->connected, 1, __ATOMIC_RELAXED);
		ig_info("connected to aggregator", "url=%s", url);
	} else if (ev == NNG_PIPE_EV_REM_POST) {
		__atomic_sub_fetch(&s->connected, 1, __ATOMIC_RELAXED);
		ig_warn("disconnected from aggregator; will redial", "url=%s", url);
	}
}

/* Removes the head if it is still the batch with this seq (it may have been
 * dropped by an overflow meanwhile). Called with the lock held. */
static void pop_if_head(struct ig_sender *s, uint64_t seq)
{
	struct batch *b = s->head;
	if (!b || b->seq != seq)
		return;
	s->head = b->next;
	if (!s->head)
		s->tail = NULL;
	s->nbatches--;
	s->nbytes -= b->len;
	s->nrecords -= b->nrecords;
	batch_done(s, b);
	batch_free(b);
	if (!s->head)
		pthread_cond_broadcast(&s->drained);
}

/* One round trip for the batch at the head of the queue. Returns after an
 * ack or a timeout. */
static void send_one(struct ig_sender *s, uint64_t seq, const void *buf, size_t len, uint32_t nrec,
		     uint32_t attempt)
{
	nng_msg *msg = NULL, *reply = NULL;
	int rv;

	if (nng_msg_alloc(&msg, len) != 0) {
		nng_msleep(10);
		return;
	}
	memcpy(nng_msg_body(msg), buf, len);
	if (attempt > 0)
		__atomic_add_fetch(&s->st.resends, 1, __ATOMIC_RELAXED);
	rv = nng_sendmsg(s->sock, msg, 0);
	if (rv != 0) {
		nng_msg_free(msg);
		nng_msleep(50);
		return;
	}
	for (;;) {
		rv = nng_recvmsg(s->sock, &reply, 0);
		if (rv != 0)
			break;
		uint64_t aseq = 0;
		enum ig_ack_status ast;
		char emsg[256];
		int drv = ig_wire_ack_decode(nng_msg_body(reply), nng_msg_len(reply), &aseq, &ast,
					     emsg, sizeof(emsg));
		nng_msg_free(reply);
		if (drv < 0 || aseq != seq)
			continue; /* a stray or malformed reply: keep waiting for ours */
		pthread_mutex_lock(&s->mu);
		if (ast == IG_ACK_REJECTED) {
			s->st.lost_rejected += nrec;
			uint64_t sup = 0;
			if (ig_ratelimit_ok(&s->rl_reject, &sup))
				ig_error("aggregator rejected an envelope; its records are lost",
					 "seq=%llu records=%u reason=\"%s\" suppressed=%llu",
					 (unsigned long long)seq, nrec, emsg,
					 (unsigned long long)sup);
		} else {
			s->st.batches_sent++;
			s->st.records_acked += nrec;
			if (ast == IG_ACK_DUPLICATE)
				s->st.duplicates++;
		}
		pop_if_head(s, seq);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (rv == NNG_ETIMEDOUT) {
		uint64_t sup = 0;
		if (ig_ratelimit_ok(&s->rl_timeout, &sup))
			ig_warn("no ack from aggregator in time; resending",
				"url=%s seq=%llu connected=%d suppressed=%llu", s->url,
				(unsigned long long)seq,
				__atomic_load_n(&s->connected, __ATOMIC_RELAXED),
				(unsigned long long)sup);
	} else if (rv != NNG_ECLOSED) {
		nng_msleep(50);
	}
}

/* Loads the TLS files and gives the dialer a new configuration (nng holds
 * its own reference). */
static int set_tls(struct ig_sender *s, nng_dialer d, struct ig_err *err)
{
	nng_tls_config *cfg = NULL;
	int rv = ig_tls_config_load(s->tls_dir, false, s->tls_server_name, "agent.tls_dir", &cfg,
				    err);
	if (rv < 0)
		return rv;
	rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg);
	if (rv != 0) {
		ig_err_add(err, "agent.tls_dir: nng refused the TLS configuration: %s",
			   nng_strerror(rv));
		return -EINVAL;
	}
	ig_tls_watch_changed(&s->tls_watch, s->tls_dir);
	return 0;
}

static int dial(struct ig_sender *s, const char *url, nng_dialer *d, struct ig_err *err)
{
	int rv;

	if ((rv = nng_dialer_create(d, s->sock, url)) != 0) {
		if (err)
			ig_err_add(
				err,
				"agent.aggregator: cannot use '%s': %s (expected an nng URL like "
				"tcp://aggregator:7700)",
				url, nng_strerror(rv));
		return rv;
	}
	if (s->tls) {
		struct ig_err tmp;

		ig_err_init(&tmp);
		if ((rv = set_tls(s, *d, err ? err : &tmp)) < 0) {
			if (!err)
				ig_warn("sender: cannot load the TLS files for a new replica",
					"error=\"%s\"", ig_err_str(&tmp));
			nng_dialer_close(*d);
			return rv;
		}
	}
	nng_dialer_set_ms(*d, NNG_OPT_RECONNMINT, (nng_duration)(s->o.reconnect_min_ns / 1000000));
	nng_dialer_set_ms(*d, NNG_OPT_RECONNMAXT, (nng_duration)(s->o.reconnect_max_ns / 1000000));
	/* Non-blocking: the aggregator may come up after us; nng keeps redialing. */
	if ((rv = nng_dialer_start(*d, NNG_FLAG_NONBLOCK)) != 0) {
		if (err)
			ig_err_add(err, "cannot dial %s: %s", url, nng_strerror(rv));
		nng_dialer_close(*d);
	}
	return rv;
}

/* Re-resolves agent.aggregator; when this agent's replica changed, dials the
 * new one before letting go of the old (the REQ socket resends an unacked
 * envelope on the new pipe, and our own timeout resends it too). */
static void maybe_move(struct ig_sender *s)
{
	char target[sizeof(s->url)], cur[sizeof(s->url)];
	uint64_t now = ig_mono_ns();

	if (!s->o.resolve_interval_ns || now < s->next_resolve_ns)
		return;
	s->next_resolve_ns = now + s->o.resolve_interval_ns;
	int n = ig_aggr_pick(s->base_url, s->pick_key, target, sizeof(target));
	if (n <= 0)
		return; /* not resolvable now: keep what we dial */
	pthread_mutex_lock(&s->mu);
	memcpy(cur, s->url, sizeof(cur));
	pthread_mutex_unlock(&s->mu);
	if (!strcmp(cur, target))
		return;
	nng_dialer d;
	if (dial(s, target, &d, NULL) != 0)
		return;
	nng_dialer old = s->dialer;
	s->dialer = d;
	pthread_mutex_lock(&s->mu);
	snprintf(s->url, sizeof(s->url), "%s", target);
	s->st.moves++;
	pthread_mutex_unlock(&s->mu);
	nng_dialer_close(old);
	ig_info("aggregator replica set changed; moving", "from=%s to=%s replicas=%d", cur, target,
		n);
}

static void *sender_main(void *arg)
{
	struct ig_sender *s = arg;

	for (;;) {
		maybe_move(s);
		pthread_mutex_lock(&s->mu);
		while (!s->head && !s->stop) {
			if (!s->o.resolve_interval_ns) {
				pthread_cond_wait(&s->cv, &s->mu);
				continue;
			}
			/* Idle agents follow the replica set too. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t w = s->o.resolve_interval_ns;
			ts.tv_sec += (time_t)(w / 1000000000ULL);
			ts.tv_nsec += (long)(w % 1000000000ULL);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
				break;
		}
		if (!s->head && !s->stop) {
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			return NULL;
		}
		/* Copy what we need: the batch may be dropped by an overflow
		 * while we wait for the ack unlocked. */
		struct batch *b = s->head;
		uint64_t seq = b->seq;
		size_t len = b->len;
		uint32_t nrec = b->nrecords, attempt = b->attempts++;
		void *copy = malloc(len);
		if (copy)
			memcpy(copy, b->buf, len);
		pthread_mutex_unlock(&s->mu);
		if (!copy) {
			nng_msleep(10);
			continue;
		}
		send_one(s, seq, copy, len, nrec, attempt);
		free(copy);
	}
}

static void enqueue_locked(struct ig_sender *s, struct batch *b);

struct replay_list {
	struct batch *head, *tail;
	uint64_t lost; /* records of envelopes we had no memory for */
};

/* Collected first, queued after the replay: a drop while queueing pops the
 * disk buffer, which must know all its segments by then. */
static void replayed(void *ctx, uint64_t seq, void *buf, size_t len, uint32_t nrecords)
{
	struct replay_list *l = ctx;
	struct batch *b = calloc(1, sizeof(*b));

	if (!b) {
		free(buf);
		b = calloc(1, sizeof(*b)); /* try once more for the placeholder */
		if (!b) {
			l->lost += nrecords;
			return;
		}
		buf = NULL;
		len = 0;
	}
	*b = (struct batch){
		.seq = seq, .buf = buf, .len = len, .nrecords = nrecords, .on_disk = true
	};
	if (l->tail)
		l->tail->next = b;
	else
		l->head = b;
	l->tail = b;
}

int ig_sender_new(struct ig_sender **out, const struct ig_sender_opts *o, struct ig_err *err)
{
	struct ig_sender *s = calloc(1, sizeof(*s));
	int rv = 0;

	if (!s)
		return -ENOMEM;
	s->o = *o;
	s->base_url = strdup(o->url);
	s->pick_key = strdup(o->pick_key ? o->pick_key : "");
	if (!s->base_url || !s->pick_key) {
		free(s->base_url);
		free(s->pick_key);
		free(s);
		return -ENOMEM;
	}
	int naddr = ig_aggr_pick(o->url, s->pick_key, s->url, sizeof(s->url));
	if (naddr == -ENAMETOOLONG) {
		ig_err_add(err, "agent.aggregator: URL too long");
		free(s->base_url);
		free(s->pick_key);
		free(s);
		return -EINVAL;
	}
	if (naddr > 1)
		ig_info("aggregator replicas: dialing the one this agent hashes to",
			"url=%s replicas=%d target=%s", o->url, naddr, s->url);
	s->next_resolve_ns = ig_mono_ns() + o->resolve_interval_ns;
	s->rl_timeout = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_reject = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	s->rl_buffer = (struct ig_ratelimit)IG_RATELIMIT_INIT(10 * IG_NSEC_PER_SEC);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pthread_cond_init(&s->drained, NULL);
	if (o->buffer_dir && *o->buffer_dir) {
		struct ig_dbuf_opts bo = { .dir = o->buffer_dir, .fsync = o->buffer_fsync };
		struct ig_err berr;
		ig_err_init(&berr);
		rv = ig_dbuf_open(&s->dbuf, &bo, &berr);
		if (rv < 0 && !o->buffer_dir_is_default) {
			ig_err_add(err, "%s", ig_err_str(&berr));
			goto fail;
		}
		/* The default directory may be absent from a deployment (a read-only
		 * root without the hostPath): run, but say what that costs. */
		if (rv < 0)
			ig_warn("the default agent.buffer_dir is unusable: the unacknowledged queue "
				"is kept in memory only and is lost if the agent dies; mount a "
				"writable directory there (a hostPath) or set agent.buffer_dir",
				"error=\"%s\"", ig_err_str(&berr));
	}
	if (s->dbuf) {
		struct replay_list l = { 0 };
		ig_dbuf_replay(s->dbuf, replayed, &l, &s->st.lost_buffer_corrupt);
		pthread_mutex_lock(&s->mu);
		s->st.lost_buffer_corrupt += l.lost;
		while (l.head) {
			struct batch *b = l.head;
			l.head = b->next;
			s->st.buffered_records += b->nrecords;
			s->st.replayed_records += b->nrecords;
			if (!b->buf) { /* out of memory: counted, and done on disk */
				s->st.buffered_records -= b->nrecords;
				s->st.lost_buffer_corrupt += b->nrecords;
				ig_dbuf_pop(s->dbuf);
				batch_free(b);
				continue;
			}
			enqueue_locked(s, b);
		}
		pthread_mutex_unlock(&s->mu);
	}
	s->rl_tls = (struct ig_ratelimit)IG_RATELIMIT_INIT(60 * IG_NSEC_PER_SEC);
	s->tls = ig_tls_url_is_tls(o->url);
	if (s->tls) {
		char host[256];
		ig_tls_url_host(o->url, host, sizeof(host));
		s->tls_dir = strdup(o->tls_dir ? o->tls_dir : "");
		s->tls_server_name = strdup(
			o->tls_server_name && *o->tls_server_name ? o->tls_server_name : host);
		if (!s->tls_dir || !s->tls_server_name || ig_tls_init() < 0) {
			ig_err_add(err, "cannot set up TLS");
			goto fail;
		}
	}
	if ((rv = nng_req0_open(&s->sock)) != 0) {
		ig_err_add(err, "cannot open nng REQ socket: %s", nng_strerror(rv));
		goto fail;
	}
	nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, (nng_duration)(o->ack_timeout_ns / 1000000));
	nng_socket_set_ms(s->sock, NNG_OPT_SENDTIMEO, (nng_duration)(o->ack_timeout_ns / 1000000));
	/* nng's own resend (on a pipe loss) complements ours (on timeout). */
	nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME,
			  (nng_duration)(o->ack_timeout_ns / 1000000));
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, 1 << 20);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, s);
	nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s);
	if (dial(s, s->url, &s->dialer, err) != 0)
		goto fail;
	if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
		ig_err_add(err, "cannot start sender thread");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	nng_close(s->sock);
	free(s->tls_dir);
	free(s->tls_server_name);
	free(s->base_url);
	free(s->pick_key);
	while (s->head) {
		struct batch *b = s->head;
		s->head = b->next;
		batch_free(b);
	}
	ig_dbuf_close(s->dbuf);
	free(s);
	return rv < 0 ? rv : -EINVAL;
}

void ig_sender_tls_check(struct ig_sender *s)
{
	struct ig_err err;

	if (!s->tls || !ig_tls_watch_changed(&s->tls_watch, s->tls_dir))
		return;
	ig_err_init(&err);
	if (set_tls(s, s->dialer, &err) < 0) {
		/* Retried at the next change of the files. */
		ig_error("TLS files changed but do not load; new connections keep the previous "
			 "certificate",
			 "dir=%s errors=\"%s\"", s->tls_dir, ig_err_str(&err));
		return;
	}
	ig_info("TLS files changed: new connections to the aggregator use them", "dir=%s",
		s->tls_dir);
}

void ig_sender_enqueue(struct ig_sender *s, uint64_t seq, void *buf, size_t len, uint32_t nrecords)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b) {
		free(buf);
		pthread_mutex_lock(&s->mu);
		s->st.lost_queue_overflow += nrecords;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	b->seq = seq;
	b->buf = buf;
	b->len = len;
	b->nrecords = nrecords;
	pthread_mutex_lock(&s->mu);
	if (s->dbuf) {
		int rc = ig_dbuf_append(s->dbuf, seq, buf, len, nrecords);
		b->on_disk = rc == 0;
		if (rc) {
			uint64_t sup = 0;
			s->st.buffer_errors++;
			if (ig_ratelimit_ok(&s->rl_buffer, &sup))
				ig_error(
					"cannot write an envelope to the disk buffer; it is queued in "
					"memory only (lost if the agent dies before it is acked)",
					"err=\"%s\" buffer_errors=%llu suppressed=%llu",
					strerror(-rc), (unsigned long long)s->st.buffer_errors,
					(unsigned long long)sup);
		} else {
			s->st.buffered_records += nrecords;
		}
	}
	enqueue_locked(s, b);
	pthread_mutex_unlock(&s->mu);
}

/* Queues b after making room (dropping the oldest, counted). Lock held. */
static void enqueue_locked(struct ig_sender *s, struct batch *b)
{
	size_t len = b->len;
	/* Make room: drop the oldest envelopes, counting their records. */
	while (s->head && (s->nbatches + 1 > s->o.queue_max_batches ||
			   s->nbytes + len > s->o.queue_max_bytes)) {
		struct batch *old = s->head;
		s->head = old->next;
		if (!s->head)
			s->tail = NULL;
		s->nbatches--;
		s->nbytes -= old->len;
		s->nrecords -= old->nrecords;
		s->st.lost_queue_overflow += old->nrecords;
		batch_done(s, old);
		batch_free(old);
	}
	if (s->tail)
		s->tail->next = b;
	else
		s->head = b;
	s->tail = b;
	s->nbatches++;
	s->nbytes += len;
	s->nrecords += b->nrecords;
	pthread_cond_signal(&s->cv);
}

uint64_t ig_sender_drain(struct ig_sender *s, uint64_t timeout_ns)
{
	struct timespec ts;
	uint64_t left;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t deadline =
		(uint64_t)ts.tv_sec * IG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec + timeout_ns;
	ts.tv_sec = (time_t)(deadline / IG_NSEC_PER_SEC);
	ts.tv_nsec = (long)(deadline % IG_NSEC_PER_SEC);
	pthread_mutex_lock(&s->mu);
	while (s->head) {
		if (pthread_cond_timedwait(&s->drained, &s->mu, &ts) == ETIMEDOUT)
			break;
	}
	left = s->nrecords;
	pthread_mutex_unlock(&s->mu);
	return left;
}

void ig_sender_stats(struct ig_sender *s, struct ig_sender_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->resends = __atomic_load_n(&s->st.resends, __ATOMIC_RELAXED);
	st->queued_batches = s->nbatches;
	st->queued_bytes = s->nbytes;
	st->queued_records = s->nrecords;
	st->connected = __atomic_load_n(&s->connected, __ATOMIC_RELAXED) > 0;
	pthread_mutex_unlock(&s->mu);
}

void ig_sender_target(struct ig_sender *s, char *out, size_t outlen)
{
	pthread_mutex_lock(&s->mu);
	snprintf(out, outlen, "%s", s->url);
	pthread_mutex_unlock(&s->mu);
}

void ig_sender_free(struct ig_sender *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_broadcast(&s->cv);
	pthread_mutex_unlock(&s->mu);
	/* Closing the socket aborts a pending recv in the thread. */
	nng_close(s->sock);
	pthread_join(s->thread, NULL);
	while (s->head) {
		struct batch *b = s->head;
		s->head = b->next;
		batch_free(b);
	}
	ig_dbuf_close(s->dbuf); /* what was not acked stays on disk for the next start */
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	pthread_cond_destroy(&s->drained);
	free(s->tls_dir);
	free(s->tls_server_name);
	free(s->base_url);
	free(s->pick_key);
	free(s);
}
