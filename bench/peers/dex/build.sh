#!/usr/bin/env bash
# Builds dex-bench (main.go: Dex's server behind a small launcher) against the Dex module pinned
# in go.mod, into a cache outside the clone (tests/go-tool.sh), so a second run reuses it.
# Prints the path of the binary on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../../tests/go-tool.sh"
# Static and without cgo: the in-memory storage needs no sqlite driver.
build() {
  CGO_ENABLED=0 go build -trimpath -ldflags=-s -o "$out" .
}
go_tool dex-bench github.com/dexidp/dex "$here" build.sh go.mod go.sum main.go ../../../tests/go-tool.sh -- build
