#!/usr/bin/env python3
"""Prints scripts/bench-peers' markdown table from its results file: one line per run,
`round server alg wrk-output-file rss-kib server-cores` (spaces in the server's
name written as underscores). Each ratio divides the same round's Signet rate
by the server's rate, so both figures of a ratio come from one stretch of machine load."""
import re
import sys


def millis(text):
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit]


def wrk(path):
    out = open(path).read()
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))
    p50 = millis(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = millis(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    notes = []
    if bad:
        notes.append(f"{bad.group(1)} non-2xx")
    if errors:
        notes.append(errors.group(0))
    return rps, p50, p99, "; ".join(notes)


runs = {}  # server -> {round: (alg, rps, p50, p99, rss_mib, notes)}
order = []
for line in open(sys.argv[1]):
    rnd, server, alg, path, rss, cores = line.split()
    server = server.replace("_", " ")
    if server not in runs:
        runs[server] = {}
        order.append(server)
    rps, p50, p99, notes = wrk(path)
    runs[server][rnd] = (alg, rps, p50, p99, int(rss) / 1024, notes, float(cores))
rounds = sorted({r for per in runs.values() for r in per})


def both(server, pick, fmt):
    return " / ".join(fmt(pick(runs[server][r], r)) for r in rounds if r in runs[server])


def ratio(base):
    def pick(run, r):
        return runs[base][r][1] / run[1]
    return pick


print(f"| server | token alg | req/s (round {' / '.join(rounds)}) | p50 ms | p99 ms | RSS MiB "
      "| server CPU cores | req/s per server core | Signet ES256 ÷ this | Signet RS256 ÷ this |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for server in order:
    alg = runs[server][rounds[0]][0]
    print(f"| {server} | {alg} | {both(server, lambda x, r: x[1], '{:,.0f}'.format)} "
          f"| {both(server, lambda x, r: x[2], '{:.2f}'.format)} "
          f"| {both(server, lambda x, r: x[3], '{:.2f}'.format)} "
          f"| {both(server, lambda x, r: x[4], '{:.0f}'.format)} "
          f"| {both(server, lambda x, r: x[6], '{:.2f}'.format)} "
          f"| {both(server, lambda x, r: x[1] / x[6] if x[6] else 0, '{:,.0f}'.format)} "
          f"| {both(server, ratio('Signet ES256'), '{:.2f}×'.format)} "
          f"| {both(server, ratio('Signet RS256'), '{:.2f}×'.format)} |")
notes = [f"{s} round {r}: {runs[s][r][5]}" for s in order for r in rounds if runs[s].get(r, ("",) * 6)[5]]
if notes:
    print()
for note in notes:
    print(f"warning: {note}")
