"""report_check.py - lab 0's answers, checked against the student's own run.

Lab 0 writes no code: the student runs the harness and reads its charts. The
numbers they read off are checked here against the run folder they name, so
the answers come from *their* machine, not from this repository's reference
run. labs/lab0-measuring/answers.txt is the form; `make lab-start LAB=0`
copies it to labs/work/lab0/answers.txt. The explanations ("why") are for
the teacher: a grader can check a number, not an argument.

Each question is one check of kind "report" in lab.json. check() returns
(fraction of the points, a note). With --solution the answers are computed
from results/reference, the committed run, by the same code that checks.
"""

import json
import os

# The backends a question ranks: the native ones, as the report labels them
# (not the reference lines, not the emulated kqueue, not the Wine builds).
NATIVE = "native"

# The keys of answers.txt that truth() knows, in the form's order.
QUESTIONS = ("fastest_at_1", "fastest_at_1_client_bound", "cpu_order_1024",
             "epoll_sys_percent_1024", "idle_loser", "threads_bytes_per_conn",
             "hand_cpu_us_epoll_64")


def read_answers(path):
    """{key: value} from "key: value" lines; '#' starts a comment line."""
    answers = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and ":" in line:
                key, value = line.split(":", 1)
                answers[key.strip()] = value.strip()
    return answers


def load_run(folder, repo):
    """The aggregates of a run folder's results.json, or a reason why not."""
    path = os.path.join(folder if os.path.isabs(folder) else os.path.join(repo, folder),
                        "results.json")
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        return None, "cannot read %s: %s" % (path, e)
    if not data.get("complete"):
        return None, "%s: the run did not complete" % path
    return data.get("aggregates", []), None


def points(run, workload, param=None):
    """Native rows of one workload (and parameter), keyed by backend."""
    return {a["backend"]: a for a in run
            if a["kind"] == NATIVE and a["workload"] == workload
            and (param is None or a["param"] == param) and a.get("ok", True)}


def cpu_us(a):
    c = a["server_cpu"]
    return c["user_us_per_req"] + c["sys_us_per_req"]


def largest(run, workload):
    params = [a["param"] for a in run if a["workload"] == workload and a["kind"] == NATIVE]
    return max(params) if params else None


# ---- what the run says: one function per question ---------------------------------

def truth(run, key):
    """The right answer to `key` from the run, or raises KeyError (missing)."""
    if key in ("fastest_at_1", "fastest_at_1_client_bound"):
        rows = points(run, "plaintext", 1)
        best = max(rows, key=lambda b: rows[b]["rps"]["median"])
        if key == "fastest_at_1":
            return best
        return "yes" if rows[best]["client_cpu"]["bound"] else "no"
    if key == "cpu_order_1024":
        rows = points(run, "plaintext", 1024)
        return ", ".join(sorted(rows, key=lambda b: cpu_us(rows[b])))
    if key == "epoll_sys_percent_1024":
        c = points(run, "plaintext", 1024)["epoll"]["server_cpu"]
        return "%.0f" % (100 * c["sys_us_per_req"] / (c["user_us_per_req"] + c["sys_us_per_req"]))
    if key == "idle_loser":
        most = largest(run, "idle")
        none, full = points(run, "idle", 0), points(run, "idle", most)
        return min(full, key=lambda b: full[b]["rps"]["median"] / none[b]["rps"]["median"])
    if key == "threads_bytes_per_conn":
        return "%.0f" % points(run, "memory", largest(run, "memory"))["threads"]["server_mem"][
            "bytes_per_conn"]
    if key == "hand_cpu_us_epoll_64":
        return "%.1f" % cpu_us(points(run, "plaintext", 64)["epoll"])
    raise KeyError(key)


def near(given, want, rel=None, absolute=None):
    try:
        g, w = float(given), float(want)
    except ValueError:
        return False
    return abs(g - w) <= (absolute if absolute is not None else rel * abs(w))


def judge(run, key, given):
    """(fraction, note) for one answer."""
    want = truth(run, key)
    if not given:
        return 0.0, "no answer"
    wrong = "%s: not what your run says" % given
    if key == "cpu_order_1024":
        rows = points(run, "plaintext", 1024)
        order = [b.strip() for b in given.split(",")]
        if sorted(order) != sorted(rows):
            return 0.0, "name each of %s once" % ", ".join(sorted(rows))
        # neighbours within 2 % may come in either order: the chart cannot tell
        ok = all(cpu_us(rows[a]) <= cpu_us(rows[b]) * 1.02 for a, b in zip(order, order[1:]))
        return (1.0, given) if ok else (0.0, wrong)
    if key == "epoll_sys_percent_1024":
        ok = near(given.rstrip("%"), want, absolute=3)
    elif key == "threads_bytes_per_conn":
        ok = near(given, want, rel=0.10)
    elif key == "hand_cpu_us_epoll_64":
        ok = near(given, want, rel=0.20)  # by hand, within 20 % of the harness
    else:
        ok = given.strip().lower() == want.lower()
    return (1.0, given) if ok else (0.0, wrong)


# ---- the grader's entry point ------------------------------------------------------

_cache = {}


def check(question, work, solution, repo):
    """One lab.json check of kind "report": (fraction, note)."""
    if "answers" not in _cache:
        if solution:
            run, why = load_run("results/reference", repo)
            answers = {key: truth(run, key) if run is not None else "" for key in QUESTIONS}
            answers["run"] = "results/reference"
        else:
            path = os.path.join(work, "answers.txt")
            if not os.path.exists(path):
                return 0.0, "no %s: run make lab-start LAB=0 first" % path
            answers = read_answers(path)
            run, why = load_run(answers["run"], repo) if answers.get("run") else (
                None, "answers.txt names no run folder (run: results/<stamp>-<host>)")
        _cache.update(answers=answers, run=run, why=why)
    answers, run, why = _cache["answers"], _cache["run"], _cache["why"]
    if run is None:
        return 0.0, why
    if question == "run":
        try:
            for key in QUESTIONS:
                truth(run, key)
        except (KeyError, ValueError, ZeroDivisionError) as e:
            return 0.0, "%s lacks a point the questions need (%s): run make bench-all" % (
                answers["run"], e)
        return 1.0, answers["run"]
    try:
        return judge(run, question, answers.get(question, ""))
    except (KeyError, ValueError, ZeroDivisionError) as e:
        return 0.0, "the run lacks this point (%s)" % e
