#!/usr/bin/python3
"""JSON from the daemons (issue 19): every read endpoint of a real
sluice-coord and a real sluice-node (which reports to it and loads three
segments), asked with Accept: application/json, answers a document that
Python's json module parses and that agrees, field by field, with the
protobuf answer to the same request decoded by Debian's python3-protobuf:
the same keys as the proto's field names, no others, and the same values
under the mapping the README's API section documents (64-bit integers as
numbers, fixed64 as 16 hex digits, enums by name, doubles to 16 digits).

Values that move while the test runs (pressure, uptime) are read as
protobuf just before and just after the JSON: each JSON value must equal
one of the two. Also: errors stay protobuf Error with X-Sluice-Error
whatever the Accept; `sluice-coord ... --json` prints what the endpoint
answers.

Usage: jsonapi.py BUILD_DIR SOURCE_DIR
"""

import json
import math
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

BUILD, pb = st.setup(sys.argv)
t = st.Tally("jsonapi")
JSON = {"Accept": "application/json"}
INT64_MAX = (1 << 63) - 1


def scalar_json(fd, v):
    """What the documented mapping makes of one protobuf value."""
    if fd.type == fd.TYPE_ENUM:
        ev = fd.enum_type.values_by_number.get(v)
        return ev.name if ev is not None else v
    if fd.type == fd.TYPE_FIXED64:
        return "%016x" % v
    if fd.type == fd.TYPE_UINT64 and v > INT64_MAX:
        return str(v)
    if fd.type in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
    return v


def same(fd, j, v):
    want = scalar_json(fd, v)
    if fd.type in (fd.TYPE_DOUBLE, fd.TYPE_FLOAT) and isinstance(want, float):
        return isinstance(j, (int, float)) and not isinstance(j, bool) and \
            math.isclose(j, want, rel_tol=1e-15, abs_tol=0)
    if fd.type == fd.TYPE_BOOL:
        return j is want
    return type(j) is type(want) and j == want


def disagreements(obj, msgs, path=""):
    """Where obj (parsed JSON) agrees with none of msgs (same type, protobuf)."""
    out = []
    desc = msgs[0].DESCRIPTOR
    if not isinstance(obj, dict):
        return [f"{path or '<top>'}: not an object"]
    names = [fd.name for fd in desc.fields]
    if list(obj) != sorted(names, key=lambda n: desc.fields_by_name[n].number):
        out.append(f"{path or '<top>'}: keys {list(obj)} != fields {names}")
    for fd in desc.fields:
        if fd.name not in obj:
            continue
        j, p = obj[fd.name], path + fd.name
        vals = [getattr(m, fd.name) for m in msgs]
        if fd.label == fd.LABEL_REPEATED:
            cand = [v for v in vals if len(v) == len(j)]
            if not isinstance(j, list) or not cand:
                out.append(f"{p}: {len(j)} elements, protobuf has {[len(v) for v in vals]}")
                continue
            for i, e in enumerate(j):
                if fd.type == fd.TYPE_MESSAGE:
                    out += disagreements(e, [v[i] for v in cand], f"{p}[{i}].")
                elif not any(same(fd, e, v[i]) for v in cand):
                    out.append(f"{p}[{i}]: {e!r} vs {[v[i] for v in cand]!r}")
        elif fd.type == fd.TYPE_MESSAGE:
            out += disagreements(j, vals, p + ".")
        elif not any(same(fd, j, v) for v in vals):
            out.append(f"{p}: {j!r} vs {vals!r}")
    return out


def agrees(d, path, rt, what=None):
    """GETs path as protobuf, JSON, protobuf; checks the JSON. Returns the parsed JSON."""
    what = what or f"{d.kind} GET {path}"
    last = []
    for _ in range(20):  # a value that moved twice between two reads: read again
        s1, _, b1 = d.get(path)
        sj, hj, bj = d.get(path, headers=JSON)
        s2, _, b2 = d.get(path)
        if not t.check(f"{what}: 200 three times", (s1, sj, s2) == (200, 200, 200),
                       f"{s1} {sj} {s2}"):
            return None
        ctype = hj.get("content-type", "")
        t.check(f"{what}: Content-Type application/json", ctype == "application/json", ctype)
        t.check(f"{what}: Vary: Accept", hj.get("vary", "") == "Accept", str(hj))
        try:
            obj = json.loads(bj.decode("utf-8"))
        except ValueError as e:
            t.check(f"{what}: parses as JSON", False, f"{e}: {bj[:200]!r}")
            return None
        last = disagreements(obj, [rt.FromString(b1), rt.FromString(b2)])
        if not last:
            t.check(f"{what}: agrees with the protobuf answer", True)
            return obj
        time.sleep(0.05)
    t.check(f"{what}: agrees with the protobuf answer", False, "; ".join(last[:8]))
    return None


coord = st.Daemon(BUILD, "coord")
node = st.Daemon(BUILD, "node", [f"--coordinator={coord.addr}", "--node-id=json-node",
                                 "--report-interval=200ms"])
segs = []
for name, rows in (("js-a", 1000), ("js-b", 2000), ("js-c", 3000)):
    path = os.path.join(node.storage, name + ".seg")
    subprocess.run([os.path.join(BUILD, "node", "sluice-node"), "mkseg", f"--rows={rows}",
                    f"--out={path}"], check=True, stdout=subprocess.DEVNULL)
    segs.append(pb.SegmentSpec(segment_id=name, uri="file://" + path, row_count=rows,
                               avg_row_size=64, replication=1))
