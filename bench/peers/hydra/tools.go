//go:build tools

// Package tools pins the hydra command that build.sh compiles, so `go mod tidy` keeps its
// dependencies in go.sum.
package tools

import (
	_ "github.com/ory/hydra/v2"
)
