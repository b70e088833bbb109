/* test_probe_traffic: the traffic-volume probe against the real kernel.
 *
 * The test forks clients and servers that move exactly known amounts of
 * data: TCP streams of N bytes each way, and M UDP datagrams of K bytes,
 * over loopback (IPv4 and IPv6) and over a veth pair between two network
 * namespaces the test creates (10.200.2.0/24 and fd00:201::/64, addresses
 * only inside those namespaces). The probe is read with an interval of 1 ms
 * so that each consume() is one pass; the records of the test's own
 * processes are summed per (pid, protocol, direction[, remote]) and must
 * match the bytes moved exactly. With method cgroup_skb the children run in
 * a cgroup of their own and the counts are IP packet bytes: exact for UDP
 * (payload + IP and UDP headers), bounded for TCP.
 *
 * Runs twice: the default sock variant (tp_btf) and the classic tracepoint.
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
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_require.h"

#include "netns_harness.h"

#include "bpf_util.h"
#include "cgroup_path.h"
#include "ig_log.h"
#include "ig_time.h"
#include "probe.h"
#include "sysprep.h"

#define MAX_GOT 8192

struct got {
	char comm[IG_COMM_LEN], protocol[8], direction[8], remote_addr[48], method[16];
	uint32_t pid, uid;
	uint64_t cgroup_id, bytes, packets, remote_port, family, interval_ns;
	int has_remote;
};

static struct {
	struct got v[MAX_GOT];
	size_t n;
	size_t bad; /* records with the wrong kind or probe */
} col;

static bool have_root;
static char cg_root[512], cg_dir[600]; /* a cgroup of the test's own (cgroup_skb) */
static uint64_t cg_id;

static void copy_str(char *dst, size_t cap, const char *s)
{
	snprintf(dst, cap, "%s", s ? s : "");
}

static void sink_emit(void *ctx, struct ig_record *r)
{
	(void)ctx;
	if (strcmp(r->kind, "net.traffic") != 0 || strcmp(r->probe, "traffic") != 0) {
		col.bad++;
		return;
	}
	if (col.n == MAX_GOT)
		return;
	struct got *g = &col.v[col.n++];
	memset(g, 0, sizeof(*g));
	copy_str(g->comm, sizeof(g->comm), r->comm);
	g->pid = r->pid;
	g->uid = r->uid;
	g->cgroup_id = r->cgroup_id;
	const struct ig_field *f;
	if ((f = ig_record_field(r, "protocol")))
		copy_str(g->protocol, sizeof(g->protocol), f->s);
	if ((f = ig_record_field(r, "direction")))
		copy_str(g->direction, sizeof(g->direction), f->s);
	if ((f = ig_record_field(r, "method")))
		copy_str(g->method, sizeof(g->method), f->s);
	if ((f = ig_record_field(r, "bytes")))
		g->bytes = f->u;
	if ((f = ig_record_field(r, "packets")))
		g->packets = f->u;
	if ((f = ig_record_field(r, "interval_ns")))
		g->interval_ns = f->u;
	if ((f = ig_record_field(r, "remote_addr"))) {
		g->has_remote = 1;
		copy_str(g->remote_addr, sizeof(g->remote_addr), f->s);
	}
	if ((f = ig_record_field(r, "remote_port")))
		g->remote_port = f->u;
	if ((f = ig_record_field(r, "family")))
		g->family = f->u;
}

static const struct ig_sink sink = { sink_emit, NULL };

struct probe {
	void *state;
	struct ig_traffic_conf tc;
	struct ig_agent_conf ac;
};

static void agent_conf(struct ig_agent_conf *ac)
{
	memset(ac, 0, sizeof(*ac));
	ac->ringbuf_bytes = 1 << 20;
	ac->poll_interval_ns = 100 * IG_NSEC_PER_MSEC;
	ac->mount_tracefs = true;
	ac->mount_bpffs = true;
	ac->cgroup_root = "auto";
}

