#!/usr/bin/env bash
# The Debian packages `make demo` and `make test` need, installed when missing: the one place
# that knows them (the Makefile and .ci/run both call this).
#
#   scripts/system_packages.sh demo|test           install what is missing
#   scripts/system_packages.sh --check demo|test   only report; exit 1 when something is missing
#
# demo: make, pkg-config and libmariadb-dev (pip builds mysqlclient), redis-tools (its
# jemalloc Redis server; devstack/services.py), Node and npm (dynalite), Python 3.11 with
# venv. test: those, chromium (the browser test drives /usr/bin/chromium) and MariaDB's
# server binaries (mariadbd, mariadb-install-db and its my_print_defaults): the tests start
# their own server where none answers at DATABASE_URL. The -core packages, not mariadb-server
# (nor redis-server): that one also installs a system service that starts a server on 3306.
# Node and Python count as present when their commands are, whatever installed them; the others
# are checked with dpkg-query. Installing needs root: run as root, or as a user for whom
# `sudo -n` works; otherwise it prints the command to run and exits 1.
set -euo pipefail

check_only=0
if [ "${1:-}" = "--check" ]; then check_only=1; shift; fi
purpose="${1:-}"
case "$purpose" in
  demo) debian=(make pkg-config libmariadb-dev redis-tools) ;;
  test) debian=(make pkg-config libmariadb-dev redis-tools chromium mariadb-server-core mariadb-client-core) ;;
  *) echo "usage: $0 [--check] demo|test" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-python3.11}"

installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
if command -v dpkg-query >/dev/null; then
  for pkg in "${debian[@]}"; do installed "$pkg" || missing+=("$pkg"); done
fi
# Node may come from another repository, whose nodejs bundles npm: only install when absent.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ! command -v "$PYTHON" >/dev/null; then
  missing+=(python3.11 python3.11-venv)
elif ! "$PYTHON" -c "import ensurepip, venv" 2>/dev/null; then
  missing+=(python3.11-venv)
fi

if [ "${#missing[@]}" -eq 0 ]; then
  [ "$check_only" -eq 0 ] || echo "system packages for $purpose: nothing missing"
  exit 0
fi
if [ "$check_only" -eq 1 ]; then
  echo "system packages for $purpose: missing ${missing[*]}"
  exit 1
fi

apt=(apt-get -q -o Dpkg::Use-Pty=0)
install_args=(install -y --no-install-recommends "${missing[@]}")
if ! command -v apt-get >/dev/null; then
  echo "error: $purpose needs ${missing[*]} (Debian package names), and this machine has no apt-get:" \
       "install their equivalents, then run make $purpose again" >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
else
  echo "error: $purpose needs Debian packages that are missing (${missing[*]}), and installing" \
       "them needs root. Run this, then make $purpose again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "system packages for $purpose: installing ${missing[*]}"
"${as_root[@]}" "${apt[@]}" update
"${as_root[@]}" "${apt[@]}" "${install_args[@]}"
