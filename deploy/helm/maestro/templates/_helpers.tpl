{{/* The release's full name: the chart name, prefixed by the release name unless that already contains it. */}}
{{- define "maestro.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "maestro.serviceAccountName" -}}
{{- default (include "maestro.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* Stable labels: used in the Deployment's selector, so never the version. */}}
{{- define "maestro.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "maestro.labels" -}}
{{ include "maestro.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: maestro
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/*
The rules the operator needs in a namespace it watches; the same list serves the ClusterRole (all namespaces)
and each Role (namespaced mode). Every rule is explained in docs/install.md, and
tests/unit/test_deploy.py checks that it matches what the operator's code calls.
*/}}
{{- define "maestro.namespacedRules" -}}
# The MicroserviceApps: kopf lists and watches them; reconcile reads each (kopf writes nothing to them: only
# watch handlers are registered).
- apiGroups: [maestro.dev]
  resources: [microserviceapps]
  verbs: [get, list, watch]
# The app's status: reconcile writes it through the status subresource (a merge patch).
- apiGroups: [maestro.dev]
  resources: [microserviceapps/status]
  verbs: [patch]
# The children, one rule per kind of operator/maestro/render/kinds.py (files/child-kinds.yaml, written by `make
# manifests`): watched (events of owned children trigger a pass), server-side applied (patch; create when an apply
# creates one), pruned (delete).
{{- range (.Files.Get "files/child-kinds.yaml" | fromYaml).kinds }}
- apiGroups: [{{ .group | quote }}]
  resources: [{{ .plural }}]
  verbs: [{{ join ", " .verbs }}]
{{- end }}
# Config sources: read to hash them (config rollouts) and watched so that a change rolls the pods. The sources
# themselves are never written; the app's config snapshots (configFrom[].snapshot: immutable copies owned by the
# app, labelled maestro.dev/app) are created, listed when a revision is recorded, and deleted once no kept
# revision loads them.
- apiGroups: [""]
  resources: [configmaps, secrets]
  verbs: [get, list, watch, create, delete]
# Pods: listed (by the Job controller's job-name label) only when a job's run has failed, to report its pod's exit
# code and termination message; and, with ReplicaSets, only while a service's Deployment is in the middle of a
# rollout: the pods of its new ReplicaSet tell a failed rollout (crash loop, image pull) before its progress
# deadline (controller/rollout.py). Never watched, never written.
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [apps]
  resources: [replicasets]
  verbs: [list]
# The app's revisions (controller/revisions.py): a ControllerRevision created each time the whole app becomes
# Ready at a new rendering (a rendering Ready again: deleted and created under the newest number), read back by a
# rollback, listed when one is recorded (and by `maestro history`), the oldest deleted beyond
# spec.revisionHistoryLimit. Never patched.
- apiGroups: [apps]
  resources: [controllerrevisions]
  verbs: [get, list, create, delete]
# Events about apps (Maestro's own and kopf's warnings). Only created.
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/*
HA (kopf peering): the replicas' shared peering object, a ClusterKopfPeering cluster-wide or a KopfPeering in each
watched namespace. kopf lists and watches it and patches its own record into it; the operator creates it when
missing and reads it (a standby skips its safety pass). Reading and patching only the one named object.
*/}}
{{- define "maestro.peeringRules" -}}
{{- if .Values.peering.enabled }}
{{- $plural := ternary "kopfpeerings" "clusterkopfpeerings" (not (empty .Values.watchNamespaces)) }}
# HA: the replicas' kopf peering object. kopf watches it and patches its own record into it; the operator creates
# it when missing and reads it. Read and written: only the one named object.
- apiGroups: [kopf.dev]
  resources: [{{ $plural }}]
  verbs: [list, watch, create]
- apiGroups: [kopf.dev]
  resources: [{{ $plural }}]
  resourceNames: [{{ .Values.peering.name }}]
  verbs: [get, patch]
{{- end }}
{{- end -}}

{{/* Read-only cluster-scoped discovery for kopf (see rbac.discovery in values.yaml). */}}
{{- define "maestro.discoveryRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: [namespaces]
  verbs: [list, watch]
{{- end }}
{{- end -}}