static int probe_try_open(struct probe *p, uint64_t interval_ns, uint64_t max_entries,
			  bool per_remote, int method, struct ig_err *err)
{
	memset(p, 0, sizeof(*p));
	p->tc.c.enabled = true;
	p->tc.interval_ns = interval_ns;
	p->tc.max_entries = max_entries;
	p->tc.per_remote = per_remote;
	p->tc.method = method;
	agent_conf(&p->ac);
	ig_err_init(err);
	return ig_probe_traffic_ops.open(&p->state, &p->tc, &p->ac, &sink, err);
}

static void probe_open(struct probe *p, bool per_remote, int method)
{
	struct ig_err err;

	int rv = probe_try_open(p, IG_NSEC_PER_MSEC, 16384, per_remote, method, &err);
	if (rv < 0)
		fail_msg("traffic probe open failed: %d %s", rv, ig_err_str(&err));
	assert_non_null(p->state);
	assert_int_equal(ig_probe_traffic_ops.epoll_fd(p->state), -1);
	col.n = 0;
	col.bad = 0;
}

/* One pass (the interval is 1 ms). */
static void pass(struct probe *p)
{
	usleep(2000);
	assert_true(ig_probe_traffic_ops.consume(p->state) >= 0);
}

static void probe_close(struct probe *p)
{
	ig_probe_traffic_ops.close(p->state);
	p->state = NULL;
	assert_int_equal(col.bad, 0);
}

static void require_root(void)
{
	ig_test_require(have_root, "test_probe_traffic needs root to load eBPF programs",
			"run it as root (sudo ctest -R probe_traffic)");
}

/* --- sums over the collected records ------------------------------------ */

struct sum {
	uint64_t bytes, packets;
	size_t records;
};

/* remote NULL: any (or none); "" : records without a remote only. */
static struct sum total(uint32_t pid, const char *proto, const char *dir, const char *remote,
			uint64_t rport)
{
	struct sum s = { 0, 0, 0 };

	for (size_t i = 0; i < col.n; i++) {
		const struct got *g = &col.v[i];
		if (g->pid != pid || strcmp(g->protocol, proto) != 0 ||
		    strcmp(g->direction, dir) != 0)
			continue;
		if (remote && *remote &&
		    (!g->has_remote || strcmp(g->remote_addr, remote) != 0 ||
		     g->remote_port != rport))
			continue;
		if (remote && !*remote && g->has_remote)
			continue;
		s.bytes += g->bytes;
		s.packets += g->packets;
		s.records++;
	}
	return s;
}

static struct sum total_cgroup(uint64_t cgid, const char *proto, const char *dir)
{
	struct sum s = { 0, 0, 0 };

	for (size_t i = 0; i < col.n; i++) {
		const struct got *g = &col.v[i];
		if (g->cgroup_id != cgid || strcmp(g->protocol, proto) != 0 ||
		    strcmp(g->direction, dir) != 0)
			continue;
		s.bytes += g->bytes;
		s.packets += g->packets;
		s.records++;
	}
	return s;
}

static void dump(void)
{
	for (size_t i = 0; i < col.n; i++)
		print_message("  got: pid=%u comm=%s cg=%llu %s %s bytes=%llu packets=%llu "
			      "remote=%s:%llu\n",
			      col.v[i].pid, col.v[i].comm, (unsigned long long)col.v[i].cgroup_id,
			      col.v[i].protocol, col.v[i].direction,
			      (unsigned long long)col.v[i].bytes,
			      (unsigned long long)col.v[i].packets,
			      col.v[i].has_remote ? col.v[i].remote_addr : "-",
			      (unsigned long long)col.v[i].remote_port);
}

static void expect_bytes(struct sum s, uint64_t bytes, const char *what)
{
	if (s.bytes != bytes) {
		dump();
		fail_msg("%s: %llu bytes reported, %llu moved", what, (unsigned long long)s.bytes,
			 (unsigned long long)bytes);
	}
}

/* --- processes and sockets ---------------------------------------------- */

static void enter_cgroup(const char *dir)
{
	char path[700], pid[32];

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	if (fd < 0 || write(fd, pid, (size_t)n) != n)
		_exit(89);
	close(fd);
}

