#!/usr/bin/python3
"""What Prometheus and Grafana see (issue 19): a real coordinator and a real
node (which loads segments, answers a query and refuses a file that is not
there), then:

  - `promtool check metrics` (Debian's prometheus package) on both daemons'
    /metrics: the exposition is valid and follows the naming conventions;
  - every family both daemons export is listed in the README's Metrics
    section, and every sluice_/process_ family listed there is exported by
    one of them (a direct-mode node too, for the pool families);
  - the standard process_* families are there with plausible values;
  - (when the files exist) `promtool check rules` on
    deploy/prometheus/sluice-rules.yml, `promtool test rules` on
    tests/monitoring/rules-test.yml (five alerts fire on synthetic series,
    none too early or for a healthy series), `promtool check config` on the
    compose scrape configuration, and every metric name in an
    expression of deploy/grafana/sluice.json or of the rules is one the
    daemons export (or a recording rule defines).

promtool runs with a 60 s timeout each. Usage: monitoring.py BUILD_DIR SOURCE_DIR
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "conformance"))
import sluicetest as st  # noqa: E402

BUILD, pb = st.setup(sys.argv)
SRC = os.path.abspath(sys.argv[2])
t = st.Tally("monitoring")
PROMTOOL = shutil.which("promtool")


def promtool(args, stdin=None):
    r = subprocess.run([PROMTOOL] + args, input=stdin, capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def families(text):
    """{family: type} from an exposition."""
    return {m.group(1): m.group(2)
            for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M)}


coord = st.Daemon(BUILD, "coord")
node = st.Daemon(BUILD, "node", [f"--coordinator={coord.addr}", "--node-id=mon-node",
                                 "--report-interval=200ms"])
direct = st.Daemon(BUILD, "node", ["--io=direct"])
broker = st.Daemon(BUILD, "broker", [f"--coordinator={coord.addr}", "--poll-interval=100ms"])
segs = []
for name in ("mon-a", "mon-b"):
    path = os.path.join(node.storage, name + ".seg")
    subprocess.run([os.path.join(BUILD, "node", "sluice-node"), "mkseg", "--rows=2000",
                    f"--out={path}"], check=True, stdout=subprocess.DEVNULL)
    segs.append(pb.SegmentSpec(segment_id=name, uri="file://" + path, row_count=2000,
                               avg_row_size=64, replication=1))
segs.append(pb.SegmentSpec(segment_id="mon-missing", uri=f"file://{node.storage}/nosuch.seg",
                           row_count=10, avg_row_size=16, replication=1))
t.check("registered", coord.post("/v1/segments", pb.SegmentBatch(segments=segs))[0] == 200)
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    s = pb.ClusterStatus.FromString(coord.get("/v1/status")[2])
    if s.segments_loaded == 2 and s.segments_invalid == 1:
        break
    time.sleep(0.1)
t.check("two LOADED, one INVALID", s.segments_loaded == 2 and s.segments_invalid == 1, str(s))
q = pb.QueryRequest(segment_ids=["mon-a", "mon-b"], aggregate=pb.COUNT, column="value")
t.check("a query answered", node.post("/v1/query", q)[0] == 200)
# The broker: one table query (the segments are in table "default"; the INVALID one has no
# replica, so allow_partial) and one of a table that does not exist.
tq = pb.QueryRequest(table="default", aggregate=pb.SUM, column="value", allow_partial=True)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    status, _, body = broker.post("/v1/query", tq)
    if status == 200:
        break
    time.sleep(0.1)
t.check("a table query answered by the broker", status == 200, f"{status} {body[:200]!r}")
t.check("a table query of no table: 404",
        broker.post("/v1/query", pb.QueryRequest(table="nope", aggregate=pb.SUM,
                                                 column="value"))[0] == 404)
time.sleep(0.5)

texts = {}
for name, d in (("coordinator", coord), ("node", node), ("direct node", direct),
                ("broker", broker)):
    status, hdrs, body = d.get("/metrics", token=None)
    t.check(f"{name} /metrics: 200 without a token", status == 200, str(status))
    texts[name] = body.decode()
    if PROMTOOL is None:
        t.check("promtool installed (tests/deps.sh: prometheus)", False)
        continue
    rc, out = promtool(["check", "metrics"], stdin=body)
    t.check(f"promtool check metrics: {name}", rc == 0, out[:2000])

exported = {}
for name, text in texts.items():
    exported.update(families(text))
for name in ("coordinator", "node", "broker"):
    f = families(texts[name])
    for fam in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                "process_open_fds", "process_max_fds", "process_start_time_seconds"):
        t.check(f"{name}: {fam}", fam in f, "")
    m = re.search(r"^process_start_time_seconds (\S+)$", texts[name], re.M)
    t.check(f"{name}: start time within the last 10 minutes",
            m is not None and time.time() - 600 < float(m.group(1)) <= time.time() + 1,
            m.group(0) if m else "missing")
    m = re.search(r"^process_open_fds (\d+)$", texts[name], re.M)
    mx = re.search(r"^process_max_fds (\d+)$", texts[name], re.M)
    t.check(f"{name}: 3 < open fds < max fds", m and mx and 3 < int(m.group(1)) < int(mx.group(1)),
            f"{m and m.group(0)} {mx and mx.group(0)}")

# The README's Metrics section lists exactly what is exported.
readme = open(os.path.join(SRC, "README.md"), encoding="utf-8").read()
sec = readme.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
listed = set(re.findall(r"^\| `([a-z_:][a-z0-9_:]*)` \|", sec, re.M))
t.check("README Metrics: every exported family listed", set(exported) <= listed,
        f"missing: {sorted(set(exported) - listed)}")
t.check("README Metrics: every listed family exported", listed <= set(exported),
        f"not exported: {sorted(listed - set(exported))}")
for fam, typ in exported.items():
    row = re.search(r"^\| `%s` \| (\w+) \|" % re.escape(fam), sec, re.M)
    if row:
        t.check(f"README Metrics: {fam} is a {typ}", row.group(1) == typ, row.group(0))

# Rules and dashboard (deploy/prometheus, deploy/grafana).
rules = os.path.join(SRC, "deploy", "prometheus", "sluice-rules.yml")
dash = os.path.join(SRC, "deploy", "grafana", "sluice.json")
if os.path.exists(rules) and PROMTOOL is not None:
    rc, out = promtool(["check", "rules", rules])
    t.check("promtool check rules", rc == 0, out[:2000])
    rc, out = promtool(["test", "rules", os.path.join(SRC, "tests", "monitoring",
                                                       "rules-test.yml")])
    t.check("promtool test rules", rc == 0, out[:3000])
    # The compose scrape configuration, with the rules where the container mounts them.
    import tempfile
    with tempfile.TemporaryDirectory(prefix="sluice-prom-") as tmp:
        shutil.copy(rules, os.path.join(tmp, "sluice-rules.yml"))
        cfg = open(os.path.join(SRC, "deploy", "prometheus", "prometheus.yml")).read()
        with open(os.path.join(tmp, "prometheus.yml"), "w") as f:
            f.write(cfg.replace("/etc/prometheus/sluice-rules.yml",
                                os.path.join(tmp, "sluice-rules.yml")))
        rc, out = promtool(["check", "config", os.path.join(tmp, "prometheus.yml")])
        t.check("promtool check config (deploy/prometheus/prometheus.yml)", rc == 0, out[:2000])


def metric_names(expr):
    """Metric names an expression reads: identifiers not followed by '(' and not keywords."""
    expr = re.sub(r'"[^"]*"', '""', expr)           # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)           # matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)          # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    words = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    keep = {"and", "or", "unless", "offset", "bool", "inf", "nan", "e"}
    return {w for w in words if w.lower() not in keep and not re.fullmatch(r"\d.*", w)}


def known(name, recorded):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and exported.get(name[:-len(suffix)]) == "histogram":
            return True
    return name in exported or name in recorded


recorded = set()
rule_exprs = []
if os.path.exists(rules):
    text = open(rules).read()
    recorded = set(re.findall(r"^\s*-?\s*record:\s*(\S+)", text, re.M))
    rule_exprs = [m.group(1) for m in re.finditer(r"^\s*expr:\s*(.+)$", text, re.M)]
if os.path.exists(dash):
    d = json.load(open(dash))
    exprs = [tg["expr"] for p in d.get("panels", []) for tg in p.get("targets", [])
             if "expr" in tg]
    t.check("dashboard: has panels with expressions", len(exprs) >= 8, str(len(exprs)))
    for e in exprs + rule_exprs:
        names = metric_names(e)
        bad = sorted(n for n in names if not known(n, recorded))
        t.check(f"expression reads exported metrics: {e[:70]}", names and not bad,
                f"unknown: {bad}")

t.finish()
