#!/usr/bin/env bash
# Builds helm from the Go module pinned in go.mod into a cache outside the clone (tests/go-tool.sh),
# so a second run reuses it. Prints the path of the helm binary on stdout. The chart tests
# (tests/tests/chart.rs) run this when SIGNET_HELM is unset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-tool.sh"
module=helm.sh/helm/v4
# As helm's own Makefile does: static, trimmed, no debug info, with the release version
# stamped so that `helm version` tells the truth.
build() {
  local version
  version=$(awk -v m="$module" '$1==m{print $2} $2==m{print $3}' go.mod | head -1)
  local ldflags="-s -w -X $module/internal/version.version=$version"
  ldflags+=" -X $module/internal/version.metadata= -X $module/internal/version.gitTreeState=clean"
  CGO_ENABLED=0 go build -trimpath "-ldflags=$ldflags" -o "$out" "$module/cmd/helm"
}
go_tool helm "$module" "$here" build.sh go.mod go.sum tools.go ../go-tool.sh -- build
