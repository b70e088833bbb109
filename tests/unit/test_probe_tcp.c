/* test_probe_tcp: the TCP lifecycle probe against the real kernel.
 *
 * Each scenario loads the probe, runs real connections between processes
 * this test forks (over loopback, and over a veth pair between two network
 * namespaces the test creates with its own addresses), drains the ring
 * buffer and checks the records of those connections: kind, pid/comm of
 * the right process on each end (the acceptor, not the listener; the
 * connector, though the handshake completes in softirq), addresses, ports,
 * exact byte counts and the error of a refused connect. Other traffic on
 * the machine is ignored by matching on the test's ports and pids.
 *
 * Runs twice: the default variant (tp_btf) and the classic tracepoint.
 * Needs root: skipped with a message without it, a failure when CI=true.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_require.h"

#include "netns_harness.h"

#include "bpf_util.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "sysprep.h"

#define MAX_GOT 256

struct got {
	char kind[24], comm[IG_COMM_LEN], saddr[48], daddr[48], side[8], owner[12], error[24];
	uint32_t pid, tid, uid;
	uint64_t family, sport, dport, duration_ns, bytes_sent, bytes_received, cgroup_id, ts_ns;
	int has_bytes, has_error;
};

static struct {
	struct got v[MAX_GOT];
	size_t n;
} col;

static bool have_root;

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static void sink_emit(void *ctx, struct ig_record *r)
{
	(void)ctx;
	if (col.n == MAX_GOT)
		return;
	struct got *g = &col.v[col.n++];
	memset(g, 0, sizeof(*g));
	copy_str(g->kind, sizeof(g->kind), r->kind);
	copy_str(g->comm, sizeof(g->comm), r->comm);
	g->pid = r->pid;
	g->tid = r->tid;
	g->uid = r->uid;
	g->cgroup_id = r->cgroup_id;
	g->ts_ns = r->ts_ns;
	const struct ig_field *f;
	if ((f = ig_record_field(r, "saddr")))
		copy_str(g->saddr, sizeof(g->saddr), f->s);
	if ((f = ig_record_field(r, "daddr")))
		copy_str(g->daddr, sizeof(g->daddr), f->s);
	if ((f = ig_record_field(r, "side")))
		copy_str(g->side, sizeof(g->side), f->s);
	if ((f = ig_record_field(r, "owner")))
		copy_str(g->owner, sizeof(g->owner), f->s);
	if ((f = ig_record_field(r, "error"))) {
		g->has_error = 1;
		copy_str(g->error, sizeof(g->error), f->s);
	}
	if ((f = ig_record_field(r, "family")))
		g->family = f->u;
	if ((f = ig_record_field(r, "sport")))
		g->sport = f->u;
	if ((f = ig_record_field(r, "dport")))
		g->dport = f->u;
	if ((f = ig_record_field(r, "duration_ns")))
		g->duration_ns = f->u;
	if ((f = ig_record_field(r, "bytes_sent"))) {
		g->has_bytes = 1;
		g->bytes_sent = f->u;
	}
	if ((f = ig_record_field(r, "bytes_received")))
		g->bytes_received = f->u;
}

static const struct ig_sink sink = { sink_emit, NULL };

struct probe {
	void *state;
	struct ig_tcp_conf tc;
	struct ig_agent_conf ac;
};

static void agent_conf(struct ig_agent_conf *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->ringbuf_bytes = 1 << 20;
	ac->wakeup_records = 1;
	ac->poll_interval_ns = 100 * IG_NSEC_PER_MSEC;
	ac->mount_tracefs = true;
	ac->mount_bpffs = true;
}

static void probe_open(struct probe *p, bool include_failed)
{
	struct ig_err err;

	memset(p, 0, sizeof(*p));
	p->tc.c.enabled = true;
	p->tc.include_failed = include_failed;
	agent_conf(&p->ac);
	ig_err_init(&err);
	int rv = ig_probe_tcp_ops.open(&p->state, &p->tc, &p->ac, &sink, &err);
	if (rv < 0)
		fail_msg("tcp probe open failed: %d %s", rv, ig_err_str(&err));
	assert_non_null(p->state);
	assert_true(ig_probe_tcp_ops.epoll_fd(p->state) >= 0);
	col.n = 0;
}

static void drain(struct probe *p)
{
	int rv;

	do {
		rv = ig_probe_tcp_ops.consume(p->state);
		assert_true(rv >= 0);
	} while (rv > 0);
}

static void probe_close(struct probe *p)
{
	struct ig_probe_stats st;

	ig_probe_tcp_ops.stats(p->state, &st);
	assert_int_equal(st.ringbuf_full, 0);
	if (st.other_lost)
		print_message("NOTE: %llu program runs skipped by the kernel (other_lost)\n",
			      (unsigned long long)st.other_lost);
	ig_probe_tcp_ops.close(p->state);
	p->state = NULL;
}

static void require_root(void)
{
	ig_test_require(have_root, "test_probe_tcp needs root to load eBPF programs",
			"run it as root (sudo ctest -R probe_tcp)");
}

/* --- processes and sockets ---------------------------------------------- */

