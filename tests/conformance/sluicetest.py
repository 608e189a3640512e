"""Shared by the conformance and framing suites: real daemons, the schema
compiled by Debian's protoc for Python, an HTTP client from the standard
library, raw sockets, and a tally that prints 'N passed, N failed'.

Every daemon runs on 127.0.0.1 port 0 in a temporary directory, with a
token, and is stopped (SIGTERM, then SIGKILL) and its directory removed when
the suite ends, whatever happens.
"""

import atexit
import http.client
import importlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

TOKEN = "conformance-token-0123456789"
PB = "application/x-protobuf"

_cleanups = []
_daemons = []


def _cleanup():
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as e:  # cleanup must go on
            print(f"cleanup: {e}", file=sys.stderr)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))


def setup(argv):
    """argv: [script, build_dir, source_dir]. Returns (build, pb2 module)."""
    if len(argv) != 3:
        sys.exit(f"usage: {argv[0]} BUILD_DIR SOURCE_DIR")
    build, src = os.path.abspath(argv[1]), os.path.abspath(argv[2])
    gen = tempfile.mkdtemp(prefix="sluice-pb2-")
    _cleanups.append(lambda: shutil.rmtree(gen, ignore_errors=True))
    subprocess.run(["protoc", f"--proto_path={src}/proto", f"--python_out={gen}",
                    f"{src}/proto/sluice.proto"], check=True)
    sys.path.insert(0, gen)
    return build, importlib.import_module("sluice_pb2")


class Daemon:
    """A sluice-node, sluice-coord serve or sluice-coord broker started for this suite."""

    def __init__(self, build, kind, extra=()):
        self.dir = tempfile.mkdtemp(prefix=f"sluice-conf-{kind}-")
        _cleanups.append(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        tok = os.path.join(self.dir, "token")
        with open(tok, "w") as f:
            f.write(TOKEN + "\n")
        ready = os.path.join(self.dir, "ready")
        self.storage = os.path.join(self.dir, "storage")
        os.mkdir(self.storage)
        if kind == "node":
            data = os.path.join(self.dir, "data")
            os.mkdir(data)
            argv = [os.path.join(build, "node", "sluice-node"), "serve",
                    f"--storage-root={self.storage}", f"--data-dir={data}"]
        elif kind == "broker":
            argv = [os.path.join(build, "coordinator", "sluice-coord"), "broker"]
        else:
            argv = [os.path.join(build, "coordinator", "sluice-coord"), "serve",
                    f"--db={self.dir}/coord.db"]
        argv += ["--listen=127.0.0.1:0", f"--ready-file={ready}", f"--token-file={tok}"]
        argv += list(extra)
        self.log = open(os.path.join(self.dir, "log"), "w+")
        self.proc = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        _cleanups.append(self.stop)
        _daemons.append(self)
        self.kind = kind
        deadline = time.monotonic() + 15
        self.addr = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with open(ready) as f:
                    line = f.readline().strip()
                if line:
                    self.addr = line
                    h, p = line.rsplit(":", 1)
                    self.host, self.port = h, int(p)
                    if self.get("/healthz")[0] == 200:
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        self.dump()
        raise RuntimeError(f"{kind} did not become healthy")

    def dump(self):
        with open(os.path.join(self.dir, "log"), errors="replace") as f:
            tail = f.read()[-4000:]
        print(f"---- {self.kind} log ----\n{tail}\n----", file=sys.stderr)

    def stop(self):
        """SIGTERM, then SIGKILL after 10 s. Returns the exit status (negative: a signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self.log.closed:
            self.log.close()
        return self.proc.returncode

    def request(self, method, path, body=None, ctype=PB, token=TOKEN, headers=None):
        """One request on a new connection: (status, {lowercase header: value}, body)."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        h = {}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        if body is not None and ctype is not None:
            h["Content-Type"] = ctype
        h.update(headers or {})
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            data = r.read()
            hdrs = {k.lower(): v for k, v in r.getheaders()}
            return r.status, hdrs, data
        finally:
            conn.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, msg=None, raw=None, **kw):
        body = raw if raw is not None else (msg.SerializeToString() if msg is not None else b"")
        return self.request("POST", path, body=body, **kw)

    def raw(self, data, timeout=3.0):
        """Sends bytes on a new connection; returns (everything read, closed by peer)."""
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            s.sendall(data)
            out = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                s.settimeout(max(0.05, deadline - time.monotonic()))
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    return out, False
                except ConnectionResetError:
                    return out, True
                if not chunk:
                    return out, True
                out += chunk
            return out, False
        finally:
            s.close()


class Tally:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def check(self, what, ok, detail=""):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL {what}: {detail}", file=sys.stderr)
        return ok

    def finish(self):
        # A daemon that crashed, or that a sanitizer stopped (leaks at exit
        # under ASan), exits with a non-zero status: that fails the suite.
        for d in _daemons:
            code = d.stop()
            if not self.check(f"{d.kind} in {d.dir}: clean exit on SIGTERM", code == 0,
                              f"exit status {code}"):
                d.dump()
        print(f"{self.name}: {self.passed} passed, {self.failed} failed")
        _cleanup()
        sys.exit(0 if self.failed == 0 and self.passed > 0 else 1)


def unknown_fields(msg, path=""):
    """Paths of every (sub)message of msg that holds unknown fields."""
    found = []
    if len(msg.UnknownFields()) > 0:
        found.append(path or "<top>")
    for fd, value in msg.ListFields():
        if fd.type != fd.TYPE_MESSAGE:
            continue
        if fd.label == fd.LABEL_REPEATED:
            for i, v in enumerate(value):
                found += unknown_fields(v, f"{path}{fd.name}[{i}].")
        else:
            found += unknown_fields(value, f"{path}{fd.name}.")
    return found


def parse_responses(text):
    """Splits raw bytes into HTTP responses: [(status, {header: value}, body)]."""
    out = []
    rest = text
    while rest.startswith(b"HTTP/1."):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            hdrs[k.strip().lower().decode()] = v.strip().decode("latin-1")
        n = int(hdrs.get("content-length", "0"))
        body, rest = rest[:n], rest[n:]
        out.append((status, hdrs, body))
    return out
