{{- define "fortisync.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "fortisync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}{{ default (include "fortisync.fullname" .) .Values.serviceAccount.name }}{{- else -}}{{ default "default" .Values.serviceAccount.name }}{{- end -}}
{{- end -}}

{{- define "fortisync.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* repository@digest when a digest is set, else repository:tag (the appVersion by default). */}}
{{- define "fortisync.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "fortisync.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The port of admin.address ("0.0.0.0:8080", "[::]:8080"): the container and Service port. */}}
{{- define "fortisync.adminPort" -}}
{{- $address := toString .Values.admin.address -}}
{{- if not (regexMatch "^(\\[[0-9a-fA-F:.]+\\]|[0-9.]+):[0-9]+$" $address) -}}
{{- fail (printf "admin.address: %q is not IP:PORT (e.g. 0.0.0.0:8080 or [::]:8080)" $address) -}}
{{- end -}}
{{- if and (or (hasPrefix "127." $address) (hasPrefix "[::1]" $address)) (not .Values.hostNetwork) -}}
{{- fail (printf "admin.address: %q is loopback; the kubelet's probes could not reach it (use 0.0.0.0:PORT)" $address) -}}
{{- end -}}
{{- regexFind "[0-9]+$" $address -}}
{{- end -}}

{{/*
What the controller does, and nothing more (read src/reconcile/controller.rs and
src/reconcile/connection/): the same rules in the ClusterRole (every namespace) and in each
watched namespace's Role.
*/}}
{{- define "fortisync.rules" -}}
# Connections: watched; patch only for the finalizer fortisync.dev/dependents, which keeps a
# connection (and the credentials its dependents' device clean-up needs) until none targets it.
- apiGroups: [fortisync.dev]
  resources: [fortigates, fortimanagers]
  verbs: [get, list, watch, patch]
# patch: the finalizer that guarantees device clean-up lives in metadata.finalizers. list is
# also how a deleted connection learns which AddressGroups still target it.
- apiGroups: [fortisync.dev]
  resources: [addressgroups, externalconnectors, trustedhosts]
  verbs: [get, list, watch, patch]
# Status is applied server-side (a patch); never update, never the spec.
- apiGroups: [fortisync.dev]
  resources: [fortigates/status, fortimanagers/status, addressgroups/status, externalconnectors/status, trustedhosts/status]
  verbs: [get, patch]
# list/watch: a metadata-only watch (PartialObjectMetadata; no data) that learns a referenced
# Secret changed; get: reading, by name, the Secrets a connection references. RBAC cannot grant
# "metadata only" or "referenced only": these verbs could read every Secret in scope, which is
# why watchNamespaces narrows them to the watched namespaces (docs/chart.md).
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
# ConfigMaps an ExternalConnector draws entries from: a metadata-only watch learns that one
# changed; get reads the ones a connector names.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
