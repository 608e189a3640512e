#!/usr/bin/python3
"""Conformance of the wire against an independent protobuf implementation:
Debian's protoc --python_out and python3-protobuf, talking to a real
sluice-node and a real sluice-coord (issue 15).

  - every string field of every request message of every endpoint, holding
    bytes that are not UTF-8: 400, an Error naming the field path;
  - unknown fields of every wire type (0, 1, 2, 5 and groups) at every
    nesting level of every request message: answered as without them;
  - a message field split in two occurrences: both parts count;
  - every error status each endpoint can be made to answer here: its
    Content-Type, X-Sluice-Error and body (an Error, or for POST
    /v1/assign's decisions an AssignResponse);
  - every answer is decoded by the standard library and holds no unknown
    fields.

Usage: conformance.py BUILD_DIR SOURCE_DIR
"""

import copy
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

BUILD, pb = st.setup(sys.argv)
t = st.Tally("conformance")

DECISIONS = {202, 409, 422, 429, 503, 507}
RESPONSE = {
    ("node", "POST", "/v1/assign"): pb.AssignResponse,
    ("node", "POST", "/v1/assign/batch"): pb.AssignBatchResponse,
    ("node", "POST", "/v1/query"): pb.QueryResponse,
    ("node", "GET", "/v1/status"): pb.NodeStatus,
    ("coord", "POST", "/v1/report"): pb.ReportResponse,
    ("coord", "POST", "/v1/claim"): pb.ClaimResponse,
    ("coord", "POST", "/v1/segments"): pb.SegmentBatchResponse,
    ("coord", "GET", "/v1/segments"): pb.SegmentList,
    ("coord", "GET", "/v1/segments/"): pb.SegmentList,
    ("coord", "GET", "/v1/nodes"): pb.NodeList,
    ("coord", "GET", "/v1/events"): pb.EventList,
    ("coord", "GET", "/v1/tables"): pb.TableList,
    ("coord", "GET", "/v1/recommendations"): pb.RecommendationList,
    ("coord", "GET", "/v1/placements"): pb.PlacementMap,
    ("coord", "GET", "/v1/status"): pb.ClusterStatus,
}


def response_type(kind, method, path):
    path = path.split("?")[0]
    if (kind, method, path) in RESPONSE:
        return RESPONSE[(kind, method, path)]
    if path.startswith("/v1/segments/") and kind == "coord":
        return RESPONSE[(kind, method, "/v1/segments/")]
    return None


def decode(what, kind, method, path, status, hdrs, body):
    """Checks one answer against the contract; returns the decoded message or None."""
    ctype = hdrs.get("content-type", "")
    if 200 <= status < 300:
        rt = response_type(kind, method, path)
        if rt is None:
            return None
        if not t.check(f"{what}: Content-Type", ctype == st.PB, ctype):
            return None
    else:
        t.check(f"{what}: X-Sluice-Error on {status}", "x-sluice-error" in hdrs, str(hdrs))
        if kind == "node" and path == "/v1/assign" and method == "POST" and status in DECISIONS:
            rt = pb.AssignResponse
        else:
            rt = pb.Error
        if not t.check(f"{what}: {status} Content-Type", ctype == st.PB, f"{ctype!r} {body[:80]!r}"):
            return None
    try:
        m = rt.FromString(body)
    except Exception as e:  # DecodeError, with the cpp or python implementation
        t.check(f"{what}: {rt.__name__} decodes", False, f"{e}: {body[:120]!r}")
        return None
    t.check(f"{what}: {rt.__name__} decodes", True)
    unk = st.unknown_fields(m)
    t.check(f"{what}: no unknown fields in the answer", not unk, str(unk))
    if rt is pb.Error:
        t.check(f"{what}: Error has code and message", m.code != "" and m.message != "", str(m))
    if rt is pb.AssignResponse and status != 202 and status >= 300:
        t.check(f"{what}: AssignResponse.status", m.status == status, f"{m.status} != {status}")
    return m


def call(d, method, path, msg=None, raw=None, what=None, **kw):
    body = raw if raw is not None else (msg.SerializeToString() if msg is not None else None)
    if method == "POST" and body is None:
        body = b""
    status, hdrs, data = d.request(method, path, body=body, **kw)
    m = decode(what or f"{d.kind} {method} {path}", d.kind, method, path, status, hdrs, data)
    return status, hdrs, m


