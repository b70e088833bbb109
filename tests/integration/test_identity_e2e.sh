#!/usr/bin/env bash
# Pod identity end to end: real kubelet-shaped cgroups on this machine (the
# systemd and cgroupfs drivers, and a plain docker container), processes
# moved into them opening monitored files, and the Kubernetes API stand-in
# (HTTPS, its own CA, bearer token, real PodList + watch JSON). The real agent
# and aggregator must put runtime, container id, pod, namespace, labels and
# owner on each event, "host" on host events, and reflect a pod added mid-run.
source "$(dirname "$0")/lib.sh"
ig_require_root
ig_require_cmd python3
ig_require_cmd openssl
ig_require_cmd curl
ig_require_built

CG=/sys/fs/cgroup/unified
[ -d "$CG" ] || CG=/sys/fs/cgroup
[ -f "$CG/cgroup.procs" ] || ig_skip_or_fail "no cgroup v2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup"

rnd() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
uid1="$(rnd 4)-$(rnd 2)-$(rnd 2)-$(rnd 2)-$(rnd 6)"
uid2="$(rnd 4)-$(rnd 2)-$(rnd 2)-$(rnd 2)-$(rnd 6)"
cid1=$(rnd 32)
cid2=$(rnd 32)
cid3=$(rnd 32)
# systemd driver: burstable pod, containerd; cgroupfs driver: besteffort pod, cri-o id form
dir1="$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid1//-/_}.slice/cri-containerd-$cid1.scope"
dir2="$CG/kubepods/besteffort/pod$uid2/$cid2"
dir3="$CG/system.slice/docker-$cid3.scope"
cleanup_cgroups() {
	for d in "$dir1" "$dir2" "$dir3"; do
		[ -d "$d" ] || continue
		while read -r p; do echo "$p" >"$CG/cgroup.procs" 2>/dev/null || true; done <"$d/cgroup.procs"
		rmdir "$d" 2>/dev/null || true
	done
	rmdir "$CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid1//-/_}.slice" \
		"$CG/kubepods/besteffort/pod$uid2" 2>/dev/null || true
}
trap 'rc=$?; cleanup_cgroups; (exit $rc); ig_cleanup' EXIT
mkdir -p "$dir1" "$dir3"

# The API stand-in with its own CA.
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca -keyout "$IG_TMP/ca.key" \
	-out "$IG_TMP/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout "$IG_TMP/srv.key" \
	-out "$IG_TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$IG_TMP/san.ext"
openssl x509 -req -in "$IG_TMP/srv.csr" -CA "$IG_TMP/ca.crt" -CAkey "$IG_TMP/ca.key" \
	-CAcreateserial -days 1 -extfile "$IG_TMP/san.ext" -out "$IG_TMP/srv.crt" 2>/dev/null
echo -n "s3cret-token" >"$IG_TMP/token"
mkfifo "$IG_TMP/api.ctl"
python3 "$IG_SOURCE_DIR/tests/k8s-api-standin/server.py" --cert "$IG_TMP/srv.crt" \
	--key "$IG_TMP/srv.key" --token s3cret-token <"$IG_TMP/api.ctl" >"$IG_TMP/api.out" 2>"$IG_TMP/api.log" &
IG_PIDS+=($!)
exec 3>"$IG_TMP/api.ctl"
ig_wait_for "API stand-in port" 10 grep -q '^PORT ' "$IG_TMP/api.out"
api_port=$(sed -n 's/^PORT //p' "$IG_TMP/api.out")

pod() { # name ns uid cid app owner_rs
	cat <<JSON
{"op":"add","pod":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"$1","namespace":"$2","uid":"$3",
 "labels":{"app":"$5","pod-template-hash":"7d4b9c8f6d","secret-ish":"x"},
 "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"$6","uid":"rs-$3","controller":true}]},
 "spec":{"nodeName":"test-node","containers":[{"name":"main","image":"registry.example/$5:1.0"}]},
 "status":{"phase":"Running","containerStatuses":[{"name":"main","image":"registry.example/$5:1.0",
 "containerID":"containerd://$4","ready":true}]}}}
JSON
}
pod web-7d4b9c8f6d-abcde shop "$uid1" "$cid1" web web-7d4b9c8f6d | tr -d '\n' >&3
echo >&3
ig_wait_for "pod added to the stand-in" 5 grep -q '^OK add' "$IG_TMP/api.out"

port=$(ig_free_port)
mport=$(ig_free_port)
mon="$IG_TMP/mon"
out="$IG_TMP/out.jsonl"
mkdir -p "$mon"
cat >"$IG_TMP/config.yaml" <<YAML
agent:
  aggregator: tcp://127.0.0.1:$port
  plaintext: true
  node_name: test-node
  batch_max_age: 50ms
  metrics_listen: 127.0.0.1:$mport
