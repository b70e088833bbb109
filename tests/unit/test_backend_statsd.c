/* StatsD backend against a real UDP socket on 127.0.0.1: the exact datagrams
 * for each flavor and tag style, counters summed per series, datagrams never
 * larger than the mtu, sanitising, the bounded series table, and send
 * failures (nobody listening) counted, never fatal. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "ig_backend.h"
#include "ig_time.h"

static const char *const type_key[] = { "type", NULL };

struct rx {
	int fd;
	int port;
};

static void rx_open(struct rx *rx, int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int rcvbuf = 4 << 20;

	rx->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(rx->fd >= 0);
	setsockopt(rx->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	if (bind(rx->fd, (struct sockaddr *)&ss, len) < 0) {
		close(rx->fd);
		rx->fd = -1;
		return;
	}
	assert_int_equal(getsockname(rx->fd, (struct sockaddr *)&ss, &len), 0);
	rx->port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					     ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* One datagram (NUL-terminated) within timeout_ms; its length, or -1. */
static int rx_recv(struct rx *rx, char *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { .fd = rx->fd, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	n = recv(rx->fd, buf, len - 1, 0);
	assert_true(n >= 0);
	buf[n] = '\0';
	return (int)n;
}

static void rx_expect(struct rx *rx, const char *want)
{
	char buf[70000];

	if (rx_recv(rx, buf, sizeof(buf), 2000) < 0)
		fail_msg("no datagram; expected \"%s\"", want);
	assert_string_equal(buf, want);
}

static void rx_expect_nothing(struct rx *rx)
{
	char buf[70000];

	if (rx_recv(rx, buf, sizeof(buf), 100) >= 0)
		fail_msg("unexpected datagram \"%s\"", buf);
}

struct statsd_t {
	const struct ig_backend_ops *ops;
	void *conf;
	void *state;
	struct ig_ydoc *doc;
};

static int start(struct statsd_t *t, struct ig_err *err, const char *fmt, ...)
{
	char yaml[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	memset(t, 0, sizeof(*t));
	ig_err_init(err);
	t->ops = ig_backend_find("statsd");
	assert_non_null(t->ops);
	assert_int_equal(ig_ydoc_load_string("test.yaml", yaml, strlen(yaml), &t->doc, err), 0);
	t->conf = calloc(1, t->ops->conf_size);
	assert_non_null(t->conf);
	rc = ig_cfg_apply(t->ops->opts, t->doc->root, t->conf, "backends.s", type_key, err);
	if (rc < 0)
		return rc;
	return t->ops->init(&t->state, t->conf, "s", err);
}

static void start_ok(struct statsd_t *t, const char *fmt, ...)
{
	char yaml[1024];
	struct ig_err err;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(yaml, sizeof(yaml), fmt, ap);
	va_end(ap);
	if (start(t, &err, "%s", yaml) < 0)
		fail_msg("statsd backend did not start: %s", ig_err_str(&err));
}

static void stop(struct statsd_t *t)
{
	if (t->state)
		t->ops->free(t->state);
	ig_cfg_free(t->ops->opts, t->conf);
	free(t->conf);
	ig_ydoc_free(t->doc);
}

static struct ig_metric *metric(const char *name, enum ig_metric_kind kind, double v)
{
	struct ig_metric *m = malloc(sizeof(*m));

	assert_non_null(m);
	ig_metric_reset(m);
	m->name = name;
	m->kind = kind;
	m->value = v;
	m->ts_ns = 1;
	return m;
}

static void stats(struct statsd_t *t, struct ig_backend_stats *st)
{
	t->ops->stats(t->state, st);
}

static void test_counters_are_summed_per_series_until_flush(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("file.open", IG_M_COUNTER, 1);
	struct ig_backend_stats st;

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d", rx.port);
	for (int i = 0; i < 5; i++)
		assert_int_equal(t.ops->write(t.state, m), 0);
	m->value = 3;
	assert_int_equal(t.ops->write(t.state, m), 0);
	assert_int_equal(t.ops->write(t.state, m), 0);
	rx_expect_nothing(&rx);
	stats(&t, &st);
	assert_int_equal(st.received, 7);
	assert_int_equal(st.queued, 7); /* metrics, not lines */
	t.ops->flush(t.state);
	rx_expect(&rx, "ingrain.file.open:11|c");
	stats(&t, &st);
	assert_int_equal(st.sent, 7); /* the one line carried 7 metrics */
	assert_int_equal(st.queued, 0);
	/* the next interval starts from zero */
	m->value = 1;
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	rx_expect(&rx, "ingrain.file.open:1|c");
	t.ops->flush(t.state);
	rx_expect_nothing(&rx);
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_plain_statsd_drops_tags_by_default(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("file.open", IG_M_COUNTER, 1);

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''", rx.port);
	ig_metric_add_tag(m, "namespace", "prod", IG_TAG_STR);
	assert_int_equal(t.ops->write(t.state, m), 0);
	ig_metric_reset(m);
	m->name = "file.open";
	m->value = 1;
	ig_metric_add_tag(m, "namespace", "dev", IG_TAG_STR);
	assert_int_equal(t.ops->write(t.state, m), 0);
	t.ops->flush(t.state);
	rx_expect(&rx, "file.open:2|c");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_dogstatsd_sends_tags_one_series_per_tag_set(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *a = metric("file.open", IG_M_COUNTER, 1);
	struct ig_metric *b = metric("file.open", IG_M_COUNTER, 1);

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nflavor: dogstatsd", rx.port);
	ig_metric_add_tag(a, "namespace", "prod", IG_TAG_STR);
	ig_metric_add_tag(a, "pod", "web-1", IG_TAG_STR);
	ig_metric_add_tag(b, "namespace", "prod", IG_TAG_STR);
	ig_metric_add_tag(b, "pod", "web-2", IG_TAG_STR);
	t.ops->write(t.state, a);
	t.ops->write(t.state, b);
	t.ops->write(t.state, a);
	t.ops->flush(t.state);
	rx_expect(&rx, "ingrain.file.open:2|c|#namespace:prod,pod:web-1\n"
		       "ingrain.file.open:1|c|#namespace:prod,pod:web-2");
	free(a);
	free(b);
	stop(&t);
	close(rx.fd);
}

static void test_graphite_style_appends_tag_values_to_the_name(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("file.open", IG_M_COUNTER, 1);

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\ntag_style: graphite", rx.port);
	ig_metric_add_tag(m, "namespace", "prod", IG_TAG_STR);
	ig_metric_add_tag(m, "image", "nginx:1.25.3", IG_TAG_STR);
	ig_metric_add_tag(m, "empty", "", IG_TAG_STR);
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "ingrain.file.open.prod.nginx_1_25_3._:1|c");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_names_and_tags_are_sanitised(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("we:ird|na@me,#x y\nz", IG_M_COUNTER, 1);

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nflavor: dogstatsd\nprefix: 'my app:'", rx.port);
	ig_metric_add_tag(m, "k|e:y", "a:b|c,d#e@f g\nh", IG_TAG_STR);
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "my_app_we_ird_na_me__x_y_z:1|c|#k_e_y:a_b_c_d_e_f_g_h");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_gauges_keep_the_last_value_and_negative_ones_reset_first(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("queue", IG_M_GAUGE, 3);

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''", rx.port);
	t.ops->write(t.state, m);
	m->value = 2.5;
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "queue:2.5|g");
	m->value = -5;
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "queue:0|g\nqueue:-5|g");
	stop(&t);
	/* DogStatsD gauges are absolute: no reset line */
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''\nflavor: dogstatsd", rx.port);
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "queue:-5|g");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_histograms_are_timers_on_statsd_and_sets_are_sent_per_sample(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *h = metric("latency", IG_M_HISTOGRAM, 12.5);
	struct ig_metric *s = metric("users", IG_M_SET, 0);
	struct ig_backend_stats st;

	rx_open(&rx, AF_INET);
	s->set_member = "al:ice|x";
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''", rx.port);
	t.ops->write(t.state, h);
	t.ops->write(t.state, h);
	t.ops->write(t.state, s);
	t.ops->flush(t.state);
	/* Etsy StatsD has no |h: histograms are timers there */
	rx_expect(&rx, "latency:12.5|ms\nlatency:12.5|ms\nusers:al_ice_x|s");
	h->value = -1; /* a timer cannot take it: dropped, counted */
	assert_int_equal(t.ops->write(t.state, h), -ERANGE);
	t.ops->stats(t.state, &st);
	assert_int_equal(st.dropped, 1);
	h->value = 12.5;
	stop(&t);
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''\nflavor: dogstatsd", rx.port);
	t.ops->write(t.state, h);
	t.ops->flush(t.state);
	rx_expect(&rx, "latency:12.5|h");
	stop(&t);
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''\nflavor: dogstatsd\ndistribution: true",
		 rx.port);
	ig_metric_add_tag(h, "pod", "a", IG_TAG_STR);
	t.ops->write(t.state, h);
	t.ops->flush(t.state);
	rx_expect(&rx, "latency:12.5|d|#pod:a");
	free(h);
	free(s);
	stop(&t);
	close(rx.fd);
}

static void test_datagrams_never_exceed_the_mtu(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("file.open", IG_M_COUNTER, 1);
	struct ig_backend_stats st;
	char buf[70000], val[16];
	int lines = 0, datagrams = 0, n;
	bool seen[300] = { 0 };

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nflavor: dogstatsd\nmtu: 512", rx.port);
	for (int i = 0; i < 300; i++) {
		ig_metric_reset(m);
		m->name = "file.open";
		m->value = 1;
		snprintf(val, sizeof(val), "%d", i);
		ig_metric_add_tag(m, "path", "/var/lib/some/long/directory/name/file", IG_TAG_STR);
		ig_metric_add_tag(m, "i", val, IG_TAG_STR);
		assert_int_equal(t.ops->write(t.state, m), 0);
	}
	t.ops->flush(t.state);
	while ((n = rx_recv(&rx, buf, sizeof(buf), 500)) >= 0) {
		char *save = NULL;

		datagrams++;
		assert_true(n <= 512);
		assert_true(n > 0 && buf[n - 1] != '\n');
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			int idx;

			assert_int_equal(
				sscanf(l,
				       "ingrain.file.open:1|c|#path:/var/lib/some/long/directory/name/file,i:%d",
				       &idx),
				1);
			assert_true(idx >= 0 && idx < 300 && !seen[idx]);
			seen[idx] = true;
			lines++;
		}
	}
	assert_int_equal(lines, 300);
	assert_true(datagrams >= 300 * 70 / 512);
	stats(&t, &st);
	assert_int_equal(st.sent, 300);
	assert_int_equal(st.dropped, 0);
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_line_longer_than_the_mtu_is_dropped_and_counted(void **state)
{
	struct rx rx;
	struct statsd_t t;
	char name[700];
	struct ig_metric *big, *ok = metric("ok", IG_M_COUNTER, 1);
	struct ig_backend_stats st;

	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	big = metric(name, IG_M_COUNTER, 1);
	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nmtu: 512\nprefix: ''", rx.port);
	assert_int_equal(t.ops->write(t.state, big), -EMSGSIZE);
	big->kind = IG_M_HISTOGRAM;
	assert_int_equal(t.ops->write(t.state, big), -EMSGSIZE);
	assert_int_equal(t.ops->write(t.state, ok), 0);
	t.ops->flush(t.state);
	rx_expect(&rx, "ok:1|c");
	stats(&t, &st);
	assert_int_equal(st.received, 3);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.sent, 1);
	free(big);
	free(ok);
	stop(&t);
	close(rx.fd);
}

