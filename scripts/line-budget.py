#!/usr/bin/env python3
"""line-budget.py - keep every backend small enough to read in one sitting.

Usage: scripts/line-budget.py [FILE...]    (default: backends/*.c)
       make line-budget

What it checks: each backend has between 100 and 300 lines of code, so that
backends read side by side and a diff between two shows only the I/O model.
A line of code is a line with anything left on it once comments are taken
out; a blank line, a comment line and a LAB marker (a comment) do not count.
Comments are left out of the budget on purpose: a trick in a backend must
carry a comment that teaches it, and a budget that counted those comments
would push the trickiest backend to explain the least.

Prints one row per file (code, comment and blank lines, and the total that
wc -l gives) and exits 1 if any file is outside the budget, 2 on bad usage.
Plain Python 3.
"""

import glob
import os
import sys

LOW, HIGH = 100, 300
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def strip_comments(text):
    """The C source with every comment replaced by spaces (newlines kept),
    so line numbers stay. String and character literals are left alone: a
    "/*" inside one starts no comment."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i:i + 2]
        if two == "/*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:end]))
            i = end
        elif two == "//":
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def count(text):
    """(code, comment, blank, total) lines of a C source."""
    code = comment = blank = 0
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the file ends no extra line
    for raw, bare in zip(lines, strip_comments(text).split("\n")):
        if bare.strip():
            code += 1
        elif raw.strip():
            comment += 1
        else:
            blank += 1
    return code, comment, blank, len(lines)


def self_check():
    """The counter on a source built to trip it; a wrong count is a bug here,
    not in the backends, and must not pass as a verdict on them."""
    src = ('/* a\n * comment */\n\nint x; /* trailing */\n'
           'const char *s = "/* not a comment";\n'
           "char c = '\"'; // a quote\n"
           "// only a comment\n"
           "int y = 1 /* inside */ + 2;\n")
    got = count(src)
    if got != (4, 3, 1, 8):
        sys.exit("line-budget.py: self-check failed, counted %r" % (got,))


def main(argv):
    if any(a.startswith("-") for a in argv):
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    self_check()
    files = argv or sorted(glob.glob(os.path.join(REPO, "backends", "*.c")))
    if not files:
        print("line-budget.py: no backends/*.c here", file=sys.stderr)
        return 2
    bad = 0
    print("%-22s %5s %8s %6s %6s  budget: %d-%d lines of code" %
          ("file", "code", "comment", "blank", "total", LOW, HIGH))
    for path in files:
        try:
            with open(path, encoding="utf-8") as f:
                code, comment, blank, total = count(f.read())
        except OSError as e:
            print("line-budget.py: %s" % e, file=sys.stderr)
            return 2
        verdict = "ok" if LOW <= code <= HIGH else "OVER" if code > HIGH else "UNDER"
        bad += verdict != "ok"
        print("%-22s %5d %8d %6d %6d  %s" %
              (os.path.relpath(path, REPO), code, comment, blank, total, verdict))
    if bad:
        print("line-budget: %d file(s) outside %d-%d lines of code" % (bad, LOW, HIGH),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
