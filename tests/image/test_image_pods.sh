#!/usr/bin/env bash
# The image, built and run as the chart renders it.
#
# 1. scripts/build-image.sh: debian:12 / debian:12-slim from debootstrap (cached
#    outside the tree), then `podman build --pull=never` of deploy/Dockerfile.
# 2. `helm template` of charts/ingrain with default values, except the image
#    (this build) and free ports on this machine: the agent's through the
#    chart's values, the aggregator's (and its control socket, outside
#    /run/ingrain) through config: only, so the rendered Service, container
#    ports, probes and writable mounts must follow them.
# 3. tests/image/pods.py turns the rendered DaemonSet and Deployment into
#    `podman run` lines: securityContext, capabilities, seccomp, mounts,
#    hostPath type checks, env, args, limits. Nothing is copied by hand.
# 4. The aggregator and the agent run from the image; their liveness and
#    readiness endpoints (from the rendered probes) answer 200; the agent runs
#    with exactly the rendered capabilities, no_new_privs and a seccomp filter.
# 5. A process in another podman container opens a file under /etc: the
#    aggregator's console backend prints the event with that container's
#    64-hex id, runtime=podman, scope=container and the kernel's cgroup id.
# 6. The `helm test` pod (both binaries' --check-config) passes from the image.
# 7. Least privilege, both ways: without CAP_BPF or CAP_PERFMON the agent
#    refuses to start, and under a seccomp profile that allows bpf(2) only to
#    CAP_SYS_ADMIN (podman 4.3's default) it says that seccomp is the cause.
#
# RuntimeDefault is applied as containerd's default profile behaves for the
# two syscalls that matter (bpf(2) allowed to CAP_BPF, perf_event_open(2) to
# CAP_PERFMON): podman's own profile, with those two rules changed that way.
#
# Labelled `system` (ctest -L system); a few minutes with a warm layer cache.
source "$(dirname "$0")/../integration/lib.sh"

ig_require_root
for c in podman runc debootstrap curl capsh; do ig_require_cmd "$c"; done
python3 -c 'import yaml' 2>/dev/null || ig_skip_or_fail "python3-yaml missing"
helm=${HELM:-}
for c in "$IG_SOURCE_DIR/build/testtools/bin/helm" "$IG_BUILD_DIR/testtools/bin/helm"; do
	[ -z "$helm" ] && [ -x "$c" ] && helm=$c
done
[ -n "$helm" ] || ig_skip_or_fail "helm not found (scripts/install-deps.sh --test)"
export HELM_CONFIG_HOME=$IG_TMP/helm HELM_CACHE_HOME=$IG_TMP/helm HELM_DATA_HOME=$IG_TMP/helm

CONTAINERS_CONF=$("$IG_SOURCE_DIR/scripts/build-image.sh" --print-conf)
export CONTAINERS_CONF
prefix=ig-img-$$-
tag=localhost/ingrain:test-$$
img_cleanup() {
	podman ps -aq --filter "label=io.ingrain.test=$prefix" | xargs -r podman rm -f -t 2 >/dev/null 2>&1 || true
	podman rmi "$tag" >/dev/null 2>&1 || true
}
# ig_cleanup exits with the status it finds in \$?: keep the test's, not img_cleanup's.
trap 'rc=$?; img_cleanup; (exit "$rc"); ig_cleanup' EXIT
trap 'exit 143' TERM INT # so that the EXIT trap removes the containers

# --- 1. build -------------------------------------------------------------------
t0=$SECONDS
if ! "$IG_SOURCE_DIR/scripts/build-image.sh" --tag "$tag" >"$IG_TMP/build.log" 2>&1; then
	ig_fail "scripts/build-image.sh failed (log: $(tail -n 30 "$IG_TMP/build.log"))"
fi
ig_pass "image $tag built ($((SECONDS - t0)) s)"
labels=$(podman image inspect --format '{{json .Labels}}' "$tag")
ig_check "OCI labels: version and revision" python3 -c '
import json, sys
l = json.loads(sys.argv[1])
v = l.get("org.opencontainers.image.version"); r = l.get("org.opencontainers.image.revision", "")
sys.exit(0 if v and r and r != "unknown" and l.get("org.opencontainers.image.title") == "ingrain" else 1)' "$labels"
ig_check "image runs as 65532 by default" test "$(podman image inspect --format '{{.Config.User}}' "$tag")" = "65532:65532"

