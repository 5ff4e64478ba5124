#!/usr/bin/env bash
# Mutation testing of the pure core with mutmut (installed here from the `mutation` extra):
#   stats, arms, knob, plan, schedule; the tune plan's decisions: confseq, race, screen,
#   race_rows, verdict; the policy by condition: conditions, policy, paste; controllers/
#   (base, threshold, model, bandit); results/ (schema, writer, reader, samples, report,
#   export_text, export_json, export_md, export_policy, summary_files).
# Not run in CI: 15 minutes with two children on 2 cores (some 8,000 mutants). Modules and tests are
# set in pyproject.toml ([tool.mutmut]; every file in tests/exact/ is in); against each
# mutant, mutmut runs only the tests of the configured fast files that reach the mutated
# function.
#
#   scripts/mutation.sh            # run (MUTMUT_CHILDREN=2 by default, at low priority)
#   MUTMUT_CHILDREN=1 scripts/mutation.sh
#   scripts/mutation.sh 'halospec_tui.race.*'   # one module's mutants (mutmut's names)
#
# Prints the survivors and the score per module and in all:
# killed / (killed + survived + timeouts + no tests).
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
    nice -n 10 "$MUTMUT" run --max-children "$CHILDREN" "$@" >/dev/null 2>mutants.stderr || {
    echo "mutmut run failed or hit the ${LIMIT_S} s limit; see mutants.stderr" >&2
    tail -5 mutants.stderr >&2
}
"$MUTMUT" results --all true > mutants/results.txt || true
"$PY" - <<'PY'
import collections
import re

counts = collections.Counter()
by_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
survivors = []
for line in open("mutants/results.txt"):
    m = re.match(r"\s*(\S+): (.+)$", line)
    if not m:
        continue
    name, status = m.group(1), m.group(2).strip()
    if status == "not checked":  # not run (another module's, when names were given)
        continue
    counts[status] += 1
    by_module[re.sub(r"\.x[_\u01c1].*$", "", name)][status] += 1
    if status in ("survived", "timeout", "no tests", "suspicious", "segfault"):
        survivors.append(f"{status}: {name}")
for line in survivors:
    print(line)


def score(c: collections.Counter[str]) -> str:
    killed = c["killed"]
    judged = killed + c["survived"] + c["timeout"] + c["no tests"]
    return f"{killed}/{judged} killed = {100.0 * killed / judged:.1f}%" if judged else "none"


for module, c in sorted(by_module.items()):
    print(f"{module}: {sum(c.values())} mutants, survived {c['survived']}, {score(c)}")
print(", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
print(f"mutation score: {score(counts)}")
PY
