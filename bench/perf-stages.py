#!/usr/bin/env python3
# Splits a perf profile of signet-sts into request stages (docs/bench/sts-profile.txt, part 1).
# Each sample goes to the first stage, in the order listed, whose pattern matches a frame of
# its call chain.
#
#   perf script -i DIR/token.perf.data -F comm,tid,ip,sym > token.stacks
#   bench/perf-stages.py token.stacks token          (or: introspect.stacks introspect)
import sys, re
path, kind = sys.argv[1], sys.argv[2]
samples, cur = [], None
for line in open(path, errors="replace"):
    if not line.strip():
        if cur is not None: samples.append(cur); cur = None
        continue
    if not line.startswith("\t") and not line.startswith(" " * 8):
        cur = []
        continue
    parts = line.strip().split(None, 1)
    if cur is not None: cur.append(parts[1] if len(parts) > 1 else "")
if cur: samples.append(cur)
common_tail = [
 ("request read: recvfrom, hyper parse", r"poll_read_from_io|__x64_sys_recvfrom|hyper::proto::h1::role::Server as hyper::proto::h1::Http1Transaction>::parse"),
 ("response write: writev + kernel loopback delivery (wakes wrk)", r"poll_flush|writev|tcp_sendmsg"),
 ("tracing: the per-request info span", r"^tracing|tracing_subscriber|tracing_core"),
 ("metrics middleware (prometheus)", r"prometheus_client|signet_sts::metrics"),
 ("scheduler: context switches, epoll, futex, wakeups", r"__schedule|finish_task_switch|epoll_wait|futex|try_to_wake_up|schedule_hrtimeout"),
 ("interrupts / preemption", r"irqentry_exit_to_user_mode|asm_sysvec|sysvec_"),
 ("malloc/free elsewhere", r"malloc|free|_int_|cfree|realloc"),
]
if kind == "token":
    stages = [
     ("ES256 signature (aws-lc ECDSA_sign)", r"ECDSA_sign$|ECDSA_do_sign|pkey_ec_sign|EVP_DigestSignFinal"),
     ("rest of Signer::sign (header JSON, claims to_string, base64)", r"signet_sts::jose::Signer::sign"),
     ("client authentication (SHA-256, hex decode, lookup)", r"signet_sts::client_auth"),
     ("access_claims (json!, random jti)", r"signet_sts::tokens::access_claims"),
     ("form parse + grant parse + validate", r"signet_sts::form|signet_sts::grants"),
     ("response JSON (axum::Json)", r"axum::json::Json|serde_json::ser|serde_json::value::ser"),
    ] + common_tail
else:
    stages = [
     ("ES256 verification (aws-lc ECDSA_verify)", r"ECDSA_verify|ecdsa_do_verify|EVP_DigestVerify"),
     ("rest of jsonwebtoken decode (header+claims JSON, base64)", r"jsonwebtoken::"),
     ("redis deny-list check (EXISTS round trip)", r"redis::|RedisStore|is_denied"),
     ("client authentication (SHA-256, hex decode, lookup)", r"signet_sts::client_auth"),
     ("form parse, token_call", r"signet_sts::form|token_call"),
     ("rest of resolve / may_introspect / response JSON", r"signet_sts::tokens::resolve|may_introspect|axum::json::Json|serde_json"),
    ] + common_tail
counts = {name: 0 for name, _ in stages}; counts["other (tokio/hyper/axum glue, kernel)"] = 0
for s in samples:
    for name, rx in stages:
        if any(re.search(rx, f) for f in s):
            counts[name] += 1; break
    else:
        counts["other (tokio/hyper/axum glue, kernel)"] += 1
total = len(samples)
print(f"{total} samples of the STS process")
for name, n in counts.items():
    print(f"  {100*n/total:5.1f} %  {name}")
