//go:build tools

// Package tools pins the main packages of promtool and the Prometheus server so `go mod tidy`
// keeps the dependencies of both (../build.sh builds them in one `go build`).
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
