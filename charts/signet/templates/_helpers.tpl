{{/* Name of the chart, or nameOverride. */}}
{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: fullnameOverride, else `<release>` when it contains the chart name, else
`<release>-<chart>`; at most 52 characters so that suffixes fit in 63. */}}
{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 52 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of a cluster-scoped object: prefixed with the release namespace, so that releases
of the same name in two namespaces do not collide. */}}
{{- define "signet.clusterName" -}}
{{- printf "%s-%s" .Release.Namespace (include "signet.fullname" .) -}}
{{- end -}}

{{- define "signet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "signet.labels" -}}
helm.sh/chart: {{ include "signet.chart" . }}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: signet
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "ctx" $ "component" "sts"). */}}
{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels of one component's objects. */}}
{{- define "signet.componentLabels" -}}
{{ include "signet.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "signet.operator.fullname" -}}
{{- printf "%s-operator" (include "signet.fullname" .) -}}
{{- end -}}

{{- define "signet.sts.fullname" -}}
{{- printf "%s-sts" (include "signet.fullname" .) -}}
{{- end -}}

{{- define "signet.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (include "signet.operator.fullname" .) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "signet.sts.serviceAccountName" -}}
{{- if .Values.sts.serviceAccount.create -}}
{{- default (include "signet.sts.fullname" .) .Values.sts.serviceAccount.name -}}
{{- else -}}
{{- required "sts.serviceAccount.name is required when sts.serviceAccount.create is false" .Values.sts.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "signet.leaseName" -}}
{{- default (include "signet.operator.fullname" .) .Values.operator.leaderElection.leaseName -}}
{{- end -}}

{{/* The image, by digest when one is given. */}}
{{- define "signet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Pod security context of both components: the `restricted` Pod Security level. */}}
{{- define "signet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context of both components. */}}
{{- define "signet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Topology spread constraints, with the component's pod selector filled in where a
constraint has none. Call with (dict "ctx" $ "component" "sts" "constraints" list). */}}
{{- define "signet.topologySpread" -}}
{{- $selector := fromYaml (include "signet.selectorLabels" .) -}}
{{- $out := list -}}
{{- range .constraints -}}
{{- $c := deepCopy . -}}
{{- if not (hasKey $c "labelSelector") -}}
{{- $_ := set $c "labelSelector" (dict "matchLabels" $selector) -}}
{{- end -}}
{{- $out = append $out $c -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The snapshot Secrets the STS reads: `<ts>-snapshot` and its shards `-0`..`-7`
(crds/src/snapshot_secret.rs: secret_names, MAX_SHARDS). */}}
{{- define "signet.snapshotSecretNames" -}}
{{- $ts := .Values.tokenService.name -}}
- {{ printf "%s-snapshot" $ts }}
{{- range $i := until 8 }}
- {{ printf "%s-snapshot-%d" $ts $i }}
{{- end }}
{{- end -}}

{{/* The issuer's host, for the Ingress. */}}
{{- define "signet.issuerHost" -}}
{{- $url := urlParse .Values.tokenService.issuer -}}
{{- (split ":" $url.host)._0 -}}
{{- end -}}

{{/* The namespaces the operator watches, as a list: empty for all; else the listed ones and
the release namespace (where its TokenService lives). */}}
{{- define "signet.watchNamespaces" -}}
{{- if .Values.operator.watchNamespaces -}}
{{- toJson (uniq (prepend .Values.operator.watchNamespaces .Release.Namespace)) -}}
{{- else -}}
[]
{{- end -}}
{{- end -}}
