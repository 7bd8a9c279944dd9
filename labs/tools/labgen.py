#!/usr/bin/env python3
"""labgen.py - starter code for the labs, generated from the reference.

    labgen.py start N [--dest DIR] [--force]   write the starter of lab N
    labgen.py files N                          the reference files lab N changes
    labgen.py check                            validate every marker in the tree
    labgen.py info N KEY                       one field of labs/labN-*/lab.json

What it is for: the parts of the reference a student writes are marked in
the reference files themselves, so a starter can never drift from the code
it was cut out of. A marked region looks like this (C; Python uses `#`):

    /* LAB 3 BEGIN: read until EAGAIN, then wait for the next edge */
    /* LAB 3 HINT: more hint text, one comment line each (optional) */
    /* LAB 3 STUB: client_close(l, cl); */
    ... the reference code ...
    /* LAB 3 END */

In the starter of lab 3 the whole region becomes `/* TODO(lab 3): ... */`
lines followed by the STUB lines, uncommented: just enough for the file to
compile and for the server to fail fast instead of hanging. Regions of other
labs keep their code; every marker line is dropped from the starter.
The markers are comment lines only, so the reference builds unchanged.

Needs: Python 3.7+, standard library only.
"""

import argparse
import glob
import json
import os
import re
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCAN = ["backends/*.c", "backends/*.h", "common/*.c", "common/*.h", "compat/*/*.c",
        "compat/*/*.h", "labs/lab*/*.py"]

C_MARK = re.compile(r"^(\s*)/\* LAB (\d+) (BEGIN|HINT|STUB|END)(?::? ?(.*?))? \*/\s*$")
PY_MARK = re.compile(r"^(\s*)# LAB (\d+) (BEGIN|HINT|STUB|END)(?::? ?(.*?))?\s*$")


class MarkerError(Exception):
    pass


def marker(path, line):
    """(indent, lab, kind, text) if the line is a marker line, else None."""
    m = (PY_MARK if path.endswith(".py") else C_MARK).match(line)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), m.group(3), m.group(4) or ""


def regions(path, lines):
    """Checks the markers of one file: every BEGIN has an END of the same lab,
    no nesting, HINT and STUB only inside a region. Returns the labs seen."""
    labs, open_at = set(), None
    for no, line in enumerate(lines, 1):
        m = marker(path, line)
        if m is None:
            continue
        _, lab, kind, _ = m
        where = "%s:%d" % (os.path.relpath(path, REPO), no)
        if kind == "BEGIN":
            if open_at is not None:
                raise MarkerError("%s: LAB %d BEGIN inside the region opened at line %d"
                                  % (where, lab, open_at[1]))
            open_at = (lab, no)
            labs.add(lab)
        elif open_at is None or open_at[0] != lab:
            raise MarkerError("%s: LAB %d %s outside a LAB %d region" % (where, lab, kind, lab))
        elif kind == "END":
            open_at = None
    if open_at is not None:
        raise MarkerError("%s:%d: LAB %d BEGIN without END"
                          % (os.path.relpath(path, REPO), open_at[1], open_at[0]))
    return labs


def todo_line(path, indent, lab, text):
    if path.endswith(".py"):
        return "%s# TODO(lab %d): %s\n" % (indent, lab, text)
    return "%s/* TODO(lab %d): %s */\n" % (indent, lab, text)


def starter_text(path, lab):
    """The file as the student of `lab` receives it."""
    with open(path) as f:
        lines = f.readlines()
    regions(path, lines)
    out, inside = [], False
    for line in lines:
        m = marker(path, line)
        if m is None:
            if not inside:
                out.append(line)
            continue
        indent, n, kind, text = m
        if n != lab:
            continue  # another lab's marker: keep its code, drop the line
        if kind in ("BEGIN", "HINT"):
            out.append(todo_line(path, indent, lab, text))
        elif kind == "STUB":
            out.append(indent + text + "\n")
        inside = kind != "END"
    return "".join(out)


def scanned_files():
    files = []
    for pattern in SCAN:
        files += sorted(glob.glob(os.path.join(REPO, pattern)))
    return files