/* A listening socket on addr:0; returns the fd, *port set. */
static int listen_on(const char *addr, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = sockaddr_of(addr, 0, &ss, &len);
	if (fam < 0)
		return -1;
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 16) != 0)
		return -1;
	*port = local_port(fd);
	return fd;
}

static int write_all(int fd, size_t n)
{
	char buf[4096];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	while (n > 0) {
		ssize_t w = write(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (w <= 0)
			return -1;
		n -= (size_t)w;
	}
	return 0;
}

static int read_exactly(int fd, size_t n)
{
	char buf[4096];

	while (n > 0) {
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

static void set_comm(const char *name)
{
	prctl(PR_SET_NAME, name, 0, 0, 0);
}

static int wait_ok(pid_t pid)
{
	int status = 0;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) :
				   100 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

struct scen {
	const char *srv_addr; /* listen address */
	const char *dst_addr; /* what the client connects to (may be IPv4-mapped) */
	const char *srv_ns, *cli_ns;
	bool parent_listens; /* else the server child listens itself */
	bool use_accept4;
	size_t up, down; /* bytes client -> server, server -> client */
	/* out */
	pid_t spid, cpid;
	int port, cport;
};

/* Server child: (listen,) accept, read `up` bytes, write `down`, close. */
static void server_main(struct scen *s, int lfd, int portpipe)
{
	set_comm("ig-tcp-srv");
	enter_netns(s->srv_ns);
	if (lfd < 0) {
		lfd = listen_on(s->srv_addr, &s->port);
		if (lfd < 0)
			_exit(91);
	}
	if (write(portpipe, &s->port, sizeof(s->port)) != sizeof(s->port))
		_exit(92);
	int c = s->use_accept4 ? (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC) :
				 accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(93);
	if (read_exactly(c, s->up) != 0)
		_exit(94);
	if (write_all(c, s->down) != 0)
		_exit(95);
	/* Wait for the client's FIN so that both sides close in order. */
	char b;
	if (read(c, &b, 1) != 0)
		_exit(96);
	close(c);
	close(lfd);
	_exit(0);
}

/* Client child: connect, write `up`, read `down`, report the local port, close. */
static void client_main(struct scen *s, int portpipe)
{
	struct sockaddr_storage ss;
	socklen_t len;

	set_comm("ig-tcp-cli");
	enter_netns(s->cli_ns);
	int fam = sockaddr_of(s->dst_addr, s->port, &ss, &len);
	int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0)
		_exit(81);
	int cport = local_port(fd);
	if (write(portpipe, &cport, sizeof(cport)) != sizeof(cport))
		_exit(82);
	if (write_all(fd, s->up) != 0)
		_exit(83);
	if (read_exactly(fd, s->down) != 0)
		_exit(84);
	close(fd);
	_exit(0);
}

static void run_scen(struct scen *s)
{
	int pp[2], cp[2], lfd = -1;

	assert_int_equal(pipe(pp), 0);
	assert_int_equal(pipe(cp), 0);
	if (s->parent_listens) {
		lfd = listen_on(s->srv_addr, &s->port);
		assert_true(lfd >= 0);
	}
	s->spid = fork();
	assert_true(s->spid >= 0);
	if (s->spid == 0)
		server_main(s, lfd, pp[1]);
	if (lfd >= 0)
		close(lfd);
	assert_int_equal(read(pp[0], &s->port, sizeof(s->port)), sizeof(s->port));
	s->cpid = fork();
	assert_true(s->cpid >= 0);
	if (s->cpid == 0)
		client_main(s, cp[1]);
	assert_int_equal(read(cp[0], &s->cport, sizeof(s->cport)), sizeof(s->cport));
	assert_int_equal(wait_ok(s->cpid), 0);
	assert_int_equal(wait_ok(s->spid), 0);
	close(pp[0]);
	close(pp[1]);
	close(cp[0]);
	close(cp[1]);
}

/* --- finding records ---------------------------------------------------- */

static const struct got *find(const char *kind, uint64_t sport, uint64_t dport)
{
	for (size_t i = 0; i < col.n; i++)
		if (strcmp(col.v[i].kind, kind) == 0 && col.v[i].sport == sport &&
		    col.v[i].dport == dport)
			return &col.v[i];
	return NULL;
}

static size_t count(const char *kind, uint64_t sport, uint64_t dport)
{
	size_t n = 0;

	for (size_t i = 0; i < col.n; i++)
		if (strcmp(col.v[i].kind, kind) == 0 && col.v[i].sport == sport &&
		    col.v[i].dport == dport)
			n++;
	return n;
}

static void dump(void)
{
	for (size_t i = 0; i < col.n; i++)
		print_message("  got: %s pid=%u comm=%s %s:%llu -> %s:%llu owner=%s sent=%llu "
			      "recv=%llu err=%s\n",
			      col.v[i].kind, col.v[i].pid, col.v[i].comm, col.v[i].saddr,
			      (unsigned long long)col.v[i].sport, col.v[i].daddr,
			      (unsigned long long)col.v[i].dport, col.v[i].owner,
			      (unsigned long long)col.v[i].bytes_sent,
			      (unsigned long long)col.v[i].bytes_received, col.v[i].error);
}

static uint64_t misses(struct probe *p)
{
	struct ig_probe_stats st;

	ig_probe_tcp_ops.stats(p->state, &st);
	return st.other_lost;
}

/* Drains until the record exists (at most 3 s). NULL when it did not come
 * and the probe counted a skipped program run (other_lost): the kernel
 * does not run a classic tracepoint program while another one runs on the
 * same CPU, a loss the probe reports but cannot prevent. Fails otherwise. */
static const struct got *await_or_counted(struct probe *p, const char *kind, uint64_t sport,
					  uint64_t dport)
{
	for (int i = 0; i < 300; i++) {
		drain(p);
		const struct got *g = find(kind, sport, dport);
		if (g)
			return g;
		usleep(10 * 1000);
	}
	dump();
	uint64_t m = misses(p);
	if (m > 0) {
		print_message("NOTE: no %s record for %llu -> %llu; the kernel skipped %llu "
			      "program runs (counted as other_lost)\n",
			      kind, (unsigned long long)sport, (unsigned long long)dport,
			      (unsigned long long)m);
		return NULL;
	}
	fail_msg("no %s record for %llu -> %llu (and no skipped run counted)", kind,
		 (unsigned long long)sport, (unsigned long long)dport);
	return NULL;
}

static const struct got *await(struct probe *p, const char *kind, uint64_t sport, uint64_t dport)
{
	const struct got *g = await_or_counted(p, kind, sport, dport);
	if (!g)
		fail_msg("no %s record for %llu -> %llu", kind, (unsigned long long)sport,
			 (unsigned long long)dport);
	return g;
}

static void assert_proc(const struct got *g, pid_t pid, const char *comm)
{
	if (g->pid != (uint32_t)pid) {
		dump();
		fail_msg("%s: pid %u, expected %d (%s)", g->kind, g->pid, pid, comm);
	}
	assert_int_equal(g->tid, pid); /* single-threaded children */
	assert_string_equal(g->comm, comm);
	assert_int_equal(g->uid, getuid());
	assert_true(g->cgroup_id != 0);
	uint64_t now = ig_wall_ns();
	assert_true(g->ts_ns <= now + IG_NSEC_PER_SEC && g->ts_ns + 60 * IG_NSEC_PER_SEC > now);
}

/* The four records of a finished scenario, checked field by field. */
static bool check_scen(struct probe *p, const struct scen *s, int family, const char *cli_addr,
		       const char *srv_addr)
{
	uint64_t port = (uint64_t)s->port, cport = (uint64_t)s->cport;

	const struct got *con = await_or_counted(p, "tcp.connect", cport, port);
	const struct got *acc = await_or_counted(p, "tcp.accept", port, cport);
	const struct got *cc = await_or_counted(p, "tcp.close", cport, port);
	const struct got *sc = await_or_counted(p, "tcp.close", port, cport);
	if (!con || !acc || !cc || !sc)
		return false;
	assert_proc(con, s->cpid, "ig-tcp-cli");
	assert_int_equal(con->family, family);
	assert_string_equal(con->saddr, cli_addr);
	assert_string_equal(con->daddr, srv_addr);
	assert_string_equal(con->side, "client");
	assert_string_equal(con->owner, "connect");
	assert_false(con->has_bytes);
	assert_false(con->has_error);

	assert_proc(acc, s->spid, "ig-tcp-srv"); /* the acceptor, not the listener */
	assert_int_equal(acc->family, family);
	assert_string_equal(acc->saddr, srv_addr);
	assert_string_equal(acc->daddr, cli_addr);
	assert_string_equal(acc->side, "server");
	assert_string_equal(acc->owner, "accept");

	assert_proc(cc, s->cpid, "ig-tcp-cli");
	assert_string_equal(cc->side, "client");
	assert_true(cc->has_bytes);
	assert_int_equal(cc->bytes_sent, s->up);
	assert_int_equal(cc->bytes_received, s->down);
	assert_true(cc->duration_ns > 0 && cc->duration_ns < 30 * IG_NSEC_PER_SEC);
	assert_string_equal(cc->saddr, cli_addr);

	assert_proc(sc, s->spid, "ig-tcp-srv");
	assert_string_equal(sc->side, "server");
	assert_string_equal(sc->owner, "accept");
	assert_int_equal(sc->bytes_sent, s->down);
	assert_int_equal(sc->bytes_received, s->up);
	assert_true(sc->duration_ns > 0 && sc->duration_ns < 30 * IG_NSEC_PER_SEC);

	/* Exactly one of each. */
	assert_int_equal(count("tcp.connect", cport, port), 1);
	assert_int_equal(count("tcp.accept", port, cport), 1);
	assert_int_equal(count("tcp.close", cport, port), 1);
	assert_int_equal(count("tcp.close", port, cport), 1);
	return true;
}

/* Runs the scenario; again (at most twice more) only when a record was
 * missing and the probe counted the skipped program run. */
static void run_and_check(struct probe *p, struct scen *s, int family, const char *cli_addr,
			  const char *srv_addr)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		run_scen(s);
		if (check_scen(p, s, family, cli_addr, srv_addr))
			return;
	}
	fail_msg("three attempts lost records to skipped program runs");
}

