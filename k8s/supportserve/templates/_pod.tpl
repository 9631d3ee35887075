{{/*
Pod templates: the Ray head and workers (one definition, two roles) and the fine-tune steps.
Environment and scratch volumes come from _env.tpl.
*/}}

{{/*
Pod template of a Ray group. Call with (dict "root" $ "role" "head"|"worker" "group" .Values.head|.Values.worker).
The head mounts a ServiceAccount token only when the in-tree autoscaler runs beside it (KubeRay
binds the autoscaler's Role to the head's ServiceAccount); workers never get one.
*/}}
{{- define "supportserve.rayPodTemplate" -}}
{{- $ := .root -}}
{{- $g := .group -}}
{{- $head := eq .role "head" -}}
metadata:
  labels:
    {{- include "supportserve.labels" $ | nindent 4 }}
    app.kubernetes.io/component: ray-{{ .role }}
    {{- with $g.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $g.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  serviceAccountName: {{ include "supportserve.serviceAccountName" $ }}
  automountServiceAccountToken: {{ and $head $.Values.autoscaling.enabled }}
  terminationGracePeriodSeconds: {{ include "supportserve.terminationGracePeriodSeconds" $ }}
  securityContext:
    {{- toYaml $.Values.podSecurityContext | nindent 4 }}
  {{- with $.Values.image.pullSecrets }}
  imagePullSecrets:
    {{- range . }}
    - name: {{ . }}
    {{- end }}
  {{- end }}
  {{- with $g.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: ray-{{ .role }}
      image: {{ include "supportserve.image" $ }}
      imagePullPolicy: {{ $.Values.image.pullPolicy }}
      securityContext:
        {{- toYaml $.Values.containerSecurityContext | nindent 8 }}
      ports:
        {{- if $head }}
        - {name: gcs-server, containerPort: 6379}
        - {name: dashboard, containerPort: 8265}
        - {name: client, containerPort: 10001}
        {{- end }}
        - {name: serve, containerPort: 8000}
        - {name: metrics, containerPort: {{ $.Values.metrics.port | default 8080 }}}
      env:
        {{- include "supportserve.env" $ | nindent 8 }}
        {{- with include "supportserve.apiKeysEnv" $ | trim }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with $g.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      resources:
        {{- $res := deepCopy ($g.resources | default dict) }}
        {{- if and (not $head) (gt (int $g.gpus) 0) }}
        {{- $_ := set $res "limits" (merge (dict "nvidia.com/gpu" (int $g.gpus)) ($res.limits | default dict)) }}
        {{- $_ := set $res "requests" (merge (dict "nvidia.com/gpu" (int $g.gpus)) ($res.requests | default dict)) }}
        {{- end }}
        {{- toYaml $res | nindent 8 }}
      livenessProbe:
        {{- toYaml $g.livenessProbe | nindent 8 }}
      readinessProbe:
        {{- toYaml $g.readinessProbe | nindent 8 }}
      volumeMounts:
        {{- include "supportserve.scratchVolumeMounts" $ | nindent 8 }}
        {{- with $g.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  volumes:
    {{- include "supportserve.scratchVolumes" $ | nindent 4 }}
    {{- with $g.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* Everything a fine-tune step shares except its command and resources. */}}
{{- define "supportserve.finetuneContainer" -}}
{{- $ := .root -}}
image: {{ include "supportserve.image" $ }}
imagePullPolicy: {{ $.Values.image.pullPolicy }}
workingDir: /app
securityContext:
  {{- toYaml $.Values.containerSecurityContext | nindent 2 }}
env:
  {{- include "supportserve.env" $ | nindent 2 }}
  - name: DATA_DIR
    value: /app/data
volumeMounts:
  {{- include "supportserve.scratchVolumeMounts" $ | nindent 2 }}
  - name: work
    mountPath: /app/data
  - name: serving-config
    mountPath: /etc/supportserve
    readOnly: true
{{- end -}}
