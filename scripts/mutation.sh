#!/usr/bin/env bash
# Mutation testing of the pure core (stats, controllers, knob, results, plan, verdict,
# schedule) with mutmut (installed here from the `mutation` extra).
# Not run in CI: it takes a few minutes. Modules and tests are set in pyproject.toml
# ([tool.mutmut]); only the fast unit-test files run against each mutant.
#
#   scripts/mutation.sh            # run (MUTMUT_CHILDREN=2 by default, at low priority)
#   MUTMUT_CHILDREN=1 scripts/mutation.sh
#
# Prints the survivors and the score: killed / (killed + survived + timeouts + no tests).
# Survivors judged equivalent are listed, with reasons, in scripts/mutation-survivors.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
CHILDREN=${MUTMUT_CHILDREN:-2}
LIMIT_S=${MUTMUT_TIMEOUT_S:-3000}

[ -x "$MUTMUT" ] || "$PY" -m pip install --quiet -e '.[mutation]'
rm -rf mutants
export CI=1  # hypothesis: the same derandomized examples for every mutant
# Bounded: the whole run stops after LIMIT_S seconds whatever happens.
timeout --signal=INT --kill-after=30 "$LIMIT_S" \
    nice -n 10 "$MUTMUT" run --max-children "$CHILDREN" >/dev/null 2>mutants.stderr || {
    echo "mutmut run failed or hit the ${LIMIT_S} s limit; see mutants.stderr" >&2
    tail -5 mutants.stderr >&2
}
"$MUTMUT" results --all true > mutants/results.txt || true
"$PY" - <<'PY'
import collections
import re

counts = collections.Counter()
survivors = []
for line in open("mutants/results.txt"):
    m = re.match(r"\s*(\S+): (.+)$", line)
    if not m:
        continue
    name, status = m.group(1), m.group(2).strip()
    counts[status] += 1
    if status == "survived":
        survivors.append(name)
for name in survivors:
    print("survived:", name)
killed = counts["killed"]
judged = killed + counts["survived"] + counts["timeout"] + counts["no tests"]
print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
if judged:
    print(f"mutation score: {killed}/{judged} killed = {100.0 * killed / judged:.1f}%")
PY
