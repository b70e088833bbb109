/* test_capture: the capture layer's pure helpers (node-agent/capture.c):
 * the cgroup v1 net_cls/net_prio detection the agent warns about at start,
 * and address formatting. The layer itself runs in the dns tests
 * (tests/integration/test_dns_*.sh) against the real kernel. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "capture.h"

static char *write_tmp(const char *text)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/ig-test-capture-%d", (int)getpid());
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_net_cls_mount_is_found(void **s)
{
	char where[256] = "";
	(void)s;

	const char *p = write_tmp(
		"22 1 0:21 / /sys rw,nosuid shared:7 - sysfs sysfs rw\n"
		"30 25 0:26 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
		"31 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw shared:11 - cgroup cgroup rw,cpu,cpuacct\n"
		"32 25 0:28 / /sys/fs/cgroup/net_cls,net_prio rw shared:12 - cgroup cgroup "
		"rw,net_cls,net_prio\n");
	assert_true(ig_capture_v1_netcls_mounted(p, where, sizeof(where)));
	assert_string_equal(where, "/sys/fs/cgroup/net_cls,net_prio");
	unlink(p);
}

static void test_no_net_cls_means_no_warning(void **s)
{
	char where[256] = "";
	(void)s;

	const char *p = write_tmp(
		"30 25 0:26 / /sys/fs/cgroup rw shared:10 - cgroup2 cgroup2 rw,nsdelegate\n"
		"31 25 0:27 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n"
		"33 25 0:29 / /mnt/net_cls rw - tmpfs net_cls rw\n");
	assert_false(ig_capture_v1_netcls_mounted(p, where, sizeof(where)));
	unlink(p);
	assert_false(ig_capture_v1_netcls_mounted("/nonexistent/mountinfo", where, sizeof(where)));
}

static void test_addresses_print_as_on_the_wire(void **s)
{
	uint8_t a4[16] = { 10, 200, 12, 1 };
	uint8_t a6[16] = { 0xfd, 0, 2, 0x12, [15] = 1 };
	char buf[64];
	(void)s;

	assert_string_equal(ig_cap_addr_str(4, a4, buf, sizeof(buf)), "10.200.12.1");
	assert_string_equal(ig_cap_addr_str(6, a6, buf, sizeof(buf)), "fd00:212::1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_net_cls_mount_is_found),
		cmocka_unit_test(test_no_net_cls_means_no_warning),
		cmocka_unit_test(test_addresses_print_as_on_the_wire),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