# ---- daemons and a segment ---------------------------------------------------

node = st.Daemon(BUILD, "node")
coord = st.Daemon(BUILD, "coord")


def mkseg(name, rows=1000):
    path = os.path.join(node.storage, name)
    subprocess.run([os.path.join(BUILD, "node", "sluice-node"), "mkseg", f"--rows={rows}",
                    f"--out={path}"], check=True, stdout=subprocess.DEVNULL)
    return "file://" + path


URI_A = mkseg("seg-a.seg")
URI_B = mkseg("seg-b.seg")

# ---- valid requests, one per endpoint that takes a body ----------------------


def assign_req():
    return pb.AssignRequest(segment_id="seg-a", uri=URI_A, row_count=1000, avg_row_size=64,
                            mem_request_bytes=4096, mem_limit_bytes=1 << 30)


def batch_req():
    return pb.AssignBatch(assignments=[pb.AssignRequest(segment_id="seg-b", uri=URI_B,
                                                        row_count=1000, avg_row_size=64)])


def query_req():
    return pb.QueryRequest(segment_ids=["seg-a"], aggregate=pb.COUNT, column="value",
                           filter_column="key", lo=0, hi=1 << 40)


def report_req():
    return pb.NodeReport(node_id="conf-node", addr="127.0.0.1:9", state=pb.SERVING,
                         pressure=pb.PressureSnapshot(usage_bytes=1, wss_bytes=1),
                         segments=[pb.SegmentStatus(segment_id="seg-r", state=pb.LOADED,
                                                    detail="ok", uri="file:///x/r.seg")],
                         uptime_seconds=5, claim=True,  # pull mode: nothing is pushed to it
                         # A delta (so that removed_segment_ids has an element) of an
                         # incarnation the coordinator has no base for: answered send_full,
                         # never applied, so every send of it is answered alike.
                         incarnation=7, seq=2, delta=True, base_seq=1,
                         removed_segment_ids=["seg-gone"], set_count=1, set_hash=5)


def claim_req():
    return pb.ClaimRequest(node_id="conf-node", max_segments=1)


def segments_req():
    return pb.SegmentBatch(segments=[pb.SegmentSpec(segment_id="seg-c", uri="file:///x/c.seg",
                                                    row_count=10, avg_row_size=16,
                                                    replication=1, table="conf",
                                                    mem_request_bytes=4096,
                                                    mem_limit_bytes=1 << 20)])


REQUESTS = [
    (node, "/v1/assign", assign_req),
    (node, "/v1/assign/batch", batch_req),
    (node, "/v1/query", query_req),
    (coord, "/v1/report", report_req),
    (coord, "/v1/claim", claim_req),
    (coord, "/v1/segments", segments_req),
]

# Baselines: each valid request once, so that later answers can be compared.
def wait_loaded(ids, seconds=20):
    """Polls the node's status until every id in ids is LOADED."""
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, _, body = node.get("/v1/status")
        if status == 200:
            st_ = pb.NodeStatus.FromString(body)
            if all(any(s.segment_id == i and s.state == pb.LOADED for s in st_.segments)
                   for i in ids):
                return True
        time.sleep(0.05)
    return False


baseline = {}
for d, path, make in REQUESTS:
    if path == "/v1/query":
        t.check("seg-a and seg-b loaded", wait_loaded(["seg-a", "seg-b"]))
    status, _, _ = call(d, "POST", path, make(), what=f"baseline {path}")
    baseline[path] = status
t.check("baseline: assign accepted", baseline["/v1/assign"] == 202, str(baseline))
t.check("baseline: query answered", baseline["/v1/query"] == 200, str(baseline))
t.check("baseline: report", baseline["/v1/report"] == 200, str(baseline))
t.check("baseline: register", baseline["/v1/segments"] == 200, str(baseline))
t.check("baseline: claim by a reported pull-mode node", baseline["/v1/claim"] == 200,
        str(baseline))
# A repeat answers the same (assign: held, 202; register: unchanged, 200).
for d, path, make in REQUESTS:
    status, _, _ = call(d, "POST", path, make(), what=f"repeat {path}")
    t.check(f"repeat {path}: same answer", status == baseline[path], f"{status}")
    baseline[path] = status

# ---- invalid UTF-8 in every string field ----------------------------------


