#!/usr/bin/env bash
# Write requirements/test.lock: the exact test environment that scripts/test.sh
# installs (pyproject.toml's dependencies and its test extra, every file hashed),
# resolved for Python 3.10 and newer on any platform. Run it after changing a
# dependency in pyproject.toml, run the tests, and commit both files together.
#   ./scripts/lock.sh                      # keep every pin that still fits pyproject.toml
#   ./scripts/lock.sh --upgrade            # the newest versions that fit
#   ./scripts/lock.sh --upgrade-package textual
# uv (from PyPI, into a temporary directory removed afterwards) does the resolving.
set -euo pipefail
cd "$(dirname "$0")/.."
tool="$(mktemp -d)"
trap 'rm -rf "$tool"' EXIT
python3 -m pip install --quiet --disable-pip-version-check --target "$tool" 'uv>=0.9,<1'
"$tool/bin/uv" pip compile pyproject.toml --extra test --universal --python-version 3.10 \
    --generate-hashes --custom-compile-command "./scripts/lock.sh" --quiet \
    --output-file requirements/test.lock "$@"
