#!/usr/bin/env bash
# Builds the kstatus command (main.go, on sigs.k8s.io/cli-utils as pinned in go.mod) into a
# cache outside the clone (tests/go-tool.sh). Prints the binary's path on stdout. The
# propagation test runs this when SIGNET_KSTATUS is unset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../go-tool.sh"
build() {
  CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out" .
}
go_tool kstatus sigs.k8s.io/cli-utils "$here" build.sh go.mod go.sum main.go ../go-tool.sh -- build
