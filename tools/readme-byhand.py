#!/usr/bin/env python3
"""readme-byhand: follows the README's "Running a cluster by hand" section on
this machine, command by command, as written, and checks that every command
succeeds (exit 0).

The commands are read from README.md itself (the ```sh blocks of that
section), never copied here. Each complete shell command (a line, or a loop
or a continued line up to where bash can parse it whole) runs in one bash
process that lives through the walk, so `export` and `&` carry over as they
do when the block is pasted. What is substituted, and only this:

  - the build block's `meson setup` and `meson compile` are not run again
    (meson has built the binaries this test runs), and `$PWD/build` is the
    build directory given;
  - /tmp/sluice is a fresh temporary directory, and the ports 7000 and
    7101..7103 are free ones (the same pattern: <base>1..<base>3);
  - mkseg's --rows 1000000 is --rows 20000, so the walk takes seconds.

Usage: readme-byhand.py BUILD_DIR README.md
Ends with "readme-byhand: N commands, all succeeded" (exit 0) or names the
first command that failed, with its output (exit 1). Every process it
started is stopped and the directory removed.
"""
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile


def section(text, title):
    start = text.index("\n## " + title)
    end = text.find("\n## ", start + 4)
    return text[start:end if end >= 0 else len(text)]


def sh_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def commands(block):
    """Splits a block into complete commands, the way bash reads them."""
    out, cur = [], []
    for line in block.splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith("#")):
            continue
        cur.append(line)
        text = "\n".join(cur)
        if text.rstrip().endswith("\\"):
            continue
        if subprocess.run(["bash", "-n"], input=text, text=True,
                          capture_output=True).returncode == 0:
            out.append(text)
            cur = []
    if cur:
        out.append("\n".join(cur))
    return out


def free_base():
    """A prefix P such that P0, P1, P2 and P3 are free ports on 127.0.0.1."""
    for _ in range(200):
        base = random.randint(2000, 6000)
        ok = True
        for i in range(4):
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", base * 10 + i))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    sys.exit("readme-byhand: no free ports found")


def main():
    build, readme = os.path.abspath(sys.argv[1]), sys.argv[2]
    text = section(open(readme, encoding="utf-8").read(), "Running a cluster by hand")
    blocks = sh_blocks(text)
    if len(blocks) < 2:
        sys.exit("readme-byhand: expected the build block and the cluster block, found %d"
                 % len(blocks))
    tmp = tempfile.mkdtemp(prefix="sluice-byhand-")
    base = free_base()
    cport = str(base * 10)
    cmds = []
    for c in commands(blocks[0]):
        if re.match(r"\s*meson (setup|compile)\b", c):
            continue  # built already, by the meson that runs this test
        cmds.append(c.replace("$PWD/build", build))
    for c in commands(blocks[1]):
        c = c.replace("/tmp/sluice", tmp + "/sluice")
        c = c.replace("127.0.0.1:7000", "127.0.0.1:" + cport)
        c = c.replace("127.0.0.1:710$i", "127.0.0.1:%d$i" % base)
        c = c.replace("--rows 1000000", "--rows 20000")
        cmds.append(c)
    bash = subprocess.Popen(["bash"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp,
                            start_new_session=True)
    failed = None
    try:
        for i, c in enumerate(cmds):
            log = os.path.join(tmp, "cmd-%d.log" % i)
            bash.stdin.write("{\n%s\n} > %s 2>&1 < /dev/null; echo \"__rc__ $?\"\n" % (c, log))
            bash.stdin.flush()
            rc = None
            while rc is None:
                line = bash.stdout.readline()
                if line == "":
                    rc = -1
                elif line.startswith("__rc__ "):
                    rc = int(line.split()[1])
            out = open(log, encoding="utf-8", errors="replace").read()
            print("$ %s\n%s" % (c, out.rstrip()[-1500:]), flush=True)
            if rc != 0:
                failed = (c, rc, out)
                break
    finally:
        # Stop what the block started in the background (the daemons), then bash.
        try:
            bash.stdin.write("kill $(jobs -p) 2>/dev/null; wait; exit 0\n")
            bash.stdin.close()
            bash.wait(timeout=20)
        except Exception:
            os.killpg(bash.pid, 9)
        shutil.rmtree(tmp, ignore_errors=True)
    if failed is not None:
        print("readme-byhand: FAILED (exit %d): %s" % (failed[1], failed[0]))
        return 1
    print("readme-byhand: %d commands, all succeeded" % len(cmds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
