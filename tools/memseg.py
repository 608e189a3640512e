#!/usr/bin/env python3
"""memseg: the coordinator's resident memory per segment (issue 17), measured
as BENCHMARKS.md's "Memory per segment" says: a catalog crafted straight into
SQLite (N segments with 11-byte ids and 31-byte uris, replication 1, on K
nodes), `sluice-coord serve --node-timeout 1h` started on it, VmRSS 1 s after
it serves minus that of the same coordinator on an empty catalog, per
segment. LOADED: every segment LOADED with one assignment (no node reports,
so no delta-report sets: bench_scale measures those); PENDING: no
assignment, every segment also in the placer.

    tools/memseg.py build/coordinator/sluice-coord [--segments 100000] [--nodes 100]

A measuring tool, not a test: it prints figures and asserts nothing.
"""
import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def serve(coord, db, ready):
    if os.path.exists(ready):
        os.unlink(ready)
    p = subprocess.Popen([coord, "serve", "--catalog", "sqlite:" + db, "--listen",
                          "127.0.0.1:0", "--node-timeout", "1h", "--ready-file", ready,
                          "--log-level", "error"])
    for _ in range(600):
        if os.path.exists(ready) and os.path.getsize(ready) > 0:
            time.sleep(1.0)
            return p
        if p.poll() is not None:
            sys.exit(f"memseg: the coordinator exited with {p.returncode}")
        time.sleep(0.1)
    p.kill()
    sys.exit("memseg: the coordinator did not serve within 60 s")


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)


def craft(db, n, k, loaded):
    con = sqlite3.connect(db)
    now = int(time.time() * 1000)
    con.executemany("INSERT INTO nodes (id, addr, state, last_seen_ms, created_ms)"
                    " VALUES (?, ?, 'UP', ?, ?)",
                    ((f"node-{j:03d}", f"127.0.0.1:{20000 + j}", now, now) for j in range(k)))
    state = "LOADED" if loaded else "PENDING"
    con.executemany("INSERT INTO segments (id, uri, row_count, avg_row_size, state, created_ms)"
                    " VALUES (?, ?, 100000, 64, ?, ?)",
                    ((f"seg-{i:07d}", f"file:///data/seg/seg-{i:07d}.sg", state, now)
                     for i in range(n)))
    if loaded:
        con.executemany("INSERT INTO assignments (segment_id, node_id, state, updated_ms)"
                        " VALUES (?, ?, 'LOADED', ?)",
                        ((f"seg-{i:07d}", f"node-{i % k:03d}", now) for i in range(n)))
    con.commit()
    con.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("coord")
    ap.add_argument("--segments", type=int, default=100000)
    ap.add_argument("--nodes", type=int, default=100)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="memseg-") as d:
        ready = os.path.join(d, "ready")
        base = os.path.join(d, "empty.db")
        p = serve(a.coord, base, ready)
        empty = status(p.pid)
        stop(p)
        print(f"empty coordinator: VmRSS {empty['VmRSS'] / 1048576:.1f} MiB")
        for loaded in (True, False):
            db = os.path.join(d, f"{loaded}.db")
            p = serve(a.coord, db, ready)  # creates the schema
            stop(p)
            craft(db, a.segments, a.nodes, loaded)
            p = serve(a.coord, db, ready)
            st = status(p.pid)
            stop(p)
            per = (st["VmRSS"] - empty["VmRSS"]) / a.segments
            print(f"{'LOADED' if loaded else 'PENDING'}: {a.segments} segments on {a.nodes} nodes:"
                  f" VmRSS {st['VmRSS'] / 1048576:.1f} MiB, VmHWM {st['VmHWM'] / 1048576:.1f} MiB,"
                  f" {per:.0f} bytes/segment")


if __name__ == "__main__":
    main()
