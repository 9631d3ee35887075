{{/*
supportserve.validateValues: fail fast, with a message that says what to change, on values that
contradict each other (bitnami style). Called from rayservice.yaml, so every install renders it.
values.schema.json checks types and unknown keys; ServingConfig (serving.app:build_app) checks
the `serving` document itself; this helper checks what only the combination can get wrong.
*/}}
{{- define "supportserve.validateValues" -}}
{{- $m := list -}}
{{- $m = append $m (include "supportserve.validate.credentials" . | trim) -}}
{{- $m = append $m (include "supportserve.validate.gpus" . | trim) -}}
{{- $m = append $m (include "supportserve.validate.capacity" . | trim) -}}
{{- $m = append $m (include "supportserve.validate.exposure" . | trim) -}}
{{- $m = append $m (include "supportserve.validate.lifecycle" . | trim) -}}
{{- $m = without $m "" -}}
{{- if $m -}}
{{- printf "\nVALUES VALIDATION:\n%s" (join "\n" $m) | fail -}}
{{- end -}}
{{- end -}}

{{- define "supportserve.validate.credentials" -}}
{{- $wi := include "supportserve.workloadIdentity" . -}}
{{- if and .Values.store.existingSecret $wi }}
supportserve: store.existingSecret and workload identity are both set. Choose one: static keys from the Secret, or the ServiceAccount's identity (serviceAccount.annotations / store.workloadIdentity).
{{- end }}
{{- if and .Values.finetune.enabled (not .Values.store.existingSecret) (not $wi) }}
supportserve: finetune.enabled needs write access to the adapter store. Set store.existingSecret, or a workload identity (serviceAccount.annotations eks.amazonaws.com/role-arn / iam.gke.io/gcp-service-account, or store.workloadIdentity).
{{- end }}
{{- if and (not .Values.auth.existingSecret) (not .Values.auth.allowUnauthenticated) }}
supportserve: auth.existingSecret is empty, so every /v1 route would be open. Create a Secret with the API keys and set auth.existingSecret, or set auth.allowUnauthenticated=true deliberately.
{{- end }}
{{- end -}}

{{- define "supportserve.validate.gpus" -}}
{{- $s := .Values.serving | default dict -}}
{{- $accel := dig "deployment" "accelerator" "gpu" $s -}}
{{- $perReplica := int (dig "deployment" "gpus_per_replica" 1 $s) -}}
{{- $gpus := int .Values.worker.gpus -}}
{{- if and (eq $accel "gpu") (lt $gpus 1) }}
supportserve: serving.deployment.accelerator is "gpu" but worker.gpus is {{ $gpus }}. Give the worker group GPUs (worker.gpus >= 1), or set serving.deployment.accelerator=cpu.
{{- else if and (eq $accel "gpu") (gt $perReplica $gpus) }}
supportserve: serving.deployment.gpus_per_replica ({{ $perReplica }}) is more than one worker Pod has (worker.gpus={{ $gpus }}); an engine replica must fit on one Pod.
{{- end }}
{{- $cpu := toString (dig "limits" "cpu" "" (.Values.worker.resources | default dict)) -}}
{{- if regexMatch "^[0-9]+(\\.[0-9]+)?$" $cpu -}}
{{- $need := mulf (dig "deployment" "cpus_per_replica" 1 $s) (ternary (max $gpus 1) 1 (eq $accel "gpu")) -}}
{{- if lt (float64 $cpu) $need }}
supportserve: worker.resources.limits.cpu ({{ $cpu }}) is below what the engine replicas on one worker reserve (serving.deployment.cpus_per_replica x GPUs = {{ $need }}); Ray could never place them.
{{- end }}
{{- end }}
{{- end -}}

{{- define "supportserve.validate.capacity" -}}
{{- $s := .Values.serving | default dict -}}
{{- $accel := dig "deployment" "accelerator" "gpu" $s -}}
{{- $maxServe := int (dig "deployment" "autoscaling" "max_replicas" 1 $s) -}}
{{- $perReplica := int (dig "deployment" "gpus_per_replica" 1 $s) -}}
{{- $pods := ternary (int .Values.worker.maxReplicas) (int .Values.worker.replicas) .Values.autoscaling.enabled -}}
{{- $field := ternary "worker.maxReplicas" "worker.replicas" .Values.autoscaling.enabled -}}
{{- if and (eq $accel "gpu") (gt (mul $maxServe $perReplica) (mul $pods (int .Values.worker.gpus))) }}
supportserve: serving.deployment.autoscaling.max_replicas x gpus_per_replica = {{ mul $maxServe $perReplica }} GPUs, but {{ $field }} x worker.gpus = {{ mul $pods (int .Values.worker.gpus) }}. Raise {{ $field }} or lower max_replicas; otherwise replicas stay pending forever.
{{- end }}
{{- if and .Values.autoscaling.enabled (gt (int .Values.worker.minReplicas) (int .Values.worker.maxReplicas)) }}
supportserve: worker.minReplicas ({{ .Values.worker.minReplicas }}) is greater than worker.maxReplicas ({{ .Values.worker.maxReplicas }}).
{{- end }}
{{- end -}}

{{- define "supportserve.validate.exposure" -}}
{{- if and .Values.ingress.enabled (not .Values.ingress.host) }}
supportserve: ingress.enabled needs ingress.host (the public host name clients use).
{{- end }}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) }}
supportserve: ingress.tls.enabled needs ingress.tls.secretName (an existing TLS Secret for {{ .Values.ingress.host }}).
{{- end }}
{{- if and .Values.ingress.enabled .Values.networkPolicy.enabled (not .Values.networkPolicy.allowedFrom) }}
supportserve: ingress.enabled with networkPolicy.enabled but empty networkPolicy.allowedFrom: the NetworkPolicy would drop the ingress controller's traffic. Add its namespace/pods to networkPolicy.allowedFrom.
{{- end }}
{{- if and (or .Values.metrics.serviceMonitor.enabled .Values.metrics.prometheusRule.enabled) (not .Values.metrics.port) }}
supportserve: metrics.serviceMonitor/prometheusRule are enabled but metrics.port is empty; set metrics.port (Ray's metrics-export-port, 8080 by default).
{{- end }}
{{- end -}}

{{- define "supportserve.validate.lifecycle" -}}
{{- $graceful := dig "deployment" "graceful_shutdown_timeout_s" 30 (.Values.serving | default dict) -}}
{{- $grace := int (include "supportserve.terminationGracePeriodSeconds" .) -}}
{{- if le (float64 $grace) (float64 $graceful) }}
supportserve: terminationGracePeriodSeconds ({{ $grace }}) must be longer than serving.deployment.graceful_shutdown_timeout_s ({{ $graceful }}), or Kubernetes kills replicas mid-request.
{{- end }}
{{- if lt (float64 .Values.rayService.rayClusterDeletionDelaySeconds) (float64 $graceful) }}
supportserve: rayService.rayClusterDeletionDelaySeconds ({{ .Values.rayService.rayClusterDeletionDelaySeconds }}) is shorter than serving.deployment.graceful_shutdown_timeout_s ({{ $graceful }}); after an upgrade the old cluster would be deleted with requests still in flight.
{{- end }}
{{- if and .Values.finetune.enabled (not .Values.finetune.runId) }}
supportserve: finetune.enabled needs finetune.runId (the Job is named after it).
{{- end }}
{{- end -}}
