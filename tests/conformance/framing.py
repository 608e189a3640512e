#!/usr/bin/python3
"""HTTP framing against a real sluice-node and sluice-coord (issue 15).

Each case sends raw bytes on one connection: a request whose framing is
ambiguous or malformed, and right behind it a complete, authorised request
that would change state if it ran (a drain on the node, a registration on
the coordinator). The answer must be one 4xx (an Error with
X-Sluice-Error), the connection must be closed after it, and the request
behind it must not have run.

Usage: framing.py BUILD_DIR SOURCE_DIR
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sluicetest as st  # noqa: E402

BUILD, pb = st.setup(sys.argv)
t = st.Tally("framing")

node = st.Daemon(BUILD, "node")
coord = st.Daemon(BUILD, "coord")
AUTH = b"Authorization: Bearer " + st.TOKEN.encode() + b"\r\n"


def smuggled(d, n):
    """A complete request that changes state if it runs; and how to tell."""
    if d is node:
        req = b"POST /v1/drain HTTP/1.1\r\nHost: x\r\n" + AUTH + b"Content-Length: 0\r\n\r\n"
        return req, lambda: node_state() == pb.DRAINING_STATE
    sid = f"smuggled-{n}"
    body = pb.SegmentBatch(segments=[pb.SegmentSpec(
        segment_id=sid, uri=f"file:///x/{sid}.seg", row_count=1, avg_row_size=1,
        replication=1)]).SerializeToString()
    req = (b"POST /v1/segments HTTP/1.1\r\nHost: x\r\n" + AUTH +
           b"Content-Type: application/x-protobuf\r\n" +
           f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return req, lambda: coord.get(f"/v1/segments/{sid}")[0] != 404


def node_state():
    status, _, body = node.get("/v1/status")
    return pb.NodeStatus.FromString(body).state if status == 200 else None


def head(d, extra=b""):
    path = b"/v1/query" if d is node else b"/v1/report"
    return (b"POST " + path + b" HTTP/1.1\r\nHost: x\r\n" + AUTH +
            b"Content-Type: application/x-protobuf\r\n" + extra)


# Each case: name -> function(daemon, smuggled request) -> bytes to send.
CASES = {
    "two Content-Length (0, then the smuggled length)":
        lambda d, s: head(d, b"Content-Length: 0\r\n" +
                          f"Content-Length: {len(s)}\r\n\r\n".encode()) + s,
    "two equal Content-Length":
        lambda d, s: head(d, b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n") + s,
    "Content-Length +0":
        lambda d, s: head(d, b"Content-Length: +0\r\n\r\n") + s,
    "Content-Length 0x0":
        lambda d, s: head(d, b"Content-Length: 0x0\r\n\r\n") + s,
    "Content-Length -0":
        lambda d, s: head(d, b"Content-Length: -0\r\n\r\n") + s,
    "Content-Length 0 0":
        lambda d, s: head(d, b"Content-Length: 0 0\r\n\r\n") + s,
    "Content-Length and Transfer-Encoding":
        lambda d, s: head(d, f"Content-Length: {len(s) + 5}\r\n".encode() +
                          b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n") + s,
    "Transfer-Encoding twice":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"0\r\n\r\n") + s,
    "Transfer-Encoding: chunked, identity":
        lambda d, s: head(d, b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n") + s,
    "chunk size 0x0":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n0x0\r\n\r\n") + s,
    "chunk size +0":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n+0\r\n\r\n") + s,
    "chunk size -0":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n-0\r\n\r\n") + s,
    "chunk size ' 0'":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n 0\r\n\r\n") + s,
    "chunk size with an extension":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n0;x=1\r\n\r\n") + s,
    "chunk data not followed by CRLF":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n1\r\nAB\r\n0\r\n\r\n") + s,
    "trailer field after the last chunk":
        lambda d, s: head(d, b"Transfer-Encoding: chunked\r\n\r\n0\r\n"
                          b"Content-Length: 5\r\n\r\n") + s,
    "NUL after the version in the request line":
        lambda d, s: head(d, b"Content-Length: 0\r\n\r\n").replace(
            b" HTTP/1.1\r\n", b" HTTP/1.1\x00junk\r\n", 1) + s,
    "NUL in a header value":
        lambda d, s: head(d, b"X-A: a\x00b\r\nContent-Length: 0\r\n\r\n") + s,
    "obs-fold (a header line starting with a space)":
        lambda d, s: head(d, b"X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n") + s,
    "obs-fold hiding a Content-Length":
        lambda d, s: head(d, b"Content-Length: 0\r\n\t" + str(len(s)).encode() +
                          b"\r\n\r\n") + s,
    "bare CR in a header line":
        lambda d, s: head(d, b"X-A: a\rb\r\nContent-Length: 0\r\n\r\n") + s,
    "bare LF line end":
        lambda d, s: head(d, b"Content-Length: 0\n\r\n") + s,
    "whitespace before the colon":
        lambda d, s: head(d, b"Content-Length : 0\r\n\r\n") + s,
    "a 9 KiB header line":
        lambda d, s: head(d, b"X-Big: " + b"a" * 9216 + b"\r\nContent-Length: 0\r\n\r\n") + s,
    "150 header fields":
        lambda d, s: head(d, b"".join(b"X-H%d: v\r\n" % i for i in range(150)) +
                          b"Content-Length: 0\r\n\r\n") + s,
    "20 KiB of headers in short lines":
        lambda d, s: head(d, b"".join(b"X-%02d: " % i + b"v" * 230 + b"\r\n"
                                      for i in range(90)) + b"Content-Length: 0\r\n\r\n") + s,
    "HTTP/1.2":
        lambda d, s: head(d, b"Content-Length: 0\r\n\r\n").replace(
            b" HTTP/1.1\r\n", b" HTTP/1.2\r\n", 1) + s,
    "a space inside the target":
        lambda d, s: head(d, b"Content-Length: 0\r\n\r\n").replace(
            b"POST /v1/", b"POST /v1/ x", 1) + s,
    "a target starting with // (an authority to evhttp)":
        lambda d, s: head(d, b"Content-Length: 0\r\n\r\n").replace(
            b"POST /v1/", b"POST //x:1/v1/", 1) + s,
    "a fragment in the target":
        lambda d, s: head(d, b"Content-Length: 0\r\n\r\n").replace(
            b"POST /v1/", b"POST /v1/#", 1) + s,
    "Expect: something":
        lambda d, s: head(d, b"Expect: 200-ok\r\nContent-Length: 0\r\n\r\n") + s,
}

n = 0
for d in (node, coord):
    for name, build in CASES.items():
        n += 1
        what = f"{d.kind}: {name}"
        s, happened = smuggled(d, n)
        out, closed = d.raw(build(d, s))
        resp = st.parse_responses(out)
        if not t.check(f"{what}: exactly one answer", len(resp) == 1,
                       f"{len(resp)} answers: {out[:300]!r}"):
            t.check(f"{what}: the request behind it did not run", not happened(), "it ran")
            if happened() and d is node:
                node.post("/v1/undrain")
            continue
        status, hdrs, body = resp[0]
        t.check(f"{what}: 4xx", 400 <= status < 500, f"got {status}")
        t.check(f"{what}: connection closed", closed)
        t.check(f"{what}: X-Sluice-Error", "x-sluice-error" in hdrs, str(hdrs))
        t.check(f"{what}: Content-Type", hdrs.get("content-type") == st.PB, str(hdrs))
        try:
            e = pb.Error.FromString(body)
            t.check(f"{what}: an Error", e.code != "" and e.message != "", str(e))
        except Exception as ex:
            t.check(f"{what}: an Error", False, f"{ex}: {body[:120]!r}")
        ran = happened()
        t.check(f"{what}: the request behind it did not run", not ran, "it ran")
        if ran and d is node:
            node.post("/v1/undrain")

# Control: the same smuggled request after a well-framed one on the same
# connection does run (keep-alive works, and the check above can see it).
for d in (node, coord):
    n += 1
    s, happened = smuggled(d, n)
    body = (pb.QueryRequest(segment_ids=["nope"], aggregate=pb.COUNT, column="value")
            if d is node else pb.ClaimRequest(node_id="nobody", max_segments=1))
    raw = body.SerializeToString()
    first = head(d, f"Content-Length: {len(raw)}\r\n\r\n".encode()) + raw
    if d is coord:
        first = first.replace(b"/v1/report", b"/v1/claim", 1)
    out, _ = d.raw(first + s)
    resp = st.parse_responses(out)
    t.check(f"{d.kind} control: two answers on one connection", len(resp) == 2,
            f"{len(resp)}: {out[:300]!r}")
    t.check(f"{d.kind} control: the second request ran", happened(), "it did not")
    if d is node:
        node.post("/v1/undrain")

t.finish()
