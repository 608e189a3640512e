#!/usr/bin/env python3
"""README's flag tables, made from the binaries' --help.

  tools/readme-flags.py BUILD_DIR README.md           check: exit 1 and show
                                                      the difference if stale
  tools/readme-flags.py BUILD_DIR README.md --write   rewrite the tables

Each table sits under a heading "### `<binary> <command>`" and is replaced
whole, so a flag added, renamed or given a new default shows up here (the
check runs as a meson test).
"""
import difflib
import re
import subprocess
import sys

COMMANDS = [
    ("sluice-coord", "serve", "coordinator/sluice-coord"),
    ("sluice-coord", "import", "coordinator/sluice-coord"),
    ("sluice-coord", "add", "coordinator/sluice-coord"),
    ("sluice-coord", "broker", "coordinator/sluice-coord"),
    ("sluice-coord", "query", "coordinator/sluice-coord"),
    ("sluice-node", "serve", "node/sluice-node"),
    ("sluice-node", "mkseg", "node/sluice-node"),
    ("sluice-node", "farm", "node/sluice-node"),
]

FLAG = re.compile(r"^  (?:-\w, )?--(\[no-\])?([a-z0-9-]+)(.*)$")


def parse_help(text):
    """Flags in order: name, kind, description, and the (default: ...) fields."""
    flags, cur = [], None
    for line in text.splitlines():
        m = FLAG.match(line)
        if m:
            # "--name KIND  description" or "--[no-]name  description"; a
            # long name pushes the description onto the next line.
            is_bool, rest = m.group(1) is not None, m.group(3).strip()
            kind, desc = (None, rest) if is_bool else rest.partition(" ")[::2]
            cur = {"name": m.group(2), "bool": is_bool, "kind": kind,
                   "desc": desc.strip(), "meta": {}}
            flags.append(cur)
            continue
        s = line.strip()
        if cur is None or not s:
            continue
        if s.startswith("(") and s.endswith(")"):
            for part in s[1:-1].split("; "):
                key, _, val = part.partition(": ")
                cur["meta"][key] = val if val else True
        else:
            cur["desc"] = (cur["desc"] + " " + s).strip()
    return [f for f in flags if f["name"] != "help"]


def row(f):
    meta = f["meta"]
    name = "--[no-]" + f["name"] if f["bool"] else "--" + f["name"]
    env = "`%s`" % meta["env"] if "env" in meta else ""
    if "required" in meta:
        default = "(required)"
    elif meta.get("default", '""') == '""':
        default = "none"
    else:
        default = "`%s`" % meta["default"]
    desc = f["desc"]
    for key in ("range", "min", "max"):
        if key in meta:
            desc += " (%s %s)" % (key, meta[key])
    if f["kind"] and "|" in f["kind"]:
        desc += " (one of %s)" % ", ".join(f["kind"].split("|"))
    desc = desc.replace("|", "\\|")
    return "| `%s` | %s | %s | %s |" % (name, env, default, desc)


def table(build, binary, command, path):
    out = subprocess.run([build + "/" + path, command, "--help"], check=True,
                         capture_output=True, text=True).stdout
    lines = ["| flag | env | default | meaning |", "|---|---|---|---|"]
    return lines + [row(f) for f in parse_help(out)]


def main():
    if len(sys.argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build, readme = sys.argv[1], sys.argv[2]
    write = "--write" in sys.argv[3:]
    with open(readme) as fh:
        old = fh.read().split("\n")
    new = list(old)
    for binary, command, path in COMMANDS:
        heading = "### `%s %s`" % (binary, command)
        if heading not in new:
            print("readme-flags: %s has no heading %s" % (readme, heading), file=sys.stderr)
            return 1
        i = new.index(heading) + 1
        while i < len(new) and not new[i].startswith("|"):
            i += 1
        j = i
        while j < len(new) and new[j].startswith("|"):
            j += 1
        new[i:j] = table(build, binary, command, path)
    if new == old:
        print("readme-flags: the flag tables match --help")
        return 0
    if write:
        with open(readme, "w") as fh:
            fh.write("\n".join(new))
        print("readme-flags: rewrote the flag tables in %s" % readme)
        return 0
    sys.stdout.writelines(difflib.unified_diff([l + "\n" for l in old], [l + "\n" for l in new],
                                               readme, readme + " (from --help)"))
    print("readme-flags: the tables are stale; run tools/readme-flags.py %s %s --write"
          % (build, readme), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
