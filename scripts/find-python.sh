#!/usr/bin/env bash
# find-python.sh - print the path of a Python 3 that can import matplotlib.
# The python3 first on PATH may be a private interpreter without Debian's
# packages, so Debian's own /usr/bin/python3 is tried too. Exit 1 if none.
for py in "${PYTHON:-}" python3 /usr/bin/python3 /usr/local/bin/python3; do
	[ -n "$py" ] || continue
	if "$py" -c 'import matplotlib' >/dev/null 2>&1; then
		command -v "$py"
		exit 0
	fi
done
echo "no Python 3 with matplotlib found: install python3-matplotlib (Debian/Ubuntu)" >&2
exit 1