kubernetes:
  enabled: on
  api_server: https://127.0.0.1:$api_port
  token_file: $IG_TMP/token
  ca_file: $IG_TMP/ca.crt
  label_allowlist: [app]
aggregator:
  listen: tcp://127.0.0.1:$port
  plaintext: true
  state_dir: ""
  control: ""
probes:
  files:
    monitor_dirs: ["$mon"]
    pipelines: [archive]
pipelines:
  archive:
    stages: []
    backends: [out]
backends:
  out:
    type: console
    format: json
    output: $out
YAML
ig_start_aggregator "$IG_TMP/config.yaml"
ig_start_agent "$IG_TMP/config.yaml"
# agent_gauge NAME: the value of an agent /metrics gauge (empty when absent).
agent_gauge() {
	curl -fsS "http://127.0.0.1:$mport/metrics" 2>/dev/null | awk -v n="$1" '$1 == n {print $2}'
}
# Wait on the agent's own state, not on time: the listed pod is known, and so
# is every cgroup the test made (the cache learns them from its walk/inotify).
ig_wait_for "the agent knows the listed pod" 10 bash -c "[ \"\$(curl -fsS http://127.0.0.1:$mport/metrics | awk '\$1 == \"ingrain_agent_identity_pods\" {print \$2}')\" = 1 ]"

# open_in CGROUP_DIR FILE: a process moves itself into the cgroup, then opens FILE.
open_in() {
	bash -c "echo \$\$ >'$1/cgroup.procs' && exec python3 -c 'import os; os.close(os.open(\"$2\", os.O_CREAT|os.O_WRONLY, 0o644))'"
}
open_in "$dir1" "$mon/from-pod1"
open_in "$dir3" "$mon/from-docker"
python3 -c "import os; os.close(os.open('$mon/from-host', os.O_CREAT|os.O_WRONLY, 0o644))"

# A pod that appears mid-run: its cgroup, then the API's ADDED event.
# The cache must learn every directory mkdir -p makes: count them first.
cg_before=$(agent_gauge ingrain_agent_identity_cgroups)
new_dirs=0
d=$dir2
while [ ! -d "$d" ]; do new_dirs=$((new_dirs + 1)); d=$(dirname "$d"); done
mkdir -p "$dir2"
pod api-0 payments "$uid2" "$cid2" api api-5f6d7c8b9a | tr -d '\n' >&3
echo >&3
# The ADDED event reached the agent (2 pods) and the new cgroup is cached.
ig_wait_for "the agent knows the pod added mid-run" 10 bash -c "[ \"\$(curl -fsS http://127.0.0.1:$mport/metrics | awk '\$1 == \"ingrain_agent_identity_pods\" {print \$2}')\" = 2 ]"
ig_wait_for "the agent cached the new pod's $new_dirs cgroups" 10 bash -c "[ \"\$(curl -fsS http://127.0.0.1:$mport/metrics | awk '\$1 == \"ingrain_agent_identity_cgroups\" {print \$2}')\" -ge $((cg_before + new_dirs)) ]"
open_in "$dir2" "$mon/from-pod2"
ig_wait_for "4 events" 15 bash -c "[ \$(cat '$out' 2>/dev/null | grep -c from-) -ge 4 ]"

python3 - "$out" "$mon" "$cid1" "$uid1" "$cid2" "$uid2" "$cid3" <<'PY'
import json, sys
out, mon, cid1, uid1, cid2, uid2, cid3 = sys.argv[1:]
ev = {}
for line in open(out):
    e = json.loads(line)
    ev[e["tags"]["path"].rsplit("/", 1)[1]] = e["tags"]
def expect(name, **want):
    t = ev.get(name)
    if t is None:
        sys.exit("FAIL: no event for %s" % name)
    for k, v in want.items():
        if v is None:
            if k in t:
                sys.exit("FAIL: %s: tag %s should be absent, is %r" % (name, k, t[k]))
        elif t.get(k) != v:
            sys.exit("FAIL: %s: %s=%r, want %r (tags %r)" % (name, k, t.get(k), v, t))
    print("ok", name)
expect("from-pod1", scope="pod", runtime="containerd", container_id=cid1, pod_uid=uid1,
       pod="web-7d4b9c8f6d-abcde", namespace="shop", container="main",
       image="registry.example/web:1.0", owner_kind="Deployment", owner_name="web",
       label_app="web", **{"label_pod-template-hash": None, "label_secret-ish": None})
expect("from-pod2", scope="pod", container_id=cid2, pod_uid=uid2, pod="api-0",
       namespace="payments", label_app="api")
expect("from-docker", scope="container", runtime="docker", container_id=cid3, pod=None, namespace=None)
expect("from-host", scope="host", container_id=None, pod=None)
PY
ig_pass "identity on pod (systemd + cgroupfs drivers), docker and host events; pod added mid-run"
ig_stop "$IG_PID_agent"
ig_stop "$IG_PID_aggregator"
echo '{"op":"quit"}' >&3
ig_done
