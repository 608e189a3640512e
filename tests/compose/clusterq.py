#!/usr/bin/env python3
"""Small queries over what sluice-coord --json prints, for tests/compose/run.sh.

Each subcommand reads one JSON document on stdin (except `sources`), prints
a short answer on stdout and exits 0, or 1 when the answer is "no". Python 3
is there because docker-compose 1.29 is written in it; only the standard
library is used.

  status-done                  stdin: `status --json`; exit 0 when total > 0,
                               nothing pending and every segment LOADED;
                               prints "loaded/total pending nodes_up/total"
  refusals [SINCE_MS]          stdin: `events --json`; prints "node reason
                               count" lines, sorted (events at or after
                               SINCE_MS, Unix milliseconds, only)
  mem-refusals NODE            stdin: `events --json`; prints how many times
                               NODE refused with a MEM_* reason; exit 1 if 0
  held NODE                    stdin: `segments --json`; prints the ids whose
                               placement on NODE is LOADED
  moved NODE ID...             stdin: `segments --json`; exit 0 when every ID
                               is LOADED on some node other than NODE;
                               prints how many are
  limits                       stdin: `nodes --json`; prints "node state
                               limit_bytes usage_bytes psi_host_wide"
  sources ADDR TOKEN           GET http://ADDR/v1/status as JSON (the node's
                               NodeStatus) and prints its signal_sources
"""
import json
import signal
import sys
import urllib.request


def load():
    return json.load(sys.stdin)


def status_done():
    st = load()
    total, loaded, pending = st["segments_total"], st["segments_loaded"], st["segments_pending"]
    print("%d/%d %d %d/%d" % (loaded, total, pending, st["nodes_up"], st["nodes_total"]))
    return 0 if total > 0 and pending == 0 and loaded == total else 1


def refusal_counts(since_ms=0):
    counts = {}
    for e in load()["events"]:
        if e["kind"] == "refused" and e["ts_ms"] >= since_ms:
            reason = e["reason"] if e["reason"] != "REASON_NONE" else "HTTP_%d" % e["http_status"]
            key = (e["node_id"], reason)
            counts[key] = counts.get(key, 0) + max(e["count"], 1)  # a storm row counts them all
    return counts


def refusals(since_ms=0):
    for (node, reason), n in sorted(refusal_counts(since_ms).items()):
        print("%s %s %d" % (node, reason, n))
    return 0


def mem_refusals(node):
    n = sum(c for (nd, r), c in refusal_counts().items() if nd == node and r.startswith("MEM_"))
    print(n)
    return 0 if n > 0 else 1


def held(node):
    for s in load()["segments"]:
        if any(p["node_id"] == node and p["state"] == "LOADED" for p in s["placements"]):
            print(s["spec"]["segment_id"])
    return 0


def moved(node, ids):
    segs = {s["spec"]["segment_id"]: s for s in load()["segments"]}
    ok = 0
    for i in ids:
        s = segs.get(i)
        if s is not None and any(p["node_id"] != node and p["state"] == "LOADED"
                                 for p in s["placements"]):
            ok += 1
    print("%d/%d" % (ok, len(ids)))
    return 0 if ok == len(ids) else 1


def limits():
    for n in load()["nodes"]:
        p = n["pressure"]
        print("%s %s %d %d %s" % (n["node_id"], n["state"], p["limit_bytes"], p["usage_bytes"],
                                  "true" if p["psi_host_wide"] else "false"))
    return 0


def sources(addr, token):
    req = urllib.request.Request("http://%s/v1/status" % addr,
                                 headers={"Authorization": "Bearer " + token,
                                          "Accept": "application/json"})
    st = json.load(urllib.request.urlopen(req, timeout=5))
    if not st.get("signal_sources"):
        print("(no signal_sources in the answer)")
        return 1
    print(st["signal_sources"])
    return 0


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "status-done":
        return status_done()
    if cmd == "refusals":
        return refusals(int(args[0]) if args else 0)
    if cmd == "mem-refusals":
        return mem_refusals(args[0])
    if cmd == "held":
        return held(args[0])
    if cmd == "moved":
        return moved(args[0], args[1:])
    if cmd == "limits":
        return limits()
    if cmd == "sources":
        return sources(args[0], args[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `| grep -q` may stop reading early
    sys.exit(main(sys.argv))