/* --- tests -------------------------------------------------------------- */

static void test_loopback_ipv4_reports_connector_acceptor_and_exact_bytes(void **state)
{
	struct probe p;
	struct scen s = { .srv_addr = "127.0.0.1",
			  .dst_addr = "127.0.0.1",
			  .parent_listens = true,
			  .up = 100000,
			  .down = 4321 };

	(void)state;
	require_root();
	probe_open(&p, true);
	run_and_check(&p, &s, 4, "127.0.0.1", "127.0.0.1");
	probe_close(&p);
}

static void test_loopback_ipv6_with_accept4_reports_exact_bytes(void **state)
{
	struct probe p;
	struct scen s = {
		.srv_addr = "::1", .dst_addr = "::1", .use_accept4 = true, .up = 1, .down = 300000
	};

	(void)state;
	require_root();
	probe_open(&p, true);
	run_and_check(&p, &s, 6, "::1", "::1");
	probe_close(&p);
}

static void test_ipv4_over_dual_stack_socket_is_reported_as_ipv4(void **state)
{
	struct probe p;
	struct scen s = { .srv_addr = "::", .dst_addr = "::ffff:127.0.0.1", .up = 777, .down = 0 };

	(void)state;
	require_root();
	probe_open(&p, true);
	run_and_check(&p, &s, 4, "127.0.0.1", "127.0.0.1");
	probe_close(&p);
}