def string_paths(desc, prefix=()):
    for fd in desc.fields:
        comp = (fd.name, 0 if fd.label == fd.LABEL_REPEATED else None)
        if fd.type == fd.TYPE_STRING:
            yield prefix + (comp,)
        elif fd.type == fd.TYPE_MESSAGE:
            yield from string_paths(fd.message_type, prefix + (comp,))


def message_paths(desc, prefix=()):
    """Every nesting level: the top and each message field, repeated ones at [0]."""
    yield prefix
    for fd in desc.fields:
        if fd.type == fd.TYPE_MESSAGE:
            comp = (fd.name, 0 if fd.label == fd.LABEL_REPEATED else None)
            yield from message_paths(fd.message_type, prefix + (comp,))


def path_name(comps):
    return ".".join(n + (f"[{i}]" if i is not None else "") for n, i in comps)


def navigate(msg, comps):
    m = msg
    for name, idx in comps:
        m = getattr(m, name)
        if idx is not None:
            m = m[idx]
    return m


def set_string(msg, comps, value):
    parent = navigate(msg, comps[:-1])
    name, idx = comps[-1]
    if idx is None:
        setattr(parent, name, value)
    else:
        getattr(parent, name)[idx] = value


MARK, BAD = b"Q7Q7", b"\xffQ7Q"  # same length: only the bytes change

for d, path, make in REQUESTS:
    base = make()
    for comps in string_paths(base.DESCRIPTOR):
        name = path_name(comps)
        m = copy.deepcopy(base)
        try:
            parent = navigate(m, comps[:-1])
            orig = getattr(parent, comps[-1][0])
            orig = orig[comps[-1][1]] if comps[-1][1] is not None else orig
            # The bad byte after a valid value, so that field checks alone pass it.
            set_string(m, comps, orig + MARK.decode())
        except IndexError:
            t.check(f"{path} {name}: the valid request has an element there", False)
            continue
        data = m.SerializeToString()
        if not t.check(f"{path} {name}: marker placed once", data.count(MARK) == 1):
            continue
        data = data.replace(MARK, BAD)
        status, _, err = call(d, "POST", path, raw=data, what=f"{path} {name} not UTF-8")
        t.check(f"{path} {name} not UTF-8: 400", status == 400, f"got {status}")
        want = f"{name}: not valid UTF-8 (byte 0xff at offset {len(orig.encode())})"
        ok = isinstance(err, pb.Error) and err.code == "invalid_field" and err.message == want
        t.check(f"{path} {name} not UTF-8: names the field", ok, f"{err!r}, want {want!r}")

# Nothing sent above was kept: the listings still parse and hold no such bytes.
status, _, lst = call(coord, "GET", "/v1/segments?limit=1000")
t.check("listing after bad registrations: 200", status == 200, str(status))
t.check("listing holds only the valid registration",
        lst is not None and sorted(s.spec.segment_id for s in lst.segments) == ["seg-c"],
        str(lst))
status, _, nst = call(node, "GET", "/v1/status")
t.check("node status after bad requests: parses", status == 200 and nst is not None, str(status))

# ---- unknown fields of every wire type at every nesting level ---------------


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def unknown_field(wt, num=1999):
    key = varint(num << 3 | wt)
    if wt == 0:
        return key + varint(42)
    if wt == 1:
        return key + b"\x01" * 8
    if wt == 2:
        return key + varint(3) + b"abc"
    if wt == 5:
        return key + b"\x02" * 4
    # a group holding a varint and a nested group
    return key + b"\x08\x01" + varint(7 << 3 | 3) + b"\x10\x05" + varint(7 << 3 | 4) + \
        varint(num << 3 | 4)


for d, path, make in REQUESTS:
    base = make()
    for comps in message_paths(base.DESCRIPTOR):
        for wt in (0, 1, 2, 5, 3):
            level = path_name(comps) or "<top>"
            m = copy.deepcopy(base)
            sub = navigate(m, comps)
            plain = len(m.SerializeToString())
            sub.MergeFromString(unknown_field(wt))
            data = m.SerializeToString()
            if not t.check(f"{path} {level} wire type {wt}: unknown field sent",
                           len(data) > plain):
                continue
            status, _, _ = call(d, "POST", path, raw=data,
                                what=f"{path} unknown wire type {wt} at {level}")
            t.check(f"{path} unknown wire type {wt} at {level}: answered as without it",
                    status == baseline[path], f"got {status}, without it {baseline[path]}")

# ---- a message field split in two occurrences -------------------------------

