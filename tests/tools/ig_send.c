/* ig_send: a test client that speaks the agent's side of the wire protocol.
 *
 *   ig_send URL --raw FILE...        send each file's bytes as one envelope
 *   ig_send URL --random N SEED      send N random/truncated/garbled messages
 *                                    (a bit-flipped envelope may still be valid)
 *   ig_send URL --valid N RECORDS [AGENT_ID [INTERVAL_MS]]
 *                                    send N valid envelopes of RECORDS
 *                                    file.open records each (seq 1..N); with
 *                                    INTERVAL_MS, envelope i leaves at
 *                                    start + i * INTERVAL_MS (a fixed rate);
 *                                    with IG_SEND_STOP_FILE set, it stops early
 *                                    (after an acked envelope) once that file exists
 *   ig_send URL --agent N RECORDS AGENT_ID INTERVAL_MS RESOLVE_MS
 *                                    like --valid, through the agent's own
 *                                    sender (node-agent/sender.c): queue, acks,
 *                                    resends, and the replica choice of
 *                                    aggr_pick.h re-resolved every RESOLVE_MS;
 *                                    prints "target URL" and "moved FROM TO"
 *   ig_send URL --jsonl FILE [AGENT_ID [PER_ENVELOPE]]
 *                                    send the records of a JSON-lines file
 *                                    (one object per line, see jsonl_record),
 *                                    PER_ENVELOPE (default 100) per envelope
 *   ig_send URL --agents N RECORDS PREFIX
 *                                    one valid envelope from each of N agent ids
 *                                    PREFIX-0 .. PREFIX-(N-1) (state-bound tests)
 *   ig_send URL --big BYTES [SEQ]    one envelope of BYTES bytes (a header with
 *                                    seq, then padding): the too_large path
 *
 * Environment: IG_SEND_TLS_DIR (tls.crt/tls.key/ca.crt, for tls+tcp:// URLs),
 * IG_SEND_TLS_SERVER_NAME (default: the URL's host), IG_SEND_NODE (the
 * envelopes' node; default: ig-send), IG_SEND_BOOT_ID (hex, default 1234),
 * IG_SEND_SEQ (the first seq of --valid, default 1; 18446744073709551615 forges
 * the largest). --valid and --agents end with a line
 * "acks ok=N duplicate=N rejected=N".
 *
 * IG_SEND_WIRE_VERSION=1 sends version 1 envelopes (default: the current
 * version).
 *
 * Prints one line per reply: "ack kind=<k> seq=<n> st=<ok|duplicate|rejected> err=<text>"
 * and exits 0 when every request got a well-formed ack. Used by the
 * bad-input integration test and by bench/. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>

#include "ig_err.h"
#include "ig_record.h"
#include "sender.h"
#include "ig_time.h"
#include "ig_tls.h"
#include "ig_wire.h"

static uint64_t n_ok, n_dup, n_rej;

static const char *env_or(const char *name, const char *def)
{
	const char *v = getenv(name);
	return v && *v ? v : def;
}

static const char *st_name(enum ig_ack_status st)
{
	return st == IG_ACK_OK ? "ok" : st == IG_ACK_DUPLICATE ? "duplicate" : "rejected";
}

static const char *cur_kind = "raw";

static struct ig_wire_enc *enc_new(void)
{
	const char *v = getenv("IG_SEND_WIRE_VERSION");

	return ig_wire_enc_new_version(v ? (unsigned)atoi(v) : 0);
}

static int roundtrip(nng_socket s, const void *buf, size_t len, int quiet)
{
	nng_msg *m = NULL;
	if (nng_msg_alloc(&m, len) != 0)
		return -1;
	memcpy(nng_msg_body(m), buf, len);
	int rv = nng_sendmsg(s, m, 0);
	if (rv) {
		nng_msg_free(m);
		fprintf(stderr, "ig_send: send: %s\n", nng_strerror(rv));
		return -1;
	}
	if ((rv = nng_recvmsg(s, &m, 0)) != 0) {
		fprintf(stderr, "ig_send: no reply: %s\n", nng_strerror(rv));
		return -1;
	}
	uint64_t seq;
	enum ig_ack_status st;
	char err[512];
	rv = ig_wire_ack_decode(nng_msg_body(m), nng_msg_len(m), &seq, &st, err, sizeof(err));
	nng_msg_free(m);
	if (rv < 0) {
		fprintf(stderr, "ig_send: malformed ack\n");
		return -1;
	}
	for (char *p = err; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (st == IG_ACK_OK)
		n_ok++;
	else if (st == IG_ACK_DUPLICATE)
		n_dup++;
	else
		n_rej++;
	if (!quiet || (quiet == 1 && st == IG_ACK_REJECTED && n_rej <= 3))
		printf("ack kind=%s seq=%llu st=%s err=%s\n", cur_kind, (unsigned long long)seq,
		       st_name(st), err);
	return (int)st;
}

static void *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *b = malloc(n ? (size_t)n : 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return b;
}

static int build_valid(uint64_t seq, uint32_t nrec, const char *agent_id, void **buf, size_t *len)
{
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = malloc(sizeof(*r));
	char path[256];
	if (!e || !r)
		return -ENOMEM;
	for (uint32_t i = 0; i < nrec; i++) {
		ig_record_reset(r);
		r->kind = "file.open";
		r->probe = "files";
		r->ts_ns = ig_wall_ns();
		r->pid = r->tid = 4242;
		r->ppid = 1;
		r->comm = "ig_send";
		r->cgroup_id = 1;
		snprintf(path, sizeof(path), "/etc/ig-send/%s/%llu/%u", agent_id,
			 (unsigned long long)seq, i);
		ig_record_add_str(r, "path", path, strlen(path));
		ig_record_add_uint(r, "flags", 0);
		ig_record_add_int(r, "ret", 3);
		ig_wire_enc_add(e, r);
	}
	struct ig_envelope_hdr h = { .v = 0, /* the encoder's */
				     .agent_id = agent_id,
				     .node = env_or("IG_SEND_NODE", "ig-send"),
				     .boot_id =
					     strtoull(env_or("IG_SEND_BOOT_ID", "1234"), NULL, 16),
				     .seq = seq,
				     .sent_ns = ig_wall_ns() };
	int rv = ig_wire_enc_finish(e, &h, buf, len);
	ig_wire_enc_free(e);
	free(r);
	return rv;
}