static void test_veth_between_namespaces_ipv4_and_ipv6(void **state)
{
	struct probe p;
	struct scen s4 = {
		.srv_addr = "10.200.1.2", .dst_addr = "10.200.1.2", .up = 250000, .down = 1234
	};
	struct scen s6 = { .srv_addr = "fd00:200::2",
			   .dst_addr = "fd00:200::2",
			   .use_accept4 = true,
			   .up = 5000,
			   .down = 200000 };

	(void)state;
	require_netns();
	s4.cli_ns = s6.cli_ns = ns_a;
	s4.srv_ns = s6.srv_ns = ns_b;
	probe_open(&p, true);
	run_and_check(&p, &s4, 4, "10.200.1.1", "10.200.1.2");
	run_and_check(&p, &s6, 6, "fd00:200::1", "fd00:200::2");
	probe_close(&p);
}

/* A port nobody listens on: a socket bound to it without listen(). */
static int refused_connect(const char *addr, int *port, int *cport)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = sockaddr_of(addr, 0, &ss, &len);
	int b = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(b >= 0);
	assert_int_equal(bind(b, (struct sockaddr *)&ss, len), 0);
	*port = local_port(b);
	sockaddr_of(addr, *port, &ss, &len);
	int c = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(c >= 0);
	int rv = connect(c, (struct sockaddr *)&ss, len);
	int e = errno;
	*cport = local_port(c);
	close(c);
	close(b);
	return rv == 0 ? 0 : e;
}

