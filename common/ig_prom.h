/* ig_prom: builds a Prometheus text-format exposition (version 0.0.4) in a
 * growing buffer. Each family is declared once (HELP/TYPE), then samples:
 *
 *   ig_prom_family(p, "ingrain_agent_records_total", "counter", "Records read from probes.");
 *   ig_prom_sample(p, "ingrain_agent_records_total", "probe", "files", v);
 *
 * Label values are escaped as the format requires. */
#ifndef IG_PROM_H
#define IG_PROM_H

#include <stddef.h>

struct ig_prom {
	char *buf;
	size_t len, cap;
};

void ig_prom_init(struct ig_prom *p);
void ig_prom_free(struct ig_prom *p);
void ig_prom_family(struct ig_prom *p, const char *name, const char *type, const char *help);
/* Up to two label pairs (pass NULL keys for fewer). */
void ig_prom_sample(struct ig_prom *p, const char *name, const char *k1, const char *v1, double v);
void ig_prom_sample2(struct ig_prom *p, const char *name, const char *k1, const char *v1,
		     const char *k2, const char *v2, double v);

#endif