static int bound_socket(const char *addr, int type, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = sockaddr_of(addr, 0, &ss, &len);
	if (fam < 0)
		return -1;
	int fd = socket(fam, type | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) != 0)
		return -1;
	*port = local_port(fd);
	return fd;
}

static int write_all(int fd, size_t n)
{
	char buf[4096];

	memset(buf, 'x', sizeof(buf));
	while (n > 0) {
		ssize_t w = write(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (w <= 0)
			return -1;
		n -= (size_t)w;
	}
	return 0;
}

static int read_exactly(int fd, size_t n, bool peek_first)
{
	char buf[4096];

	while (n > 0) {
		if (peek_first && recv(fd, buf, 1, MSG_PEEK) <= 0)
			return -1;
		ssize_t r = read(fd, buf, n < sizeof(buf) ? n : sizeof(buf));
		if (r <= 0)
			return -1;
		n -= (size_t)r;
	}
	return 0;
}

static int wait_ok(pid_t pid)
{
	int status = 0;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

struct flow {
	int sock_type; /* SOCK_STREAM or SOCK_DGRAM */
	const char *srv_addr; /* server binds here, client sends here */
	const char *srv_ns, *cli_ns, *cgroup;
	size_t up, down; /* TCP: bytes each way */
	size_t dgrams, dsize; /* UDP: M datagrams of K bytes, client -> server */
	bool udp_connect; /* UDP client connect()s first (else sendto) */
	bool peek; /* the server peeks before each read */
	/* out */
	pid_t spid, cpid;
	int port, cport;
};

static void server_main(struct flow *f, int pipefd)
{
	prctl(PR_SET_NAME, "ig-trf-srv", 0, 0, 0);
	enter_cgroup(f->cgroup);
	enter_netns(f->srv_ns);
	int fd = bound_socket(f->srv_addr, f->sock_type, &f->port);
	if (fd < 0)
		_exit(91);
	if (f->sock_type == SOCK_STREAM && listen(fd, 4) != 0)
		_exit(92);
	int big = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (write(pipefd, &f->port, sizeof(f->port)) != sizeof(f->port))
		_exit(93);
	if (f->sock_type == SOCK_DGRAM) {
		struct timeval tv = { 10, 0 };
		char buf[65536];
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		for (size_t i = 0; i < f->dgrams; i++) {
			if (f->peek && recv(fd, buf, 1, MSG_PEEK) <= 0)
				_exit(94);
			ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, NULL, NULL);
			if (r != (ssize_t)f->dsize)
				_exit(95);
		}
		_exit(0);
	}
	int c = accept(fd, NULL, NULL);
	if (c < 0 || read_exactly(c, f->up, f->peek) != 0 || write_all(c, f->down) != 0)
		_exit(96);
	char b;
	if (read(c, &b, 1) != 0)
		_exit(97);
	_exit(0);
}

static void client_main(struct flow *f, int pipefd)
{
	struct sockaddr_storage ss;
	socklen_t len;

	prctl(PR_SET_NAME, "ig-trf-cli", 0, 0, 0);
	enter_cgroup(f->cgroup);
	enter_netns(f->cli_ns);
	int fam = sockaddr_of(f->srv_addr, f->port, &ss, &len);
	int fd = socket(fam, f->sock_type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		_exit(81);
	if (f->sock_type == SOCK_DGRAM) {
		char buf[65536];
		memset(buf, 'u', sizeof(buf));
		if (f->udp_connect && connect(fd, (struct sockaddr *)&ss, len) != 0)
			_exit(82);
		for (size_t i = 0; i < f->dgrams; i++) {
			ssize_t w = f->udp_connect ? send(fd, buf, f->dsize, 0) :
						     sendto(fd, buf, f->dsize, 0,
							    (struct sockaddr *)&ss, len);
			if (w != (ssize_t)f->dsize)
				_exit(83);
			if (i == 0) {
				int cport = local_port(fd);
				if (write(pipefd, &cport, sizeof(cport)) != sizeof(cport))
					_exit(84);
			}
			if (i % 32 == 31)
				usleep(1000); /* let the receiver keep up */
		}
		_exit(0);
	}
	if (connect(fd, (struct sockaddr *)&ss, len) != 0)
		_exit(85);
	int cport = local_port(fd);
	if (write(pipefd, &cport, sizeof(cport)) != sizeof(cport))
		_exit(86);
	if (write_all(fd, f->up) != 0 || read_exactly(fd, f->down, false) != 0)
		_exit(87);
	close(fd);
	_exit(0);
}

static void run_flow(struct flow *f)
{
	int pp[2], cp[2];

	assert_int_equal(pipe(pp), 0);
	assert_int_equal(pipe(cp), 0);
	f->spid = fork();
	assert_true(f->spid >= 0);
	if (f->spid == 0)
		server_main(f, pp[1]);
	assert_int_equal(read(pp[0], &f->port, sizeof(f->port)), sizeof(f->port));
	f->cpid = fork();
	assert_true(f->cpid >= 0);
	if (f->cpid == 0)
		client_main(f, cp[1]);
	assert_int_equal(read(cp[0], &f->cport, sizeof(f->cport)), sizeof(f->cport));
	int crc = wait_ok(f->cpid), src = wait_ok(f->spid);
	if (crc != 0 || src != 0)
		fail_msg("client exited %d, server exited %d", crc, src);
	close(pp[0]);
	close(pp[1]);
	close(cp[0]);
	close(cp[1]);
}

/* The four per-process sums of a TCP flow, or the two of a UDP flow. */
static void check_flow(const struct flow *f)
{
	if (f->sock_type == SOCK_STREAM) {
		expect_bytes(total((uint32_t)f->cpid, "tcp", "tx", NULL, 0), f->up,
			     "client tcp tx");
		expect_bytes(total((uint32_t)f->cpid, "tcp", "rx", NULL, 0), f->down,
			     "client tcp rx");
		expect_bytes(total((uint32_t)f->spid, "tcp", "rx", NULL, 0), f->up,
			     "server tcp rx");
		expect_bytes(total((uint32_t)f->spid, "tcp", "tx", NULL, 0), f->down,
			     "server tcp tx");
		/* 4 KiB writes, each accepted whole by a blocking socket. */
		assert_int_equal(total((uint32_t)f->cpid, "tcp", "tx", NULL, 0).packets,
				 (f->up + 4095) / 4096);
		assert_int_equal(total((uint32_t)f->cpid, "udp", "tx", NULL, 0).records, 0);
		return;
	}
	struct sum tx = total((uint32_t)f->cpid, "udp", "tx", NULL, 0);
	struct sum rx = total((uint32_t)f->spid, "udp", "rx", NULL, 0);
	expect_bytes(tx, f->dgrams * f->dsize, "client udp tx");
	expect_bytes(rx, f->dgrams * f->dsize, "server udp rx");
	assert_int_equal(tx.packets, f->dgrams);
	assert_int_equal(rx.packets, f->dgrams);
	assert_int_equal(total((uint32_t)f->cpid, "tcp", "tx", NULL, 0).records, 0);
}

static void check_comm(pid_t pid, const char *comm)
{
	size_t n = 0;

	for (size_t i = 0; i < col.n; i++)
		if (col.v[i].pid == (uint32_t)pid) {
			assert_string_equal(col.v[i].comm, comm);
			assert_int_equal(col.v[i].uid, getuid());
			assert_true(col.v[i].cgroup_id != 0);
			assert_string_equal(col.v[i].method, "sock");
			n++;
		}
	assert_true(n > 0);
}

/* --- tests -------------------------------------------------------------- */

static void test_loopback_tcp_ipv4_and_ipv6_exact_bytes_per_process(void **state)
{
	struct probe p;
	struct flow f4 = {
		.sock_type = SOCK_STREAM, .srv_addr = "127.0.0.1", .up = 1000000, .down = 12345
	};
	struct flow f6 = { .sock_type = SOCK_STREAM, .srv_addr = "::1", .up = 7, .down = 300001 };

	(void)state;
	require_root();
	probe_open(&p, false, 0);
	run_flow(&f4);
	pass(&p);
	run_flow(&f6);
	pass(&p);
	check_flow(&f4);
	check_flow(&f6);
	check_comm(f4.cpid, "ig-trf-cli");
	check_comm(f4.spid, "ig-trf-srv");
	probe_close(&p);
}

static void test_loopback_udp_ipv4_and_ipv6_exact_bytes_and_datagrams(void **state)
{
	struct probe p;
	struct flow f4 = {
		.sock_type = SOCK_DGRAM, .srv_addr = "127.0.0.1", .dgrams = 200, .dsize = 1000
	};
	struct flow f6 = { .sock_type = SOCK_DGRAM,
			   .srv_addr = "::1",
			   .dgrams = 64,
			   .dsize = 1400,
			   .udp_connect = true };

	(void)state;
	require_root();
	probe_open(&p, false, 0);
	run_flow(&f4);
	run_flow(&f6);
	pass(&p);
	check_flow(&f4);
	check_flow(&f6);
	probe_close(&p);
}

static void test_veth_between_namespaces_tcp_and_udp_ipv4_and_ipv6(void **state)
{
	struct probe p;
	struct flow t4 = {
		.sock_type = SOCK_STREAM, .srv_addr = "10.200.2.2", .up = 500000, .down = 999
	};
	struct flow t6 = {
		.sock_type = SOCK_STREAM, .srv_addr = "fd00:201::2", .up = 4096, .down = 123456
	};
	struct flow u4 = {
		.sock_type = SOCK_DGRAM, .srv_addr = "10.200.2.2", .dgrams = 100, .dsize = 1200
	};
	struct flow u6 = { .sock_type = SOCK_DGRAM,
			   .srv_addr = "fd00:201::2",
			   .dgrams = 50,
			   .dsize = 512,
			   .udp_connect = true };
	struct flow *all[] = { &t4, &t6, &u4, &u6 };

	(void)state;
	require_netns();
	probe_open(&p, false, 0);
	for (size_t i = 0; i < 4; i++) {
		all[i]->cli_ns = ns_a;
		all[i]->srv_ns = ns_b;
		run_flow(all[i]);
	}
	pass(&p);
	for (size_t i = 0; i < 4; i++)
		check_flow(all[i]);
	probe_close(&p);
}

static void test_per_remote_keys_by_peer_address_and_port(void **state)
{
	struct probe p;
	struct flow t = {
		.sock_type = SOCK_STREAM, .srv_addr = "10.200.2.2", .up = 20000, .down = 30000
	};
	struct flow u = { .sock_type = SOCK_DGRAM,
			  .srv_addr = "fd00:201::2",
			  .dgrams = 10,
			  .dsize = 100,
			  .udp_connect = true };

	(void)state;
	require_netns();
	probe_open(&p, true, 0);
	t.cli_ns = u.cli_ns = ns_a;
	t.srv_ns = u.srv_ns = ns_b;
	run_flow(&t);
	run_flow(&u);
	pass(&p);
	expect_bytes(total((uint32_t)t.cpid, "tcp", "tx", "10.200.2.2", (uint64_t)t.port), t.up,
		     "client tcp tx to the server");
	expect_bytes(total((uint32_t)t.cpid, "tcp", "rx", "10.200.2.2", (uint64_t)t.port), t.down,
		     "client tcp rx from the server");
	expect_bytes(total((uint32_t)t.spid, "tcp", "rx", "10.200.2.1", (uint64_t)t.cport), t.up,
		     "server tcp rx from the client");
	expect_bytes(total((uint32_t)t.spid, "tcp", "tx", "10.200.2.1", (uint64_t)t.cport), t.down,
		     "server tcp tx to the client");
	/* Connected UDP client: the peer is known. Unconnected server socket:
	 * no peer in the socket, so no remote in the record. */
	expect_bytes(total((uint32_t)u.cpid, "udp", "tx", "fd00:201::2", (uint64_t)u.port),
		     u.dgrams * u.dsize, "connected udp tx");
	expect_bytes(total((uint32_t)u.spid, "udp", "rx", "", 0), u.dgrams * u.dsize,
		     "unconnected udp rx");
	for (size_t i = 0; i < col.n; i++)
		if (col.v[i].pid == (uint32_t)t.cpid) {
			assert_true(col.v[i].has_remote);
			assert_int_equal(col.v[i].family, 4);
		}
	probe_close(&p);
}

static void test_peeked_bytes_are_counted_once(void **state)
{
	struct probe p;
	struct flow t = {
		.sock_type = SOCK_STREAM, .srv_addr = "127.0.0.1", .up = 65536, .peek = true
	};
	struct flow u = { .sock_type = SOCK_DGRAM,
			  .srv_addr = "127.0.0.1",
			  .dgrams = 20,
			  .dsize = 333,
			  .peek = true };

	(void)state;
	require_root();
	probe_open(&p, false, 0);
	run_flow(&t);
	run_flow(&u);
	pass(&p);
	check_flow(&t);
	check_flow(&u);
	probe_close(&p);
}

static void test_each_interval_reports_only_what_changed(void **state)
{
	struct probe p;
	struct flow a = { .sock_type = SOCK_DGRAM,
			  .srv_addr = "127.0.0.1",
			  .dgrams = 10,
			  .dsize = 100,
			  .udp_connect = true };

	(void)state;
	require_root();
	probe_open(&p, false, 0);
	/* Same process, two bursts, a pass after each: the second pass
	 * reports the second burst only; a third pass reports nothing. */
	int s = -1, port = 0;
	s = bound_socket("127.0.0.1", SOCK_DGRAM, &port);
	assert_true(s >= 0);
	struct sockaddr_storage ss;
	socklen_t len;
	sockaddr_of("127.0.0.1", port, &ss, &len);
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	char buf[2000] = { 0 };
	for (int i = 0; i < 3; i++)
		assert_int_equal(send(c, buf, 1000, 0), 1000);
	pass(&p);
	struct sum first = total((uint32_t)getpid(), "udp", "tx", NULL, 0);
	assert_int_equal(first.bytes, 3000);
	assert_int_equal(first.records, 1);
	size_t n0 = col.n;
	for (int i = 0; i < 2; i++)
		assert_int_equal(send(c, buf, 700, 0), 700);
	pass(&p);
	struct sum both = total((uint32_t)getpid(), "udp", "tx", NULL, 0);
	assert_int_equal(both.bytes, 3000 + 1400);
	assert_int_equal(both.packets, 5);
	assert_int_equal(both.records, 2);
	for (size_t i = n0; i < col.n; i++)
		if (col.v[i].pid == (uint32_t)getpid() && strcmp(col.v[i].direction, "tx") == 0) {
			assert_int_equal(col.v[i].bytes, 1400);
			assert_true(col.v[i].interval_ns > 0);
		}
	size_t n1 = col.n;
	pass(&p);
	for (size_t i = n1; i < col.n; i++)
		assert_false(col.v[i].pid == (uint32_t)getpid());
	(void)a;
	close(c);
	close(s);
	probe_close(&p);
}

static void test_close_reports_the_last_partial_interval(void **state)
{
	struct probe p;
	struct ig_err err;

	(void)state;
	require_root();
	/* An hour: consume() never reads; only close() does. */
	assert_int_equal(probe_try_open(&p, 3600 * IG_NSEC_PER_SEC, 1024, false, 0, &err), 0);
	col.n = 0;
	struct flow f = {
		.sock_type = SOCK_DGRAM, .srv_addr = "127.0.0.1", .dgrams = 5, .dsize = 10
	};
	run_flow(&f);
	assert_int_equal(ig_probe_traffic_ops.consume(p.state), 0);
	assert_int_equal(col.n, 0);
	probe_close(&p);
	check_flow(&f);
}

static void test_full_table_evicts_and_counts_evictions(void **state)
{
	struct probe p;
	struct ig_err err;
	struct ig_probe_stats st;
	enum { NDEST = 300 };

	(void)state;
	require_netns();
	assert_int_equal(probe_try_open(&p, IG_NSEC_PER_MSEC, 64, true, 0, &err), 0);
	col.n = 0;
	/* A child in namespace A sends one datagram to each of NDEST ports
	 * of B (nothing listens there) from a connected socket: one key
	 * per destination. */
	pid_t c = fork();
	assert_true(c >= 0);
	if (c == 0) {
		struct sockaddr_storage ss;
		socklen_t len;
		enter_netns(ns_a);
		for (int i = 0; i < NDEST; i++) {
			int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			sockaddr_of("10.200.2.2", 20000 + i, &ss, &len);
			if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) != 0 ||
			    send(fd, "x", 1, 0) != 1)
				_exit(1);
			close(fd);
		}
		_exit(0);
	}
	assert_int_equal(wait_ok(c), 0);
	pass(&p);
	ig_probe_traffic_ops.stats(p.state, &st);
	/* At most 64 keys were live at the pass; the rest were evicted and
	 * counted (their bytes are the ones missing from the records). */
	struct sum got = total((uint32_t)c, "udp", "tx", NULL, 0);
	assert_true(got.records <= 64);
	assert_true(st.other_lost >= NDEST - 64);
	assert_true(st.other_lost + got.bytes >= NDEST);
	probe_close(&p);
}