static void test_refused_connect_reports_econnrefused_with_the_caller(void **state)
{
	struct probe p;
	int port, cport;
	char comm[IG_COMM_LEN];

	(void)state;
	require_root();
	set_comm("ig-tcp-refuse");
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	probe_open(&p, true);
	assert_int_equal(refused_connect("127.0.0.1", &port, &cport), ECONNREFUSED);
	const struct got *g = await(&p, "tcp.connect_failed", (uint64_t)cport, (uint64_t)port);
	assert_proc(g, getpid(), comm);
	assert_true(g->has_error);
	assert_string_equal(g->error, "ECONNREFUSED");
	assert_int_equal(g->family, 4);
	assert_string_equal(g->daddr, "127.0.0.1");
	assert_string_equal(g->side, "client");

	int port6, cport6;
	assert_int_equal(refused_connect("::1", &port6, &cport6), ECONNREFUSED);
	g = await(&p, "tcp.connect_failed", (uint64_t)cport6, (uint64_t)port6);
	assert_string_equal(g->error, "ECONNREFUSED");
	assert_int_equal(g->family, 6);
	assert_string_equal(g->daddr, "::1");
	/* A failed connect is neither a connect nor a close. */
	assert_null(find("tcp.connect", (uint64_t)cport, (uint64_t)port));
	assert_null(find("tcp.close", (uint64_t)cport, (uint64_t)port));
	probe_close(&p);
}

static void test_include_failed_false_drops_refused_connects_only(void **state)
{
	struct probe p;
	int port, cport;
	struct scen s = { .srv_addr = "127.0.0.1", .dst_addr = "127.0.0.1", .up = 10, .down = 10 };

	(void)state;
	require_root();
	probe_open(&p, false);
	assert_int_equal(refused_connect("127.0.0.1", &port, &cport), ECONNREFUSED);
	run_and_check(&p, &s, 4, "127.0.0.1", "127.0.0.1");
	drain(&p);
	assert_null(find("tcp.connect_failed", (uint64_t)cport, (uint64_t)port));
	probe_close(&p);
}

/* Accepted by nobody: the listener closes with the connection queued. The
 * close is reported with the listening process as owner. */
static void test_connection_never_accepted_is_closed_with_the_listener_as_owner(void **state)
{
	struct probe p;
	struct scen s = { .dst_addr = "127.0.0.1", .up = 10 };
	char comm[IG_COMM_LEN];
	int cp[2];

	(void)state;
	require_root();
	set_comm("ig-tcp-lsn");
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	probe_open(&p, true);
	int lfd = listen_on("127.0.0.1", &s.port);
	assert_true(lfd >= 0);
	assert_int_equal(pipe(cp), 0);
	s.cpid = fork();
	if (s.cpid == 0)
		client_main(&s, cp[1]);
	assert_int_equal(read(cp[0], &s.cport, sizeof(s.cport)), sizeof(s.cport));
	/* The client waits for `down` = 0 bytes and closes: wait for it. */
	assert_int_equal(wait_ok(s.cpid), 0);
	/* Then the listener closes, which resets the queued connection. Only
	 * then is the client's close awaited: an orphaned FIN_WAIT2 socket
	 * whose ACK arrived while close() still held its lock waits out
	 * tcp_fin_timeout (60 s) before it closes, a kernel race that made
	 * this test fail under load; the reset closes it at once. */
	close(lfd);
	const struct got *g = await(&p, "tcp.close", (uint64_t)s.cport, (uint64_t)s.port);
	assert_int_equal(g->bytes_sent, 10);
	g = await(&p, "tcp.close", (uint64_t)s.port, (uint64_t)s.cport);
	assert_proc(g, getpid(), comm);
	assert_string_equal(g->owner, "listener");
	assert_string_equal(g->side, "server");
	assert_int_equal(g->bytes_received, 10);
	assert_null(find("tcp.accept", (uint64_t)s.port, (uint64_t)s.cport));
	close(cp[0]);
	close(cp[1]);
	probe_close(&p);
}

/* Established before the probe loaded, accepted after: reported at accept
 * and at close (duration from the accept). */
