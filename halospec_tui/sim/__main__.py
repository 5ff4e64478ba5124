"""`python -m halospec_tui.sim`: the embedded server on its own (used as a child process)."""

from __future__ import annotations

import argparse
import sys

from halospec_tui.errors import HalospecError
from halospec_tui.sim.process import add_sim_args, params_from_args, serve


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m halospec_tui.sim")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--parent-pid", type=int, default=None)
    add_sim_args(p)
    ns = p.parse_args(argv)
    try:
        params = params_from_args(ns)
    except HalospecError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    serve(params, ns.port, ns.parent_pid, announce=lambda s: print(s, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
