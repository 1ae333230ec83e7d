# Sourced by tests/helm/build.sh and tests/kstatus/build.sh: a Go-built test tool cached outside
# the clone, keyed by the module version pinned in go.mod, the toolchain and the recipe.
#
#   go_tool NAME MODULE HERE RECIPE_FILES... -- BUILD COMMAND (writes "$out")
#
# prints the cached binary's path; builds it (in HERE, into "$out") only when it is missing.
go_tool() {
  local name=$1 module=$2 here=$3
  shift 3
  local files=()
  while [ "$1" != "--" ]; do files+=("$here/$1"); shift; done
  shift
  local version
  version=$(awk -v m="$module" '$1==m{print $2} $2==m{print $3}' "$here/go.mod" | head -1)
  if [ -z "$version" ]; then
    echo "$here: no $module pin in go.mod" >&2
    return 1
  fi
  # The recipe hash makes a change of flags or pins rebuild.
  local recipe key cache dir
  recipe=$(cat "${files[@]}" | sha256sum | cut -c1-12)
  key="${version}_$(go env GOVERSION)_${recipe}"
  cache=${SIGNET_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signet}
  dir="$cache/$name/$key"
  if [ -x "$dir/$name" ]; then
    echo "$dir/$name"
    return 0
  fi
  local tmp="$dir.tmp.$$"
  mkdir -p "$tmp"
  echo "building $name $key (cold build)" >&2
  if ! (cd "$here" && out="$tmp/$name" && export out && "$@" >&2); then
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  echo "$dir/$name"
}