static void test_bad_settings_are_rejected_with_advice(void **state)
{
	struct probe p;
	struct ig_err err;

	(void)state;
	require_root();
	assert_int_equal(probe_try_open(&p, IG_NSEC_PER_SEC, 10, false, 0, &err), -EINVAL);
	assert_null(p.state);
	assert_non_null(strstr(ig_err_str(&err), "max_entries"));

	const char *old = getenv("INGRAIN_TRAFFIC_VARIANT");
	char *saved = old ? strdup(old) : NULL;
	setenv("INGRAIN_TRAFFIC_VARIANT", "kprobe", 1);
	int rv = probe_try_open(&p, IG_NSEC_PER_SEC, 1024, false, 0, &err);
	if (saved)
		setenv("INGRAIN_TRAFFIC_VARIANT", saved, 1);
	else
		unsetenv("INGRAIN_TRAFFIC_VARIANT");
	free(saved);
	assert_int_equal(rv, -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "use tracepoint or tp_btf"));
}

/* cgroup_skb: IP packets per socket cgroup, no process. UDP is exact:
 * payload + 28 bytes (IPv4 + UDP headers) or 48 (IPv6 + UDP) a datagram. */
static void test_cgroup_skb_counts_ip_packets_per_cgroup(void **state)
{
	struct probe p;
	struct flow u4 = { .sock_type = SOCK_DGRAM,
			   .srv_addr = "127.0.0.1",
			   .dgrams = 40,
			   .dsize = 1000,
			   .cgroup = cg_dir };
	struct flow u6 = { .sock_type = SOCK_DGRAM,
			   .srv_addr = "fd00:201::2",
			   .dgrams = 30,
			   .dsize = 200,
			   .cgroup = cg_dir,
			   .udp_connect = true };
	struct flow t = { .sock_type = SOCK_STREAM,
			  .srv_addr = "127.0.0.1",
			  .up = 200000,
			  .down = 0,
			  .cgroup = cg_dir };

	(void)state;
	require_netns();
	if (!cg_id)
		fail_msg("could not create a cgroup under %s for the test", cg_root);
	probe_open(&p, false, 2);
	run_flow(&u4);
	pass(&p);
	struct sum tx = total_cgroup(cg_id, "udp", "tx"), rx = total_cgroup(cg_id, "udp", "rx");
	expect_bytes(tx, 40 * (1000 + 28), "cgroup udp/ipv4 tx");
	expect_bytes(rx, 40 * (1000 + 28), "cgroup udp/ipv4 rx");
	assert_int_equal(tx.packets, 40);
	assert_int_equal(rx.packets, 40);
	for (size_t i = 0; i < col.n; i++)
		if (col.v[i].cgroup_id == cg_id) {
			assert_int_equal(col.v[i].pid, 0);
			assert_string_equal(col.v[i].method, "cgroup_skb");
		}

	col.n = 0;
	u6.cli_ns = ns_a;
	u6.srv_ns = ns_b;
	run_flow(&u6);
	pass(&p);
	expect_bytes(total_cgroup(cg_id, "udp", "tx"), 30 * (200 + 48), "cgroup udp/ipv6 tx");
	expect_bytes(total_cgroup(cg_id, "udp", "rx"), 30 * (200 + 48), "cgroup udp/ipv6 rx");

	/* TCP: payload plus headers of every segment and ACK, SYN and FIN. */
	col.n = 0;
	run_flow(&t);
	pass(&p);
	struct sum ttx = total_cgroup(cg_id, "tcp", "tx");
	assert_true(ttx.bytes >= t.up);
	assert_true(ttx.bytes <= t.up + ttx.packets * 80);
	probe_close(&p);
}

