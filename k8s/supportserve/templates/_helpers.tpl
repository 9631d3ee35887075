{{/*
Names, labels and small derived values. Every resource name comes from supportserve.fullname.
*/}}

{{- define "supportserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Fully qualified name, capped at 40 characters: KubeRay derives longer names from the RayService
name (<name>-serve-svc, <name>-raycluster-xxxxx-head-svc), and those must stay within 63.
*/}}
{{- define "supportserve.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "supportserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "supportserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "supportserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "supportserve.labels" -}}
helm.sh/chart: {{ include "supportserve.chart" . }}
{{ include "supportserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: supportserve
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Standard metadata. Call with (dict "root" $ "name" NAME "component" COMPONENT) and optionally
"labels" / "annotations" (merged with commonLabels / commonAnnotations).
*/}}
{{- define "supportserve.metadata" -}}
{{- $ := .root -}}
{{- $ann := merge (deepCopy (.annotations | default dict)) ($.Values.commonAnnotations | default dict) -}}
name: {{ .name }}
namespace: {{ $.Release.Namespace }}
labels:
  {{- include "supportserve.labels" $ | nindent 2 }}
  app.kubernetes.io/component: {{ .component }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- with $ann }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* KubeRay names the Serve Service after the RayService: <rayservice>-serve-svc. */}}
{{- define "supportserve.serveServiceName" -}}
{{- printf "%s-serve-svc" (include "supportserve.fullname" .) -}}
{{- end -}}

{{- define "supportserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "supportserve.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "supportserve.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the store identity comes from the ServiceAccount rather than a Secret. */}}
{{- define "supportserve.workloadIdentity" -}}
{{- $ann := .Values.serviceAccount.annotations | default dict -}}
{{- if or .Values.store.workloadIdentity (index $ann "eks.amazonaws.com/role-arn") (index $ann "iam.gke.io/gcp-service-account") -}}
true
{{- end -}}
{{- end -}}

{{/* Seconds Kubernetes waits after SIGTERM: longer than Serve's graceful shutdown. */}}
{{- define "supportserve.terminationGracePeriodSeconds" -}}
{{- $graceful := dig "deployment" "graceful_shutdown_timeout_s" 30 (.Values.serving | default dict) -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add (int (ceil $graceful)) 30 -}}
{{- else -}}
{{- int .Values.terminationGracePeriodSeconds -}}
{{- end -}}
{{- end -}}

{{/* The Serve config KubeRay submits (serveConfigV2), built as a dict and rendered with toYaml. */}}
{{- define "supportserve.serveConfig" -}}
{{- $app := dict "name" .Values.rayService.applicationName "import_path" "serving.app:build_app" "route_prefix" "/" "args" .Values.serving -}}
{{- $http := dict "host" "0.0.0.0" "port" 8000 -}}
{{- toYaml (dict "proxy_location" "EveryNode" "http_options" $http "applications" (list $app)) -}}
{{- end -}}