status, _, _ = coord.post("/v1/segments", pb.SegmentBatch(segments=segs))
t.check("three segments registered", status == 200, str(status))
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    s, _, b = coord.get("/v1/status")
    if s == 200 and pb.ClusterStatus.FromString(b).segments_loaded == 3:
        break
    time.sleep(0.1)
t.check("three segments LOADED", pb.ClusterStatus.FromString(coord.get("/v1/status")[2])
        .segments_loaded == 3)

st_ = agrees(coord, "/v1/status", pb.ClusterStatus)
t.check("status JSON: 3 loaded, 1 node up", st_ is not None and st_["segments_loaded"] == 3
        and st_["nodes_up"] == 1, str(st_))
nodes = agrees(coord, "/v1/nodes", pb.NodeList)
t.check("nodes JSON: json-node UP with 3 segments", nodes is not None and
        [(n["node_id"], n["state"], n["segments"]) for n in nodes["nodes"]] ==
        [("json-node", "UP", 3)], str(nodes))
seglist = agrees(coord, "/v1/segments", pb.SegmentList)
t.check("segments JSON: three, by id, with 16-hex-digit digests", seglist is not None and
        [s["spec"]["segment_id"] for s in seglist["segments"]] == ["js-a", "js-b", "js-c"] and
        all(len(s["spec"]["digest"]) == 16 for s in seglist["segments"]), str(seglist)[:300])
agrees(coord, "/v1/segments?state=LOADED&limit=1", pb.SegmentList)
one = agrees(coord, "/v1/segments/js-b", pb.SegmentList)
t.check("explain JSON: the explanation", one is not None and
        one["segments"][0]["explain"].startswith("LOADED"), str(one)[:300])
events = agrees(coord, "/v1/events", pb.EventList)
t.check("events JSON: three 'loaded' events", events is not None and
        sum(e["kind"] == "loaded" for e in events["events"]) == 3,
        str(events)[:400])
agrees(coord, "/v1/events?limit=1", pb.EventList)
hist = agrees(coord, "/v1/history", pb.HistoryList)
t.check("history JSON: json-node's samples, oldest first, step 2000 ms", hist is not None and
        hist["step_ms"] == 2000 and [h["node_id"] for h in hist["nodes"]] == ["json-node"] and
        len(hist["nodes"][0]["samples"]) >= 1 and
        [s["ts_ms"] for s in hist["nodes"][0]["samples"]] ==
        sorted(s["ts_ms"] for s in hist["nodes"][0]["samples"]), str(hist)[:300])
tables = agrees(coord, "/v1/tables", pb.TableList)
pm = agrees(coord, "/v1/placements", pb.PlacementMap)
t.check("GET /v1/placements: the full map, three segments, epoch as 16 hex digits",
        pm is not None and pm.get("full") is True and len(pm.get("segments", [])) == 3 and
        len(pm.get("epoch", "")) == 16, str(pm)[:300])
t.check("tables JSON: the default table, 3 segments loaded", tables is not None and
        [(x["table"], x["segments"], x["segments_loaded"]) for x in tables["tables"]] ==
        [("default", 3, 3)], str(tables))
ns = agrees(node, "/v1/status", pb.NodeStatus)
t.check("node status JSON: SERVING, three segments LOADED", ns is not None and
        ns["state"] == "SERVING" and
        sorted((s["segment_id"], s["state"]) for s in ns["segments"]) ==
        [("js-a", "LOADED"), ("js-b", "LOADED"), ("js-c", "LOADED")], str(ns)[:300])

# Protobuf stays the default, and wins when preferred.
for hdrs in ({}, {"Accept": "*/*"}, {"Accept": "application/x-protobuf, application/json;q=0.5"}):
    s, h, b = coord.get("/v1/status", headers=hdrs)
    t.check(f"Accept {hdrs.get('Accept')!r}: protobuf", s == 200 and
            h.get("content-type") == st.PB, str(h))

# Errors stay protobuf Error with X-Sluice-Error, whatever the Accept.
for d, path, token, want in ((coord, "/v1/segments/nosuch", st.TOKEN, 404),
                             (coord, "/v1/segments?limit=0", st.TOKEN, 400),
                             (coord, "/v1/status", None, 401),
                             (node, "/v1/status", "wrong-token", 401)):
    s, h, b = d.get(path, headers=JSON, token=token)
    ok = s == want and h.get("content-type") == st.PB and "x-sluice-error" in h
    if ok:
        e = pb.Error.FromString(b)
        ok = e.message != "" and h["x-sluice-error"] == e.message[:255]
    t.check(f"{d.kind} {path} with Accept JSON: {want}, protobuf Error, X-Sluice-Error", ok,
            f"{s} {h}")

# The CLI's --json is the endpoint's JSON.
ctl = [os.path.join(BUILD, "coordinator", "sluice-coord")]
tok = os.path.join(coord.dir, "token")
for args, path in ((["segments"], "/v1/segments"), (["explain", "js-a"], "/v1/segments/js-a"),
                   (["events"], "/v1/events"), (["tables"], "/v1/tables")):
    r = subprocess.run(ctl + args + ["--json", f"--coordinator={coord.addr}",
                                     f"--token-file={tok}"], capture_output=True, timeout=30)
    s, _, b = coord.get(path, headers=JSON)
    try:
        ok = r.returncode == 0 and json.loads(r.stdout) == json.loads(b) and \
            r.stdout.count(b"\n") == 1
    except ValueError:
        ok = False
    t.check(f"sluice-coord {' '.join(args)} --json: the endpoint's JSON, one line", ok,
            f"rc={r.returncode} {r.stdout[:200]!r} {r.stderr[:200]!r}")

t.finish()
