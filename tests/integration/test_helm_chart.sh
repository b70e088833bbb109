#!/usr/bin/env bash
# Renders charts/ingrain with the real helm binary and checks what a cluster
# would be given: lint --strict, `helm template` with the default values and
# with overrides, then python3 + PyYAML assertions on the manifests (hostPID,
# NODE_NAME from the downward API, host mounts, RBAC exactly get/list/watch on
# pods, the Service ports, the ConfigMap's config pointing agents at the
# Service), values that must be refused, and - when the binaries are built -
# `--check-config` on the rendered configuration file.
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
  nodeSelector: {kubernetes.io/os: linux}
  priorityClassName: system-node-critical
  podAnnotations: {team: security}
  rollOnConfigChange: false
  extraEnv: [{name: EXTRA, value: "1"}]
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

# --- lint -------------------------------------------------------------------
for v in "" values-override.yaml values-no-agent.yaml; do
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
refuse "relative host path" "Does not match pattern" --set agent.hostPaths.btf=sys/kernel/btf
refuse "unknown issuer kind" "tls.certManager.issuerRef.kind must be one of" \
	--set tls.certManager.issuerRef.kind=Vault

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
                   "Service", "DaemonSet", "Deployment", "Secret", "Secret"])
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
    check(pod.get("hostPID") is True, "DaemonSet: hostPID: true")
    check(c is not None, "DaemonSet: one container")
    e = env_map(c).get("NODE_NAME", {})
    check(e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "DaemonSet: env NODE_NAME from fieldRef spec.nodeName", e)
    check(c["securityContext"].get("privileged") is True, "DaemonSet: privileged by default")
    check(c["command"][0].endswith("/ingrain-agent"), "DaemonSet: runs ingrain-agent", c["command"])
    check(c["args"] == ["--config", "/etc/ingrain/config.yaml"], "DaemonSet: --config /etc/ingrain/config.yaml", c["args"])
    vols = {v["name"]: v for v in pod["volumes"]}
    check_mount(c, vols, "btf", "/sys/kernel/btf", "/sys/kernel/btf", True)
    check_mount(c, vols, "cgroup", "/sys/fs/cgroup", "/sys/fs/cgroup", True)
    check_mount(c, vols, "tracing", "/sys/kernel/tracing", "/sys/kernel/tracing", True)
    check_mount(c, vols, "bpf", "/sys/fs/bpf", "/sys/fs/bpf", False)
    check_mount(c, vols, "host-proc", "/proc", "/host/proc", True)
    cfgm = [m for m in c["volumeMounts"] if m["mountPath"] == "/etc/ingrain"]
    check(len(cfgm) == 1 and "subPath" not in cfgm[0] and
          vols[cfgm[0]["name"]].get("configMap", {}).get("name") == cm["metadata"]["name"],
          "DaemonSet: ConfigMap mounted as a directory at /etc/ingrain (no subPath)")
    check({"operator": "Exists"} in pod.get("tolerations", []), "DaemonSet: tolerates every taint by default")
    ann = ds["spec"]["template"]["metadata"].get("annotations", {})
    check(len(ann.get("checksum/config", "")) == 64, "DaemonSet: checksum/config annotation (rolls agents on config change)")
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
          sorted(sc["capabilities"]["add"]) == ["BPF", "PERFMON", "SYS_ADMIN", "SYS_RESOURCE"],
          "agent.privileged=false: drop ALL, add BPF PERFMON SYS_ADMIN SYS_RESOURCE", sc)
    check(sc.get("appArmorProfile") == {"type": "Unconfined"}, "agent.privileged=false: AppArmor unconfined (mount(2))", sc)
    check(pod.get("hostPID") is True, "override: still hostPID")
    check(c["image"] == dc["image"] == "registry.example/ingrain:1.2.3", "image.repository and image.tag", c["image"])
    check(pod.get("imagePullSecrets") == [{"name": "regcred"}] == dpod.get("imagePullSecrets"), "imagePullSecrets on both")
    check(pod.get("nodeSelector") == {"kubernetes.io/os": "linux"}, "agent.nodeSelector")
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
    check(kinds(docs) == sorted(["ServiceAccount", "ConfigMap", "Service", "Deployment", "Secret", "Secret"]),
          "agent.enabled=false: no DaemonSet, agent ServiceAccount or RBAC", kinds(docs))
docs = load("external")
if docs:
    print("# explicit addresses")
    cfg = config_of(docs, "external")
    if cfg:
        check(cfg["agent"]["aggregator"] == "tls+tcp://aggregator.elsewhere.example:7700", "config: an explicit agent.aggregator is kept")
        check(cfg["aggregator"]["listen"] == "tls+tcp://0.0.0.0:7701", "config: an explicit aggregator.listen is kept")

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

docs = load("nometrics")
if docs:
    print("# agent.metrics.enabled=false")
    c = container(one(docs, "DaemonSet"))
    check("ports" not in c and "livenessProbe" not in c and "readinessProbe" not in c,
          "agent.metrics.enabled=false: no agent port or probes")
    cfg = config_of(docs, "nometrics")
    if cfg:
        check(cfg["agent"]["metrics_listen"] == "", "agent.metrics.enabled=false: agent.metrics_listen stays off")

def checksum(name):
    docs = load(name)
    ds = one(docs or [], "DaemonSet")
    return ds and ds["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
base = checksum("default")
print("# agent roll-out on config change")
check(base and checksum("otherconfig") not in (None, base), "checksum/config changes when config changes")
check(base and checksum("othertag") == base, "checksum/config unchanged when only the image changes")

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

# --- the rendered configuration, checked by ingrain itself ------------------
echo "# --check-config on the rendered config.yaml"
for bin in "$bld/aggregator/ingrain-aggregator" "$bld/node-agent/ingrain-agent"; do
	name=$(basename "$bin")
	if [ ! -x "$bin" ]; then
		echo "# $name not built ($bin): --check-config part not run"
		continue
	fi
	for cfg in default override external nometrics plaintext; do
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
