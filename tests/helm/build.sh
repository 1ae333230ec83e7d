#!/usr/bin/env bash
# Builds helm from the Go module pinned in go.mod into a cache outside the clone, keyed by the
# pinned version, the toolchain and this recipe, so a second run reuses it. Prints the path of
# the helm binary on stdout. The chart tests (tests/tests/chart.rs) run this when SIGNET_HELM
# is unset.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
module=helm.sh/helm/v4
version=$(awk -v m="$module" '$1==m{print $2} $2==m{print $3}' "$here/go.mod" | head -1)
if [ -z "$version" ]; then
  echo "tests/helm/build.sh: no $module pin in go.mod" >&2
  exit 1
fi
# The recipe hash makes a change of flags or pins rebuild.
recipe=$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here/tools.go" | sha256sum | cut -c1-12)
key="${version}_$(go env GOVERSION)_${recipe}"
cache=${SIGNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signet}
dir="$cache/helm/$key"
if [ -x "$dir/helm" ]; then
  echo "$dir/helm"
  exit 0
fi
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"
cd "$here"
echo "building helm $key (cold build, a few minutes)" >&2
# As helm's own Makefile does: static, trimmed, no debug info, with the release version
# stamped so that `helm version` tells the truth.
ldflags="-s -w -X $module/internal/version.version=$version"
ldflags+=" -X $module/internal/version.metadata= -X $module/internal/version.gitTreeState=clean"
CGO_ENABLED=0 go build -trimpath "-ldflags=$ldflags" -o "$tmp/helm" "$module/cmd/helm"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "$dir/helm"
