#!/usr/bin/env bash
# Renders charts/ingrain with the real helm binary and checks what a cluster
# would be given: lint --strict, `helm template` with the default values and
# with overrides, then python3 + PyYAML assertions on the manifests (least
# privilege: capabilities, seccomp, no hostPID, only the host mounts the code
# uses; NODE_NAME from the downward API; RBAC exactly get/list/watch on pods;
# one source of truth: Service, container ports, probes and writable mounts
# follow the addresses in config; the agent's rollout checksum covers only
# what the agent reads), values that must be refused, NOTES.txt, the values
# reference (docs/chart-values.md) being current, and - when the binaries are
# built - `--check-config` on the rendered configuration file.
#
# Env: IG_SOURCE_DIR, IG_BUILD_DIR (set by ctest), HELM (optional path).
# helm comes from scripts/install-deps.sh --test (build/testtools/bin/helm).
# Under CI=true a missing helm fails the test; elsewhere it is reported as
# SKIPPED with what to run.
set -euo pipefail

src=${IG_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bld=${IG_BUILD_DIR:-$src/build}
chart=$src/charts/ingrain

helm=${HELM:-}
if [ -z "$helm" ]; then
	for c in "$src/build/testtools/bin/helm" "$bld/testtools/bin/helm" "$(command -v helm || true)"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			helm=$c
			break
		fi
	done
fi
if [ -z "$helm" ]; then
	msg="helm not found (looked in $src/build/testtools/bin, $bld/testtools/bin, PATH); run: scripts/install-deps.sh --test"
	if [ "${CI:-}" = "true" ]; then
		echo "FAIL: $msg" >&2
		exit 1
	fi
	echo "SKIPPED: test_helm_chart: $msg" >&2
	exit 77 # ctest reports it as skipped (SKIP_RETURN_CODE)
fi
python3 -c 'import yaml' 2>/dev/null || {
	echo "FAIL: python3 with PyYAML is needed (apt-get install python3-yaml)" >&2
	exit 1
}

tmp=$(mktemp -d /tmp/ig-helm.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
# Keep helm away from the user's ~/.config, ~/.cache and repositories.
export HELM_CONFIG_HOME=$tmp/helm/config HELM_CACHE_HOME=$tmp/helm/cache HELM_DATA_HOME=$tmp/helm/data

pass=0
fail=0
ok() {
	echo "ok   - $*"
	pass=$((pass + 1))
}
bad() {
	echo "FAIL - $*"
	fail=$((fail + 1))
}

echo "# helm: $helm ($("$helm" version --short 2>/dev/null))"
echo "# chart: $chart"

# --- values files for the override scenario --------------------------------
cat >"$tmp/values-override.yaml" <<'EOF'
fullnameOverride: sec
image:
  repository: registry.example/ingrain
  tag: "1.2.3"
imagePullSecrets: [{name: regcred}]
agent:
  privileged: false
  extraCapabilities: [SYS_RESOURCE]
  nodeSelector: {node-role.example/monitored: "true"}
  priorityClassName: system-node-critical
  podAnnotations: {team: security}
  rollOnConfigChange: false
  extraEnv: [{name: EXTRA, value: "1"}]
  extraArgs: ["--log-level", "debug"]
  extraVolumes: [{name: extra, hostPath: {path: /var/log, type: Directory}}]
  extraVolumeMounts: [{name: extra, mountPath: /host/var/log, readOnly: true}]
aggregator:
  ports: {agents: 7800, http: 9191}
  priorityClassName: high
  persistence: {enabled: true, size: 1Gi, storageClass: fast}
  serviceAccount:
    annotations: {eks.amazonaws.com/role-arn: "arn:aws:iam::123456789012:role/ingrain"}
s3:
  existingSecret: ingrain-s3
  sessionTokenKey: AWS_SESSION_TOKEN
datadog:
  existingSecret: ingrain-dd
config:
  kubernetes:
    enabled: off
    label_allowlist: [app, team]
  probes:
    files:
      monitor_dirs: ["/etc", "/root/.ssh"]
      pipelines: [live, archive]
  pipelines:
    archive:
      stages: []
      backends: [s3, dd]
  backends:
    console:
      format: text
    s3:
      type: s3
      bucket: audit-archive
      region: eu-west-1
      cluster: prod-1
    dd:
      type: datadog
      site: datadoghq.eu
EOF
cat >"$tmp/values-no-agent.yaml" <<'EOF'
agent:
  enabled: false
EOF
cat >"$tmp/values-external.yaml" <<'EOF'
config:
  agent:
    aggregator: tls+tcp://aggregator.elsewhere.example:7700
  aggregator:
    listen: tls+tcp://0.0.0.0:7701
EOF
cat >"$tmp/values-replicas.yaml" <<'EOF'
aggregator:
  replicas: 3
config:
  backends:
    dd:
      type: statsd
      flavor: dogstatsd
      address: dd:8125
      distribution: true
EOF
# Addresses moved in config only: everything else must follow them.
cat >"$tmp/values-moved.yaml" <<'EOF'
config:
  agent:
    metrics_listen: 0.0.0.0:9300
  aggregator:
    listen: tls+tcp://0.0.0.0:7701
    metrics_listen: 0.0.0.0:9191
    control: ipc:///var/run/ingrain-ctl/control.sock
    state_dir: /data/ingrain
EOF
cat >"$tmp/values-extras.yaml" <<'EOF'
image: {repository: registry.example/ingrain, digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", architectures: [amd64, arm64]}
agent:
  appArmorProfile: Unconfined
  seLinuxType: spc_t
  seccompProfile: {type: Unconfined}
monitoring:
  serviceMonitor: {enabled: true, labels: {release: prom}}
  podMonitor: {enabled: true}
  prometheusRule: {enabled: true}
config:
  aggregator:
    control: ""
  probes:
    traffic:
      method: cgroup_skb
      pipelines: [live]
EOF

# --- lint -------------------------------------------------------------------
for v in "" values-override.yaml values-no-agent.yaml values-moved.yaml values-extras.yaml; do
	args=()
	[ -n "$v" ] && args=(-f "$tmp/$v")
	if "$helm" lint --strict "$chart" "${args[@]}" >"$tmp/lint.out" 2>&1; then
		ok "helm lint --strict ${v:-(default values)}"
	else
		bad "helm lint --strict ${v:-(default values)}"
		sed 's/^/    /' "$tmp/lint.out"
	fi
done

# --- render -----------------------------------------------------------------
render() { # name, extra helm args...
	local name=$1
	shift
	if "$helm" template ingrain "$chart" -n ingrain "$@" >"$tmp/$name.yaml" 2>"$tmp/$name.err"; then
		ok "helm template ($name) renders"
	else
		bad "helm template ($name) renders"
		sed 's/^/    /' "$tmp/$name.err"
	fi
}
render default
render override -f "$tmp/values-override.yaml"
render no-agent -f "$tmp/values-no-agent.yaml"
render external -f "$tmp/values-external.yaml"
render moved -f "$tmp/values-moved.yaml"
render extras -f "$tmp/values-extras.yaml" --kube-version 1.30.0
render extras129 -f "$tmp/values-extras.yaml" --kube-version 1.29.0
render pipelineonly --set config.pipelines.live.backends[0]=console --set config.backends.console.format=text
render probesonly --set config.probes.files.include_failed=false
render replicas -f "$tmp/values-replicas.yaml"
render otherconfig --set config.probes.files.monitor_dirs[0]=/var
render othertag --set image.tag=9.9.9
render nometrics --set agent.metrics.enabled=false
render certmanager --set tls.certManager.enabled=true
render certmanager-issuer --set tls.certManager.enabled=true --set tls.certManager.issuerRef.name=corp-ca \
	--set tls.certManager.issuerRef.kind=ClusterIssuer
render plaintext --set tls.enabled=false

# --- what must be refused ---------------------------------------------------
refuse() { # description, expected message fragment, helm args...
	local what=$1 want=$2
	shift 2
	if "$helm" template ingrain "$chart" -n ingrain "$@" >"$tmp/refuse.out" 2>&1; then
		bad "refused: $what (helm accepted it)"
	elif grep -qF -- "$want" "$tmp/refuse.out"; then
		ok "refused: $what ('$want')"
	else
		bad "refused: $what: message lacks '$want'"
		sed 's/^/    /' "$tmp/refuse.out"
	fi
}
refuse "misspelt chart value" "Additional property privilegd is not allowed" --set agent.privilegd=false
refuse "port out of range" "Must be less than or equal to 65535" --set aggregator.ports.agents=70000
refuse "persistence with 2 replicas" "needs aggregator.replicas: 1" \
	--set aggregator.persistence.enabled=true --set aggregator.replicas=2
refuse "unknown issuer kind" "tls.certManager.issuerRef.kind must be one of" \
	--set tls.certManager.issuerRef.kind=Vault
refuse "replicas > 1 with a rollup stage (per-replica percentiles/gauges)" "aggregator.replicas=3 with a rollup stage (pipelines.live.stages[0])" \
	--set aggregator.replicas=3 --set config.pipelines.live.stages[0].type=rollup
refuse "replicas > 1 with DogStatsD histograms as |h (per-agent percentiles)" "set distribution: true" \
	--set aggregator.replicas=2 --set config.backends.dd.type=statsd --set config.backends.dd.flavor=dogstatsd \
	--set config.backends.dd.address=dd:8125
refuse "replicas > 1 with the Datadog HTTP backend (same series from every replica)" "with backends.ddapi (Datadog HTTP API)" \
	--set aggregator.replicas=2 --set config.backends.ddapi.type=datadog
refuse "relative host path" "Does not match pattern" --set agent.hostPaths.cgroup=sys/fs/cgroup
# One source of truth: an address in config and a port in values that disagree.
refuse "aggregator.listen 7701 vs aggregator.ports.agents 7700" "config.aggregator.listen (tcp://0.0.0.0:7701) and aggregator.ports.agents (7700) disagree" \
	--set config.aggregator.listen=tcp://0.0.0.0:7701 --set aggregator.ports.agents=7700
refuse "metrics_listen vs aggregator.ports.http" "config.aggregator.metrics_listen (0.0.0.0:9191) and aggregator.ports.http (9090) disagree" \
	--set config.aggregator.metrics_listen=0.0.0.0:9191 --set aggregator.ports.http=9090
refuse "agent metrics_listen vs agent.metrics.port" "config.agent.metrics_listen (0.0.0.0:9300) and agent.metrics.port (9091) disagree" \
	--set config.agent.metrics_listen=0.0.0.0:9300 --set agent.metrics.port=9091
refuse "aggregator.listen on loopback" "listens on loopback only" --set config.aggregator.listen=tcp://127.0.0.1:7700
refuse "agent metrics on loopback (the kubelet's probes could not reach it)" "listens on loopback only" \
	--set config.agent.metrics_listen=127.0.0.1:9091
refuse "aggregator.listen on ipc://" "must listen on tcp://" --set config.aggregator.listen=ipc:///run/ingrain/agents.sock
refuse "address without a port" "has no :port" --set config.aggregator.metrics_listen=0.0.0.0
refuse "control socket on a relative path" "absolute ipc:// path" --set config.aggregator.control=ipc://ctl.sock
refuse "relative state_dir" "must be an absolute path" --set config.aggregator.state_dir=state
refuse "image digest that is not sha256" "Does not match pattern" --set image.digest=latest
refuse "unknown AppArmor profile form" "Does not match pattern" --set agent.appArmorProfile=unconfined

# --- manifest assertions (python3 + PyYAML) -----------------------------------
cat >"$tmp/check.py" <<'PY'
import hashlib, sys, yaml

tmp = sys.argv[1]
passed = failed = 0

def check(cond, what, detail=None):
    global passed, failed
    if cond:
        print("ok   - " + what)
        passed += 1
    else:
        print("FAIL - " + what + ("" if detail is None else ": " + repr(detail)))
        failed += 1

def load(name):
    try:
        with open(f"{tmp}/{name}.yaml") as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
    except (OSError, yaml.YAMLError) as e:
        check(False, f"{name}: manifests parse as YAML", str(e))
        return None
    return docs

def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None

def kinds(docs):
    return sorted(d["kind"] for d in docs)

def container(workload):
    cs = workload["spec"]["template"]["spec"]["containers"]
    return cs[0] if len(cs) == 1 else None

def env_map(c):
    return {e["name"]: e for e in c.get("env", [])}

def config_of(docs, label):
    cm = one(docs, "ConfigMap")
    check(cm is not None and "config.yaml" in cm.get("data", {}),
          f"{label}: one ConfigMap with data config.yaml")
    try:
        cfg = yaml.safe_load(cm["data"]["config.yaml"])
    except Exception as e:
        check(False, f"{label}: config.yaml parses as YAML", str(e))
        return None
    check(isinstance(cfg, dict), f"{label}: config.yaml parses as a YAML mapping")
    allowed = {"agent", "kubernetes", "aggregator", "probes", "pipelines", "backends"}
    check(set(cfg) <= allowed, f"{label}: config has only the six known sections", sorted(set(cfg) - allowed))
    with open(f"{tmp}/{label}.config.yaml", "w") as f:
        f.write(cm["data"]["config.yaml"])
    return cfg

def check_common(docs, label, ns="ingrain"):
    for d in docs:
        if d["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            check(d["metadata"].get("namespace") == ns,
                  f"{label}: {d['kind']}/{d['metadata']['name']} is in namespace {ns}", d["metadata"].get("namespace"))

def check_mount(c, vols, name, host, mount, ro):
    m = [x for x in c["volumeMounts"] if x["name"] == name]
    v = vols.get(name, {})
    check(v.get("hostPath", {}).get("path") == host, f"agent volume {name} is hostPath {host}", v)
    check(len(m) == 1 and m[0]["mountPath"] == mount, f"agent mounts {name} at {mount}", m)
    if m:
        check(bool(m[0].get("readOnly")) == ro, f"agent mount {mount} is {'read-only' if ro else 'writable'}", m[0])

# ---------------------------------------------------------------- default
docs = load("default")
if docs:
    print("# default values")
    check_common(docs, "default")
    want = sorted(["ServiceAccount", "ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding",
                   "Service", "DaemonSet", "Deployment", "PodDisruptionBudget", "Pod", "Secret", "Secret"])
    check(kinds(docs) == want, "default: exactly the expected objects", kinds(docs))
    ds = one(docs, "DaemonSet")
    dep = one(docs, "Deployment")
    svc = one(docs, "Service")
    cr = one(docs, "ClusterRole")
    crb = one(docs, "ClusterRoleBinding")
    cm = one(docs, "ConfigMap")
    cfg = config_of(docs, "default")

    # DaemonSet
    pod = ds["spec"]["template"]["spec"]
    c = container(ds)
    check("hostPID" not in pod and "hostNetwork" not in pod, "DaemonSet: no hostPID, no hostNetwork (event pids come from the kernel)")
    check(c is not None, "DaemonSet: one container")
    e = env_map(c).get("NODE_NAME", {})
    check(e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "DaemonSet: env NODE_NAME from fieldRef spec.nodeName", e)
    sc = c["securityContext"]
    check(sc.get("privileged") is False and sc.get("allowPrivilegeEscalation") is False and
          sc["capabilities"]["drop"] == ["ALL"] and sc["capabilities"]["add"] == ["BPF", "PERFMON", "DAC_READ_SEARCH"],
          "DaemonSet: not privileged; drop ALL, add exactly BPF PERFMON DAC_READ_SEARCH", sc)
    check(sc.get("seccompProfile") == {"type": "RuntimeDefault"}, "DaemonSet: seccomp RuntimeDefault", sc)
    check("appArmorProfile" not in sc and "seLinuxOptions" not in sc, "DaemonSet: runtime's AppArmor/SELinux defaults", sc)
    check(sc.get("readOnlyRootFilesystem") is True, "DaemonSet: read-only root filesystem")
    check(pod.get("priorityClassName") == "system-node-critical", "DaemonSet: priorityClassName system-node-critical")
    check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
          "DaemonSet: nodeSelector linux/amd64 (the image's architecture)", pod.get("nodeSelector"))
    check(dep["spec"]["template"]["spec"].get("nodeSelector") == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
          "Deployment: nodeSelector linux/amd64")
    check(c["command"][0].endswith("/ingrain-agent"), "DaemonSet: runs ingrain-agent", c["command"])
    check(c["args"] == ["--config", "/etc/ingrain/config.yaml"], "DaemonSet: --config /etc/ingrain/config.yaml", c["args"])
    vols = {v["name"]: v for v in pod["volumes"]}
    check_mount(c, vols, "cgroup", "/sys/fs/cgroup", "/sys/fs/cgroup", True)
    check_mount(c, vols, "tracing", "/sys/kernel/tracing", "/sys/kernel/tracing", True)
    check(sorted(vols) == ["buffer", "cgroup", "config", "tls", "tracing"] and len(c["volumeMounts"]) == 5 and
          "secret" in vols["tls"] and vols["buffer"]["hostPath"] == {"path": "/var/lib/ingrain/agent", "type": "DirectoryOrCreate"} and
          [m for m in c["volumeMounts"] if m["name"] == "buffer"] == [{"name": "buffer", "mountPath": "/var/lib/ingrain/agent"}],
          "DaemonSet: no other volume than the TLS Secret and the on-disk queue's hostPath, writable at /var/lib/ingrain/agent "
          "(no BTF, bpffs or /proc: the code uses none)", sorted(vols))
    tm = [m for m in c["volumeMounts"] if m["name"] == "tracing"]
    check(tm and tm[0].get("mountPropagation") == "HostToContainer", "DaemonSet: tracefs mount HostToContainer")
    check(cfg is not None and cfg["agent"].get("mount_bpffs") is False, "config: agent.mount_bpffs false (nothing pins)")
    cfgm = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/ingrain"]
    check(len(cfgm) == 1 and "subPath" not in cfgm[0] and
          vols[cfgm[0]["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
          "DaemonSet: ConfigMap mounted as a directory at /etc/ingrain (no subPath)")
    check({"operator": "Exists"} in pod.get("tolerations", []), "DaemonSet: tolerates every taint by default")
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    check(len(ann.get("checksum/config", "")) == 64, "DaemonSet: checksum/config annotation (rolls agents on config change)")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb and pdb["spec"].get("maxUnavailable") == 1 and
          pdb["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "aggregator",
          "PodDisruptionBudget: aggregator, maxUnavailable 1", pdb and pdb["spec"])
    hook = one(docs, "Pod")
    hc = hook and hook["spec"]["containers"][0]
    check(hook and hook["metadata"]["annotations"].get("helm.sh/hook") == "test" and
          "--check-config" in " ".join(hc["args"]) and "ingrain-agent" in " ".join(hc["args"]) and
          hc["image"] == c["image"], "helm test pod: both binaries' --check-config from the release's image", hook and hc)
    r = c.get("resources", {})
    check("requests" in r and "limits" in r and "memory" in r["limits"], "DaemonSet: resource requests and a memory limit", r)
    check(ds["spec"]["updateStrategy"]["type"] == "RollingUpdate", "DaemonSet: RollingUpdate")
    check([(p["name"], p["containerPort"]) for p in c.get("ports", [])] == [("http", 9091)],
          "DaemonSet: agent http port 9091", c.get("ports"))
    lp, rp = c.get("livenessProbe", {}), c.get("readinessProbe", {})
    check(lp.get("httpGet", {}).get("path") == "/healthz" and lp["httpGet"].get("port") in ("http", 9091),
          "DaemonSet: liveness probe GET /healthz", lp)
    check(rp.get("httpGet", {}).get("path") == "/readyz" and rp["httpGet"].get("port") in ("http", 9091),
          "DaemonSet: readiness probe GET /readyz (paces the rolling update)", rp)

    # RBAC
    check(cr["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
          "ClusterRole: exactly get/list/watch on pods", cr["rules"])
    sa = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == pod["serviceAccountName"]]
    check(len(sa) == 1, "DaemonSet: its ServiceAccount is rendered", pod["serviceAccountName"])
    check(crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cr["metadata"]["name"]},
          "ClusterRoleBinding: binds the ClusterRole", crb["roleRef"])
    check(crb["subjects"] == [{"kind": "ServiceAccount", "name": pod["serviceAccountName"], "namespace": "ingrain"}],
          "ClusterRoleBinding: to the agent's ServiceAccount", crb["subjects"])
    check(pod.get("automountServiceAccountToken") is not False, "DaemonSet: service-account token mounted (API watch)")

    # Service and Deployment
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    check(ports.get("agents", {}).get("port") == 7700 and ports["agents"].get("protocol") == "TCP",
          "Service: port 7700/TCP for agents", svc["spec"]["ports"])
    check(ports.get("http", {}).get("port") == 9090, "Service: port 9090 for /metrics, /healthz, /readyz")
    dpod = dep["spec"]["template"]["spec"]
    dc = container(dep)
    plabels = dep["spec"]["template"]["metadata"]["labels"]
    sel = svc["spec"]["selector"]
    check(all(plabels.get(k) == v for k, v in sel.items()), "Service: selects the aggregator pods", sel)
    alabels = ds["spec"]["template"]["metadata"]["labels"]
    check(not all(alabels.get(k) == v for k, v in sel.items()), "Service: does not select the agent pods")
    cports = {p["name"]: p["containerPort"] for p in dc["ports"]}
    check(cports == {"agents": 7700, "http": 9090}, "Deployment: container ports agents 7700, http 9090", cports)
    check(all(p["targetPort"] in cports for p in svc["spec"]["ports"]), "Service: targetPorts name container ports")
    check(dep["spec"]["replicas"] == 1, "Deployment: 1 replica by default")
    check(dc["command"][0].endswith("/ingrain-aggregator"), "Deployment: runs ingrain-aggregator")
    lp, rp = dc.get("livenessProbe", {}), dc.get("readinessProbe", {})
    check(lp.get("httpGet", {}).get("path") == "/healthz" and lp["httpGet"].get("port") in ("http", 9090),
          "Deployment: liveness probe GET /healthz on the http port", lp)
    check(rp.get("httpGet", {}).get("path") == "/readyz" and rp["httpGet"].get("port") in ("http", 9090),
          "Deployment: readiness probe GET /readyz on the http port", rp)
    dvols = {v["name"]: v for v in dpod["volumes"]}
    dcfg = [m for m in dc["volumeMounts"] if m["mountPath"] == "/etc/ingrain"]
    check(len(dcfg) == 1 and "subPath" not in dcfg[0] and
          dvols[dcfg[0]["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
          "Deployment: ConfigMap mounted as a directory (..data swap reaches the aggregator)")
    check("checksum/config" not in dep["spec"]["template"]["metadata"].get("annotations", {}),
          "Deployment: no checksum annotation (the aggregator reloads in place)")
    st = [m for m in dc["volumeMounts"] if m["mountPath"] == "/var/lib/ingrain"]
    check(len(st) == 1 and not st[0].get("readOnly") and "emptyDir" in dvols[st[0]["name"]],
          "Deployment: state_dir /var/lib/ingrain writable (emptyDir by default)")
    check(sorted(m["mountPath"] for m in dc["volumeMounts"]) == ["/etc/ingrain", "/run/ingrain", "/var/lib/ingrain", "/var/run/secrets/ingrain/tls"] and
          all(m.get("readOnly") for m in dc["volumeMounts"] if m["mountPath"] in ("/etc/ingrain", "/var/run/secrets/ingrain/tls")),
          "Deployment: writable mounts exactly state_dir and the control socket's directory (config and TLS read-only)", dc["volumeMounts"])
    check(dpod["securityContext"].get("runAsNonRoot") is True and dc["securityContext"].get("readOnlyRootFilesystem") is True,
          "Deployment: non-root, read-only root filesystem")
    check(dpod.get("automountServiceAccountToken") is False, "Deployment: no API token (the aggregator needs none)")
    denv = env_map(dc)
    check(not any(k.startswith("AWS_") or k == "DD_API_KEY" for k in denv), "Deployment: no secret env by default", sorted(denv))
    check(c["image"] == dc["image"] == "ingrain:0.1.0", "both workloads use ingrain:<appVersion>", c["image"])

    # ConfigMap contents
    if cfg:
        url = f"tls+tcp://{svc['metadata']['name']}.ingrain.svc:7700"
        check(cfg["agent"]["aggregator"] == url, f"config: agent.aggregator is the Service over TLS ({url})", cfg["agent"].get("aggregator"))
        check(cfg["aggregator"]["listen"] == "tls+tcp://0.0.0.0:7700", "config: aggregator.listen tls+tcp://0.0.0.0:7700", cfg["aggregator"].get("listen"))
        mp = "/var/run/secrets/ingrain/tls"
        check(cfg["agent"].get("tls_dir") == mp and cfg["aggregator"].get("tls_dir") == mp,
              "config: both tls_dir point at the Secret mounts", (cfg["agent"].get("tls_dir"), cfg["aggregator"].get("tls_dir")))
        check(cfg["agent"].get("tls_shared_identity") is True and cfg["aggregator"].get("tls_shared_names") == ["ingrain-agent"],
              "config: the shared agent certificate is declared on both sides")
        check("plaintext" not in cfg["agent"] and "plaintext" not in cfg["aggregator"], "config: no plaintext by default")
    # TLS Secrets, mounted read-only where tls_dir says
    secrets = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Secret"}
    for sname in ("ingrain-aggregator-tls", "ingrain-agent-tls"):
        sec = secrets.get(sname, {})
        check(sec.get("type") == "kubernetes.io/tls" and sorted(sec.get("data", {})) == ["ca.crt", "tls.crt", "tls.key"],
              f"Secret {sname}: kubernetes.io/tls with tls.crt, tls.key, ca.crt", sorted(sec.get("data", {})))
        import base64, os
        os.makedirs(f"{tmp}/{sname}", exist_ok=True)
        for k, v in sec.get("data", {}).items():
            with open(f"{tmp}/{sname}/{k}", "wb") as f:
                f.write(base64.b64decode(v))
    for w, sname, label in ((ds, "ingrain-agent-tls", "DaemonSet"), (dep, "ingrain-aggregator-tls", "Deployment")):
        wpod, wc = w["spec"]["template"]["spec"], container(w)
        tv = [v for v in wpod["volumes"] if v.get("secret", {}).get("secretName") == sname]
        tm = [m for m in wc["volumeMounts"] if tv and m["name"] == tv[0]["name"]]
        check(len(tm) == 1 and tm[0]["mountPath"] == "/var/run/secrets/ingrain/tls" and tm[0].get("readOnly") is True,
              f"{label}: Secret {sname} mounted read-only at /var/run/secrets/ingrain/tls (as a directory)", tm)
        check(str(cfg["aggregator"]["metrics_listen"]).endswith(":9090"), "config: aggregator.metrics_listen on the Service's http port",
              cfg["aggregator"].get("metrics_listen"))
        check(str(cfg["agent"]["metrics_listen"]).endswith(":9091"), "config: agent.metrics_listen on the probes' port",
              cfg["agent"].get("metrics_listen"))
        check(cfg["kubernetes"]["enabled"] == "auto", "config: kubernetes.enabled auto")
        check(cfg["probes"]["files"]["pipelines"] == ["live"] and "console" in cfg["pipelines"]["live"]["backends"],
              "config: files probe -> pipeline live -> console")

# ---------------------------------------------------------------- overrides
docs = load("override")
if docs:
    print("# overrides (capabilities mode, secrets, ports, persistence, config)")
    check_common(docs, "override")
    ds, dep, svc = one(docs, "DaemonSet"), one(docs, "Deployment"), one(docs, "Service")
    pvc = one(docs, "PersistentVolumeClaim")
    cfg = config_of(docs, "override")
    c, dc = container(ds), container(dep)
    pod, dpod = ds["spec"]["template"]["spec"], dep["spec"]["template"]["spec"]
    sc = c["securityContext"]
    check(sc.get("privileged") is False and sc["capabilities"]["drop"] == ["ALL"] and
          sc["capabilities"]["add"] == ["BPF", "PERFMON", "DAC_READ_SEARCH", "SYS_RESOURCE"],
          "agent.extraCapabilities appended: BPF PERFMON DAC_READ_SEARCH SYS_RESOURCE", sc)
    check(c["args"] == ["--config", "/etc/ingrain/config.yaml", "--log-level", "debug"], "agent.extraArgs appended", c["args"])
    check({"name": "extra", "hostPath": {"path": "/var/log", "type": "Directory"}} in pod["volumes"] and
          {"name": "extra", "mountPath": "/host/var/log", "readOnly": True} in c["volumeMounts"],
          "agent.extraVolumes / extraVolumeMounts")
    check(c["image"] == dc["image"] == "registry.example/ingrain:1.2.3", "image.repository and image.tag", c["image"])
    check(pod.get("imagePullSecrets") == [{"name": "regcred"}] == dpod.get("imagePullSecrets"), "imagePullSecrets on both")
    check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
                                      "node-role.example/monitored": "true"}, "agent.nodeSelector merged with os/arch", pod.get("nodeSelector"))
    check(pod.get("priorityClassName") == "system-node-critical" and dpod.get("priorityClassName") == "high",
          "priorityClassName on both")
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    check(ann.get("team") == "security" and "checksum/config" not in ann,
          "agent.podAnnotations kept; rollOnConfigChange=false drops the checksum", ann)
    check(env_map(c).get("EXTRA", {}).get("value") == "1", "agent.extraEnv appended")
    denv = env_map(dc)
    for var, secret, key in (("AWS_ACCESS_KEY_ID", "ingrain-s3", "AWS_ACCESS_KEY_ID"),
                             ("AWS_SECRET_ACCESS_KEY", "ingrain-s3", "AWS_SECRET_ACCESS_KEY"),
                             ("AWS_SESSION_TOKEN", "ingrain-s3", "AWS_SESSION_TOKEN"),
                             ("DD_API_KEY", "ingrain-dd", "api-key")):
        ref = denv.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
        check(ref == {"name": secret, "key": key}, f"aggregator env {var} from Secret {secret} key {key}", ref)
    check(not any(k.startswith("AWS_") or k == "DD_API_KEY" for k in env_map(c)), "secrets are not given to the agent")
    ports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    check(ports == {"agents": 7800, "http": 9191}, "Service follows aggregator.ports", ports)
    cports = {p["name"]: p["containerPort"] for p in dc["ports"]}
    check(cports == {"agents": 7800, "http": 9191}, "Deployment container ports follow aggregator.ports", cports)
    check(dc["livenessProbe"]["httpGet"]["port"] in ("http", 9191), "probes on the moved http port")
    check(pvc is not None and pvc["spec"]["resources"]["requests"]["storage"] == "1Gi" and
          pvc["spec"].get("storageClassName") == "fast", "persistence: a PVC of 1Gi on class fast", pvc and pvc["spec"])
    vols = {v["name"]: v for v in dpod["volumes"]}
    check(vols["state"].get("persistentVolumeClaim", {}).get("claimName") == (pvc or {}).get("metadata", {}).get("name"),
          "persistence: the state volume is the PVC")
    check(dep["spec"].get("strategy") == {"type": "Recreate"}, "persistence: Recreate strategy (ReadWriteOnce)")
    sas = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    asa = sas.get(dpod["serviceAccountName"], {})
    check(asa.get("metadata", {}).get("annotations", {}).get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::"),
          "aggregator.serviceAccount.annotations (IRSA)")
    if cfg:
        check(cfg["agent"]["aggregator"] == f"tls+tcp://sec-aggregator.ingrain.svc:7800",
              "config: agent.aggregator follows fullnameOverride and the port", cfg["agent"]["aggregator"])
        check(cfg["aggregator"]["listen"] == "tls+tcp://0.0.0.0:7800", "config: aggregator.listen follows the port")
        check(str(cfg["aggregator"]["metrics_listen"]).endswith(":9191"), "config: metrics_listen follows the port")
        check(cfg["kubernetes"]["enabled"] == "off", "config: a bare YAML `off` is rendered as the word off, not false",
              cfg["kubernetes"]["enabled"])
        check(cfg["probes"]["files"]["monitor_dirs"] == ["/etc", "/root/.ssh"], "config: user lists replace defaults")
        check(cfg["backends"]["console"] == {"type": "console", "format": "text"}, "config: user maps merge into defaults")
        check(cfg["probes"]["files"]["pipelines"] == ["live", "archive"] and
              cfg["pipelines"]["archive"]["backends"] == ["s3", "dd"] and cfg["backends"]["s3"]["bucket"] == "audit-archive",
              "config: S3 and Datadog backends added beside the defaults")
        check(not any(k in str(cfg["backends"]) for k in ("access_key", "secret", "api_key")),
              "config: no credential in the ConfigMap (they come from Secrets)")
        check(cfg["agent"]["queue_max_bytes"] == "64MiB", "config: untouched defaults kept")

# ---------------------------------------------------------------- variants
docs = load("no-agent")
if docs:
    print("# agent.enabled=false")
    check(kinds(docs) == sorted(["ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget", "Pod", "Secret", "Secret"]),
          "agent.enabled=false: no DaemonSet, agent ServiceAccount or RBAC", kinds(docs))
docs = load("external")
if docs:
    print("# explicit addresses")
    cfg = config_of(docs, "external")
    if cfg:
        check(cfg["agent"]["aggregator"] == "tls+tcp://aggregator.elsewhere.example:7700", "config: an explicit agent.aggregator is kept")
        check(cfg["aggregator"]["listen"] == "tls+tcp://0.0.0.0:7701", "config: an explicit aggregator.listen is kept")

    # The defect this guards: listen on 7701 used to leave the Service and container on 7700.
    svc, dep = one(docs, "Service"), one(docs, "Deployment")
    sports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    cports = {p["name"]: p["containerPort"] for p in container(dep)["ports"]}
    check(sports["agents"] == 7701 and cports["agents"] == 7701,
          "aggregator.listen on 7701: the Service and the container port follow it (7701, not 7700)", (sports, cports))

docs = load("certmanager")
if docs:
    print("# tls.certManager.enabled=true")
    check(not [d for d in docs if d["kind"] == "Secret"], "cert-manager: the chart renders no Secret of its own")
    certs = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Certificate"}
    issuers = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "Issuer")
    check(issuers == ["ingrain-ca", "ingrain-selfsigned"] and certs.get("ingrain-ca", {}).get("spec", {}).get("isCA") is True,
          "cert-manager: its own CA (self-signed Issuer -> CA Certificate -> CA Issuer)", issuers)
    a, g = certs.get("ingrain-agent-tls", {}).get("spec", {}), certs.get("ingrain-aggregator-tls", {}).get("spec", {})
    check(a.get("secretName") == "ingrain-agent-tls" and a.get("dnsNames") == ["ingrain-agent"] and a.get("usages") == ["client auth"],
          "cert-manager: agent Certificate (client auth, ingrain-agent) into the Secret the DaemonSet mounts", a)
    check(g.get("secretName") == "ingrain-aggregator-tls" and "ingrain-aggregator.ingrain.svc" in g.get("dnsNames", []) and
          g.get("issuerRef", {}).get("name") == "ingrain-ca", "cert-manager: aggregator Certificate for the Service names", g)
docs = load("certmanager-issuer")
if docs:
    certs = [d for d in docs if d["kind"] == "Certificate"]
    check(len(certs) == 2 and not [d for d in docs if d["kind"] == "Issuer"] and
          all(c["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"} for c in certs),
          "cert-manager with issuerRef: two Certificates from that issuer, no CA of the chart's")
docs = load("plaintext")
if docs:
    print("# tls.enabled=false")
    cfg = config_of(docs, "plaintext")
    check(not [d for d in docs if d["kind"] in ("Secret", "Certificate")], "tls.enabled=false: no TLS objects")
    if cfg:
        check(cfg["agent"]["aggregator"].startswith("tcp://") and cfg["agent"].get("plaintext") is True and
              cfg["aggregator"]["listen"].startswith("tcp://") and cfg["aggregator"].get("plaintext") is True,
              "tls.enabled=false: tcp:// with the explicit plaintext opt-in on both sides")
docs = load("moved")
if docs:
    print("# addresses moved in config: Service, ports, probes and mounts follow")
    cfg = config_of(docs, "moved")
    svc, dep, ds = one(docs, "Service"), one(docs, "Deployment"), one(docs, "DaemonSet")
    dc, c = container(dep), container(ds)
    sports = {p["name"]: p["port"] for p in svc["spec"]["ports"]}
    cports = {p["name"]: p["containerPort"] for p in dc["ports"]}
    check(sports == {"agents": 7701, "http": 9191} and cports == {"agents": 7701, "http": 9191},
          "Service and container ports are the config's 7701 and 9191", (sports, cports))
    check(dc["livenessProbe"]["httpGet"]["port"] == "http" and dc["readinessProbe"]["httpGet"]["port"] == "http",
          "aggregator probes on the named port http (= metrics_listen's 9191)")
    check([(p["name"], p["containerPort"]) for p in c["ports"]] == [("http", 9300)] and
          ds["spec"]["template"]["metadata"]["annotations"].get("prometheus.io/port") == "9300",
          "agent metrics_listen 9300: container port, probes and scrape annotation follow", c["ports"])
    if cfg:
        check(cfg["agent"]["aggregator"] == "tls+tcp://ingrain-aggregator.ingrain.svc:7701",
              "agents dial the listen port 7701", cfg["agent"]["aggregator"])
    mounts = {m["mountPath"]: m for m in dc["volumeMounts"]}
    dvols = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    check(sorted(mounts) == ["/data/ingrain", "/etc/ingrain", "/var/run/ingrain-ctl", "/var/run/secrets/ingrain/tls"] and
          not mounts["/var/run/ingrain-ctl"].get("readOnly") and "emptyDir" in dvols[mounts["/var/run/ingrain-ctl"]["name"]],
          "control outside /run/ingrain: its directory (and state_dir) mounted writable, /run/ingrain not", sorted(mounts))

docs = load("extras")
if docs:
    print("# digest, architectures, AppArmor (1.30), SELinux, seccomp, monitoring, NET_ADMIN")
    ds, dep = one(docs, "DaemonSet"), one(docs, "Deployment")
    c, pod = container(ds), ds["spec"]["template"]["spec"]
    sc = c["securityContext"]
    config_of(docs, "extras")
    check(c["image"] == "registry.example/ingrain@sha256:" + "0123456789abcdef" * 4, "image.digest: pulled by digest", c["image"])
    check(sc["capabilities"]["add"] == ["BPF", "PERFMON", "DAC_READ_SEARCH", "NET_ADMIN"],
          "probes.traffic.method cgroup_skb: NET_ADMIN added by the chart", sc["capabilities"])
    check(sc.get("appArmorProfile") == {"type": "Unconfined"} and
          "container.apparmor.security.beta.kubernetes.io/agent" not in ds["spec"]["template"]["metadata"].get("annotations", {}),
          "Kubernetes 1.30: securityContext.appArmorProfile field, no annotation", sc)
    check(sc.get("seLinuxOptions") == {"type": "spc_t"} and sc.get("seccompProfile") == {"type": "Unconfined"},
          "agent.seLinuxType spc_t, agent.seccompProfile Unconfined", sc)
    check("kubernetes.io/arch" not in pod["nodeSelector"] and
          pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] ==
          [{"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64", "arm64"]}]}],
          "two architectures: a nodeAffinity on kubernetes.io/arch In [amd64, arm64]", pod.get("affinity"))
    mounts = [m["mountPath"] for m in container(dep)["volumeMounts"]]
    check(mounts == ["/etc/ingrain", "/var/lib/ingrain", "/var/run/secrets/ingrain/tls"], "control: \"\" (off): no control mount", mounts)
    sm, pm, pr = one(docs, "ServiceMonitor"), one(docs, "PodMonitor"), one(docs, "PrometheusRule")
    check(sm and sm["metadata"]["labels"].get("release") == "prom" and sm["spec"]["endpoints"][0]["port"] == "http",
          "ServiceMonitor on the aggregator's http port", sm and sm["spec"])
    check(pm and pm["spec"]["podMetricsEndpoints"][0]["port"] == "http" and
          pm["spec"]["selector"]["matchLabels"].get("app.kubernetes.io/component") == "agent", "PodMonitor on the agents' http port")
    exprs = " ".join(r["expr"] for g in (pr or {}).get("spec", {}).get("groups", []) for r in g["rules"])
    check(all(m in exprs for m in ("ingrain_agent_lost_records_total", "ingrain_backend_dropped_total", "ingrain_agent_connected")),
          "PrometheusRule: alerts on lost records, dropped records, disconnected agents", exprs)
    with open(f"{tmp}/rule-metrics.txt", "w") as f:
        f.write("\n".join(sorted(set(__import__("re").findall(r"ingrain_[a-z_]+", exprs)))) + "\n")