# --- 2. render --------------------------------------------------------------------
p_agents=$(ig_free_port)
p_http=$(ig_free_port)
p_agent=$(ig_free_port)
cat >"$IG_TMP/values.yaml" <<EOF
image:
  repository: localhost/ingrain
  tag: test-$$
  pullPolicy: Never
agent:
  metrics: {port: $p_agent}
  hostPaths: {buffer: $IG_TMP/agent-buffer}
# The aggregator's addresses are moved in config only: the Service, container
# ports, probes and the control socket's writable mount must follow them.
config:
  aggregator:
    listen: tls+tcp://0.0.0.0:$p_agents
    metrics_listen: 0.0.0.0:$p_http
    control: ipc:///var/run/ingrain-ctl/control.sock
monitoring:
  prometheusRule: {enabled: true}
EOF
"$helm" template ingrain "$IG_SOURCE_DIR/charts/ingrain" -n ingrain -f "$IG_TMP/values.yaml" \
	>"$IG_TMP/manifests.yaml" 2>"$IG_TMP/helm.log" || ig_fail "helm template: $(cat "$IG_TMP/helm.log")"
svc=ingrain-aggregator.ingrain.svc

pods() { # OUTDIR [extra pods.py args]
	local out=$1
	shift
	python3 "$IG_SOURCE_DIR/tests/image/pods.py" "$IG_TMP/manifests.yaml" "$out" --node ig-img-node \
		--network host --add-host "$svc:127.0.0.1" --name-prefix "$prefix" "$@" >"$out.log" 2>&1 ||
		ig_fail "pods.py: $(cat "$out.log")"
}
pods "$IG_TMP/pods" --runtime-default-seccomp containerd
cp "$IG_TMP/pods.log" "$IG_TMP/podman-run.log"

run() { # COMPONENT ARGS_FILE
	xargs -0 -a "$2" podman run -d >"$IG_TMP/run.out" 2>&1 || ig_fail "podman run $1: $(cat "$IG_TMP/run.out")"
	tail -n 1 "$IG_TMP/run.out"
}
http_ok() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$1$2"; }
probe_ok() { # COMPONENT KIND: the rendered probe answers 200
	local path port
	path=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["path"])' "$IG_TMP/pods/$1.probes" "$2")
	port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["port"])' "$IG_TMP/pods/$1.probes" "$2")
	http_ok "$port" "$path"
}
clog() { podman logs "$1" >"$IG_TMP/$2.log" 2>&1 || true; }

