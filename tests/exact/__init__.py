"""Exact tests of the pure core, one file per module (`test_<module>.py`).

Each pins a function's output on inputs worked out by hand or by a separate reference
computation. `scripts/mutation.sh` runs this whole folder against every mutant, with the
files named in `[tool.mutmut]`; a test here is also an ordinary part of the suite.
"""