docs = load("replicas")
if docs:
    print("# aggregator.replicas=3")
    cfg = config_of(docs, "replicas")
    heads = [d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"]
    check(len(heads) == 1 and heads[0]["metadata"]["name"] == "ingrain-aggregator-headless" and
          heads[0]["spec"]["selector"].get("app.kubernetes.io/component") == "aggregator" and
          heads[0]["spec"]["ports"][0]["port"] == 7700 and heads[0]["spec"].get("publishNotReadyAddresses") is False,
          "replicas > 1: a headless Service of the ready aggregator pods on the agents port", heads and heads[0]["spec"])
    if cfg:
        check(cfg["agent"]["aggregator"] == "tls+tcp://ingrain-aggregator-headless.ingrain.svc:7700",
              "replicas > 1: agents dial the headless Service (one address per replica, picked by hash)",
              cfg["agent"]["aggregator"])
    check(one(docs, "Deployment")["spec"]["replicas"] == 3, "Deployment: 3 replicas")
docs = load("default")
check(not [d for d in docs if d["kind"] == "Service" and d["spec"].get("clusterIP") == "None"],
      "one replica: no headless Service (agents dial the ClusterIP Service)")
docs = load("extras129")
if docs:
    ds = one(docs, "DaemonSet")
    sc = container(ds)["securityContext"]
    check("appArmorProfile" not in sc and
          ds["spec"]["template"]["metadata"]["annotations"].get("container.apparmor.security.beta.kubernetes.io/agent") == "unconfined",
          "Kubernetes 1.29: AppArmor through the beta annotation, not the 1.30 field", sc)

docs = load("nometrics")
if docs:
    print("# agent.metrics.enabled=false")
    ds = one(docs, "DaemonSet")
    c = container(ds)
    check(c.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz" and
          c.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz",
          "agent.metrics.enabled=false: liveness and readiness probes stay (health is independent of metrics)")
    check("prometheus.io/scrape" not in ds["spec"]["template"]["metadata"].get("annotations", {}),
          "agent.metrics.enabled=false: no scrape annotations")
    cfg = config_of(docs, "nometrics")
    if cfg:
        check(cfg["agent"]["metrics_listen"] == "0.0.0.0:9091", "agent.metrics.enabled=false: the health endpoint is still served")

def checksum(name):
    docs = load(name)
    ds = one(docs or [], "DaemonSet")
    return ds and ds["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
base = checksum("default")
print("# agent roll-out on config change")
check(base and checksum("otherconfig") not in (None, base), "checksum/config changes when config changes")
check(base and checksum("othertag") == base, "checksum/config unchanged when only the image changes")
check(base and checksum("pipelineonly") == base, "checksum/config unchanged when only pipelines/backends change (the agent does not read them)")
check(base and checksum("probesonly") not in (None, base), "checksum/config changes when a probe setting changes")

print(f"# manifest checks: {passed} ok, {failed} failing")
sys.exit(1 if failed else 0)
PY
if python3 "$tmp/check.py" "$tmp" >"$tmp/check.out" 2>&1; then
	py_rc=0
else
	py_rc=$?
fi
cat "$tmp/check.out"
pass=$((pass + $(grep -c '^ok   - ' "$tmp/check.out" || true)))
fail=$((fail + $(grep -c '^FAIL - ' "$tmp/check.out" || true)))
if [ "$py_rc" -ne 0 ] && ! grep -q '^FAIL - ' "$tmp/check.out"; then
	bad "manifest checks crashed (exit $py_rc)"
fi

# --- NOTES.txt (rendered by install/upgrade only) ----------------------------
# helm template never prints NOTES.txt and helm install needs a cluster: a copy
# of the chart with one more template that includes NOTES.txt renders it.
cp -r "$chart" "$tmp/notes-chart"
printf '%s\n' 'apiVersion: v1' 'kind: ConfigMap' 'metadata: {name: notes}' 'data:' \
	'  notes: {{ include (print $.Template.BasePath "/NOTES.txt") . | toJson }}' \
	>"$tmp/notes-chart/templates/zz-notes.yaml"
notes() { # name, helm args...
	local name=$1
	shift
	"$helm" template ingrain "$tmp/notes-chart" -n ingrain --show-only templates/zz-notes.yaml "$@" \
		>"$tmp/$name.notes.yaml" 2>&1 &&
		python3 -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["data"]["notes"])' \
			"$tmp/$name.notes.yaml" >"$tmp/$name.notes" ||
		bad "NOTES.txt ($name) renders: $(tail -n 5 "$tmp/$name.notes.yaml")"
}
notes default
notes override -f "$tmp/values-override.yaml"
notes spool --set config.backends.s3.type=s3 --set config.backends.s3.bucket=b --set config.backends.s3.region=r
if grep -qF "kubectl label namespace ingrain pod-security.kubernetes.io/enforce=privileged" "$tmp/default.notes"; then
	ok "NOTES: the Pod Security admission label the agent needs"
else
	bad "NOTES: the Pod Security admission label the agent needs"
fi
if grep -q "WARNING: backends s3 spool" "$tmp/spool.notes" && ! grep -q "WARNING" "$tmp/default.notes" &&
	! grep -q "WARNING" "$tmp/override.notes"; then
	ok "NOTES: warns about an emptyDir spool with an S3 backend and no persistence (only then)"
else
	bad "NOTES: spool warning"
	sed 's/^/    /' "$tmp/spool.notes" | tail -n 12
fi

# --- the values reference is generated from values.schema.json ---------------
if python3 "$src/scripts/gen-chart-values.py" --check "$src/docs/chart-values.md" >"$tmp/ref.out" 2>&1; then
	ok "docs/chart-values.md is current (scripts/gen-chart-values.py)"
else
	bad "docs/chart-values.md is stale: run python3 scripts/gen-chart-values.py > docs/chart-values.md"
	sed 's/^/    /' "$tmp/ref.out" | head -n 20
fi

# --- the rendered configuration, checked by ingrain itself ------------------
echo "# --check-config on the rendered config.yaml"
for bin in "$bld/aggregator/ingrain-aggregator" "$bld/node-agent/ingrain-agent"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "# $name not built ($bin): --check-config part not run"
		continue
	fi
	for cfg in default override external nometrics plaintext moved extras replicas; do
		f=$tmp/$cfg.config.yaml
		if [ ! -f "$f" ]; then
			bad "$name --check-config ($cfg): no rendered config"
		elif "$bin" --check-config "$f" >"$tmp/cc.out" 2>&1; then
			ok "$name --check-config accepts the $cfg render"
		else
			bad "$name --check-config accepts the $cfg render"
			sed 's/^/    /' "$tmp/cc.out"
		fi
	done
	# And it is a real check: a misspelt key in values is caught.
	if "$helm" template ingrain "$chart" -n ingrain --set config.agent.adress=x \
		--show-only templates/configmap.yaml >"$tmp/typo.yaml" 2>&1 &&
		python3 -c 'import sys, yaml; open(sys.argv[2], "w").write(yaml.safe_load(open(sys.argv[1]))["data"]["config.yaml"])' \
			"$tmp/typo.yaml" "$tmp/typo.config.yaml" &&
		! "$bin" --check-config "$tmp/typo.config.yaml" >"$tmp/cc.out" 2>&1 &&
		grep -q "adress" "$tmp/cc.out"; then
		ok "$name --check-config rejects config.agent.adress (a values typo)"
	else
		bad "$name --check-config rejects config.agent.adress (a values typo)"
		sed 's/^/    /' "$tmp/cc.out" 2>/dev/null || true
	fi
done

# --- the chart's generated certificates, used by the real binaries -----------
echo "# a TLS session with the chart's certificates"
agg="$bld/aggregator/ingrain-aggregator"
send="$bld/tests/ig_send"
if [ -x "$agg" ] && [ -x "$send" ] && [ -s "$tmp/ingrain-agent-tls/tls.crt" ]; then
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	cat >"$tmp/tls-aggregator.yaml" <<YAML
aggregator:
  listen: tls+tcp://127.0.0.1:$port
  tls_dir: $tmp/ingrain-aggregator-tls
  tls_shared_names: [ingrain-agent]
  control: ""
  state_dir: ""
YAML
	"$agg" -c "$tmp/tls-aggregator.yaml" >"$tmp/tls-aggregator.log" 2>&1 &
	aggpid=$!
	for _ in $(seq 100); do grep -q "aggregator listening" "$tmp/tls-aggregator.log" && break; sleep 0.1; done
	if IG_SEND_TLS_DIR="$tmp/ingrain-agent-tls" IG_SEND_TLS_SERVER_NAME=ingrain-aggregator.ingrain.svc IG_SEND_NODE=node-1 \
		"$send" "tls+tcp://127.0.0.1:$port" --valid 3 2 node-1 >"$tmp/tls-send.out" 2>&1 &&
		grep -q "acks ok=3 duplicate=0 rejected=0" "$tmp/tls-send.out"; then
		ok "the chart's agent certificate is accepted by an aggregator with the chart's server certificate"
	else
		bad "the chart's certificates work together"
		sed 's/^/    /' "$tmp/tls-send.out" "$tmp/tls-aggregator.log"
	fi
	kill "$aggpid" 2>/dev/null || true
	wait "$aggpid" 2>/dev/null || true
else
	echo "# binaries not built: TLS session part not run"
fi

echo "test_helm_chart: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
