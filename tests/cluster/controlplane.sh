#!/usr/bin/env bash
# Starts or stops a Kubernetes control plane for tests: etcd, kube-apiserver and
# kube-controller-manager on free loopback ports. No scheduler and no kubelet: pods never run.
#
#   controlplane.sh start DIR [--owner-pid PID] [--jwt-authenticator FILE]... [--service-account-issuer URL]
#                                           prints DIR/kubeconfig when /readyz is ok
#   controlplane.sh stop DIR
#   controlplane.sh stop-apiserver DIR      kills the API server only; returns once it is gone
#   controlplane.sh restart-apiserver DIR   starts it again (same port, same flags) and
#                                           returns when /readyz is ok
#
# DIR holds the certificates, logs, etcd data, the audit log (DIR/audit.log) and the
# structured authentication configuration (DIR/authentication.yaml), which the API server
# reloads when a test rewrites it. Each --jwt-authenticator FILE (repeatable) holds one entry of
# that configuration's `jwt:` list (a YAML mapping: issuer, claimMappings, ...); with any, the
# file is written anew from them, otherwise a file a test wrote before is kept. With
# --owner-pid, the control plane stops itself when that process exits, so a test run that dies
# leaves nothing behind. --service-account-issuer sets the `iss` of the ServiceAccount tokens it
# mints (default https://kubernetes.default.svc), so two control planes can act as two clusters.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

usage() {
  echo "usage: $0 start DIR [--owner-pid PID] [--jwt-authenticator FILE]... [--service-account-issuer URL] | stop DIR | stop-apiserver DIR | restart-apiserver DIR" >&2
  exit 2
}

free_ports() {
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY
}

# Whether a process runs. A zombie does not: where PID 1 does not reap orphans (as in some
# sandboxes), an exited control-plane process stays a zombie that `kill -0` still finds.
alive() {
  local state
  state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "${state#Z}" = "$state" ]
}

# Waits up to $2 tenths of a second for process $1 to end.
wait_gone() {
  for _ in $(seq 1 "$2"); do alive "$1" || return 0; sleep 0.1; done
  return 1
}

# Stops the processes in the reverse order of their start (controller manager, API server,
# etcd), each before the next, so the API server never retries against a stopped etcd.
stop() {
  local dir=$1
  [ -f "$dir/pids" ] || return 0
  for p in $(tac "$dir/pids"); do
    kill "$p" 2>/dev/null || continue
    wait_gone "$p" 300 || { kill -9 "$p" 2>/dev/null; wait_gone "$p" 50 || true; }
  done
  rm -f "$dir/pids"
}

# A certificate signed by the test CA. $1 name, $2 subject, $3 extensions.
issue() {
  local dir=$1 name=$2 subject=$3 ext=$4
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" > "$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null
}

kubeconfig() {
  local dir=$1 user=$2 server=$3
  cat > "$dir/$user.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: signet-test
  cluster:
    certificate-authority: $dir/ca.crt
    server: $server
users:
- name: $user
  user:
    client-certificate: $dir/$user.crt
    client-key: $dir/$user.key
contexts:
- name: signet-test
  context: {cluster: signet-test, user: $user, namespace: default}
current-context: signet-test
KC
}

wait_ready() {
  local what=$1 url=$2 log=$3 pid=$4
  shift 4
  for _ in $(seq 1 1200); do
    if curl -fsS "$@" "$url" >/dev/null 2>&1; then return 0; fi
    if ! alive "$pid"; then
      echo "$what exited; last lines of $log:" >&2; tail -20 "$log" >&2; return 1
    fi
    sleep 0.1
  done
  echo "$what not ready after 120 s; last lines of $log:" >&2; tail -20 "$log" >&2
  return 1
}

# Starts DIR/kube-apiserver.sh (the `exec` keeps the pid), records it as the second line of
# DIR/pids and waits for /readyz. The log is appended to, so a restart keeps the history.
start_apiserver() {
  local dir=$1
  "$dir/kube-apiserver.sh" >> "$dir/kube-apiserver.log" 2>&1 &
  local api_pid=$!
  if [ "$(wc -l < "$dir/pids")" -ge 2 ]; then
    sed -i "2s/.*/$api_pid/" "$dir/pids"
  else
    echo "$api_pid" >> "$dir/pids"
  fi
  wait_ready kube-apiserver "$(cat "$dir/apiserver.url")/readyz" "$dir/kube-apiserver.log" \
    "$api_pid" --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key"
}

# Stops the API server only, with SIGKILL, and returns once it has exited (its port is then
# free). Abrupt on purpose, like a crash or a lost node: every connection drops at once,
# whereas a graceful stop keeps open watches going while it drains them (up to a minute).
stop_apiserver() {
  local dir=$1 api_pid
  api_pid=$(sed -n 2p "$dir/pids")
  [ -n "$api_pid" ] || { echo "no kube-apiserver pid in $dir/pids" >&2; return 1; }
  kill -9 "$api_pid" 2>/dev/null || return 0
  wait_gone "$api_pid" 100
}

