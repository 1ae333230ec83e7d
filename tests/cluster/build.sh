#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager and kubectl from the Go modules pinned
# in go.mod into a cache outside the clone, keyed by the pinned versions, so a second run
# reuses them. Prints the bin directory on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
k8s=$(awk '$1=="k8s.io/kubernetes"{print $2}' "$here/go.mod")
etcd=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2}' "$here/go.mod")
# The recipe hash makes a change of flags, pins or the etcd wrapper rebuild.
recipe=$(cat "$here/build.sh" "$here/go.mod" "$here/go.sum" "$here/cmd/etcd/main.go" | sha256sum | cut -c1-12)
key="k8s-${k8s}_etcd-${etcd}_$(go env GOVERSION)_${recipe}"
cache=${SIGNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signet}
bin="$cache/control-plane/$key/bin"
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ] && [ -x "$bin/etcd" ]; then
  echo "$bin"
  exit 0
fi
tmp="$bin.tmp.$$"
mkdir -p "$tmp"
cd "$here"
echo "building control plane $key (cold build, several minutes)" >&2
# -trimpath and no debug info keep the binaries small; the cache key covers the toolchain.
# The -X flags stamp the version that `kubectl version` and /version report, as Kubernetes'
# own build does.
minor=${k8s#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$k8s -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
flags=(-trimpath "-ldflags=$ldflags")
go build "${flags[@]}" -o "$tmp/etcd" ./cmd/etcd
go build "${flags[@]}" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl
rm -rf "$bin"
mv "$tmp" "$bin"
echo "$bin"