def lab_files(lab):
    """Reference files (relative paths) with at least one LAB `lab` region."""
    found = []
    for path in scanned_files():
        with open(path) as f:
            if lab in regions(path, f.readlines()):
                found.append(os.path.relpath(path, REPO))
    return found


def lab_dir(lab):
    dirs = glob.glob(os.path.join(REPO, "labs", "lab%d-*" % lab))
    if len(dirs) != 1:
        raise MarkerError("no single labs/lab%d-* folder" % lab)
    return dirs[0]


def lab_info(lab):
    with open(os.path.join(lab_dir(lab), "lab.json")) as f:
        return json.load(f)


def copy_template(lab, name, dest, force):
    """Copies a form of the lab's folder (lab.json "templates", e.g. lab 0's
    answers.txt) into dest, unless it is there already. Returns 1 if written."""
    target = os.path.join(dest, name)
    if os.path.exists(target) and not force:
        print("  kept    %s (FORCE=1 replaces it)" % os.path.relpath(target, REPO))
        return 0
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(os.path.join(lab_dir(lab), name)) as f, open(target, "w") as out:
        out.write(f.read())
    print("  wrote   %s" % os.path.relpath(target, REPO))
    return 1


def start(lab, dest, force):
    """Writes the starter files under dest. A file that exists is left alone
    (the student's work) unless force; returns the number written."""
    files = lab_files(lab)
    templates = lab_info(lab).get("templates", [])
    if not files and not templates:
        print("lab %d: nothing to write: no LAB %d markers in the reference" % (lab, lab))
        return 0
    written = sum(copy_template(lab, name, dest, force) for name in templates)
    for rel in files:
        target = os.path.join(dest, rel)
        text = starter_text(os.path.join(REPO, rel), lab)
        pristine = os.path.join(dest, ".starter", rel)
        if os.path.exists(target) and not force:
            with open(target) as f:
                mine = f.read()
            untouched = os.path.exists(pristine) and open(pristine).read() == mine
            if mine == text or not untouched:
                print("  kept    %s (%s; FORCE=1 replaces it)"
                      % (os.path.relpath(target, REPO),
                         "the current starter" if mine == text else "your work"))
                continue
            # an untouched starter of an older reference: nothing to lose
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w") as f:
            f.write(text)
        # the starter as written, to tell later whether the student changed it
        os.makedirs(os.path.dirname(pristine), exist_ok=True)
        with open(pristine, "w") as f:
            f.write(text)
        print("  wrote   %s" % os.path.relpath(target, REPO))
        written += 1
    return written


def stale(lab, dest):
    """Starter files whose reference has changed since they were written."""
    out = []
    for rel in lab_files(lab):
        pristine = os.path.join(dest, ".starter", rel)
        if not os.path.exists(pristine):
            continue
        fresh = starter_text(os.path.join(REPO, rel), lab)
        with open(pristine) as f:
            if f.read() != fresh:
                out.append(rel)
    return out


def main(argv):
    p = argparse.ArgumentParser(description="Lab starters generated from the reference.")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("lab", type=int)
    s.add_argument("--dest")
    s.add_argument("--force", action="store_true")
    f = sub.add_parser("files")
    f.add_argument("lab", type=int)
    sub.add_parser("check")
    i = sub.add_parser("info")
    i.add_argument("lab", type=int)
    i.add_argument("key")
    args = p.parse_args(argv)
    try:
        if args.cmd == "files":
            print(" ".join(lab_files(args.lab)))
        elif args.cmd == "info":
            v = lab_info(args.lab).get(args.key, "")
            print(" ".join(v) if isinstance(v, list) else v)
        elif args.cmd == "check":
            labs = set()
            for path in scanned_files():
                with open(path) as fh:
                    labs |= regions(path, fh.readlines())
            print("markers: clean; labs with regions: %s"
                  % (" ".join(str(n) for n in sorted(labs)) or "none"))
        else:
            dest = args.dest or os.path.join(REPO, "labs", "work", "lab%d" % args.lab)
            lab_dir(args.lab)
            start(args.lab, dest, args.force)
            for rel in stale(args.lab, dest):
                print("  note    %s changed in the reference since this starter was made;"
                      " save your work and rerun with FORCE=1 for a fresh one" % rel)
    except MarkerError as e:
        print("labgen: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
