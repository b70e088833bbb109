/* probe_dirs: monitor_dirs for the probes that filter on paths in the kernel
 * (files, file_io), written into their skeleton's .rodata.
 *
 * Both probes include bpf/ig_path.bpf.h, which declares the same .rodata
 * variables (ig_dirs, ig_dir_len, ig_ndirs, ig_monitor_all); each skeleton
 * has its own struct type for them, so callers pass the members' addresses.
 * The configuration loader has already normalised the entries (ig_conf.c);
 * this checks again what the kernel side relies on (absolute, bounded) so a
 * hand-built configuration cannot load something the matcher gets wrong.
 */
#ifndef IG_PROBE_DIRS_H
#define IG_PROBE_DIRS_H

#include <stdbool.h>
#include <stdint.h>

#include "ig_config.h"
#include "ig_err.h"
#include "ig_path.h"

struct ig_probe_dirs_rodata {
	char (*dirs)[IG_PATH_DIR_MAX]; /* ig_dirs: IG_PATH_MAX_DIRS entries */
	uint32_t *dir_len; /* ig_dir_len */
	uint32_t *ndirs; /* ig_ndirs */
	bool *monitor_all; /* ig_monitor_all */
};

/* Fills the .rodata from l. "/" sets monitor_all (ndirs is then 0). probe
 * names the configuration section in messages ("probes.files"). 0, or
 * -EINVAL with every problem in err. */
int ig_probe_dirs_fill(const struct ig_strlist *l, const char *probe,
		       const struct ig_probe_dirs_rodata *ro, struct ig_err *err);

#endif
