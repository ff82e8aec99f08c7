{{- define "pii-sensor.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pii-sensor.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pii-sensor.labels" -}}
app.kubernetes.io/name: {{ include "pii-sensor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "pii-sensor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pii-sensor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The hub's own selector: the sensor's selectors (DaemonSet, metrics Service) must not match its pods. */}}
{{- define "pii-sensor.hubSelectorLabels" -}}
app.kubernetes.io/name: {{ include "pii-sensor.name" . }}-hub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: hub
{{- end -}}

{{- define "pii-sensor.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pii-sensor.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "pii-sensor.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Where sensors send events: the hub's ingest when the chart runs one, else events.sink. */}}
{{- define "pii-sensor.eventSink" -}}
{{- if and .Values.hub.enabled .Values.events.toHub -}}
{{- printf "http://%s-hub.%s.svc:%d/api/v1/events" (include "pii-sensor.fullname" .) .Release.Namespace (int .Values.hub.port) -}}
{{- else -}}
{{- .Values.events.sink -}}
{{- end -}}
{{- end -}}

{{/* Where webhooks spool undelivered events (events.spool), in every container that sends them. */}}
{{- define "pii-sensor.spoolDir" -}}
/var/lib/pii-sensor/spool
{{- end -}}

{{/* The webhook secret as an env entry, when one is configured. */}}
{{- define "pii-sensor.secretEnv" -}}
{{- if or .Values.events.webhookSecret.value .Values.events.webhookSecret.existingSecret }}
- name: PII_SENSOR_WEBHOOK_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ default (include "pii-sensor.fullname" .) .Values.events.webhookSecret.existingSecret }}
      key: {{ .Values.events.webhookSecret.key }}
{{- end }}
{{- end -}}

{{/*
The sensor as a reverse-proxy sidecar container. Other charts include it in a pod spec:

  containers:
    - name: app
      ...
    {{- include "pii-sensor.sidecar" (dict "root" $piiSensorContext "upstream" "http://127.0.0.1:8080" "listenPort" 8081) | nindent 4 }}

"root" is a context with this chart's .Values/.Chart/.Release (the subchart's context when
pii-sensor is a dependency); "upstream" and "listenPort" default to .Values.sidecar.
*/}}
{{- define "pii-sensor.sidecar" -}}
{{- $root := .root -}}
{{- $mode := .mode | default $root.Values.sidecar.mode -}}
{{- $listen := .listenPort | default $root.Values.sidecar.listenPort -}}
- name: pii-sensor
  image: {{ include "pii-sensor.image" $root }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  args:
    - proxy
    - --mode
    - {{ $mode | quote }}
    - --listen-port
    - {{ $listen | quote }}
    - --metrics-port
    - {{ $root.Values.sidecar.metricsPort | quote }}
    - --events
    - {{ include "pii-sensor.eventSink" $root | quote }}
    - --config
    - /etc/pii-sensor/config.yaml
    - --confdir
    - /tmp/mitmproxy
  ports:
    - name: proxy
      containerPort: {{ $listen }}
    - name: metrics
      containerPort: {{ $root.Values.sidecar.metricsPort }}
  env:
    - name: HOME
      value: /tmp
    {{- include "pii-sensor.secretEnv" $root | nindent 4 }}
  readinessProbe:
    tcpSocket:
      port: proxy
    periodSeconds: 5
  livenessProbe:
    httpGet:
      path: /metrics
      port: metrics
    periodSeconds: 20
  resources:
    {{- toYaml $root.Values.sidecar.resources | nindent 4 }}
  securityContext:
    runAsNonRoot: true
    runAsUser: 10001
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities:
      drop: [ALL]
  volumeMounts:
    - name: pii-sensor-config
      mountPath: /etc/pii-sensor
      readOnly: true
    - name: pii-sensor-tmp
      mountPath: /tmp
    {{- if $root.Values.events.spool.enabled }}
    - name: pii-sensor-spool
      mountPath: {{ include "pii-sensor.spoolDir" $root }}
    {{- end }}
{{- end -}}

{{/* The volumes the sidecar needs, for the including pod spec. */}}
{{- define "pii-sensor.sidecarVolumes" -}}
- name: pii-sensor-config
  configMap:
    name: {{ include "pii-sensor.fullname" .root }}
- name: pii-sensor-tmp
  emptyDir: {}
{{- if .root.Values.events.spool.enabled }}
- name: pii-sensor-spool
  emptyDir: {}  # kept across restarts of the container, not of the pod
{{- end }}
{{- end -}}
