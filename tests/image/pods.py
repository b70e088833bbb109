#!/usr/bin/env python3
"""Turn the chart's rendered pods into `podman run` command lines.

Reads `helm template` output and, for the agent DaemonSet and the aggregator
Deployment, writes a shell-quoted `podman run` argv that gives the container
what a kubelet would: the image, command and args, env (downward API values
supplied here), the pod and container securityContext (privileged,
capabilities, read-only root, user, no_new_privs, seccomp, AppArmor, SELinux
type), hostPID/hostNetwork, every volume mount (hostPath with its type checked
as the kubelet does, ConfigMap files, emptyDir on disk or in memory, PVC as a
directory), mount propagation and memory/CPU limits. Nothing is copied from the
chart by hand: what the chart does not render, the container does not get.

  pods.py MANIFESTS.yaml OUTDIR --node NAME --image-override IMG \
          [--add-host NAME:IP] [--network host|NAME] [--name-prefix P]

OUTDIR/<component>.args   NUL-separated podman arguments (after `podman run`)
OUTDIR/<component>.probes JSON: liveness/readiness httpGet {path, port}
OUTDIR/<component>.json   the pod spec as rendered (for the test's assertions)
"""
import argparse
import base64
import json
import os
import shlex
import stat
import sys

import yaml


def die(msg):
    print("pods.py: " + msg, file=sys.stderr)
    sys.exit(1)


def quantity_bytes(q):
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 1000, "M": 10**6, "G": 10**9}
    q = str(q)
    for u, m in units.items():
        if q.endswith(u):
            return int(float(q[: -len(u)]) * m)
    return int(q)


