{{/*
Names and labels.
*/}}
{{- define "cfr.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cfr.fullname" -}}
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

{{/*
The name of a cluster-scoped object of this release (the ClusterRole and its binding): the full
name and the release namespace, so that releases of one name in two namespaces do not claim
the same object. A namespace holds no dot, so `<fullname>.<namespace>` names one release only.
RBAC names may be 253 characters long: nothing is cut.
*/}}
{{- define "cfr.clusterScopedName" -}}
{{- printf "%s.%s" (include "cfr.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "cfr.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cfr.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cfr.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "cfr.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The pod's ServiceAccount. Without one of our own, the namespace's `default` one, but never with
rbac.create: the ClusterRole would go to every pod of the namespace that runs as `default`.
*/}}
{{- define "cfr.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cfr.fullname" .) .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else if .Values.rbac.create }}
{{- fail "serviceAccount.create is false and serviceAccount.name is empty: rbac.create would bind the ClusterRole (cluster-wide reads of Gateway API objects, Services and Namespaces, status patches) to the namespace's `default` ServiceAccount, and so to every pod that runs as it. Set serviceAccount.name to a ServiceAccount of this release's pods alone, or serviceAccount.create: true, or rbac.create: false to bind roles yourself" }}
{{- else }}
{{- "default" }}
{{- end }}
{{- end }}

