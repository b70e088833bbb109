/* probe_dirs: monitor_dirs into a probe's .rodata. See probe_dirs.h. */
#include "probe_dirs.h"

#include <errno.h>
#include <string.h>

int ig_probe_dirs_fill(const struct ig_strlist *l, const char *probe,
		       const struct ig_probe_dirs_rodata *ro, struct ig_err *err)
{
	int rv = 0;
	uint32_t n = 0;

	*ro->monitor_all = false;
	*ro->ndirs = 0;
	if (l->n == 0) {
		ig_err_add(err,
			   "%s.monitor_dirs is empty: list the directories to watch "
			   "(e.g. [\"/etc\"]), or [\"/\"] for everything",
			   probe);
		return -EINVAL;
	}
	if (l->n > IG_PATH_MAX_DIRS) {
		ig_err_add(err,
			   "%s.monitor_dirs has %zu entries; at most %d are "
			   "supported: use a common parent directory",
			   probe, l->n, IG_PATH_MAX_DIRS);
		return -EINVAL;
	}
	for (size_t i = 0; i < l->n; i++) {
		const char *d = l->v[i];
		size_t len = strlen(d);

		if (d[0] != '/') {
			ig_err_add(err,
				   "%s.monitor_dirs: '%s' is not an absolute path: "
				   "write it from the root, e.g. '/%s'",
				   probe, d, d);
			rv = -EINVAL;
			continue;
		}
		while (len > 1 && d[len - 1] == '/')
			len--;
		if (len == 1) {
			*ro->monitor_all = true;
			continue;
		}
		if (len >= IG_PATH_DIR_MAX) {
			ig_err_add(err,
				   "%s.monitor_dirs: '%s' is longer than %d bytes: "
				   "use a shorter parent directory",
				   probe, d, IG_PATH_DIR_MAX - 1);
			rv = -EINVAL;
			continue;
		}
		memset(ro->dirs[n], 0, IG_PATH_DIR_MAX);
		memcpy(ro->dirs[n], d, len);
		ro->dir_len[n] = (uint32_t)len;
		n++;
	}
	*ro->ndirs = *ro->monitor_all ? 0 : n;
	return rv;
}
