// Pins the Prometheus Operator release whose CRDs (ServiceMonitor, PrometheusRule) the
// integration tests install in the test API server, so that server-side dry runs validate the
// monitoring objects against their real schemas. ../build.sh copies them out of the module
// (example/prometheus-operator-crd/); nothing is compiled. v0.85.0 is the newest version the Go
// module proxy serves.
module ecsops.local/tools/prometheus-operator-crds

go 1.26.0

require github.com/prometheus-operator/prometheus-operator v0.85.0
