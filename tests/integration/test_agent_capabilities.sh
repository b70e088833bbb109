#!/usr/bin/env bash
# Least privilege: the agent runs under capsh with exactly the capability set
# docs/capabilities.md documents for the files, tcp, file_io and traffic
# probes (CAP_BPF + CAP_PERFMON; tracefs and bpffs already mounted), delivers
# events, and after attaching holds no effective capability (the load set
# only as permitted, for reloads; no_new_privs set). A reload still loads the
# probes. With one capability missing it refuses to start with a message that
# names it (and the traffic probe's cgroup_skb method names CAP_NET_ADMIN).
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd capsh
ig_require_cmd python3
ig_require_built
grep -q tracefs /proc/mounts || mount -t tracefs -o nosuid,nodev,noexec tracefs /sys/kernel/tracing
grep -q ' /sys/fs/bpf bpf' /proc/mounts || mount -t bpf -o nosuid,nodev,noexec bpf /sys/fs/bpf

port=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
mkdir -p "$mon"
ig_files_config "$IG_TMP/config.yaml" "$port" "$mon" "$out"
# All four probes.
sed -i "s|^probes:|probes:\n  tcp:\n    pipelines: [archive]\n  traffic:\n    pipelines: [archive]\n  file_io:\n    monitor_dirs: [\"$mon\"]\n    pipelines: [archive]|" "$IG_TMP/config.yaml"

# capsh --drop takes every capability out of the bounding set but KEEP: root
# then holds exactly KEEP after the exec.
drop_all_but() {
	local keep=$1 all
	all=$(capsh --print | sed -n 's/^Bounding set =//p')
	tr ',' '\n' <<<"$all" | grep -vxE "${keep//,/|}" | paste -sd,
}
DOC_SET=cap_bpf,cap_perfmon
# In sanitizer builds LeakSanitizer needs CAP_SYS_PTRACE to suspend threads
# at exit, which the documented set rightly lacks: no leak check here.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start agent "$IG_TMP/agent.log" "agent running" capsh --drop="$(drop_all_but "$DOC_SET")" -- \
	-c "exec '$IG_AGENT' -c '$IG_TMP/config.yaml' --buffer-dir '$IG_TMP/agent-buffer'"
caps() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$IG_PID_agent/status"; }
ig_check "started with exactly $DOC_SET (bounding set $(caps CapBnd))" [ "$(caps CapBnd)" = 000000c000000000 ]
ig_check "after attaching: no effective capability" [ "$(caps CapEff)" = 0000000000000000 ]
ig_check "after attaching: only the load set permitted (for reloads)" [ "$(caps CapPrm)" = 000000c000000000 ]
ig_check "no_new_privs is set" [ "$(awk '$1 == "NoNewPrivs:" {print $2}' /proc/$IG_PID_agent/status)" = 1 ]
ig_check "the log says what was kept" grep -q 'capabilities dropped.*permitted=cap_bpf,cap_perfmon' "$IG_TMP/agent.log"

ig_opener open "$mon/a" creat >"$IG_TMP/a.json"
pid=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["pid"])' "$IG_TMP/a.json")
ig_wait_for "the open of $mon/a delivered" 15 grep -q "\"pid\":$pid[,}]" "$out"
ig_pass "events flow with $DOC_SET only"

# A reload loads the probes again (the permitted set is raised for it).
sed -i 's/batch_max_age: 50ms/batch_max_age: 60ms/' "$IG_TMP/config.yaml"
kill -HUP "$IG_PID_agent"
ig_wait_for "reload done" 15 grep -q "configuration reloaded" "$IG_TMP/agent.log"
ig_check "no reload error" bash -c "! grep -q 'reload failed' '$IG_TMP/agent.log'"
ig_check "effective set empty again after the reload" [ "$(caps CapEff)" = 0000000000000000 ]
ig_opener open "$mon/b" creat >"$IG_TMP/b.json"
pid=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["pid"])' "$IG_TMP/b.json")
ig_wait_for "the open of $mon/b delivered after the reload" 15 grep -q "\"pid\":$pid[,}]" "$out"
ig_pass "probes reloaded under the dropped capabilities"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"

