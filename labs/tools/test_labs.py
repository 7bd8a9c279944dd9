#!/usr/bin/env python3
"""test_labs.py - `make test-labs`: proves the graders are real.

For every lab that has graded checks:
  - the files it marks still pass the format check (the markers are comment
    lines, and must not change how the reference is formatted);
  - the reference, graded with `make grade LAB=n SOLUTION=1`, scores 100/100;
  - the untouched starter, generated afresh into build/labcheck/ (never into
    labs/work/, which is the students'), compiles with warnings as errors and
    scores well below 100 (at most STARTER_MAX);
  - each known-wrong variant of the reference listed in lab.json (one
    textual change, e.g. level-triggered EPOLLOUT in the epoll lab) loses
    the points of the check that is meant to catch it.
Runs the graders in their --quick mode (shorter performance trials) so the
whole run stays within a few minutes. Ends with `labs: N passed, N failed`.

Needs: Python 3.7+, make, clang-format, and what the graders need.
"""

import contextlib
import glob
import io
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import labgen  # noqa: E402
import report_check  # noqa: E402

STARTER_MAX = 50  # an untouched starter scoring more than this teaches too little
CHECK_ROOT = "build/labcheck"


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print("ok   %s%s" % (what, " (%s)" % detail if detail else ""), flush=True)
        else:
            self.failed += 1
            print("FAIL %s%s" % (what, ": " + detail if detail else ""), flush=True)


def run(cmd, timeout):
    """Runs cmd in the repository; returns (exit code, output)."""
    try:
        p = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, errors="replace", timeout=timeout)
        return p.returncode, p.stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout
        return -1, (out or "") + "\n(timed out after %ds)" % timeout


def score_of(out):
    m = re.findall(r"^(\d+)/100$", out, re.M)
    return int(m[-1]) if m else None


def graded_labs():
    labs = []
    for path in sorted(glob.glob(os.path.join(REPO, "labs", "lab*-*", "lab.json"))):
        n = int(re.match(r"lab(\d+)-", os.path.basename(os.path.dirname(path))).group(1))
        with open(path) as f:
            if json.load(f).get("checks"):
                labs.append(n)
    return labs