static const char *jstr(struct ig_record *r, struct json_object *o, const char *k)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return ig_record_strdup(r, json_object_get_string(v));
}

static uint64_t jnum(struct json_object *o, const char *k, uint64_t def)
{
	struct json_object *v;

	return json_object_object_get_ex(o, k, &v) ? (uint64_t)json_object_get_int64(v) : def;
}

/* One line of a fixture:
 *   {"kind": "file.open", "probe": "files", "ts_ns": 1, "pid": 42, "tid": 42,
 *    "ppid": 1, "uid": 0, "gid": 0, "cgroup_id": 7, "comm": "cat",
 *    "id": {"scope": "pod", "namespace": "prod", "pod": "web-1",
 *           "container": "app", "container_id": "...", "pod_uid": "...",
 *           "image": "...", "runtime": "containerd", "owner_kind": "Deployment",
 *           "owner_name": "web", "labels": {"app": "web"}},
 *    "fields": {"path": "/etc/passwd", "ret": 3}}
 * Absent members stay unset; integer fields are signed. */
static int jsonl_record(struct ig_record *r, struct json_object *o)
{
	struct json_object *id, *f, *labels;

	ig_record_reset(r);
	r->kind = jstr(r, o, "kind");
	r->probe = jstr(r, o, "probe");
	if (!r->kind || !r->probe)
		return -EINVAL;
	r->ts_ns = jnum(o, "ts_ns", ig_wall_ns());
	r->pid = (uint32_t)jnum(o, "pid", 0);
	r->tid = (uint32_t)jnum(o, "tid", r->pid);
	r->ppid = (uint32_t)jnum(o, "ppid", 0);
	r->uid = (uint32_t)jnum(o, "uid", 0);
	r->gid = (uint32_t)jnum(o, "gid", 0);
	r->cgroup_id = jnum(o, "cgroup_id", 0);
	r->comm = jstr(r, o, "comm");
	if (json_object_object_get_ex(o, "id", &id)) {
		r->id.scope = jstr(r, id, "scope");
		r->id.namespace_ = jstr(r, id, "namespace");
		r->id.pod_name = jstr(r, id, "pod");
		r->id.container_name = jstr(r, id, "container");
		r->id.container_id = jstr(r, id, "container_id");
		r->id.pod_uid = jstr(r, id, "pod_uid");
		r->id.image = jstr(r, id, "image");
		r->id.runtime = jstr(r, id, "runtime");
		r->id.owner_kind = jstr(r, id, "owner_kind");
		r->id.owner_name = jstr(r, id, "owner_name");
		if (json_object_object_get_ex(id, "labels", &labels)) {
			json_object_object_foreach(labels, k, v)
			{
				if (ig_record_add_label(r, k, json_object_get_string(v)) < 0)
					return -ENOSPC;
			}
		}
	}
	if (json_object_object_get_ex(o, "fields", &f)) {
		json_object_object_foreach(f, k, v)
		{
			const char *key = ig_record_strdup(r, k);
			int rv;

			if (json_object_is_type(v, json_type_int))
				rv = ig_record_add_int(r, key, json_object_get_int64(v));
			else {
				const char *sv = json_object_get_string(v);

				rv = ig_record_add_str(r, key, sv, strlen(sv));
			}
			if (rv < 0)
				return rv;
		}
	}
	return 0;
}