rep = report_req()
rep.node_id = "split-node"
rep.ClearField("pressure")
part1 = pb.PressureSnapshot(usage_bytes=111, some_avg10=1.5).SerializeToString()
part2 = pb.PressureSnapshot(limit_bytes=222).SerializeToString()
data = rep.SerializeToString() + b"\x22" + varint(len(part1)) + part1 + \
    b"\x22" + varint(len(part2)) + part2
status, _, _ = call(coord, "POST", "/v1/report", raw=data, what="split pressure")
t.check("split pressure: 200", status == 200, str(status))
status, _, nodes = call(coord, "GET", "/v1/nodes")
info = [n for n in (nodes.nodes if nodes else []) if n.node_id == "split-node"]
t.check("split pressure: node listed", len(info) == 1, str(nodes))
if info:
    p = info[0].pressure
    t.check("split pressure: first part kept (usage_bytes)", p.usage_bytes == 111, str(p))
    t.check("split pressure: second part kept (limit_bytes)", p.limit_bytes == 222, str(p))
    t.check("split pressure: first part kept (some_avg10)", p.some_avg10 == 1.5, str(p))

# ---- every error status each endpoint answers -------------------------------


def expect(d, method, path, want, code=None, msg=None, raw=None, **kw):
    what = f"{d.kind} {method} {path} -> {want}"
    status, hdrs, m = call(d, method, path, msg=msg, raw=raw, what=what, **kw)
    t.check(f"{what}: status", status == want, f"got {status}")
    if code is not None and m is not None and isinstance(m, pb.Error):
        t.check(f"{what}: code", m.code == code, f"got {m.code!r}")
    return m


for d in (node, coord):
    expect(d, "GET", "/v1/status", 401, "unauthorized", token=None)
    expect(d, "GET", "/v1/status", 401, "unauthorized", token="wrong")
    expect(d, "GET", "/v1/nope", 404, "not_found")
    expect(d, "DELETE", "/v1/status", 405, "method_not_allowed")
    expect(d, "GET", "/v1/status%00", 400, "bad_request")

# node
expect(node, "POST", "/v1/assign", 415, "unsupported_media_type", msg=assign_req(),
       ctype="text/plain")
expect(node, "POST", "/v1/assign", 400, "bad_message", raw=b"\xff\xff\xff")
expect(node, "POST", "/v1/assign", 400, "invalid_field",
       msg=pb.AssignRequest(segment_id="", uri=URI_A, row_count=1, avg_row_size=1))
r = expect(node, "POST", "/v1/assign", 409,
           msg=pb.AssignRequest(segment_id="seg-a", uri=URI_B, row_count=1000, avg_row_size=64))
t.check("assign 409 is an AssignResponse (as in the batch)",
        isinstance(r, pb.AssignResponse) and r.verdict == pb.REJECTED, str(r))
r = expect(node, "POST", "/v1/assign", 422,
           msg=pb.AssignRequest(segment_id="seg-missing", uri="file://" + node.storage +
                                "/missing.seg", row_count=1000, avg_row_size=64))
t.check("assign 422: SEGMENT_INVALID",
        isinstance(r, pb.AssignResponse) and r.reason == pb.SEGMENT_INVALID, str(r))
status, _, br = call(node, "POST", "/v1/assign/batch", pb.AssignBatch(assignments=[
    pb.AssignRequest(segment_id="seg-a", uri=URI_B, row_count=1000, avg_row_size=64)]))
t.check("batch conflict: 200 with status 409 inside",
        status == 200 and br is not None and br.results[0].status == 409, f"{status} {br}")
expect(node, "POST", "/v1/assign/batch", 400, "invalid_field",
       msg=pb.AssignBatch(assignments=[pb.AssignRequest(segment_id="x")]))
expect(node, "POST", "/v1/assign/batch", 415, "unsupported_media_type", msg=batch_req(),
       ctype="application/json")
expect(node, "POST", "/v1/query", 404, "not_found",
       msg=pb.QueryRequest(segment_ids=["nope"], aggregate=pb.COUNT, column="value"))
expect(node, "POST", "/v1/query", 400, "invalid_field",
       msg=pb.QueryRequest(segment_ids=["seg-a"], aggregate=pb.COUNT, column="no such!"))