# --- 4. run the pods --------------------------------------------------------------
run aggregator "$IG_TMP/pods/aggregator.args" >/dev/null
ig_wait_for "aggregator readiness probe" 30 probe_ok aggregator readinessProbe
ig_pass "aggregator readiness probe answers 200"
ig_check "aggregator liveness probe answers 200" probe_ok aggregator livenessProbe
# The control socket, reached through the aggregator container's own root
# (/proc/<pid>/root): it was created in /var/run/ingrain-ctl, so that directory
# is writable. `podman exec` is not used: inside a chroot (scripts/fresh-check.sh)
# runc's exec lands in the wrong root. ingrainctl itself is checked in the image.
# /var/run is a symlink to /run there, and an absolute symlink met under
# /proc/<pid>/root resolves in our root, not the container's: follow it by hand.
agg_root=/proc/$(podman inspect -f '{{.State.Pid}}' "${prefix}aggregator")/root
agg_run=/var/run
if [ -L "$agg_root/var/run" ]; then
	agg_run=$(readlink "$agg_root/var/run")
	case $agg_run in /*) ;; *) agg_run=/var/$agg_run ;; esac
fi
ig_check "ingrainctl reaches the control socket moved to /var/run/ingrain-ctl (its directory is writable)" \
	"$IG_BUILD_DIR/aggregator/ingrainctl" -s "ipc://$agg_root$agg_run/ingrain-ctl/control.sock" status
ig_check "the image carries ingrainctl" \
	podman run --rm --network none --entrypoint /usr/local/bin/ingrainctl "$tag" --help
run agent "$IG_TMP/pods/agent.args" >/dev/null
agent_ready() {
	clog "${prefix}agent" agent
	podman container exists "${prefix}agent" &&
		[ "$(podman inspect -f '{{.State.Running}}' "${prefix}agent")" = true ] ||
		ig_fail "the agent container exited: $(tail -n 20 "$IG_TMP/agent.log")"
	probe_ok agent readinessProbe
}
ig_wait_for "agent readiness probe (probes attached)" 60 agent_ready
ig_pass "agent readiness probe answers 200 (probes attached)"
ig_check "agent liveness probe answers 200" probe_ok agent livenessProbe

apid=$(podman inspect -f '{{.State.Pid}}' "${prefix}agent")
want_caps=$(python3 -c '
import json, sys
c = json.load(open(sys.argv[1]))["spec"]["template"]["spec"]["containers"][0]
print(",".join(sorted("cap_" + x.lower() for x in c["securityContext"]["capabilities"]["add"])))' "$IG_TMP/pods/agent.json")
caps_of() { capsh --decode="$(awk -v k="$1:" '$1 == k {print $2}' "/proc/$apid/status")" | sed 's/.*=//' | tr ',' '\n' | sort | paste -sd,; }
# After attaching, the agent drops what it no longer uses (node-agent/privs.c):
# the rendered set stays permitted (reloads load probes again), and only
# cap_dac_read_search (cgroup lookups by handle) stays effective.
ig_check "agent holds exactly the rendered capabilities ($want_caps) as permitted" test "$(caps_of CapPrm)" = "$want_caps"
ig_check "agent dropped all but cap_dac_read_search from its effective set after attaching" \
	test "$(caps_of CapEff)" = "cap_dac_read_search"
ig_check "agent: no_new_privs and a seccomp filter (RuntimeDefault)" \
	grep -qE '^NoNewPrivs:[[:space:]]+1' "/proc/$apid/status"
grep -qE '^Seccomp:[[:space:]]+2' "/proc/$apid/status" || ig_fail "agent has no seccomp filter"
ig_check "agent is not privileged and not in the host PID namespace" \
	test "$(podman inspect -f '{{.HostConfig.Privileged}} {{.HostConfig.PidMode}}' "${prefix}agent")" = "false private"
ig_check "agent's root filesystem is read-only" \
	test "$(podman inspect -f '{{.HostConfig.ReadonlyRootfs}}' "${prefix}agent")" = true

# The alerts the chart ships name metrics these binaries really export.
curl -fs "http://127.0.0.1:$p_http/metrics" >"$IG_TMP/aggregator.metrics" || ig_fail "aggregator /metrics"
curl -fs "http://127.0.0.1:$p_agent/metrics" >"$IG_TMP/agent.metrics" || ig_fail "agent /metrics"
ig_check "every metric in the rendered PrometheusRule is exported by the agent or the aggregator" python3 - \
	"$IG_TMP/manifests.yaml" "$IG_TMP/aggregator.metrics" "$IG_TMP/agent.metrics" <<'PY'
import re, sys, yaml
rule = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "PrometheusRule"]
exprs = " ".join(r["expr"] for d in rule for g in d["spec"]["groups"] for r in g["rules"])
names = set(re.findall(r"\bingrain_[a-z_]+", exprs))
have = set()
for f in sys.argv[2:]:
    have |= {l.split("{")[0].split()[0] for l in open(f) if l.strip() and not l.startswith("#")}
missing = names - have
print("rule metrics:", sorted(names), "missing:", sorted(missing))
sys.exit(0 if names and not missing else 1)
PY

# --- 5. an event from another container -------------------------------------------
marker=/etc/${prefix}marker
podman run -d --pull=never --name "${prefix}src" --label "io.ingrain.test=$prefix" debian:12-slim \
	sh -c "while :; do cat $marker 2>/dev/null; sleep 0.2; done" >"$IG_TMP/src.id" 2>&1 ||
	ig_fail "source container: $(cat "$IG_TMP/src.id")"
src_id=$(tail -n 1 "$IG_TMP/src.id")
seen() {
	clog "${prefix}aggregator" aggregator
	grep -F "\"path\":\"$marker\"" "$IG_TMP/aggregator.log" | grep -qF "\"container_id\":\"$src_id\""
}
ig_wait_for "an event from container ${src_id:0:12} at the aggregator" 30 seen
cg_ino=$(stat -c %i "/sys/fs/cgroup/unified/libpod_parent/libpod-$src_id" 2>/dev/null || echo "")
ig_check "the event names the container: id, runtime=podman, scope=container, cgroup id, process" python3 - \
	"$IG_TMP/aggregator.log" "$marker" "$src_id" "$cg_ino" <<'PY'
import json, sys
log, marker, cid, ino = sys.argv[1:5]
for line in open(log):
    line = line.strip()
    if not line.startswith("{"):
        continue
    t = json.loads(line).get("tags", {})
    # The container's first opens may precede the agent learning its new
    # cgroup (docs/kubernetes.md: counted as identity misses): judge the
    # first event that carries its id.
    if t.get("path") != marker or t.get("container_id") != cid:
        continue
    ok = (t.get("container_id") == cid and t.get("runtime") == "podman" and t.get("scope") == "container"
          and t.get("process") == "cat" and t.get("node") == "ig-img-node"
          and (not ino or str(t.get("cgroup_id")) == ino))
    print(json.dumps(t))
    sys.exit(0 if ok else 1)
sys.exit(1)
PY

# --- 6. the helm test hook ----------------------------------------------------------
"$helm" template ingrain "$IG_SOURCE_DIR/charts/ingrain" -n ingrain -f "$IG_TMP/values.yaml" \
	--show-only templates/tests-check-config.yaml --show-only templates/configmap.yaml >"$IG_TMP/hook.yaml"
python3 "$IG_SOURCE_DIR/tests/image/pods.py" "$IG_TMP/hook.yaml" "$IG_TMP/hook" --node ig-img-node \
	--name-prefix "$prefix" >"$IG_TMP/hook.log" 2>&1 || ig_fail "pods.py (hook): $(cat "$IG_TMP/hook.log")"
if xargs -0 -a "$IG_TMP/hook/test.args" podman run --rm >"$IG_TMP/hook-run.log" 2>&1 &&
	[ "$(grep -c "configuration OK" "$IG_TMP/hook-run.log")" -eq 2 ]; then
	ig_pass "helm test pod: both binaries accept the rendered configuration (from the image)"
else
	ig_fail "helm test pod: $(cat "$IG_TMP/hook-run.log")"
fi

# --- 7. least privilege, both ways ----------------------------------------------
podman stop -t 10 "${prefix}agent" >/dev/null
ig_check "agent stops cleanly on SIGTERM" test "$(podman inspect -f '{{.State.ExitCode}}' "${prefix}agent")" = 0
refused() { # NAME PATTERN ARGS_FILE
	local name=$1 pat=$2 args=$3
	# It must exit by itself; 60 s is far beyond a refusal at start-up.
	timeout 60 xargs -0 -a "$args" podman run >"$IG_TMP/$name.log" 2>&1 && return 1
	grep -qiE -- "$pat" "$IG_TMP/$name.log"
}
variant() { # SRC DST NEW_NAME [ARG_TO_DROP [ARGS_TO_ADD...]]: the same podman run, renamed
	python3 - "$@" <<'PY'
import sys
src, dst, name = sys.argv[1:4]
drop = sys.argv[4].encode() if len(sys.argv) > 4 else None
add = [x.encode() for x in sys.argv[5:]]
a = open(src, "rb").read().split(b"\0")[:-1]
a[a.index(b"--name") + 1] = name.encode()
a = [x for x in a if x != drop]
i = a.index(b"--entrypoint")
a[i:i] = add
open(dst, "wb").write(b"\0".join(a) + b"\0")
PY
}
for cap in BPF PERFMON; do
	variant "$IG_TMP/pods/agent.args" "$IG_TMP/nocap.args" "${prefix}agent-no-$cap" "--cap-add=CAP_$cap"
	ig_check "without CAP_$cap the agent refuses to start, naming the privilege" \
		refused "agent-no-$cap" "needs cap_${cap,,} " "$IG_TMP/nocap.args"
done
pods "$IG_TMP/pods-oldseccomp"
variant "$IG_TMP/pods-oldseccomp/agent.args" "$IG_TMP/oldseccomp.args" "${prefix}agent-oldseccomp"
ig_check "under a seccomp profile allowing bpf(2) only to CAP_SYS_ADMIN the agent names seccomp" \
	refused agent-oldseccomp "seccomp" "$IG_TMP/oldseccomp.args"

ig_log "PASS ($IG_CHECKS checks, $((SECONDS)) s)"