def backend_unavailable(name):
    """Why bin/server-<name> cannot run on this machine, or None. A backend
    that is not built here, or exits with code 3 (io_uring disabled by a
    sysctl or a seccomp filter), cannot be graded here: its lab is reported
    as skipped, and counted neither as passed nor as failed."""
    binary = os.path.join(REPO, "bin", "server-" + name)
    if not os.path.exists(binary):
        return "bin/server-%s is not built on this platform" % name
    p = subprocess.Popen([binary, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True)
    try:
        line = p.stdout.readline()
        if line.startswith("listening on"):
            return None
        p.wait(timeout=5)
        return "bin/server-%s exits with code %s here: %s" % (
            name, p.returncode, p.stderr.read().strip()[:200])
    finally:
        if p.poll() is None:
            p.terminate()
            p.wait()


def test_lab(t, n, make):
    for name in labgen.lab_info(n).get("backends", []):
        why = backend_unavailable(name)
        if why is not None:
            t.skipped += 1
            print("skip lab %d: %s" % (n, why), flush=True)
            return False
    files = labgen.lab_files(n)
    if not files and not labgen.lab_info(n).get("templates"):
        t.check(False, "lab %d: markers" % n, "lab.json has checks but no LAB %d markers" % n)
        return False
    c_files = [f for f in files if f.endswith((".c", ".h"))]
    if c_files:
        rc, out = run(["clang-format", "--dry-run", "--Werror"] + c_files, 60)
        t.check(rc == 0, "lab %d: format check of %s" % (n, " ".join(c_files)), out.strip()[:300])

    began = time.monotonic()
    rc, out = run(make + ["grade", "LAB=%d" % n, "SOLUTION=1", "GRADE_FLAGS=--quick"], 400)
    s = score_of(out)
    t.check(s == 100, "lab %d: the reference scores 100/100" % n,
            "%s in %.0fs" % ("%s/100" % s if s is not None else "no score", time.monotonic() - began)
            if s == 100 else "\n" + out[-1500:])

    work = "%s/work/lab%d" % (CHECK_ROOT, n)
    with contextlib.redirect_stdout(io.StringIO()):
        labgen.start(n, os.path.join(REPO, work), force=True)
    began = time.monotonic()
    rc, out = run(make + ["grade", "LAB=%d" % n, "LAB_WORK=" + work,
                          "LAB_BUILD=%s/lab%d" % (CHECK_ROOT, n), "LAB_BIN=%s/bin" % CHECK_ROOT,
                          "WERROR=1", "GRADE_FLAGS=--quick"], 400)
    s = score_of(out)
    built = s is not None
    what = "the starter compiles with -Werror" if files else "the starter's forms are graded"
    t.check(built, "lab %d: %s" % (n, what), "" if built else out[-1500:])
    if built:
        t.check(s <= STARTER_MAX, "lab %d: the untouched starter scores well below 100" % n,
                "%d/100 in %.0fs" % (s, time.monotonic() - began) if s <= STARTER_MAX
                else "%d/100 > %d\n%s" % (s, STARTER_MAX, out[-1500:]))
    return True


def test_wrong_answer(t, n, make):
    """A lab graded from a form (lab 0's answers.txt): the reference run's own
    answers with one of them wrong must lose exactly that answer's points."""
    checks = [c for c in labgen.lab_info(n).get("checks", []) if c["kind"] == "report"]
    if not checks:
        return
    agg, why = report_check.load_run("results/reference", REPO)
    if agg is None:
        t.check(False, "lab %d: a wrong answer loses its points" % n, why)
        return
    work = "%s/wrong/lab%d" % (CHECK_ROOT, n)
    os.makedirs(os.path.join(REPO, work), exist_ok=True)
    answers = {q: report_check.truth(agg, q) for q in report_check.QUESTIONS}
    answers["idle_loser"] = "epoll" if answers["idle_loser"] != "epoll" else "poll"  # wrong
    with open(os.path.join(REPO, work, "answers.txt"), "w") as f:
        f.write("run: results/reference\n")
        f.writelines("%s: %s\n" % kv for kv in answers.items())
    rc, out = run(make + ["grade", "LAB=%d" % n, "LAB_WORK=" + work], 120)
    want = 100 - sum(c["points"] for c in checks if c["question"] == "idle_loser")
    s = score_of(out)
    t.check(s == want, "lab %d: a wrong answer loses its points" % n,
            "%s/100" % s if s == want else "%s/100, want %d\n%s" % (s, want, out[-1500:]))


def test_variants(t, n, make):
    """Known-wrong versions of the reference (lab.json "variants": one textual
    change each) must lose points: proof that a check sees what it claims."""
    with open(os.path.join(labgen.lab_dir(n), "lab.json")) as f:
        variants = json.load(f).get("variants", [])
    for i, v in enumerate(variants):
        work = "%s/variant/lab%d-%d" % (CHECK_ROOT, n, i)
        with open(os.path.join(REPO, v["file"])) as f:
            text = f.read()
        if text.count(v["old"]) != 1:
            t.check(False, "lab %d: variant '%s'" % (n, v["name"]),
                    "its text no longer occurs once in %s" % v["file"])
            continue
        os.makedirs(os.path.dirname(os.path.join(REPO, work, v["file"])), exist_ok=True)
        with open(os.path.join(REPO, work, v["file"]), "w") as f:
            f.write(text.replace(v["old"], v["new"]))
        rc, out = run(make + ["grade", "LAB=%d" % n, "LAB_WORK=" + work,
                              "LAB_BUILD=%s/variant/obj%d-%d" % (CHECK_ROOT, n, i),
                              "LAB_BIN=%s/variant/bin" % CHECK_ROOT, "GRADE_FLAGS=--quick"], 400)
        s = score_of(out)
        lost = []  # the checks that did not get full points
        for line in out.splitlines():
            m = re.match(r"^\s*([\d.]+)/(\d+)\s", line)
            if m and float(m.group(1)) < float(m.group(2)):
                lost.append(line.strip())
        want = v.get("loses", "")
        ok = s is not None and s <= v.get("max_score", 99) and any(want in x for x in lost)
        t.check(ok, "lab %d: variant '%s' loses its points" % (n, v["name"]),
                "%s/100; %s" % (s, "; ".join(lost)[:200]) if ok else out[-1500:])


def main(argv):
    make = ["make", "--no-print-directory"] + argv
    t = Tally()
    rc, out = run([sys.executable, os.path.join(HERE, "labgen.py"), "check"], 60)
    t.check(rc == 0, "markers are well formed", out.strip())
    rc, out = run(make + ["all"], 600)
    t.check(rc == 0, "the reference servers build", "" if rc == 0 else out[-1500:])
    for n in graded_labs():
        if test_lab(t, n, make):
            test_variants(t, n, make)
            test_wrong_answer(t, n, make)
    if t.skipped:
        print("labs: %d lab(s) skipped: their backend cannot run here" % t.skipped)
    print("labs: %d passed, %d failed" % (t.passed, t.failed), flush=True)
    return 0 if t.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