/* Sends FILE's records, per_env to an envelope, seq 1, 2, ... */
static int send_jsonl(nng_socket s, const char *path, const char *aid, int per_env)
{
	FILE *f = fopen(path, "r");
	struct ig_wire_enc *e = enc_new();
	struct ig_record *r = malloc(sizeof(*r));
	char line[65536];
	uint64_t seq = 0, nrec = 0;
	int bad = 0, lineno = 0;

	if (!f || !e || !r) {
		fprintf(stderr, "ig_send: cannot read %s\n", path);
		return 1;
	}
	for (;;) {
		bool eof = !fgets(line, sizeof(line), f);

		if (!eof) {
			struct json_object *o;

			lineno++;
			if (line[strspn(line, " \t\r\n")] == '\0')
				continue;
			o = json_tokener_parse(line);
			if (!o || jsonl_record(r, o) < 0 || ig_wire_enc_add(e, r) < 0) {
				fprintf(stderr, "ig_send: %s:%d: not a record this tool can send\n",
					path, lineno);
				json_object_put(o);
				bad = 1;
				break;
			}
			json_object_put(o);
			nrec++;
		}
		if (ig_wire_enc_count(e) && (eof || ig_wire_enc_count(e) >= (uint32_t)per_env)) {
			struct ig_envelope_hdr h = {
				.v = 0, /* the encoder's */
				.agent_id = aid,
				.node = env_or("IG_SEND_NODE", "ig-send"),
				.boot_id = strtoull(env_or("IG_SEND_BOOT_ID", "1234"), NULL, 16),
				.seq = ++seq,
				.sent_ns = ig_wall_ns()
			};
			void *buf;
			size_t len;

			if (ig_wire_enc_finish(e, &h, &buf, &len) < 0) {
				bad = 1;
				break;
			}
			bad |= roundtrip(s, buf, len, 1) != IG_ACK_OK;
			free(buf);
			ig_wire_enc_reset(e);
		}
		if (eof)
			break;
	}
	printf("sent envelopes=%llu records=%llu\n", (unsigned long long)seq,
	       (unsigned long long)nrec);
	fclose(f);
	ig_wire_enc_free(e);
	free(r);
	return bad;
}