static void test_full_series_table_sends_early(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("a", IG_M_COUNTER, 1);
	struct ig_backend_stats st;

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nmax_series: 2\nprefix: ''", rx.port);
	t.ops->write(t.state, m);
	m->name = "b";
	t.ops->write(t.state, m);
	t.ops->write(t.state, m);
	rx_expect_nothing(&rx);
	m->name = "c"; /* a third series: the table is sent first */
	t.ops->write(t.state, m);
	rx_expect(&rx, "a:1|c\nb:2|c");
	stats(&t, &st);
	assert_int_equal(st.queued, 1);
	t.ops->flush(t.state);
	rx_expect(&rx, "c:1|c");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_series_table_grows_past_its_first_size(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("x", IG_M_COUNTER, 1);
	struct ig_backend_stats st;
	char name[32], buf[70000];
	int lines = 0, n;

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nprefix: ''", rx.port);
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 5000; i++) {
			snprintf(name, sizeof(name), "s%d", i);
			m->name = name;
			assert_int_equal(t.ops->write(t.state, m), 0);
		}
	stats(&t, &st);
	assert_int_equal(st.queued, 10000);
	t.ops->flush(t.state);
	while ((n = rx_recv(&rx, buf, sizeof(buf), 500)) >= 0) {
		char *save = NULL;

		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			assert_non_null(strstr(l, ":2|c"));
			lines++;
		}
	}
	assert_int_equal(lines, 5000);
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_tick_sends_at_the_flush_interval(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("t", IG_M_COUNTER, 1);
	uint64_t now = ig_mono_ns();

	rx_open(&rx, AF_INET);
	start_ok(&t, "address: 127.0.0.1:%d\nflush_interval: 10s\nprefix: ''", rx.port);
	t.ops->write(t.state, m);
	t.ops->tick(t.state, now + IG_NSEC_PER_SEC);
	rx_expect_nothing(&rx);
	t.ops->tick(t.state, now + 11 * IG_NSEC_PER_SEC);
	rx_expect(&rx, "t:1|c");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_unreachable_port_counts_every_metric_dropped(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("x", IG_M_COUNTER, 1);
	struct ig_backend_stats st;
	int port;

	rx_open(&rx, AF_INET);
	port = rx.port;
	close(rx.fd); /* nobody listens there now: ICMP port unreachable */
	start_ok(&t, "address: 127.0.0.1:%d", port);
	/* Five flushes of one datagram each, the last one carrying 3 metrics:
	 * every refused datagram is seen (the first one too), and counted in
	 * metrics. */
	for (int i = 0; i < 5; i++) {
		for (int k = 0; k < (i == 4 ? 3 : 1); k++)
			assert_int_equal(t.ops->write(t.state, m), 0);
		t.ops->flush(t.state);
	}
	stats(&t, &st);
	assert_int_equal(st.received, 7);
	assert_int_equal(st.sent, 0);
	assert_int_equal(st.dropped, 7);
	assert_int_equal(st.errors, 5);
	assert_int_equal(st.queued, 0);
	free(m);
	stop(&t);
}

static void test_ipv6_address_in_brackets(void **state)
{
	struct rx rx;
	struct statsd_t t;
	struct ig_metric *m = metric("v6", IG_M_COUNTER, 1);

	rx_open(&rx, AF_INET6);
	if (rx.fd < 0) {
		/* no ::1 on this host: a failure in CI, a visible SKIPPED elsewhere */
		const char *ci = getenv("CI");
		if (ci && !strcmp(ci, "true"))
			fail_msg("no IPv6 loopback (::1) on this host, needed under CI=true");
		skip();
	}
	start_ok(&t, "address: '[::1]:%d'\nprefix: ''", rx.port);
	t.ops->write(t.state, m);
	t.ops->flush(t.state);
	rx_expect(&rx, "v6:1|c");
	free(m);
	stop(&t);
	close(rx.fd);
}

static void test_bad_options_say_what_to_write(void **state)
{
	struct statsd_t t;
	struct ig_err err;

	assert_int_equal(start(&t, &err, "address: localhost"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "address: 'localhost' has no port; write it as "
					      "host:port like 127.0.0.1:8125\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "address: '::1:8125'"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "address: '::1:8125': put an IPv6 address in "
					      "brackets, like [::1]:8125\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "address: '127.0.0.1:99999'"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "address: '127.0.0.1:99999': the port must be a "
					      "number from 1 to 65535\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "address: 'no-such-host.invalid:8125'"), -EINVAL);
	assert_non_null(strstr(ig_err_str(&err), "address: cannot resolve 'no-such-host.invalid'"));
	stop(&t);
	assert_int_equal(start(&t, &err, "tag_style: dogstatsd"), -EINVAL);
	assert_string_equal(ig_err_str(&err),
			    "tag_style: 'dogstatsd' needs 'flavor: dogstatsd' (plain StatsD does "
			    "not read tags); use none or graphite\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "distribution: true"), -EINVAL);
	stop(&t);
	assert_int_equal(start(&t, &err, "mtu: 100"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "test.yaml:1:6: backends.s.mtu: must be between "
					      "512 and 65507; got 100\n");
	stop(&t);
	assert_int_equal(start(&t, &err, "flavour: dogstatsd"), -EINVAL);
	assert_string_equal(ig_err_str(&err), "test.yaml:1:1: backends.s.flavour: unknown key "
					      "(did you mean 'flavor'?)\n");
	stop(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_are_summed_per_series_until_flush),
		cmocka_unit_test(test_plain_statsd_drops_tags_by_default),
		cmocka_unit_test(test_dogstatsd_sends_tags_one_series_per_tag_set),
		cmocka_unit_test(test_graphite_style_appends_tag_values_to_the_name),
		cmocka_unit_test(test_names_and_tags_are_sanitised),
		cmocka_unit_test(test_gauges_keep_the_last_value_and_negative_ones_reset_first),
		cmocka_unit_test(test_histograms_are_timers_on_statsd_and_sets_are_sent_per_sample),
		cmocka_unit_test(test_datagrams_never_exceed_the_mtu),
		cmocka_unit_test(test_line_longer_than_the_mtu_is_dropped_and_counted),
		cmocka_unit_test(test_full_series_table_sends_early),
		cmocka_unit_test(test_series_table_grows_past_its_first_size),
		cmocka_unit_test(test_tick_sends_at_the_flush_interval),
		cmocka_unit_test(test_unreachable_port_counts_every_metric_dropped),
		cmocka_unit_test(test_ipv6_address_in_brackets),
		cmocka_unit_test(test_bad_options_say_what_to_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