expect(node, "POST", "/v1/query", 415, "unsupported_media_type", msg=query_req(), ctype=None)
expect(node, "DELETE", "/v1/segments/nope", 404, "not_found")
expect(node, "DELETE", "/v1/segments/bad!id", 400, "invalid_field")
# 415 echoes the Content-Type it got: bytes that are not UTF-8 come back escaped.
out, _ = node.raw(b"POST /v1/assign HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                  st.TOKEN.encode() + b"\r\nContent-Type: application/\xff\xfe\r\n"
                  b"Content-Length: 0\r\nConnection: close\r\n\r\n")
resp = st.parse_responses(out)
if t.check("415 with a non-UTF-8 Content-Type: one answer", len(resp) == 1, repr(out[:200])):
    status, hdrs, body = resp[0]
    m = decode("415 non-UTF-8 Content-Type", "node", "POST", "/v1/assign", status, hdrs, body)
    t.check("415 with a non-UTF-8 Content-Type: escaped",
            status == 415 and m is not None and "\\xFF\\xFE" in m.message, f"{status} {m}")
# 413 and 501 come from the framer (raw: the body is never sent).
for d, path in ((node, "/v1/assign"), (coord, "/v1/segments")):
    out, closed = d.raw(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {st.PB}\r\n"
                        f"Content-Length: {5 << 20}\r\n\r\n".encode())
    resp = st.parse_responses(out)
    if t.check(f"{d.kind} 413: one answer", len(resp) == 1, repr(out[:200])):
        status, hdrs, body = resp[0]
        t.check(f"{d.kind} 413: status", status == 413, str(status))
        decode(f"{d.kind} 413", d.kind, "POST", path, status, hdrs, body)
        t.check(f"{d.kind} 413: connection closed", closed)
    out, closed = d.raw(b"PUT /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    resp = st.parse_responses(out)
    if t.check(f"{d.kind} 501: one answer", len(resp) == 1, repr(out[:200])):
        status, hdrs, body = resp[0]
        t.check(f"{d.kind} 501: status", status == 501, str(status))
        decode(f"{d.kind} 501", d.kind, "PUT", "/v1/status", status, hdrs, body)

# coord
expect(coord, "POST", "/v1/report", 415, "unsupported_media_type", msg=report_req(),
       ctype="text/plain")
expect(coord, "POST", "/v1/report", 400, "bad_message", raw=b"\x0a\x05ab")
bad = report_req()
bad.addr = "nocolon"
expect(coord, "POST", "/v1/report", 400, "invalid_field", msg=bad)
bad = report_req()
bad.base_seq = 2  # a delta's base is an earlier report
expect(coord, "POST", "/v1/report", 400, "invalid_field", msg=bad)
bad = report_req()
bad.incarnation = 0  # an older node's full report has no delta fields
expect(coord, "POST", "/v1/report", 400, "invalid_field", msg=bad)
status, _, ans = call(coord, "POST", "/v1/report", msg=report_req(), what="delta, no base")
t.check("delta with no base: 200, send_full, not acknowledged",
        status == 200 and ans is not None and ans.send_full and ans.ack_seq == 0 and
        ans.full_reason == "no_base", f"{status} {ans!r}")
expect(coord, "POST", "/v1/claim", 409, "not_up",
       msg=pb.ClaimRequest(node_id="never-reported", max_segments=1))
expect(coord, "POST", "/v1/claim", 400, "invalid_field",
       msg=pb.ClaimRequest(node_id="conf-node", max_segments=0))
conflict = segments_req()
conflict.segments[0].uri = "file:///x/other.seg"
expect(coord, "POST", "/v1/segments", 409, "conflict", msg=conflict)
dup = segments_req()
dup.segments.append(pb.SegmentSpec(segment_id="seg-d", uri="file:///x/d.seg", row_count=1,
                                   avg_row_size=1, replication=1))
dup.segments.append(pb.SegmentSpec(segment_id="seg-d", uri="file:///x/d.seg", row_count=1,
                                   avg_row_size=1, replication=1))
expect(coord, "POST", "/v1/segments", 400, "invalid_field", msg=dup)
expect(coord, "POST", "/v1/segments", 415, "unsupported_media_type", msg=segments_req(),
       ctype="text/plain")
# SegmentSpec.table: every bad name is a 400 naming the field; nothing is kept.
for bad_table, why in (("a/b", "'/' at offset 1 is not allowed"),
                       ("t\x01", "control character at offset 1"),
                       ("t\u0085", "control character at offset 1"),
                       (" t", "begins or ends with a space"),
                       ("t" * 129, "129 bytes, the limit is 128")):
    m = segments_req()
    m.segments[0].segment_id = "seg-t"
    m.segments[0].table = bad_table
    err = expect(coord, "POST", "/v1/segments", 400, "invalid_field", msg=m)
    t.check(f"table {bad_table[:8]!r}: names the field",
            err is not None and err.message == f"segments[0].table: {why}", str(err))
table_move = segments_req()
table_move.segments[0].table = "elsewhere"
err = expect(coord, "POST", "/v1/segments", 409, "conflict", msg=table_move)
t.check("another table: the conflict names the table", err is not None and "table" in err.message,
        str(err))
status, _, tl = call(coord, "GET", "/v1/tables")
t.check("GET /v1/tables: 200, only the valid registration's table",
        status == 200 and tl is not None and [x.table for x in tl.tables] == ["conf"] and
        tl.tables[0].segments == 1 and tl.tables[0].rows == 10 and tl.tables[0].bytes == 160,
        str(tl))
status, _, lst = call(coord, "GET", "/v1/segments/seg-c")
t.check("the spec carries its table", lst is not None and lst.segments[0].spec.table == "conf",
        str(lst))
t.check("the spec carries its declared memory",
        lst is not None and lst.segments[0].spec.mem_request_bytes == 4096 and
        lst.segments[0].spec.mem_limit_bytes == 1 << 20, str(lst))
# Declared memory: each at most 2^44, a limit not under the request; 400 naming the field.
for req_b, lim_b, field, why in ((1 << 45, 0, "mem_request_bytes", "is over the limit of"),
                                 (0, (1 << 44) + 1, "mem_limit_bytes", "is over the limit of"),
                                 (8192, 4096, "mem_limit_bytes", "is under mem_request_bytes")):
    m = segments_req()
    m.segments[0].segment_id = "seg-m"
    m.segments[0].mem_request_bytes = req_b
    m.segments[0].mem_limit_bytes = lim_b
    err = expect(coord, "POST", "/v1/segments", 400, "invalid_field", msg=m)
    t.check(f"segments {field} {req_b}/{lim_b}: names the field",
            err is not None and err.message.startswith(f"segments[0].{field}: ") and
            why in err.message, str(err))
    a = assign_req()
    a.segment_id = "seg-m"
    a.mem_request_bytes = req_b
    a.mem_limit_bytes = lim_b
    err = expect(node, "POST", "/v1/assign", 400, "invalid_field", msg=a)
    t.check(f"assign {field} {req_b}/{lim_b}: names the field",
            err is not None and err.message.startswith(f"{field}: ") and why in err.message,
            str(err))
status, _, rl = call(coord, "GET", "/v1/recommendations")
t.check("GET /v1/recommendations: 200, one table, nothing observed yet",
        status == 200 and rl is not None and [r.table for r in rl.recommendations] == ["conf"] and
        rl.recommendations[0].segments == 1 and rl.recommendations[0].observed == 0 and
        rl.recommendations[0].declared_request_bytes == 4096, str(rl))
status, _, rl = call(coord, "GET", "/v1/recommendations?table=conf")
t.check("GET /v1/recommendations?table=conf: 200", status == 200 and rl is not None, str(status))
expect(coord, "GET", "/v1/recommendations?table=nope", 404, "not_found")
expect(coord, "GET", "/v1/recommendations?table=a%2Fb", 400, "invalid_field")
expect(coord, "GET", "/v1/recommendations?table=%FF", 400, "invalid_field")
expect(coord, "GET", "/v1/segments?state=NOPE", 400, "invalid_field")
expect(coord, "GET", "/v1/placements?since=-1", 400, "invalid_field")
expect(coord, "GET", "/v1/placements?epoch=0x12", 400, "invalid_field")
expect(coord, "GET", "/v1/placements?after=..", 400, "invalid_field")
expect(coord, "GET", "/v1/segments?limit=0", 400, "invalid_field")
expect(coord, "GET", "/v1/segments/nope", 404, "not_found")
expect(coord, "GET", "/v1/segments/bad!id", 400, "invalid_field")
expect(coord, "GET", "/v1/events?limit=0", 400, "invalid_field")
expect(coord, "GET", "/v1/events?segment=bad!id", 400, "invalid_field")
expect(coord, "POST", "/v1/nodes/nope/drain", 404, "not_found")
expect(coord, "POST", "/v1/nodes/conf-node/explode", 404, "not_found")
expect(coord, "POST", "/v1/nodes/bad!id/drain", 400, "invalid_field")
expect(coord, "POST", "/v1/segments/seg-c/retry", 409, "not_invalid")
expect(coord, "POST", "/v1/segments/nope/retry", 404, "not_found")
expect(coord, "POST", "/v1/segments/seg-c/bogus", 404, "not_found")
expect(coord, "POST", "/v1/segments/bad!id/retry", 400, "invalid_field")
expect(coord, "DELETE", "/v1/segments/nope", 404, "not_found")
expect(coord, "DELETE", "/v1/segments/bad!id", 400, "invalid_field")
moved = report_req()
moved.addr = "127.0.0.1:10"
expect(coord, "POST", "/v1/report", 409, "node_id_in_use", msg=moved)

# 2xx answers of the listing endpoints decode cleanly too.
for path in ("/v1/segments", "/v1/segments/seg-c", "/v1/nodes", "/v1/events", "/v1/status",
             "/v1/tables", "/v1/recommendations"):
    status, _, m = call(coord, "GET", path)
    t.check(f"coord GET {path}: 200 and decoded", status == 200 and m is not None, str(status))

# Last: a draining node answers new assignments 503, as an AssignResponse.
status, _, _ = node.post("/v1/drain")
t.check("node drain: 200", status == 200, str(status))
r = expect(node, "POST", "/v1/assign", 503,
           msg=pb.AssignRequest(segment_id="seg-new", uri=URI_B, row_count=1000,
                                avg_row_size=64))
t.check("assign 503: DRAINING", isinstance(r, pb.AssignResponse) and r.reason == pb.DRAINING,
        str(r))
node.post("/v1/undrain")

# 429 and 507 from nodes made to refuse: an admit budget of one byte
# (MEM_CAPACITY), and a disk reserve larger than any disk (DISK_FULL).
for extra, want, reason in ((["--admit-budget=1"], 429, pb.MEM_CAPACITY),
                            (["--disk-reserve=1000000000000000000"], 507, pb.DISK_FULL)):
    n2 = st.Daemon(BUILD, "node", extra)
    path = os.path.join(n2.storage, "seg-z.seg")
    subprocess.run([os.path.join(BUILD, "node", "sluice-node"), "mkseg", "--rows=1000",
                    f"--out={path}"], check=True, stdout=subprocess.DEVNULL)
    req = pb.AssignRequest(segment_id="seg-z", uri="file://" + path, row_count=1000,
                           avg_row_size=64)
    r = expect(n2, "POST", "/v1/assign", want, msg=req)
    t.check(f"assign {want}: {pb.Reason.Name(reason)}",
            isinstance(r, pb.AssignResponse) and r.reason == reason, str(r))
    status, hdrs, _ = n2.post("/v1/assign", req)
    t.check(f"assign {want}: X-Sluice-Reason and Retry-After",
            hdrs.get("x-sluice-reason") == pb.Reason.Name(reason) and "retry-after" in hdrs,
            str(hdrs))
    n2.stop()

# A catalog row that an older build stored with bytes that are not UTF-8:
# the coordinator refuses to start, naming the segment (it neither serves the
# row as it is nor drops it).
coord.stop()
db = sqlite3.connect(os.path.join(coord.dir, "coord.db"))
db.execute("UPDATE segments SET uri = CAST(X'66696C653A2F2F2F78FF2E736567' AS TEXT) "
           "WHERE id = 'seg-c'")
db.commit()
db.close()
p = subprocess.Popen([os.path.join(BUILD, "coordinator", "sluice-coord"), "serve",
                      "--listen=127.0.0.1:0", f"--db={coord.dir}/coord.db",
                      f"--token-file={coord.dir}/token"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
try:
    out, _ = p.communicate(timeout=20)
except subprocess.TimeoutExpired:  # it started and serves the row
    p.kill()
    out, _ = p.communicate()
out = out.decode("utf-8", "replace")
t.check("catalog row not UTF-8: the coordinator refuses to start", p.returncode not in (0, -9),
        f"exit {p.returncode}")
t.check("catalog row not UTF-8: the error names the segment and the column",
        "segment 'seg-c': stored uri is not valid UTF-8" in out, out[-600:])

t.finish()