static void test_connection_established_before_load_is_tracked_from_accept(void **state)
{
	struct probe p;
	struct scen s = { .dst_addr = "127.0.0.1", .up = 0 };
	char comm[IG_COMM_LEN];
	struct sockaddr_storage ss;
	socklen_t len;

	(void)state;
	require_root();
	set_comm("ig-tcp-late");
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	int lfd = listen_on("127.0.0.1", &s.port);
	assert_true(lfd >= 0);
	sockaddr_of("127.0.0.1", s.port, &ss, &len);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	s.cport = local_port(c);
	probe_open(&p, true);
	int a = accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	const struct got *g = await(&p, "tcp.accept", (uint64_t)s.port, (uint64_t)s.cport);
	assert_proc(g, getpid(), comm);
	assert_string_equal(g->owner, "accept");
	assert_int_equal(write_all(c, 3000), 0);
	assert_int_equal(read_exactly(a, 3000), 0);
	close(c);
	close(a);
	close(lfd);
	g = await(&p, "tcp.close", (uint64_t)s.port, (uint64_t)s.cport);
	assert_proc(g, getpid(), comm);
	assert_int_equal(g->bytes_received, 3000);
	/* The client side was connected before the probe: not reported. */
	drain(&p);
	assert_null(find("tcp.close", (uint64_t)s.cport, (uint64_t)s.port));
	assert_null(find("tcp.connect", (uint64_t)s.cport, (uint64_t)s.port));
	probe_close(&p);
}

static void test_bad_variant_is_rejected_with_advice(void **state)
{
	struct probe p;
	struct ig_err err;
	const char *old = getenv("INGRAIN_TCP_VARIANT");
	char *saved = old ? strdup(old) : NULL;

	(void)state;
	require_root();
	memset(&p, 0, sizeof(p));
	p.tc.c.enabled = true;
	agent_conf(&p.ac);
	setenv("INGRAIN_TCP_VARIANT", "kprobe", 1);
	ig_err_init(&err);
	int rv = ig_probe_tcp_ops.open(&p.state, &p.tc, &p.ac, &sink, &err);
	if (saved)
		setenv("INGRAIN_TCP_VARIANT", saved, 1);
	else
		unsetenv("INGRAIN_TCP_VARIANT");
	free(saved);
	assert_int_equal(rv, -EINVAL);
	assert_null(p.state);
	assert_non_null(strstr(ig_err_str(&err), "use tracepoint or tp_btf"));
}

/* --- namespaces --------------------------------------------------------- */

static void netns_setup(void)
{
	netns_setup_tagged("tcp", 1);
}

static int group_setup(void **state)
{
	(void)state;
	ig_log_set_level(IG_LOG_WARN);
	ig_time_init();
	have_root = geteuid() == 0;
	if (have_root) {
		struct ig_agent_conf ac;
		struct ig_err err;
		agent_conf(&ac);
		ig_err_init(&err);
		if (ig_sysprep(&ac, &err) < 0) {
			print_message("ig_sysprep failed: %s\n", ig_err_str(&err));
			return -1;
		}
		netns_setup();
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	netns_teardown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_ipv4_reports_connector_acceptor_and_exact_bytes),
		cmocka_unit_test(test_loopback_ipv6_with_accept4_reports_exact_bytes),
		cmocka_unit_test(test_ipv4_over_dual_stack_socket_is_reported_as_ipv4),
		cmocka_unit_test(test_veth_between_namespaces_ipv4_and_ipv6),
		cmocka_unit_test(test_refused_connect_reports_econnrefused_with_the_caller),
		cmocka_unit_test(test_include_failed_false_drops_refused_connects_only),
		cmocka_unit_test(
			test_connection_never_accepted_is_closed_with_the_listener_as_owner),
		cmocka_unit_test(test_connection_established_before_load_is_tracked_from_accept),
		cmocka_unit_test(test_bad_variant_is_rejected_with_advice),
	};
	/* The children report through exit codes; a test that fails while
	 * they run must not leave them behind. */
	signal(SIGPIPE, SIG_IGN);
	int failed = cmocka_run_group_tests_name("tcp probe, default variant", tests, group_setup,
						 group_teardown);
	if (geteuid() != 0 || ig_test_default_variant_only())
		return failed;
	setenv("INGRAIN_TCP_VARIANT", "tracepoint", 1);
	failed += cmocka_run_group_tests_name("tcp probe, tracepoint variant", tests, group_setup,
					      group_teardown);
	return failed;
}