def quantity_cpus(q):
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def check_host_path(path, typ):
    """The kubelet's hostPath type checks (pkg/volume/hostpath)."""
    if typ in (None, ""):
        return
    if typ == "DirectoryOrCreate":
        os.makedirs(path, mode=0o755, exist_ok=True)
        return
    if typ == "FileOrCreate":
        if not os.path.exists(path):
            open(path, "a").close()
        return
    try:
        st = os.stat(path)
    except FileNotFoundError:
        die(f"hostPath {path} (type {typ}) does not exist: the kubelet would leave the pod in "
            "ContainerCreating")
    ok = {"Directory": stat.S_ISDIR, "File": stat.S_ISREG, "Socket": stat.S_ISSOCK,
          "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}.get(typ)
    if ok is None:
        die(f"hostPath type {typ} not understood")
    if not ok(st.st_mode):
        die(f"hostPath {path} is not a {typ}")


def containerd_like_profile(path):
    """podman's default seccomp profile with containerd's rules for the two
    syscalls eBPF needs: bpf(2) allowed to CAP_BPF and perf_event_open(2) to
    CAP_PERFMON (containerd's RuntimeDefault), where podman 4.3 allows both only
    to CAP_SYS_ADMIN."""
    p = json.load(open("/usr/share/containers/seccomp.json"))
    special = {"bpf": "CAP_BPF", "perf_event_open": "CAP_PERFMON"}
    for s in p["syscalls"]:
        if s.get("excludes", {}).get("caps") == ["CAP_SYS_ADMIN"] and set(special) & set(s["names"]):
            s["names"] = [n for n in s["names"] if n not in special]
    for name, cap in special.items():
        p["syscalls"].append({"names": [name], "action": "SCMP_ACT_ALLOW", "includes": {"caps": [cap]}})
        p["syscalls"].append({"names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                              "excludes": {"caps": [cap, "CAP_SYS_ADMIN"]}})
    with open(path, "w") as f:
        json.dump(p, f)


def convert(doc, cms, args, outdir, secrets=None):
    comp = doc["metadata"]["labels"]["app.kubernetes.io/component"]
    pod = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
    if len(pod["containers"]) != 1:
        die(f"{comp}: expected one container")
    c = pod["containers"][0]
    pname = f"{args.name_prefix}{comp}"
    a = ["--name", pname, "--pull=never", "--replace",
         "--hostname", pname, "--cgroupns=private",
         "--label", f"io.ingrain.test={args.name_prefix}"]
    # Kubernetes never adds tmpfs mounts on its own: a read-only root is read-only.
    a += ["--read-only-tmpfs=false"]

    if pod.get("hostPID"):
        a.append("--pid=host")
    if pod.get("hostNetwork") or args.network == "host":
        a.append("--network=host")
    elif args.network:
        a.append(f"--network={args.network}")
    for h in args.add_host:
        a += ["--add-host", h]

    # securityContext: pod level, then container level overrides.
    psc = pod.get("securityContext", {}) or {}
    csc = c.get("securityContext", {}) or {}
    merged = dict(psc)
    merged.update(csc)
    if merged.get("privileged"):
        a.append("--privileged")
    caps = csc.get("capabilities", {}) or {}
    for d in caps.get("drop", []):
        a.append("--cap-drop=" + d.lower())
    for ad in caps.get("add", []):
        a.append("--cap-add=CAP_" + ad.upper().removeprefix("CAP_"))
    if merged.get("readOnlyRootFilesystem"):
        a.append("--read-only")
    uid = merged.get("runAsUser")
    gid = merged.get("runAsGroup")
    if uid is not None:
        a += ["--user", f"{uid}" + (f":{gid}" if gid is not None else "")]
    if merged.get("runAsNonRoot") and uid in (None, 0):
        die(f"{comp}: runAsNonRoot without a non-zero runAsUser: the kubelet refuses to start it")
    if psc.get("fsGroup") is not None:
        a += ["--group-add", str(psc["fsGroup"])]
    if merged.get("allowPrivilegeEscalation") is False:
        a += ["--security-opt", "no-new-privileges"]
    sp = merged.get("seccompProfile")
    if sp:
        if sp["type"] == "Unconfined":
            a += ["--security-opt", "seccomp=unconfined"]
        elif sp["type"] == "Localhost":
            a += ["--security-opt", "seccomp=" + os.path.join(args.seccomp_root, sp["localhostProfile"])]
        elif args.runtime_default_seccomp:
            a += ["--security-opt", "seccomp=" + args.runtime_default_seccomp]
        # else RuntimeDefault: the engine's default profile, which podman applies by default.
    elif not merged.get("privileged"):
        # Kubernetes' default is Unconfined unless the kubelet's SeccompDefault is on.
        a += ["--security-opt", "seccomp=unconfined"]
    ap = merged.get("appArmorProfile")
    if ap and ap.get("type") == "Unconfined":
        a += ["--security-opt", "apparmor=unconfined"]
    se = merged.get("seLinuxOptions")
    if se and se.get("type") and os.path.exists("/sys/fs/selinux/enforce"):
        a += ["--security-opt", "label=type:" + se["type"]]

    # Volumes.
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    voldir = os.path.join(outdir, comp + ".volumes")
    os.makedirs(voldir, exist_ok=True)
    for m in c.get("volumeMounts", []):
        v = vols.get(m["name"])
        if v is None:
            die(f"{comp}: mount {m['name']} names no volume")
        ro = m.get("readOnly", False)
        prop = m.get("mountPropagation", "None")
        opts = ["ro" if ro else "rw"]
        if prop == "HostToContainer":
            opts.append("rslave")
        elif prop == "Bidirectional":
            opts.append("rshared")
        if "hostPath" in v:
            hp = v["hostPath"]
            check_host_path(hp["path"], hp.get("type"))
            a += ["-v", f"{hp['path']}:{m['mountPath']}:{','.join(opts)}"]
        elif "configMap" in v:
            name = v["configMap"]["name"]
            if name not in cms:
                die(f"{comp}: ConfigMap {name} is not rendered")
            d = os.path.join(voldir, m["name"])
            os.makedirs(d, exist_ok=True)
            for fname, content in cms[name].items():
                with open(os.path.join(d, fname), "w") as f:
                    f.write(content)
            a += ["-v", f"{d}:{m['mountPath']}:ro"]
        elif "secret" in v:
            # As the kubelet does: the Secret's keys as files, mode defaultMode,
            # owned by root and, with an fsGroup, by that group.
            name = v["secret"]["secretName"]
            if name not in secrets:
                die(f"{comp}: Secret {name} is not rendered")
            d = os.path.join(voldir, m["name"])
            os.makedirs(d, exist_ok=True)
            mode = v["secret"].get("defaultMode", 0o644)
            for fname, content in secrets[name].items():
                fp = os.path.join(d, fname)
                with open(fp, "wb") as f:
                    f.write(content)
                os.chown(fp, 0, psc.get("fsGroup", 0))
                os.chmod(fp, mode)
            a += ["-v", f"{d}:{m['mountPath']}:ro"]
        elif "emptyDir" in v:
            ed = v["emptyDir"] or {}
            if ed.get("medium") == "Memory":
                size = ed.get("sizeLimit")
                a += ["--mount", f"type=tmpfs,destination={m['mountPath']},tmpfs-mode=1777"
                      + (f",tmpfs-size={quantity_bytes(size)}" if size else "")]
            else:
                d = os.path.join(voldir, m["name"])
                os.makedirs(d, exist_ok=True)
                os.chmod(d, 0o1777)
                a += ["-v", f"{d}:{m['mountPath']}:{','.join(opts)}"]
        elif "persistentVolumeClaim" in v:
            d = os.path.join(voldir, m["name"])
            os.makedirs(d, exist_ok=True)
            if psc.get("fsGroup") is not None:
                os.chown(d, 0, psc["fsGroup"])
                os.chmod(d, 0o2775)
            a += ["-v", f"{d}:{m['mountPath']}:{','.join(opts)}"]
        elif "secret" in v or "projected" in v:
            d = os.path.join(voldir, m["name"])
            os.makedirs(d, exist_ok=True)
            a += ["-v", f"{d}:{m['mountPath']}:ro"]
        else:
            die(f"{comp}: volume {m['name']} of a kind this harness does not know: {v}")

    # Environment.
    down = {"spec.nodeName": args.node, "metadata.name": pname,
            "metadata.namespace": doc["metadata"].get("namespace", "default"),
            "status.podIP": "127.0.0.1", "status.hostIP": "127.0.0.1"}
    for e in c.get("env", []):
        if "value" in e:
            a += ["-e", f"{e['name']}={e['value']}"]
        elif "fieldRef" in e.get("valueFrom", {}):
            a += ["-e", f"{e['name']}={down[e['valueFrom']['fieldRef']['fieldPath']]}"]
        else:
            die(f"{comp}: env {e['name']} from {e.get('valueFrom')} not supported by this harness")

    # Resources: the limits the kubelet would set.
    lim = (c.get("resources") or {}).get("limits") or {}
    if "memory" in lim:
        a.append(f"--memory={quantity_bytes(lim['memory'])}")
    if "cpu" in lim:
        a.append(f"--cpus={quantity_cpus(lim['cpu'])}")

    image = args.image_override or c["image"]
    cmd = c.get("command")
    if cmd:
        a += ["--entrypoint", json.dumps(cmd)]
    a.append(image)
    a += c.get("args", [])

    with open(os.path.join(outdir, comp + ".args"), "wb") as f:
        f.write(b"\0".join(x.encode() for x in a) + b"\0")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    probes = {}
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        p = c.get(kind)
        if not p:
            continue
        hg = p.get("httpGet")
        if not hg:
            die(f"{comp}: {kind} is not httpGet")
        port = hg["port"]
        if isinstance(port, str):
            if port not in ports:
                die(f"{comp}: {kind} names port {port!r}, which the container does not declare")
            port = ports[port]
        probes[kind] = {"path": hg["path"], "port": port}
    with open(os.path.join(outdir, comp + ".probes"), "w") as f:
        json.dump(probes, f)
    with open(os.path.join(outdir, comp + ".json"), "w") as f:
        json.dump(doc, f)
    print(f"# {comp}: podman run " + " ".join(shlex.quote(x) for x in a))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("manifests")
    ap.add_argument("outdir")
    ap.add_argument("--node", required=True)
    ap.add_argument("--image-override", default="")
    ap.add_argument("--add-host", action="append", default=[])
    ap.add_argument("--network", default="")
    ap.add_argument("--name-prefix", default="ig-")
    ap.add_argument("--seccomp-root", default="/var/lib/kubelet/seccomp")
    ap.add_argument("--runtime-default-seccomp", default="",
                    help="profile applied for RuntimeDefault (default: the engine's own); "
                    "'containerd' derives containerd's rules for bpf/perf_event_open")
    args = ap.parse_args()
    with open(args.manifests) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    cms = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    secrets = {d["metadata"]["name"]: {k: base64.b64decode(v) for k, v in (d.get("data") or {}).items()}
               for d in docs if d["kind"] == "Secret"}
    os.makedirs(args.outdir, exist_ok=True)
    if args.runtime_default_seccomp == "containerd":
        args.runtime_default_seccomp = os.path.join(os.path.abspath(args.outdir), "runtime-default.json")
        containerd_like_profile(args.runtime_default_seccomp)
    n = 0
    for d in docs:
        if d["kind"] in ("DaemonSet", "Deployment", "Pod"):
            convert(d, cms, args, args.outdir, secrets)
            n += 1
    if n == 0:
        die("no DaemonSet, Deployment or Pod in the manifests")


if __name__ == "__main__":
    main()