static void sleep_until(uint64_t mono_ns)
{
	uint64_t now = ig_mono_ns();
	struct timespec ts;

	if (now >= mono_ns)
		return;
	ts.tv_sec = (time_t)((mono_ns - now) / IG_NSEC_PER_SEC);
	ts.tv_nsec = (long)((mono_ns - now) % IG_NSEC_PER_SEC);
	nanosleep(&ts, NULL);
}

/* Plain nng_dial, or with a TLS configuration from IG_SEND_TLS_DIR. */
static int dial(nng_socket s, const char *url)
{
	nng_dialer d;
	struct ig_err err;
	int rv;

	if (!ig_tls_url_is_tls(url)) {
		if ((rv = nng_dial(s, url, NULL, 0)) != 0)
			fprintf(stderr, "ig_send: cannot dial %s: %s\n", url, nng_strerror(rv));
		return rv;
	}
	ig_err_init(&err);
	if (ig_tls_init() < 0 || (rv = nng_dialer_create(&d, s, url)) != 0) {
		fprintf(stderr, "ig_send: cannot use %s\n", url);
		return 1;
	}
	const char *dir = getenv("IG_SEND_TLS_DIR");
	if (dir && *dir) {
		nng_tls_config *cfg = NULL;
		char host[256];
		ig_tls_url_host(url, host, sizeof(host));
		if (ig_tls_config_load(dir, false, env_or("IG_SEND_TLS_SERVER_NAME", host),
				       "IG_SEND_TLS_DIR", &cfg, &err) < 0) {
			fprintf(stderr, "ig_send: %s\n", ig_err_str(&err));
			return 1;
		}
		nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
	}
	if ((rv = nng_dialer_start(d, 0)) != 0)
		fprintf(stderr, "ig_send: cannot dial %s: %s\n", url, nng_strerror(rv));
	return rv;
}

/* A header that carries seq, then BYTES of padding: msgpack
 * {"v":1,"agent_id":"big","node":"big","boot_id":1,"seq":SEQ,"pad":bin32}. */
static void *build_big(size_t bytes, uint64_t seq, size_t *len)
{
	uint8_t *b = calloc(1, bytes > 128 ? bytes : 128), *p = b;
	if (!b)
		return NULL;
	*p++ = 0x86;
	memcpy(p, "\xa1v\x01", 3), p += 3;
	memcpy(p,
	       "\xa8"
	       "agent_id\xa3"
	       "big",
	       13),
		p += 13;
	memcpy(p,
	       "\xa4node\xa3"
	       "big",
	       9),
		p += 9;
	memcpy(p,
	       "\xa7"
	       "boot_id\x01",
	       9),
		p += 9;
	memcpy(p, "\xa3seq\xcf", 5), p += 5;
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(seq >> (8 * i));
	memcpy(p, "\xa3pad\xc6", 5), p += 5;
	uint32_t pad = (uint32_t)(bytes - (size_t)(p - b) - 4);
	for (int i = 3; i >= 0; i--)
		*p++ = (uint8_t)(pad >> (8 * i));
	*len = bytes;
	return b;
}

static void report_target(struct ig_sender *s, char *last, size_t n)
{
	char cur[512];
	ig_sender_target(s, cur, sizeof(cur));
	if (!last[0])
		printf("target %s\n", cur);
	else if (strcmp(last, cur) != 0)
		printf("moved %s %s\n", last, cur);
	else
		return;
	fflush(stdout);
	snprintf(last, n, "%s", cur);
}

