#!/usr/bin/env bash
# Fetches Keycloak's Quarkus distribution (the zip Keycloak publishes to Maven Central) with
# Maven and unpacks it into a cache outside the clone, keyed like the Go-built tools (version,
# toolchain, recipe), so a second run reuses it. Prints the Keycloak home folder on stdout.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=26.7.3
recipe=$(sha256sum "$here/fetch.sh" | cut -c1-12)
java=$(java -XshowSettings:properties -version 2>&1 | awk '$1=="java.version" {print $3}')
cache=${SIGNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signet}
dir="$cache/keycloak/${version}_java${java}_${recipe}"
if [ -x "$dir/keycloak-$version/bin/kc.sh" ]; then
  echo "$dir/keycloak-$version"
  exit 0
fi
echo "fetching keycloak $version (cold)" >&2
tmp="$dir.tmp.$$"
rm -rf "$tmp" && mkdir -p "$tmp"
trap 'rm -rf "$tmp" "$tmp.log"' EXIT
# Maven's output is shown only when it fails.
mvn -q -B dependency:copy "-Dartifact=org.keycloak:keycloak-quarkus-dist:$version:zip" \
  "-DoutputDirectory=$tmp" >"$tmp.log" 2>&1 || { cat "$tmp.log" >&2; exit 1; }
rm "$tmp.log"
unzip -q "$tmp/keycloak-quarkus-dist-$version.zip" -d "$tmp"
rm "$tmp/keycloak-quarkus-dist-$version.zip"
rm -rf "$dir"
mv "$tmp" "$dir"
echo "$dir/keycloak-$version"
