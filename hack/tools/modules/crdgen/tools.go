//go:build tools

// Package crdgen only exists so that `go mod tidy` keeps the API type
// packages that hack/tools/gen-crds.sh passes to controller-gen.
package crdgen

import (
	_ "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
)
