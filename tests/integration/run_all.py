#!/usr/bin/env python3
"""run_all.py - run the integration suite on several binaries, one after the
other, and total the results (used by tests/integration/integration.mk).

    python3 tests/integration/run_all.py [run.py options] BINARY...

Every option before the binaries is passed to run.py unchanged. The output
of each run streams through as it comes; at the end comes a table of the
binaries with their counts and run times, and one closing line with the
totals, `integration: N passed, N failed, N skipped`. Exit code 0 only if
every run exited 0. A binary whose run printed no closing line (it crashed,
or Python failed) counts as one failure.

Needs: Python 3.7+ standard library only.
"""

import os
import re
import subprocess
import sys
import time

CLOSING = re.compile(r"^integration: (\d+) passed, (\d+) failed, (\d+) skipped$")
TAKES_VALUE = {"--wrapper", "--server-env", "--platform", "--timeout-scale", "-k"}


def split_args(argv):
    """Splits argv into (run.py options, binaries)."""
    opts, i = [], 0
    while i < len(argv) and argv[i].startswith("-"):
        opts.append(argv[i])
        if argv[i] in TAKES_VALUE and i + 1 < len(argv):
            opts.append(argv[i + 1])
            i += 1
        i += 1
    return opts, argv[i:]


def run_one(run_py, opts, binary):
    """Runs the suite on one binary, echoing its output; returns
    (exit code, (passed, failed, skipped) or None, seconds)."""
    began = time.monotonic()
    print("== integration suite: %s %s" % (binary, " ".join(opts)), flush=True)
    p = subprocess.Popen([sys.executable, run_py] + opts + [binary], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, universal_newlines=True)
    counts = None
    for line in p.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        m = CLOSING.match(line.rstrip("\n"))
        if m:
            counts = tuple(int(x) for x in m.groups())
    code = p.wait()
    return code, counts, time.monotonic() - began


def main(argv):
    opts, binaries = split_args(argv)
    if not binaries:
        print("usage: run_all.py [run.py options] BINARY...", file=sys.stderr)
        return 2
    run_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run.py")
    rows, total, worst = [], [0, 0, 0], 0
    for binary in binaries:
        code, counts, secs = run_one(run_py, opts, binary)
        if counts is None:
            counts = (0, 1, 0)  # no closing line: the run itself failed
        for i in range(3):
            total[i] += counts[i]
        worst = worst or (code != 0 or counts[1] > 0)
        rows.append((binary, counts, secs, code))
    print("== integration summary")
    for binary, (p, f, s), secs, code in rows:
        print("   %-28s %3d passed %3d failed %3d skipped %6.1fs%s"
              % (binary, p, f, s, secs, "" if code == 0 else "  (exit %d)" % code))
    # one closing line for all the runs, in the form CI counts
    print("integration: %d passed, %d failed, %d skipped" % tuple(total), flush=True)
    return 1 if worst else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
