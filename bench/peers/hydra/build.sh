#!/usr/bin/env bash
# Builds Ory Hydra from the module pinned in go.mod into a cache outside the clone
# (tests/go-tool.sh), so a second run reuses it. Prints the path of the hydra binary on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../../tests/go-tool.sh"
module=github.com/ory/hydra/v2
# As Hydra's Makefile does: the sqlite tags (its in-memory DSN is an in-memory sqlite, which
# needs cgo) and the release version stamped so that `hydra version` tells the truth.
build() {
  local version
  version=$(awk -v m="$module" '$1=="require" && $2==m{print $3}' go.mod | head -1)
  CGO_ENABLED=1 go build -trimpath -tags sqlite,sqlite_omit_load_extension \
    "-ldflags=-s -w -X $module/driver/config.Version=$version" -o "$out" "$module"
}
go_tool hydra "$module" "$here" build.sh go.mod go.sum tools.go ../../../tests/go-tool.sh -- build