static int agent_mode(const char *url, int n, uint32_t nrec, const char *aid, uint64_t interval_ns,
		      uint64_t resolve_ns)
{
	struct ig_sender_opts o = { .url = url,
				    .pick_key = aid,
				    .resolve_interval_ns = resolve_ns,
				    .queue_max_batches = 1u << 20,
				    .queue_max_bytes = 1ull << 32,
				    .ack_timeout_ns = 1000 * IG_NSEC_PER_MSEC,
				    .reconnect_min_ns = 50 * IG_NSEC_PER_MSEC,
				    .reconnect_max_ns = 500 * IG_NSEC_PER_MSEC };
	struct ig_sender *s;
	struct ig_err err;
	char last[512] = "";

	ig_err_init(&err);
	if (ig_sender_new(&s, &o, &err) < 0) {
		fprintf(stderr, "ig_send: %s\n", ig_err_str(&err));
		return 1;
	}
	report_target(s, last, sizeof(last));
	uint64_t t0 = ig_mono_ns();
	for (int i = 1; i <= n; i++) {
		void *b;
		size_t len;
		if (interval_ns)
			sleep_until(t0 + (uint64_t)(i - 1) * interval_ns);
		if (build_valid((uint64_t)i, nrec, aid, &b, &len) < 0)
			return 1;
		ig_sender_enqueue(s, (uint64_t)i, b, len, nrec);
		report_target(s, last, sizeof(last));
	}
	uint64_t left = 1;
	for (int i = 0; i < 600 && left; i++) {
		left = ig_sender_drain(s, 100 * IG_NSEC_PER_MSEC);
		report_target(s, last, sizeof(last));
	}
	struct ig_sender_stats st;
	ig_sender_stats(s, &st);
	printf("done agent=%s acked=%llu unacked=%llu duplicates=%llu moves=%llu lost=%llu target=%s\n",
	       aid, (unsigned long long)st.records_acked, (unsigned long long)left,
	       (unsigned long long)st.duplicates, (unsigned long long)st.moves,
	       (unsigned long long)(st.lost_queue_overflow + st.lost_rejected), last);
	ig_sender_free(s);
	return left || st.lost_queue_overflow || st.lost_rejected ? 1 : 0;
}