# One capability missing: a clear refusal naming it.
for missing in cap_perfmon cap_bpf; do
	rc=0
	capsh --drop="$(drop_all_but "${DOC_SET//$missing/}")" -- \
		-c "exec '$IG_AGENT' -c '$IG_TMP/config.yaml' --buffer-dir '$IG_TMP/agent-buffer'" \
		>"$IG_TMP/no-$missing.log" 2>&1 || rc=$?
	ig_check "without $missing: exit 1 (got $rc)" [ "$rc" = 1 ]
	ig_check "without $missing: the message names it" \
		grep -q "probe files needs $missing (.*securityContext.capabilities.add: \[${missing#cap_}" \
		<(sed 's/\[PERFMON/[perfmon/; s/\[BPF/[bpf/' "$IG_TMP/no-$missing.log")
done
sed -i 's|^  traffic:|  traffic:\n    method: cgroup_skb|' "$IG_TMP/config.yaml"
rc=0
capsh --drop="$(drop_all_but "$DOC_SET")" -- \
	-c "exec '$IG_AGENT' -c '$IG_TMP/config.yaml' --buffer-dir '$IG_TMP/agent-buffer'" \
	>"$IG_TMP/no-net-admin.log" 2>&1 || rc=$?
ig_check "traffic method cgroup_skb without cap_net_admin: refused, naming it" \
	bash -c "[ $rc = 1 ] && grep -q 'probe traffic needs cap_net_admin' '$IG_TMP/no-net-admin.log'"

# The payload probes (dns, tls: cgroup_skb and cgroup sock programs) need
# cap_net_admin too: refused without it; with it they run, keep it permitted
# after the drop, and reload (the capture layer attaches again).
ig_files_config "$IG_TMP/dns.yaml" "$port" "$mon" "$out"
sed -i "s|^probes:|probes:\n  dns:\n    pipelines: [archive]\n  tls:\n    pipelines: [archive]|" "$IG_TMP/dns.yaml"
rc=0
capsh --drop="$(drop_all_but "$DOC_SET")" -- \
	-c "exec '$IG_AGENT' -c '$IG_TMP/dns.yaml' --buffer-dir '$IG_TMP/agent-buffer'" \
	>"$IG_TMP/dns-no-net-admin.log" 2>&1 || rc=$?
ig_check "dns and tls without cap_net_admin: refused, naming it" \
	bash -c "[ $rc = 1 ] && grep -q 'probe dns needs cap_net_admin' '$IG_TMP/dns-no-net-admin.log'"
NET_SET=cap_bpf,cap_perfmon,cap_net_admin
ig_start_aggregator "$IG_TMP/dns.yaml"
: >"$IG_TMP/agent.log"
ig_start agent "$IG_TMP/agent.log" "agent running" capsh --drop="$(drop_all_but "$NET_SET")" -- \
	-c "exec '$IG_AGENT' -c '$IG_TMP/dns.yaml' --buffer-dir '$IG_TMP/agent-buffer'"
ig_check "dns and tls: cap_net_admin stays permitted for reloads" \
	grep -q 'capabilities dropped.*permitted=cap_bpf,cap_perfmon,cap_net_admin' "$IG_TMP/agent.log"
kill -HUP "$IG_PID_agent"
ig_wait_for "the dns/tls reload" 15 grep -q "configuration reloaded" "$IG_TMP/agent.log"
ig_check "dns and tls reloaded under the dropped capabilities" \
	bash -c "! grep -q 'reload failed' '$IG_TMP/agent.log' && [ \$(grep -c 'payload capture attached' '$IG_TMP/agent.log') = 2 ]"
ig_done
