#!/usr/bin/env bash
# Builds the image and runs the chart's rendered pods on this machine with
# podman: no cluster, no registry. The agent and the aggregator get exactly
# what `helm template` renders (securityContext, capabilities, seccomp,
# mounts, args, config), translated by tests/image/pods.py.
#
#   scripts/local-pods.sh up [HELM_ARGS...]   # e.g. -f my-values.yaml
#   scripts/local-pods.sh down
#
# Both containers use the host's network (the agent dials the Service name,
# mapped to 127.0.0.1): ports 7700, 9090 and 9091 unless the values move them.
# Then: podman logs -f ingrain-aggregator   (events, console backend)
#       podman logs ingrain-agent
# Needs root, podman, runc, debootstrap, python3-yaml and helm
# (scripts/install-deps.sh --test puts helm in build/testtools/bin).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cmd=${1:-}
[ $# -gt 0 ] && shift
CONTAINERS_CONF=$("$here/scripts/build-image.sh" --print-conf)
export CONTAINERS_CONF
prefix=ingrain-

down() {
	podman ps -aq --filter "label=io.ingrain.test=$prefix" | xargs -r podman rm -f -t 10 >/dev/null
}

case "$cmd" in
up) ;;
down)
	down
	echo "local-pods: stopped"
	exit 0
	;;
*)
	sed -n '2,15p' "$0"
	exit 2
	;;
esac

helm=${HELM:-}
for c in "$here/build/testtools/bin/helm" "$(command -v helm || true)"; do
	[ -z "$helm" ] && [ -n "$c" ] && [ -x "$c" ] && helm=$c
done
[ -n "$helm" ] || {
	echo "local-pods: helm not found: run scripts/install-deps.sh --test (or put helm on PATH)" >&2
	exit 1
}

version=$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$here/charts/ingrain/Chart.yaml")
"$here/scripts/build-image.sh" --tag "localhost/ingrain:$version"

work=${XDG_RUNTIME_DIR:-/run}/ingrain-local-pods
rm -rf "$work"
mkdir -p "$work"
export HELM_CONFIG_HOME=$work/helm HELM_CACHE_HOME=$work/helm HELM_DATA_HOME=$work/helm
"$helm" template ingrain "$here/charts/ingrain" -n ingrain \
	--set image.repository=localhost/ingrain --set image.pullPolicy=Never "$@" >"$work/manifests.yaml"
svc=$(python3 -c '
import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d["kind"] == "Service":
        print(d["metadata"]["name"] + "." + d["metadata"]["namespace"] + ".svc")' "$work/manifests.yaml")
# RuntimeDefault as containerd applies it (bpf/perf_event_open for CAP_BPF/CAP_PERFMON):
# podman 4.3's own default profile allows them only to CAP_SYS_ADMIN.
python3 "$here/tests/image/pods.py" "$work/manifests.yaml" "$work/pods" --node "$(hostname)" \
	--network host --add-host "$svc:127.0.0.1" --name-prefix "$prefix" \
	--runtime-default-seccomp containerd >"$work/podman-run.txt"
echo "local-pods: podman run lines in $work/podman-run.txt"
down
for comp in aggregator agent; do
	[ -f "$work/pods/$comp.args" ] || continue
	xargs -0 -a "$work/pods/$comp.args" podman run -d >/dev/null
	probe=$(python3 -c 'import json, sys; p = json.load(open(sys.argv[1])).get("readinessProbe")
print("http://127.0.0.1:%d%s" % (p["port"], p["path"]) if p else "")' "$work/pods/$comp.probes")
	for _ in $(seq 120); do
		[ -z "$probe" ] && break
		curl -fs -o /dev/null --max-time 1 "$probe" && break
		if [ "$(podman inspect -f '{{.State.Running}}' "$prefix$comp")" != true ]; then
			podman logs "$prefix$comp" >&2
			echo "local-pods: $prefix$comp exited" >&2
			exit 1
		fi
		sleep 0.5
	done
	echo "local-pods: $prefix$comp ready ($probe)"
done
echo "local-pods: events: podman logs -f ${prefix}aggregator; stop: $0 down"
