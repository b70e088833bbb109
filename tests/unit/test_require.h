/* test_require.h: the project's rule for a test whose prerequisite is
 * missing (root, a kernel feature, a tool): under CI=true it FAILS, so a broken
 * CI set-up can never pass by skipping; elsewhere it is reported as SKIPPED
 * with what to do. Include after <cmocka.h>. */
#ifndef IG_TEST_REQUIRE_H
#define IG_TEST_REQUIRE_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static void ig_test_require(bool ok, const char *what, const char *how)
{
	const char *ci = getenv("CI");

	if (ok)
		return;
	if (ci && strcmp(ci, "true") == 0)
		fail_msg("%s (a missing prerequisite fails under CI=true)", what);
	print_message("SKIPPED: %s; %s\n", what, how);
	skip();
}

/* IG_TEST_VARIANTS=default: a probe test runs its cases under the variant
 * the feature probes choose only, not again under each forced variant (the
 * kernel matrix does so under QEMU, where time is short; docs/kernels.md). */
static inline bool ig_test_default_variant_only(void)
{
	const char *v = getenv("IG_TEST_VARIANTS");

	return v && strcmp(v, "default") == 0;
}

#endif
