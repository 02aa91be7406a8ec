{{/* Names, labels and the pieces every Strongroom pod shares. */}}

{{- define "strongroom.fullname" -}}
{{- printf "%s-strongroom" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{/* The gRPC port of each service; the gateway serves HTTP on 8470. */}}
{{- define "strongroom.ports" -}}
gateway: 8470
ingestion: 8471
redaction: 8472
tasks: 8473
labeling: 8474
export: 8475
audit: 8476
{{- end -}}

{{- define "strongroom.port" -}}
{{- index (include "strongroom.ports" .root | fromYaml) .component -}}
{{- end -}}

{{- define "strongroom.componentName" -}}
{{- printf "%s-%s" (include "strongroom.fullname" .root) .component -}}
{{- end -}}

{{- define "strongroom.selectorLabels" -}}
app.kubernetes.io/name: strongroom
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "strongroom.labels" -}}
{{ include "strongroom.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "strongroom.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/strongroom-%s:%s" .root.Values.image.repository .component $tag -}}
{{- end -}}

{{/* The command each image's ENTRYPOINT runs (deploy/Dockerfile). */}}
{{- define "strongroom.command" -}}
{{- if eq .component "gateway" -}}
["python", "-m", "strongroom.gateway"]
{{- else if eq .component "migrate" -}}
["strongroom", "migrate"]
{{- else -}}
["python", "-m", "strongroom.services.{{ .component }}"]
{{- end -}}
{{- end -}}

{{/* Trial mode points the services at the backends the chart brings. */}}
{{- define "strongroom.trialName" -}}
{{- printf "%s-trial-%s" (include "strongroom.fullname" .root) .backend -}}
{{- end -}}

{{- define "strongroom.backends" -}}
{{- $v := .Values.backends -}}
{{- if .Values.trial.enabled -}}
{{- $trial := printf "%s-trial" (include "strongroom.fullname" .) -}}
kafka: {{ $trial }}-kafka:9092
kafkaTls: false
s3: {{ $trial }}-minio:9000
s3Secure: false
opensearch: http://{{ $trial }}-opensearch:9200
keycloak: http://{{ $trial }}-keycloak:8080/realms/strongroom
s3Secret: {name: {{ $trial }}, accessKeyKey: s3-access-key, secretKeyKey: s3-secret-key}
postgresqlSecret: {name: {{ $trial }}, key: postgresql-url-template}
redactionSecret: {name: {{ $trial }}, key: redaction-key}
exportSigningSecret: {name: {{ $trial }}, key: export-signing-key}
{{- else -}}
kafka: {{ $v.kafka.bootstrapServers | quote }}
kafkaTls: {{ $v.kafka.tls }}
s3: {{ $v.s3.endpoint | quote }}
s3Secure: {{ $v.s3.secure }}
opensearch: {{ $v.opensearch.url | quote }}
keycloak: {{ $v.keycloak.issuer | quote }}
s3Secret: {{ toJson $v.s3.credentialsSecret }}
postgresqlSecret: {{ toJson $v.postgresql.urlSecret }}
redactionSecret: {{ toJson .Values.keys.redactionSecret }}
exportSigningSecret: {{ toJson .Values.keys.exportSigningSecret }}
{{- end -}}
{{- end -}}

{{/*
The STRONGROOM_* settings every process reads (services/common/config.py).
Secrets arrive through secretKeyRef only.
*/}}
{{- define "strongroom.env" -}}
{{- $root := .root -}}
{{- $backends := include "strongroom.backends" $root | fromYaml -}}
{{- $s3 := $backends.s3Secret -}}
{{- $pg := $backends.postgresqlSecret -}}
- name: STRONGROOM_DATA_DIR
  value: /var/lib/strongroom
- name: STRONGROOM_LOG_LEVEL
  value: {{ $root.Values.settings.logLevel | quote }}
- name: STRONGROOM_MAX_UPLOAD_BYTES
  value: {{ $root.Values.settings.maxUploadBytes | int64 | quote }}
- name: STRONGROOM_LEASE_SECONDS
  value: {{ $root.Values.settings.leaseSeconds | int64 | quote }}
- name: STRONGROOM_DATABASE_URL_TEMPLATE
  valueFrom:
    secretKeyRef:
      name: {{ $pg.name }}
      key: {{ $pg.key }}
- name: STRONGROOM_EVENT_BUS
  value: kafka
- name: STRONGROOM_KAFKA_BOOTSTRAP_SERVERS
  value: {{ $backends.kafka | quote }}
- name: STRONGROOM_KAFKA_TLS
  value: {{ $backends.kafkaTls | quote }}
{{- $sasl := $root.Values.backends.kafka.sasl }}
{{- if and $sasl.mechanism (not $root.Values.trial.enabled) }}
- name: STRONGROOM_KAFKA_SASL_MECHANISM
  value: {{ $sasl.mechanism | quote }}
- name: STRONGROOM_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $sasl.credentialsSecret.name }}
      key: {{ $sasl.credentialsSecret.usernameKey }}
- name: STRONGROOM_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $sasl.credentialsSecret.name }}
      key: {{ $sasl.credentialsSecret.passwordKey }}
{{- end }}
- name: STRONGROOM_OBJECT_STORE
  value: s3
