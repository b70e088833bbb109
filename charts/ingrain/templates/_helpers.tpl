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
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
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

{{/* nng URL the agents dial: the aggregator Service's cluster DNS name. */}}
{{- define "ingrain.aggregatorURL" -}}
{{- printf "%s://%s.%s.svc:%d" (ternary "tls+tcp" "tcp" .Values.tls.enabled) (include "ingrain.aggregator.fullname" .) .Release.Namespace (int .Values.aggregator.ports.agents) -}}
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
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson -}}
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
{{- if .Values.tls.enabled -}}
{{- if not (hasKey $agent "tls_dir") -}}
{{- $_ := set $agent "tls_dir" .Values.tls.mountPath -}}
{{- end -}}
{{- if not (hasKey $agent "tls_shared_identity") -}}
{{- $_ := set $agent "tls_shared_identity" true -}}
{{- end -}}
{{- else if not (hasKey $agent "plaintext") -}}
{{- $_ := set $agent "plaintext" true -}}
{{- end -}}
{{- if and .Values.agent.metrics.enabled (not $agent.metrics_listen) -}}
{{- $_ := set $agent "metrics_listen" (printf "0.0.0.0:%d" (int .Values.agent.metrics.port)) -}}
{{- end -}}
{{- $_ := set $cfg "agent" $agent -}}
{{- $aggr := default dict $cfg.aggregator -}}
{{- if not $aggr.listen -}}
{{- $_ := set $aggr "listen" (printf "%s://0.0.0.0:%d" (ternary "tls+tcp" "tcp" .Values.tls.enabled) (int .Values.aggregator.ports.agents)) -}}
{{- end -}}
{{- if .Values.tls.enabled -}}
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
{{- $_ := set $aggr "metrics_listen" (printf "0.0.0.0:%d" (int .Values.aggregator.ports.http)) -}}
{{- end -}}
{{- $_ := set $cfg "aggregator" $aggr -}}
{{- if $cfg.kubernetes -}}
{{- if kindIs "bool" $cfg.kubernetes.enabled -}}
{{- $_ := set $cfg.kubernetes "enabled" (ternary "on" "off" $cfg.kubernetes.enabled) -}}
{{- end -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The state directory the aggregator writes (mounted writable). */}}
{{- define "ingrain.stateDir" -}}
{{- $aggr := default dict (default dict .Values.config).aggregator -}}
{{- default "/var/lib/ingrain" $aggr.state_dir -}}
{{- end -}}

{{/* Cluster-scoped objects carry the namespace: two releases of the same name
in two namespaces must not fight over one ClusterRole. */}}
{{- define "ingrain.agent.clusterRoleName" -}}
{{- printf "%s-%s" .Release.Namespace (include "ingrain.agent.fullname" .) -}}
{{- end -}}