int main(int argc, char **argv)
{
	nng_socket s;
	int bad = 0;

	if (argc < 3) {
		fprintf(stderr,
			"usage: ig_send URL --raw FILE... | --random N SEED | --valid N RECORDS [AGENT_ID [INTERVAL_MS]] | --jsonl FILE [AGENT_ID [PER_ENVELOPE]] | --agents N RECORDS PREFIX | --big BYTES [SEQ]\n");
		return 2;
	}
	ig_time_init();
	if (!strcmp(argv[2], "--agent") && argc >= 8)
		return agent_mode(argv[1], atoi(argv[3]), (uint32_t)atoi(argv[4]), argv[5],
				  (uint64_t)atol(argv[6]) * IG_NSEC_PER_MSEC,
				  (uint64_t)atol(argv[7]) * IG_NSEC_PER_MSEC);
	nng_req0_open(&s);
	nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
	nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
	nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 1 << 20);
	if (dial(s, argv[1]) != 0)
		return 1;
	if (!strcmp(argv[2], "--raw")) {
		for (int i = 3; i < argc; i++) {
			size_t len;
			void *b = slurp(argv[i], &len);
			if (!b) {
				fprintf(stderr, "ig_send: cannot read %s\n", argv[i]);
				return 1;
			}
			bad |= roundtrip(s, b, len, 0) < 0;
			free(b);
		}
	} else if (!strcmp(argv[2], "--random") && argc >= 5) {
		int n = atoi(argv[3]);
		srand((unsigned)atoi(argv[4]));
		void *valid;
		size_t vlen;
		build_valid(1, 5, "ig-send-random", &valid, &vlen);
		for (int i = 0; i < n; i++) {
			size_t len = (size_t)(rand() % 512);
			uint8_t *b = malloc(len + vlen + 1);
			switch (i % 3) {
			case 0: /* random bytes */
				cur_kind = "random";
				for (size_t j = 0; j < len; j++)
					b[j] = (uint8_t)rand();
				break;
			case 1: /* a valid envelope truncated */
				cur_kind = "truncated";
				len = (size_t)rand() % vlen;
				memcpy(b, valid, len);
				break;
			default: /* a valid envelope with bytes flipped (may stay valid) */
				cur_kind = "flipped";
				memcpy(b, valid, vlen);
				len = vlen;
				for (int k = 0; k < 4; k++)
					b[(size_t)rand() % vlen] ^= (uint8_t)(1 + rand() % 255);
				break;
			}
			bad |= roundtrip(s, b, len, 0) < 0;
			free(b);
		}
		free(valid);
	} else if (!strcmp(argv[2], "--valid") && argc >= 5) {
		int n = atoi(argv[3]);
		uint32_t nrec = (uint32_t)atoi(argv[4]);
		const char *aid = argc > 5 ? argv[5] : "ig-send";
		uint64_t interval_ns = argc > 6 ? (uint64_t)atol(argv[6]) * IG_NSEC_PER_MSEC : 0;
		const char *stop_file = getenv("IG_SEND_STOP_FILE");
		uint64_t t0 = ig_mono_ns();
		int sent = 0;
		uint64_t seq0 = strtoull(env_or("IG_SEND_SEQ", "1"), NULL, 10);
		for (int i = 1; i <= n; i++) {
			void *b;
			size_t len;
			if (stop_file && access(stop_file, F_OK) == 0)
				break;
			if (interval_ns)
				sleep_until(t0 + (uint64_t)(i - 1) * interval_ns);
			if (build_valid(seq0 + (uint64_t)(i - 1), nrec, aid, &b, &len) < 0)
				return 1;
			int st = roundtrip(s, b, len, 1);
			bad |= st != IG_ACK_OK;
			free(b);
			sent = i;
		}
		double secs = (double)(ig_mono_ns() - t0) / 1e9;
		printf("sent envelopes=%d records=%llu seconds=%.3f records_per_s=%.0f\n", sent,
		       (unsigned long long)sent * nrec, secs, (double)sent * nrec / secs);
		printf("acks ok=%llu duplicate=%llu rejected=%llu\n", (unsigned long long)n_ok,
		       (unsigned long long)n_dup, (unsigned long long)n_rej);
	} else if (!strcmp(argv[2], "--agents") && argc >= 6) {
		int n = atoi(argv[3]);
		uint32_t nrec = (uint32_t)atoi(argv[4]);
		char aid[256];
		for (int i = 0; i < n; i++) {
			void *b;
			size_t len;
			snprintf(aid, sizeof(aid), "%s-%d", argv[5], i);
			if (build_valid(1, nrec, aid, &b, &len) < 0)
				return 1;
			bad |= roundtrip(s, b, len, 1) < 0;
			free(b);
		}
		printf("acks ok=%llu duplicate=%llu rejected=%llu\n", (unsigned long long)n_ok,
		       (unsigned long long)n_dup, (unsigned long long)n_rej);
	} else if (!strcmp(argv[2], "--big") && argc >= 4) {
		size_t len;
		void *b = build_big((size_t)strtoull(argv[3], NULL, 10),
				    argc > 4 ? strtoull(argv[4], NULL, 10) : 1, &len);
		if (!b)
			return 1;
		cur_kind = "big";
		bad |= roundtrip(s, b, len, 0) < 0;
		free(b);
	} else if (!strcmp(argv[2], "--jsonl") && argc >= 4) {
		int per = argc > 5 ? atoi(argv[5]) : 100;
		bad = send_jsonl(s, argv[3], argc > 4 ? argv[4] : "ig-send", per > 0 ? per : 100);
	} else {
		fprintf(stderr, "ig_send: unknown mode %s\n", argv[2]);
		return 2;
	}
	nng_close(s);
	return bad ? 1 : 0;
}
