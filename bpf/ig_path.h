/* SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause) */
/* ig_path.h: sizes of the in-kernel path handling (bpf/ig_path.bpf.h), shared
 * with user space, which validates monitor_dirs against them and writes the
 * prefixes into a probe's .rodata (node-agent/probe_dirs.c).
 */
#ifndef IG_PATH_H
#define IG_PATH_H

#define IG_PATH_MAX 512 /* path bytes kept, NUL included; longer = truncated */
#define IG_PATH_MAX_DIRS 16 /* monitor_dirs entries */
#define IG_PATH_DIR_MAX 256 /* bytes per monitor_dirs entry, NUL included */

#endif
