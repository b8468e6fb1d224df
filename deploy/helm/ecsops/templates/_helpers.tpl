{{/* Chart name, overridable with nameOverride. */}}
{{- define "ecsops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: fullnameOverride, else the release name if it contains the chart name, else
<release>-<chart>. Used for every object the chart creates. */}}
{{- define "ecsops.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "ecsops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable across upgrades. */}}
{{- define "ecsops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ecsops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end }}

{{- define "ecsops.labels" -}}
helm.sh/chart: {{ include "ecsops.chart" . }}
{{ include "ecsops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: ecsops
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "ecsops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "ecsops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the metrics Service; the alerts select the controller's series by job=<this>. */}}
{{- define "ecsops.metricsServiceName" -}}
{{- printf "%s-metrics" (include "ecsops.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "ecsops.leaseName" -}}
{{- default (include "ecsops.fullname" .) .Values.controller.leaderElection.id }}
{{- end }}

{{- define "ecsops.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* Secret holding the AccessKey pair (credentials.mode=accessKey). */}}
{{- define "ecsops.accessKeySecretName" -}}
{{- default (printf "%s-alibaba-credentials" (include "ecsops.fullname" .)) .Values.credentials.accessKey.existingSecret }}
{{- end }}
