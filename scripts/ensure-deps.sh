#!/usr/bin/env bash
# ensure-deps.sh GROUP... - make sure the Debian/Ubuntu packages a job needs
# are present; install the missing ones when we can (root and apt-get), else
# name them and exit 1.
#
# Groups: build test bench bench-core fuzz windows
set -euo pipefail

missing=()

need_cmd() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_file() { [ -e "$1" ] || missing+=("$2"); }
need_matplotlib() {
	local py
	py=$("$(dirname "$0")/find-python.sh" 2>/dev/null) || missing+=("python3-matplotlib")
	: "${py:=}"
}

for group in "$@"; do
	case "$group" in
	build)
		need_cmd cc gcc
		need_cmd make make
		need_file /usr/include/liburing.h liburing-dev
		;;
	test)
		need_file /usr/include/cmocka.h libcmocka-dev
		need_cmd python3 python3
		need_cmd curl curl
		need_cmd ab apache2-utils
		need_cmd h2load nghttp2-client
		need_cmd clang clang
		need_cmd valgrind valgrind
		;;
	bench)
		need_cmd wrk wrk
		need_cmd hyperfine hyperfine
		need_cmd ab apache2-utils
		need_cmd taskset util-linux
		need_matplotlib
		need_cmd nginx nginx-light
		need_cmd h2o h2o
		;;
	bench-core)
		# What make bench-all cannot run without (bench adds nginx, h2o).
		need_cmd wrk wrk
		need_cmd hyperfine hyperfine
		need_cmd ab apache2-utils
		need_cmd taskset util-linux
		need_matplotlib
		;;
	fuzz)
		need_cmd clang clang
		need_file /usr/lib/llvm-14/lib/libFuzzer.a libfuzzer-14-dev
		;;
	windows)
		need_cmd x86_64-w64-mingw32-gcc gcc-mingw-w64-x86-64
		need_cmd wine wine
		need_cmd wineboot wine
		need_file /usr/lib/wine/wine64 wine64
		;;
	*)
		echo "ensure-deps.sh: unknown group '$group' (build test bench bench-core fuzz windows)" >&2
		exit 2
		;;
	esac
done

[ ${#missing[@]} -eq 0 ] && exit 0
# shellcheck disable=SC2207
missing=($(printf '%s\n' "${missing[@]}" | sort -u))
sudo=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
fi
if { [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; } && command -v apt-get >/dev/null 2>&1; then
	echo "installing Debian packages: ${missing[*]}"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
	if $sudo env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
		exit 0
	fi
	echo "apt-get could not install: ${missing[*]}" >&2
fi
echo "missing packages: ${missing[*]}" >&2
echo "install them with:  sudo apt-get install ${missing[*]}" >&2
exit 1
