{{/*
Names, labels and the rendered configuration shared by every template.
*/}}

{{- define "ingrain.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-ingrain, or the release name when it already contains the chart name. */}}
{{- define "ingrain.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Object names: the 63-character limit leaves room for the suffixes. */}}
{{- define "ingrain.agent.fullname" -}}
{{- printf "%s-agent" (include "ingrain.fullname" . | trunc 56 | trimSuffix "-") -}}
{{- end -}}
{{- define "ingrain.aggregator.fullname" -}}
{{- printf "%s-aggregator" (include "ingrain.fullname" . | trunc 51 | trimSuffix "-") -}}
{{- end -}}

{{- define "ingrain.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "ingrain.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ingrain.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ingrain.labels" -}}
helm.sh/chart: {{ include "ingrain.chart" . }}
{{ include "ingrain.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: ingrain
{{- end -}}

{{- define "ingrain.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* nodeSelector both workloads get: Linux nodes of the image's architecture
(one architecture; with several, ingrain.archAffinity does it). */}}
{{- define "ingrain.nodeSelector" -}}
{{- $ns := dict "kubernetes.io/os" "linux" -}}
{{- if eq (len .Values.image.architectures) 1 -}}
{{- $_ := set $ns "kubernetes.io/arch" (first .Values.image.architectures) -}}
{{- end -}}
{{- toYaml (merge (deepCopy (default dict .nodeSelector)) $ns) -}}
{{- end -}}

{{/* affinity: the user's, plus kubernetes.io/arch In image.architectures when
there are several and the user did not set a nodeAffinity. */}}
{{- define "ingrain.affinity" -}}
{{- $aff := deepCopy (default dict .affinity) -}}
{{- if and (gt (len .root.Values.image.architectures) 1) (not $aff.nodeAffinity) -}}
{{- $expr := dict "key" "kubernetes.io/arch" "operator" "In" "values" .root.Values.image.architectures -}}
{{- $term := dict "matchExpressions" (list $expr) -}}
{{- $_ := set $aff "nodeAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" (list $term))) -}}
{{- end -}}
{{- if $aff -}}{{- toYaml $aff -}}{{- end -}}
{{- end -}}

{{- define "ingrain.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (include "ingrain.agent.fullname" .) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "ingrain.aggregator.serviceAccountName" -}}
{{- if .Values.aggregator.serviceAccount.create -}}
{{- default (include "ingrain.aggregator.fullname" .) .Values.aggregator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.aggregator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
One source of truth for addresses. ingrain.port: (list VALUES_NAME VALUES_PORT
CONFIG_NAME CONFIG_ADDRESS DEFAULT) -> the port. The address set in config
wins; a port also set in values must agree; an address other pods must reach
may not be bound to loopback.
*/}}
{{- define "ingrain.port" -}}
{{- $vn := index . 0 -}}{{- $vp := index . 1 -}}{{- $cn := index . 2 -}}{{- $addr := index . 3 -}}{{- $def := index . 4 -}}
{{- $cp := "" -}}
{{- if $addr -}}
{{- $a := toString $addr -}}
{{- $m := regexFind ":[0-9]+$" $a -}}
{{- if not $m -}}
{{- fail (printf "config.%s: %q has no :port; in the chart it must be a TCP address (the Service, container port and probes are wired to its port)" $cn $a) -}}
{{- end -}}
{{- if regexMatch "^([a-z0-9+]+://)?(127\\.[0-9.]+|localhost|\\[::1\\]):" $a -}}
{{- fail (printf "config.%s: %q listens on loopback only; other pods and the kubelet's probes could not reach it: use 0.0.0.0 (or leave it empty)" $cn $a) -}}
{{- end -}}
{{- $cp = trimPrefix ":" $m -}}
{{- end -}}
{{- if and $cp (not (kindIs "invalid" $vp)) (ne (int $cp) (int $vp)) -}}
{{- fail (printf "config.%s (%s) and %s (%d) disagree: set only one of them (the Service, container port, probes and agents' address follow it)" $cn (toString $addr) $vn (int $vp)) -}}
{{- end -}}
{{- if $cp -}}{{- $cp -}}{{- else if not (kindIs "invalid" $vp) -}}{{- int $vp -}}{{- else -}}{{- $def -}}{{- end -}}
{{- end -}}

{{/* The aggregator's agents port (Service, containerPort, agents' URL). */}}
{{- define "ingrain.agentsPort" -}}
{{- $ag := default dict (default dict .Values.config).aggregator -}}
{{- if $ag.listen -}}
{{- if not (regexMatch "^(tcp|tcp4|tcp6|tls\\+tcp)://" (toString $ag.listen)) -}}
{{- fail (printf "config.aggregator.listen: %q: agents on other nodes dial the aggregator's Service, so it must listen on tcp:// (or tls+tcp://)" (toString $ag.listen)) -}}
{{- end -}}
{{- end -}}
{{- include "ingrain.port" (list "aggregator.ports.agents" .Values.aggregator.ports.agents "aggregator.listen" $ag.listen 7700) -}}
{{- end -}}

{{/* The aggregator's HTTP port (/metrics, /healthz, /readyz). */}}
{{- define "ingrain.aggregatorHttpPort" -}}
{{- $ag := default dict (default dict .Values.config).aggregator -}}
{{- include "ingrain.port" (list "aggregator.ports.http" .Values.aggregator.ports.http "aggregator.metrics_listen" $ag.metrics_listen 9090) -}}
{{- end -}}

{{/* The agent's HTTP port (/metrics, /healthz, /readyz). */}}
{{- define "ingrain.agentHttpPort" -}}
{{- $an := default dict (default dict .Values.config).agent -}}
{{- include "ingrain.port" (list "agent.metrics.port" .Values.agent.metrics.port "agent.metrics_listen" $an.metrics_listen 9091) -}}
{{- end -}}

{{/* Scheme agents dial with: the listen address's (tls+tcp when it is TLS). */}}
{{- define "ingrain.agentsScheme" -}}
{{- $ag := default dict (default dict .Values.config).aggregator -}}
{{- $m := regexFind "^[a-z0-9+]+://" (toString (default "" $ag.listen)) -}}
{{- if $m -}}
{{- if hasPrefix "tls+" $m -}}tls+tcp{{- else -}}tcp{{- end -}}
{{- else -}}
{{- if .Values.tls.enabled -}}tls+tcp{{- else -}}tcp{{- end -}}
{{- end -}}
{{- end -}}

{{/* Directory of the aggregator's control socket when it is ipc:// ("" when
the socket is off or on TCP): mounted writable under the read-only root. */}}
{{- define "ingrain.controlDir" -}}
{{- $ag := default dict (default dict .Values.config).aggregator -}}
{{- $ctl := "ipc:///run/ingrain/control.sock" -}}
{{- if hasKey $ag "control" -}}{{- $ctl = toString (default "" $ag.control) -}}{{- end -}}
{{- if hasPrefix "ipc://" $ctl -}}
{{- $path := trimPrefix "ipc://" $ctl -}}
{{- if not (hasPrefix "/" $path) -}}
{{- fail (printf "config.aggregator.control: %q: the chart needs an absolute ipc:// path (its directory is mounted writable)" $ctl) -}}
{{- end -}}
{{- dir $path -}}
{{- end -}}
{{- end -}}

{{/* nng URL the agents dial: the aggregator Service's cluster DNS name; with
several replicas the headless Service's (one record per ready replica). */}}
{{- define "ingrain.aggregatorURL" -}}
{{- $svc := include "ingrain.aggregator.fullname" . -}}
{{- if gt (int .Values.aggregator.replicas) 1 -}}{{- $svc = printf "%s-headless" $svc -}}{{- end -}}
{{- printf "%s://%s.%s.svc:%s" (include "ingrain.agentsScheme" .) $svc .Release.Namespace (include "ingrain.agentsPort" .) -}}
{{- end -}}

{{/* The TLS Secrets (templates/tls.yaml or cert-manager's Certificates). */}}
{{- define "ingrain.tls.aggregatorSecret" -}}
{{- printf "%s-aggregator-tls" (include "ingrain.fullname" . | trunc 48 | trimSuffix "-") -}}
{{- end -}}
{{- define "ingrain.tls.agentSecret" -}}
{{- printf "%s-agent-tls" (include "ingrain.fullname" . | trunc 48 | trimSuffix "-") -}}
{{- end -}}
{{/* The names the aggregator's certificate carries: its Service's DNS names. */}}
{{- define "ingrain.tls.aggregatorNames" -}}
{{- $svc := include "ingrain.aggregator.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- $h := printf "%s-headless" $svc -}}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) $h (printf "%s.%s" $h $ns) (printf "%s.%s.svc" $h $ns) (printf "%s.%s.svc.cluster.local" $h $ns) | toJson -}}
{{- end -}}

{{/*
The configuration as a dict: .Values.config with the addresses the chart owns
filled in where left empty, and kubernetes.enabled given back its words when
YAML 1.1 turned a bare on/off into a boolean.
*/}}
{{- define "ingrain.configDict" -}}
{{- $cfg := deepCopy (default dict .Values.config) -}}
{{- $agent := default dict $cfg.agent -}}
{{- if not $agent.aggregator -}}
{{- $_ := set $agent "aggregator" (include "ingrain.aggregatorURL" .) -}}
{{- end -}}
{{- if eq (include "ingrain.agentsScheme" .) "tls+tcp" -}}
{{- if not (hasKey $agent "tls_dir") -}}
{{- $_ := set $agent "tls_dir" .Values.tls.mountPath -}}
{{- end -}}
{{- if not (hasKey $agent "tls_shared_identity") -}}
{{- $_ := set $agent "tls_shared_identity" true -}}
{{- end -}}
{{- else if not (hasKey $agent "plaintext") -}}
{{- $_ := set $agent "plaintext" true -}}
{{- end -}}
{{- if not $agent.metrics_listen -}}
{{- $_ := set $agent "metrics_listen" (printf "0.0.0.0:%s" (include "ingrain.agentHttpPort" .)) -}}
{{- end -}}
{{- $_ := set $cfg "agent" $agent -}}
{{- $aggr := default dict $cfg.aggregator -}}
{{- if not $aggr.listen -}}
{{- $_ := set $aggr "listen" (printf "%s://0.0.0.0:%s" (include "ingrain.agentsScheme" .) (include "ingrain.agentsPort" .)) -}}
{{- end -}}
{{- if eq (include "ingrain.agentsScheme" .) "tls+tcp" -}}
{{- if not (hasKey $aggr "tls_dir") -}}
{{- $_ := set $aggr "tls_dir" .Values.tls.mountPath -}}
{{- end -}}
{{- if not (hasKey $aggr "tls_shared_names") -}}
{{- $_ := set $aggr "tls_shared_names" (list "ingrain-agent") -}}
{{- end -}}
{{- else if not (hasKey $aggr "plaintext") -}}
{{- $_ := set $aggr "plaintext" true -}}
{{- end -}}
{{- if not $aggr.metrics_listen -}}
{{- $_ := set $aggr "metrics_listen" (printf "0.0.0.0:%s" (include "ingrain.aggregatorHttpPort" .)) -}}
{{- end -}}
{{- $_ := set $cfg "aggregator" $aggr -}}
{{- if $cfg.kubernetes -}}
{{- if kindIs "bool" $cfg.kubernetes.enabled -}}
{{- $_ := set $cfg.kubernetes "enabled" (ternary "on" "off" $cfg.kubernetes.enabled) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* What the agent reads of the configuration (its sections agent,
kubernetes, probes; pipelines and backends are the aggregator's): the
DaemonSet's rollout checksum covers only this. */}}
{{- define "ingrain.agentConfigDict" -}}
{{- $cfg := include "ingrain.configDict" . | fromYaml -}}
{{- toYaml (pick $cfg "agent" "kubernetes" "probes") -}}
{{- end -}}

{{/* The agent's capabilities: agent.capabilities + agent.extraCapabilities,
plus NET_ADMIN when a probe attaches cgroup programs (cgroup_skb, cgroup
sock hooks): probes.traffic with method cgroup_skb, and the dns/tls probes. */}}
{{- define "ingrain.agent.capabilities" -}}
{{- $caps := concat .Values.agent.capabilities .Values.agent.extraCapabilities -}}
{{- $probes := default dict (default dict .Values.config).probes -}}
{{- $net := false -}}
{{- range $name, $p := $probes -}}
{{- if and $p (kindIs "map" $p) (ne (toString (get $p "enabled")) "false") -}}
{{- if or (has $name (list "dns" "tls")) (and (eq $name "traffic") (eq (toString (get $p "method")) "cgroup_skb")) -}}
{{- $net = true -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if $net -}}{{- $caps = append $caps "NET_ADMIN" -}}{{- end -}}
{{- toYaml (uniq $caps) -}}
{{- end -}}

{{/* The state directory the aggregator writes (mounted writable). */}}
{{- define "ingrain.stateDir" -}}
{{- $aggr := default dict (default dict .Values.config).aggregator -}}
{{- $d := "/var/lib/ingrain" -}}
{{- if hasKey $aggr "state_dir" -}}{{- $d = toString (default "" $aggr.state_dir) -}}{{- end -}}
{{- if and $d (not (hasPrefix "/" $d)) -}}
{{- fail (printf "config.aggregator.state_dir: %q must be an absolute path (it is mounted writable)" $d) -}}
{{- end -}}
{{- trimSuffix "/" $d -}}
{{- end -}}

{{/* Cluster-scoped objects carry the namespace: two releases of the same name
in two namespaces must not fight over one ClusterRole. */}}
{{- define "ingrain.agent.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace (include "ingrain.agent.fullname" .) -}}
{{- end -}}
