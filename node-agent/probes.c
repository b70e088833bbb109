/* probes: the table of probes the agent knows, in enum ig_probe_kind order.
 * Adding a probe: bpf/<name>.bpf.c + bpf/<name>.h + node-agent/probe_<name>.c,
 * its conf section in ig_conf, and one line here (see probe.h). */
#include "probe.h"

const struct ig_probe_ops *const ig_probe_table[] = {
	&ig_probe_files_ops,   &ig_probe_tcp_ops, &ig_probe_traffic_ops,
	&ig_probe_file_io_ops, &ig_probe_dns_ops, NULL,
};