- name: STRONGROOM_S3_ENDPOINT
  value: {{ $backends.s3 | quote }}
- name: STRONGROOM_S3_SECURE
  value: {{ $backends.s3Secure | quote }}
- name: STRONGROOM_S3_BUCKET_PREFIX
  value: {{ $root.Values.backends.s3.bucketPrefix | quote }}
- name: STRONGROOM_S3_RETENTION_DAYS
  value: {{ $root.Values.backends.s3.retentionDays | int64 | quote }}
- name: STRONGROOM_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.name }}
      key: {{ $s3.accessKeyKey }}
- name: STRONGROOM_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $s3.name }}
      key: {{ $s3.secretKeyKey }}
- name: STRONGROOM_AUDIT_INDEX
  value: opensearch
- name: STRONGROOM_OPENSEARCH_URL
  value: {{ $backends.opensearch | quote }}
- name: STRONGROOM_OPENSEARCH_INDEX_PREFIX
  value: {{ $root.Values.backends.opensearch.indexPrefix | quote }}
{{- $search := $root.Values.backends.opensearch.credentialsSecret }}
{{- if and $search.name (not $root.Values.trial.enabled) }}
- name: STRONGROOM_OPENSEARCH_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $search.name }}
      key: {{ $search.usernameKey }}
- name: STRONGROOM_OPENSEARCH_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $search.name }}
      key: {{ $search.passwordKey }}
{{- end }}
- name: STRONGROOM_IDENTITY
  value: oidc
- name: STRONGROOM_OIDC_ISSUER
  value: {{ $backends.keycloak | quote }}
- name: STRONGROOM_OIDC_AUDIENCE
  value: {{ $root.Values.backends.keycloak.audience | quote }}
- name: STRONGROOM_OIDC_CLIENT_ID
  value: {{ $root.Values.backends.keycloak.clientId | quote }}
{{- range $name := list "ingestion" "redaction" "tasks" "labeling" "export" "audit" }}
- name: STRONGROOM_{{ upper $name }}_ADDRESS
  value: "{{ include "strongroom.componentName" (dict "root" $root "component" $name) }}:{{ include "strongroom.port" (dict "root" $root "component" $name) }}"
{{- end }}
{{- if eq .component "gateway" }}
- name: STRONGROOM_GATEWAY_HOST
  value: "0.0.0.0"
- name: STRONGROOM_GATEWAY_PORT
  value: "8470"
{{- with $root.Values.ingress }}
{{- if .enabled }}
# The web page's sign-in comes back to {public_url}/auth/callback.
- name: STRONGROOM_PUBLIC_URL
  value: "{{ if .tlsSecretName }}https{{ else }}http{{ end }}://{{ .host }}"
{{- end }}
{{- end }}
{{- else if ne .component "migrate" }}
- name: STRONGROOM_GRPC_LISTEN_ADDRESS
  value: "0.0.0.0:{{ include "strongroom.port" . }}"
{{- end }}
{{- if eq .component "redaction" }}
- name: STRONGROOM_REDACTION_KEY_FILE
  value: /etc/strongroom/keys/redaction.key
{{- end }}
{{- if eq .component "export" }}
- name: STRONGROOM_EXPORT_SIGNING_KEY_FILE
  value: /etc/strongroom/keys/export-signing-key.pem
{{- end }}
{{- if $root.Values.backends.tls.caSecret }}
- name: SSL_CERT_FILE
  value: /etc/strongroom/ca/{{ $root.Values.backends.tls.caKey }}
- name: STRONGROOM_TLS_CA_FILE
  value: /etc/strongroom/ca/{{ $root.Values.backends.tls.caKey }}
{{- end }}
{{- end -}}

{{- define "strongroom.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Writable scratch space: the root filesystem is read-only. */}}
{{- define "strongroom.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
- name: data
  mountPath: /var/lib/strongroom
{{- if .root.Values.backends.tls.caSecret }}
- name: backend-ca
  mountPath: /etc/strongroom/ca
  readOnly: true
{{- end }}
{{- if or (eq .component "redaction") (eq .component "export") }}
- name: keys
  mountPath: /etc/strongroom/keys
  readOnly: true
{{- end }}
{{- end -}}

{{- define "strongroom.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if eq .component "audit" }}
- name: data
  persistentVolumeClaim:
    claimName: {{ include "strongroom.componentName" . }}
{{- else }}
- name: data
  emptyDir: {}
{{- end }}
{{- if .root.Values.backends.tls.caSecret }}
- name: backend-ca
  secret:
    secretName: {{ .root.Values.backends.tls.caSecret }}
{{- end }}
{{- if eq .component "redaction" }}
{{- $key := (include "strongroom.backends" .root | fromYaml).redactionSecret }}
- name: keys
  secret:
    secretName: {{ $key.name }}
    # Readable by the pod's group (fsGroup), nobody else.
    defaultMode: 0440
    items:
      - key: {{ $key.key }}
        path: redaction.key
{{- end }}
{{- if eq .component "export" }}
{{- $key := (include "strongroom.backends" .root | fromYaml).exportSigningSecret }}
- name: keys
  secret:
    secretName: {{ $key.name }}
    defaultMode: 0440
    items:
      - key: {{ $key.key }}
        path: export-signing-key.pem
{{- end }}
{{- end -}}
