// Recipe only: pins the Gateway API release whose CRDs (config/crd/standard in the module) the local cluster installs,
// so that HTTPRoutes are real objects there. Nothing is built from it.
module maestro.dev/hack/cluster/gateway-api

go 1.26.0

require sigs.k8s.io/gateway-api v1.6.3