{{- define "cfr.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "cfr.cloudflaredImage" -}}
{{- printf "%s:%s" .Values.cloudflared.image.repository .Values.cloudflared.image.tag }}
{{- end }}

{{/*
Paths inside the pod. The config directory is an emptyDir written by cloudflared-routes and
read by cloudflared; the credentials file comes from the Secret, mounted as a directory so
that a rotated Secret reaches the running pod (a subPath mount would never change).
*/}}
{{- define "cfr.configDir" -}}/etc/cloudflared/config{{- end }}
{{- define "cfr.configFile" -}}/etc/cloudflared/config/config.yml{{- end }}
{{- define "cfr.credentialsDir" -}}/etc/cloudflared/creds{{- end }}
{{- define "cfr.credentialsFile" -}}/etc/cloudflared/creds/credentials.json{{- end }}
{{- define "cfr.baseConfigDir" -}}/etc/cloudflared/base{{- end }}
{{- define "cfr.baseConfigFile" -}}/etc/cloudflared/base/config.yml{{- end }}
{{- define "cfr.runDir" -}}/run/cloudflared{{- end }}
{{- define "cfr.pidFile" -}}/run/cloudflared/cloudflared.pid{{- end }}
{{/* Where the Dockerfile copies the binaries (tests/chart checks both against it). */}}
{{- define "cfr.routesBin" -}}/usr/local/bin/cloudflared-routes{{- end }}
{{- define "cfr.cloudflaredBin" -}}/usr/local/bin/cloudflared{{- end }}

{{/*
Timings derived from cloudflared's grace period: supervise mode's --drain-timeout is 5s above
it, and the pod's terminationGracePeriodSeconds 10s above that (docs/reload.md).
*/}}
{{- define "cfr.drainTimeoutSeconds" -}}
{{- add (int .Values.cloudflared.gracePeriodSeconds) 5 }}
{{- end }}

{{- define "cfr.terminationGracePeriodSeconds" -}}
{{- $drain := int (include "cfr.drainTimeoutSeconds" .) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $drain 10 }}
{{- else }}
{{- $t := int .Values.terminationGracePeriodSeconds }}
{{- if le $t $drain }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be above cloudflared.gracePeriodSeconds + 5 (%d): cloudflared would be killed while draining" $t $drain) }}
{{- end }}
{{- $t }}
{{- end }}
{{- end }}

{{- define "cfr.readyTimeout" -}}
{{- if .Values.reload.readyTimeout }}
{{- .Values.reload.readyTimeout }}
{{- else if eq .Values.reload.mode "signal" }}
{{- printf "%ds" (add (int .Values.cloudflared.gracePeriodSeconds) 330) }}
{{- end }}
{{- end }}

{{/*
Ports bound in the pod share its one network namespace, so they must differ. signal: the admin
server (cloudflared-routes) and cloudflared's metrics server; supervise: the admin server and
the two metrics ports the cloudflared children alternate between (`--supervise-metrics-ports`,
the binary's 20241,20242 unless extraArgs sets it). A clash would fail only at run time: the
second listener's bind.
*/}}
{{- define "cfr.superviseMetricsPorts" -}}
{{- $ports := "20241,20242" }}
{{- $args := .Values.extraArgs }}
{{- range $i, $arg := $args }}
{{- if and (eq $arg "--supervise-metrics-ports") (lt (add1 $i) (len $args)) }}
{{- $ports = index $args (add1 $i) }}
{{- else if hasPrefix "--supervise-metrics-ports=" $arg }}
{{- $ports = trimPrefix "--supervise-metrics-ports=" $arg }}
{{- end }}
{{- end }}
{{- $ports }}
{{- end }}

{{- define "cfr.checkPorts" -}}
{{- $admin := int .Values.admin.port }}
{{- if eq .Values.reload.mode "signal" }}
{{- if eq $admin (int .Values.cloudflared.metricsPort) }}
{{- fail (printf "admin.port and cloudflared.metricsPort are both %d: in signal mode cloudflared-routes' admin server and cloudflared's metrics server listen in the pod's one network namespace; set one of them to another port" $admin) }}
{{- end }}
{{- else }}
{{- $ports := include "cfr.superviseMetricsPorts" . }}
{{- range splitList "," $ports }}
{{- if eq (trim .) (toString $admin) }}
{{- fail (printf "admin.port is %d, one of the metrics ports of the cloudflared children in supervise mode (--supervise-metrics-ports %s): both listen in the pod's one network namespace; set admin.port to another port" $admin $ports) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Gateways to serve: the gateways value, and the chart's own Gateway when it creates one (a
Gateway this release creates and does not serve would be left to whichever instance serves
every Gateway of the class, or to none). Empty: every Gateway of our GatewayClasses.
*/}}
{{- define "cfr.gatewayName" -}}
{{- default (include "cfr.fullname" .) .Values.gateway.name }}
{{- end }}

{{- define "cfr.gatewayNamespace" -}}
{{- default .Release.Namespace .Values.gateway.namespace }}
{{- end }}

{{- define "cfr.servedGateways" -}}
{{- $served := list }}
{{- range .Values.gateways }}
{{- $served = append $served . }}
{{- end }}
{{- if .Values.gateway.create }}
{{- $served = append $served (printf "%s/%s" (include "cfr.gatewayNamespace" .) (include "cfr.gatewayName" .)) }}
{{- end }}
{{- toJson (uniq $served) }}
{{- end }}

{{/*
The arguments of `cloudflared-routes run`, as a JSON list.
*/}}
{{- define "cfr.routesArgs" -}}
{{- $args := list "run"
  "--config-out" (include "cfr.configFile" .)
  "--credentials-file" (include "cfr.credentialsFile" .)
  "--controller-name" .Values.controllerName
  "--admin-addr" (printf "0.0.0.0:%d" (int .Values.admin.port))
  "--cluster-domain" .Values.clusterDomain
  "--grpc-backend-tls" .Values.grpcBackendTLS
  "--log-format" .Values.logFormat }}
{{- range (include "cfr.servedGateways" . | fromJsonArray) }}
{{- $args = concat $args (list "--gateway" .) }}
{{- end }}
{{- if .Values.baseConfig }}
{{- $args = concat $args (list "--base-config" (include "cfr.baseConfigFile" .)) }}
{{- end }}
{{- if .Values.logLevel }}
{{- $args = concat $args (list "--log-level" .Values.logLevel) }}
{{- end }}
{{- $readyTimeout := include "cfr.readyTimeout" . }}
{{- if $readyTimeout }}
{{- $args = concat $args (list "--ready-timeout" $readyTimeout) }}
{{- end }}
{{- if eq .Values.reload.mode "supervise" }}
{{- $args = concat $args (list "--reload" "supervise" "--drain-timeout" (printf "%ss" (include "cfr.drainTimeoutSeconds" .))) }}
{{- else }}
{{- $args = concat $args (list "--reload" "signal"
  "--cloudflared-pidfile" (include "cfr.pidFile" .)
  "--cloudflared-metrics" (printf "127.0.0.1:%d" (int .Values.cloudflared.metricsPort))
  "--stagger" .Values.reload.stagger) }}
{{- if .Values.reload.staggerMaxWait }}
{{- $args = concat $args (list "--stagger-max-wait" .Values.reload.staggerMaxWait) }}
{{- end }}
{{- end }}
{{- $args = concat $args .Values.extraArgs }}
{{- if eq .Values.reload.mode "supervise" }}
{{- /* `--config <config-out>` is inserted after `tunnel` by cloudflared-routes itself. */}}
{{- $args = concat $args (list "--" (include "cfr.cloudflaredBin" .) "--no-autoupdate" "tunnel") .Values.cloudflared.extraArgs (list "run") }}
{{- end }}
{{- toJson $args }}
{{- end }}

{{/*
The command line of the cloudflared container (signal mode): flags of `cloudflared tunnel`
come before `run` (after it, cloudflared exits 0 with "flag provided but not defined").
*/}}
{{- define "cfr.cloudflaredCommand" -}}
{{- toJson (list (include "cfr.cloudflaredBin" .) "--no-autoupdate") }}
{{- end }}

{{- define "cfr.cloudflaredArgs" -}}
{{- $args := list "tunnel"
  "--config" (include "cfr.configFile" .)
  "--pidfile" (include "cfr.pidFile" .)
  "--metrics" (printf "0.0.0.0:%d" (int .Values.cloudflared.metricsPort)) }}
{{- toJson (concat $args .Values.cloudflared.extraArgs (list "run")) }}
{{- end }}

{{/*
Environment: the pod's name and namespace for leader election, and cloudflared's grace period
where cloudflared runs.
*/}}
{{- define "cfr.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{- define "cfr.cloudflaredEnv" -}}
- name: TUNNEL_GRACE_PERIOD
  value: {{ printf "%ds" (int .Values.cloudflared.gracePeriodSeconds) | quote }}
{{- with .Values.cloudflared.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "cfr.probeTiming" -}}
initialDelaySeconds: {{ .initialDelaySeconds | default 0 }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
{{- end }}