/* --- namespaces and cgroup ---------------------------------------------- */

static void netns_setup(void)
{
	netns_setup_tagged("trf", 2);
}

static void cgroup_setup(void)
{
	struct stat stt;

	cg_id = 0;
	if (ig_cgroup_root_detect("auto", cg_root, sizeof(cg_root), NULL) < 0)
		return;
	snprintf(cg_dir, sizeof(cg_dir), "%s/ig-test-traffic-%d", cg_root, (int)getpid());
	if (mkdir(cg_dir, 0755) != 0 && errno != EEXIST)
		return;
	if (stat(cg_dir, &stt) == 0)
		cg_id = stt.st_ino; /* a cgroup's id is its directory's inode number */
}

static void cgroup_teardown(void)
{
	if (cg_id)
		rmdir(cg_dir);
	cg_id = 0;
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
		cgroup_setup();
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	netns_teardown();
	cgroup_teardown();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loopback_tcp_ipv4_and_ipv6_exact_bytes_per_process),
		cmocka_unit_test(test_loopback_udp_ipv4_and_ipv6_exact_bytes_and_datagrams),
		cmocka_unit_test(test_veth_between_namespaces_tcp_and_udp_ipv4_and_ipv6),
		cmocka_unit_test(test_per_remote_keys_by_peer_address_and_port),
		cmocka_unit_test(test_peeked_bytes_are_counted_once),
		cmocka_unit_test(test_each_interval_reports_only_what_changed),
		cmocka_unit_test(test_close_reports_the_last_partial_interval),
		cmocka_unit_test(test_full_table_evicts_and_counts_evictions),
		cmocka_unit_test(test_bad_settings_are_rejected_with_advice),
		cmocka_unit_test(test_cgroup_skb_counts_ip_packets_per_cgroup),
	};
	/* Kernels before 6.2 have no sock_send_length tracepoint: the probe
	 * counts with cgroup_skb there (per cgroup, no process), which the
	 * per-process tests cannot check; the rest runs. */
	const struct CMUnitTest cgroup_only[] = {
		cmocka_unit_test(test_bad_settings_are_rejected_with_advice),
		cmocka_unit_test(test_cgroup_skb_counts_ip_packets_per_cgroup),
	};
	signal(SIGPIPE, SIG_IGN);
	if (geteuid() == 0 && !(ig_bpf_has_tp_btf_event("sock_send_length") ||
				ig_bpf_has_tracepoint("sock", "sock_send_length"))) {
		print_message("NOTE: this kernel has no sock:sock_send_length tracepoint (6.2+); "
			      "only the cgroup_skb method is tested\n");
		return cmocka_run_group_tests_name("traffic probe, cgroup_skb only", cgroup_only,
						   group_setup, group_teardown);
	}
	int failed = cmocka_run_group_tests_name("traffic probe, default variant", tests,
						 group_setup, group_teardown);
	if (geteuid() != 0 || ig_test_default_variant_only())
		return failed;
	setenv("INGRAIN_TRAFFIC_VARIANT", "tracepoint", 1);
	failed += cmocka_run_group_tests_name("traffic probe, tracepoint variant", tests,
					      group_setup, group_teardown);
	return failed;
}