start() {
  local dir owner="" jwt=() sa_issuer=https://kubernetes.default.svc
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  shift
  while [ $# -gt 1 ]; do
    case $1 in
      --owner-pid) owner=$2; shift 2 ;;
      --jwt-authenticator) [ -f "$2" ] || { echo "no file $2" >&2; exit 2; }; jwt+=("$2"); shift 2 ;;
      --service-account-issuer) sa_issuer=$2; shift 2 ;;
      *) usage ;;
    esac
  done
  [ $# -eq 0 ] || usage
  local bin
  bin=$("$here/build.sh")
  stop "$dir"
  rm -rf "$dir/etcd"
  read -r etcd_port peer_port api_port kcm_port <<<"$(free_ports 4)"

  # Certificates: a CA, the API server's serving cert, two client certs, the SA key.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" -subj "/CN=signet-test-ca" 2>/dev/null
  issue "$dir" apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:::1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  issue "$dir" admin "/O=system:masters/CN=signet-test-admin" "extendedKeyUsage=clientAuth"
  issue "$dir" controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$dir/sa.key" 2>/dev/null
  openssl pkey -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null

  cat > "$dir/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# Secrets' bodies never reach the audit log.
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: None
  verbs: [get, list, watch]
- level: Metadata
YAML
  if [ ${#jwt[@]} -gt 0 ]; then
    # Each file becomes one list item: "- " before its first line, two spaces before the rest.
    {
      printf 'apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n'
      for f in "${jwt[@]}"; do awk 'NR == 1 { print "- " $0; next } { print "  " $0 }' "$f"; done
    } > "$dir/authentication.yaml"
  elif [ ! -f "$dir/authentication.yaml" ]; then
    cat > "$dir/authentication.yaml" <<'YAML'
apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt: []
YAML
  fi

  : > "$dir/pids"
  "$bin/etcd" --name signet-test --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "signet-test=http://127.0.0.1:$peer_port" \
    --unsafe-no-fsync --log-level warn > "$dir/etcd.log" 2>&1 &
  echo $! >> "$dir/pids"
  wait_ready etcd "http://127.0.0.1:$etcd_port/health" "$dir/etcd.log" $!

  # The API server's command line goes to a script, so that restart-apiserver runs exactly
  # the same one (same port, flags and files).
  {
    echo '#!/usr/bin/env bash'
    printf 'exec'
    printf ' %q' "$bin/kube-apiserver" \
      --etcd-servers "http://127.0.0.1:$etcd_port" \
      --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
      --tls-cert-file "$dir/apiserver.crt" --tls-private-key-file "$dir/apiserver.key" \
      --client-ca-file "$dir/ca.crt" \
      --service-account-issuer "$sa_issuer" \
      --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
      --service-cluster-ip-range 10.0.0.0/24 \
      --authorization-mode RBAC \
      --authentication-config "$dir/authentication.yaml" \
      --audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$dir/audit.log" \
      --audit-log-format json \
      --enable-priority-and-fairness=false \
      --profiling=false
    echo
  } > "$dir/kube-apiserver.sh"
  chmod +x "$dir/kube-apiserver.sh"
  local server="https://127.0.0.1:$api_port"
  echo "$server" > "$dir/apiserver.url"
  kubeconfig "$dir" admin "$server"
  kubeconfig "$dir" controller-manager "$server"
  : > "$dir/kube-apiserver.log"
  start_apiserver "$dir"

  "$bin/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port "$kcm_port" \
    --controllers garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller \
    --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/ca.crt" \
    --use-service-account-credentials \
    --leader-elect=false > "$dir/kube-controller-manager.log" 2>&1 &
  local kcm_pid=$!
  echo $kcm_pid >> "$dir/pids"
  wait_ready kube-controller-manager "https://127.0.0.1:$kcm_port/healthz" \
    "$dir/kube-controller-manager.log" $kcm_pid -k

  cp "$dir/admin.kubeconfig" "$dir/kubeconfig"
  if [ -n "$owner" ]; then
    # The watchdog polls: a process cannot be waited on by a non-parent.
    nohup bash -c "while ps -o stat= -p $owner | grep -qv '^Z'; do sleep 1; done; '$here/controlplane.sh' stop '$dir'" \
      > /dev/null 2>&1 &
  fi
  echo "$dir/kubeconfig"
}

case ${1:-} in
  start) [ $# -ge 2 ] || usage; shift; start "$@" ;;
  stop) [ $# -eq 2 ] || usage; stop "$2" ;;
  stop-apiserver) [ $# -eq 2 ] || usage; stop_apiserver "$2" ;;
  restart-apiserver) [ $# -eq 2 ] || usage; stop_apiserver "$2"; start_apiserver "$2" ;;
  *) usage ;;
esac
