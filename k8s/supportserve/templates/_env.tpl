{{/*
Environment and scratch space shared by the Ray head, the Ray workers and the fine-tune Job:
store, keys and caches, and the emptyDirs the read-only root filesystem needs.
Secrets only ever arrive through valueFrom.secretKeyRef.
*/}}

{{/* Store, Hugging Face and cache env for every container that runs our code. */}}
{{- define "supportserve.env" -}}
{{- $s := .Values.serving | default dict -}}
{{- $cache := .Values.volumes.cache.mountPath -}}
- name: AWS_DEFAULT_REGION
  value: {{ dig "store" "region" "us-east-1" $s | quote }}
{{- with dig "store" "endpoint_url" "" $s }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- if .Values.store.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.existingSecret }}
      key: {{ .Values.store.accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.store.existingSecret }}
      key: {{ .Values.store.secretAccessKeyKey }}
{{- end }}
{{- if .Values.huggingface.existingSecret }}
- name: HF_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.huggingface.existingSecret }}
      key: {{ .Values.huggingface.tokenKey }}
{{- end }}
- name: HF_HOME
  value: {{ printf "%s/huggingface" $cache | quote }}
- name: XDG_CONFIG_HOME
  value: {{ printf "%s/config" $cache | quote }}
- name: TRITON_CACHE_DIR
  value: {{ printf "%s/triton" $cache | quote }}
- name: RAY_USAGE_STATS_ENABLED
  value: "0"
- name: RAY_task_events_max_num_task_in_gcs  # every request is an actor task; bound the history
  value: "1000"
- name: VLLM_NO_USAGE_STATS
  value: "1"
- name: DO_NOT_TRACK
  value: "1"
{{- end -}}

{{/* The API keys, for the Ray containers only (the ingress replica reads them at start). */}}
{{- define "supportserve.apiKeysEnv" -}}
{{- if .Values.auth.existingSecret }}
- name: {{ dig "auth" "api_keys_env" "API_KEYS" (.Values.serving | default dict) }}
  valueFrom:
    secretKeyRef:
      name: {{ .Values.auth.existingSecret }}
      key: {{ .Values.auth.existingSecretKey }}
{{- end }}
{{- end -}}

{{- define "supportserve.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.volumes.tmp.sizeLimit }}
- name: cache
  emptyDir:
    sizeLimit: {{ .Values.volumes.cache.sizeLimit }}
{{- end -}}

{{- define "supportserve.scratchVolumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: {{ .Values.volumes.cache.mountPath }}
{{- end -}}
