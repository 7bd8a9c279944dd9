#!/usr/bin/env python3
"""compare.py - how far two runs agree on the performance targets.

Usage: scripts/compare.py RUN_A RUN_B     (two results folders)
       make compare A=results/reference B=results/reference-repeat

What it is for: one run's Targets table says met or not met for each row,
and whether its own trials settle that verdict (harness/targets.py). The
way to learn what such a verdict is worth on a given machine is to take
the run again, with the same command on the same code, and see which rows
turn. This prints both verdicts of every row measured in both runs, then
the counts the harness README quotes: rows with the same verdict, and of
the rows one run called settled, how many the other run agrees with. A row
that turns though one run called it settled is the one to read: either the
machine changed between the runs, or the test's assumption (trials that
could have come in any order) did not hold there.

Both verdicts are computed afresh from each run's results.json, with the
targets.py of this checkout, not read from the runs' reports.
Plain Python 3.
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

import targets  # noqa: E402


def load_run(folder):
    """The results document of a run folder; SystemExit with a clear
    message if there is none."""
    path = os.path.join(folder, "results.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SystemExit("compare.py: cannot read %s: %s" % (path, e))


def verdicts(doc):
    """{(target, point): row} of the rows the run measured."""
    return {(r["target"], r["point"]): r for r in targets.evaluate(doc)
            if r["status"] != targets.MISSING}


def cell(row):
    return "%s %s, %s" % (targets.ratio_text(row), row["status"], targets.noise_text(row))


def agreement(a, b):
    """The rows measured in both runs, in a's order, and the counts:
    {rows, same, settled_a, settled_a_same, settled_b, settled_b_same,
    turned: [keys], turned_settled: [keys settled in either run]}."""
    keys = [k for k in a if k in b]
    same = [k for k in keys if a[k]["status"] == b[k]["status"]]
    turned = [k for k in keys if a[k]["status"] != b[k]["status"]]
    sa = [k for k in keys if targets.settled(a[k])]
    sb = [k for k in keys if targets.settled(b[k])]
    return keys, {
        "rows": len(keys), "same": len(same),
        "settled_a": len(sa), "settled_a_same": sum(k in same for k in sa),
        "settled_b": len(sb), "settled_b_same": sum(k in same for k in sb),
        "turned": turned,
        "turned_settled": [k for k in turned if targets.settled(a[k]) or targets.settled(b[k])],
    }


def describe_run(name, folder, doc):
    env = doc.get("env", {})
    trials = max((x.get("trials", 0) for x in doc.get("aggregates", [])), default=0)
    return "%s: %s (revision %s, %s, up to %d trials a point)" % (
        name, folder, env.get("git_revision", "?"), env.get("date_utc", "?"), trials)


def report(folder_a, folder_b, doc_a, doc_b):
    """The comparison as lines of Markdown."""
    a, b = verdicts(doc_a), verdicts(doc_b)
    keys, n = agreement(a, b)
    out = [describe_run("A", folder_a, doc_a), describe_run("B", folder_b, doc_b), "",
           "| target | point | A | B | |", "|---|---|---|---|---|"]
    for k in keys:
        mark = "" if a[k]["status"] == b[k]["status"] else "**turned**"
        out.append("| %s | %s | %s | %s | %s |" % (k[0], k[1], cell(a[k]), cell(b[k]), mark))
    out += ["", "Same verdict on %d of the %d rows measured in both." % (n["same"], n["rows"]),
            "Settled in A: %d rows, %d of them with the same verdict in B." % (
                n["settled_a"], n["settled_a_same"]),
            "Settled in B: %d rows, %d of them with the same verdict in A." % (
                n["settled_b"], n["settled_b_same"])]
    if n["turned_settled"]:
        out.append("Turned although one run called them settled:")
        out += ["- %s, %s: A %s; B %s" % (k[0], k[1], cell(a[k]), cell(b[k]))
                for k in n["turned_settled"]]
    elif n["turned"]:
        out.append("Every row that turned was within noise in both runs.")
    only = len(a) + len(b) - 2 * len(keys)
    if only:
        out.append("%d row%s measured in one run only (not compared)." % (
            only, "" if only == 1 else "s"))
    return out


def main(argv):
    if len(argv) != 2:
        print("usage: scripts/compare.py RUN_A RUN_B  (two results folders)", file=sys.stderr)
        return 2
    docs = [load_run(f) for f in argv]
    print("\n".join(report(argv[0], argv[1], docs[0], docs[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
