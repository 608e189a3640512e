#!/usr/bin/python3
"""Loads a page in headless Chromium (Debian's `chromium`) through the
DevTools protocol on a pipe (--remote-debugging-pipe: no port, no
websocket), waits until the page says it is ready, and prints the rendered
DOM (document.documentElement.outerHTML) on stdout.

  browse.py URL [--token TOKEN] [--screenshot PNG] [--width W --height H]
            [--timeout SECONDS]

The Sluice status page sets <body data-ready="1"> once it has drawn the
cluster, or data-ready="login" when it needs the token. With --token, a
page asking for the token gets it typed into its form and submitted (the
token never goes into a URL). --screenshot writes a PNG of the page as
rendered. Exit status: 0 ready, 1 not ready within --timeout (default 30 s;
Chromium is killed then), 2 usage or Chromium not found.
"""

import argparse
import base64
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, width, height):
        exe = shutil.which("chromium") or shutil.which("chromium-browser")
        if exe is None:
            sys.exit(2)
        self.profile = tempfile.mkdtemp(prefix="sluice-chromium-")
        to_chrome_r, self.to_chrome = os.pipe()
        self.from_chrome, from_chrome_w = os.pipe()
        # Chromium reads commands on fd 3 and writes answers on fd 4.
        argv = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}", "about:blank"]

        def child_fds():
            # Through fresh numbers first: the pipes may sit on 3 or 4 already,
            # and dup2 of an fd onto itself would keep its close-on-exec flag.
            r, w = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.proc = subprocess.Popen(argv, preexec_fn=child_fds, pass_fds=(),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self.buf = b""
        self.next_id = 0
        self.session = None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for fd in (self.to_chrome, self.from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method, deadline, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if self.session is not None and not method.startswith("Target."):
            msg["sessionId"] = self.session
        os.write(self.to_chrome, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                if time.monotonic() > deadline:
                    raise TimeoutError(method)
                r, _, _ = select.select([self.from_chrome], [], [], 0.5)
                if r:
                    chunk = os.read(self.from_chrome, 1 << 20)
                    if not chunk:
                        raise EOFError("chromium closed the pipe")
                    self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            answer = json.loads(line)
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def eval(self, expr, deadline):
        r = self.call("Runtime.evaluate", deadline, expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--token")
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=900)
    ap.add_argument("--timeout", type=float, default=30)
    a = ap.parse_args()
    deadline = time.monotonic() + a.timeout
    b = Browser(a.width, a.height)
    try:
        target = b.call("Target.createTarget", deadline, url="about:blank")["targetId"]
        b.session = b.call("Target.attachToTarget", deadline, targetId=target,
                           flatten=True)["sessionId"]
        b.call("Emulation.setDeviceMetricsOverride", deadline, width=a.width, height=a.height,
               deviceScaleFactor=1, mobile=a.width < 600)
        b.call("Page.enable", deadline)
        b.call("Page.navigate", deadline, url=a.url)
        state, typed = None, False
        while time.monotonic() < deadline:
            state = b.eval("document.body ? document.body.dataset.ready || '' : ''", deadline)
            if state == "login" and a.token is not None and not typed:
                b.eval("document.getElementById('token').value = %s;"
                       "document.getElementById('login-btn').click();" % json.dumps(a.token),
                       deadline)
                typed = True
                time.sleep(0.3)
                continue
            if state == "1" or (state == "login" and (a.token is None or typed and
                                                       b.eval("document.getElementById('login-msg')"
                                                              ".textContent", deadline))):
                break
            time.sleep(0.1)
        html = b.eval("document.documentElement.outerHTML", deadline)
        if a.screenshot:
            shot = b.call("Page.captureScreenshot", deadline, format="png")
            with open(a.screenshot, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        sys.stdout.write(html or "")
        return 0 if state in ("1", "login") else 1
    except (TimeoutError, EOFError, RuntimeError, OSError) as e:
        print(f"browse.py: {e}", file=sys.stderr)
        return 1
    finally:
        b.close()


if __name__ == "__main__":
    sys.exit(main())
