{{- define "aftertrace.name" -}}{{ .Chart.Name }}{{- end -}}

{{- define "aftertrace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "aftertrace.labels" -}}
app.kubernetes.io/name: {{ include "aftertrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The environment every component shares: stores from values and the Secret. */}}
{{- define "aftertrace.env" -}}
- name: AFTERTRACE_NATS_URL
  value: {{ .Values.nats.url | quote }}
- name: AFTERTRACE_NATS_REPLICAS
  value: {{ .Values.nats.replicas | quote }}
- name: AFTERTRACE_NATS_STREAM_MAX_BYTES
  value: {{ .Values.nats.streamMaxBytes | int64 | quote }}
- name: AFTERTRACE_CLICKHOUSE_ADDR
  value: {{ .Values.clickhouse.addr | quote }}
- name: AFTERTRACE_CLICKHOUSE_DATABASE
  value: {{ .Values.clickhouse.database | quote }}
- name: AFTERTRACE_CLICKHOUSE_USER
  value: {{ .Values.clickhouse.user | quote }}
{{- with .Values.clickhouse.cluster }}
- name: AFTERTRACE_CLICKHOUSE_CLUSTER
  value: {{ . | quote }}
{{- end }}
- name: AFTERTRACE_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .Values.secret.name }}, key: clickhouse-password, optional: true}
- name: AFTERTRACE_POSTGRES_DSN
  valueFrom:
    secretKeyRef: {name: {{ .Values.secret.name }}, key: postgres-dsn}
- name: AFTERTRACE_OPS_ADDR
  value: "0.0.0.0:{{ .Values.opsPort }}"
- name: AFTERTRACE_WRITER_OPS_ADDR
  value: "0.0.0.0:{{ .Values.opsPort }}"
- name: AFTERTRACE_CORRELATOR_OPS_ADDR
  value: "0.0.0.0:{{ .Values.opsPort }}"
- name: AFTERTRACE_MIGRATE
  value: {{ not .Values.migrateJob.enabled | quote }}
{{- end -}}
